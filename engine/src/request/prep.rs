//! Write validation (Apache's `PrepRequestProcessor`): turns one write request into the txn op
//! it becomes, or the error code it fails with, checking against the tree plus the changes of
//! earlier ops in the same multi. Pure: reads the tree, never mutates it.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::acl;
use crate::proto::{perms, Acl, CreateMode, ErrorCode, Id, OpCode};
use crate::tree::{self, owner_kind, path, DataTree, NodeStat, OwnerKind};
use crate::txn::{TxnAcl, TxnOp};

/// A node as validation sees it: the tree's, or as an earlier op of the same multi left it.
#[derive(Debug, Clone)]
pub struct Record<'t> {
    pub stat: NodeStat,
    pub num_children: i32,
    pub acl: Cow<'t, [Acl]>,
}

/// The tree overlaid with pending changes of the multi being validated.
pub struct PendingView<'t> {
    tree: &'t DataTree,
    changes: HashMap<String, Option<Record<'t>>>,
}

impl<'t> PendingView<'t> {
    pub fn new(tree: &'t DataTree) -> Self {
        PendingView { tree, changes: HashMap::new() }
    }

    pub fn get(&self, path: &str) -> Option<Record<'t>> {
        if let Some(change) = self.changes.get(path) {
            return change.clone();
        }
        let node = self.tree.get(path)?;
        Some(Record {
            stat: node.stat,
            num_children: node.children.len() as i32,
            acl: Cow::Borrowed(self.tree.acl_of(node)),
        })
    }

    fn put(&mut self, path: &str, record: Option<Record<'t>>) {
        self.changes.insert(path.to_string(), record);
    }
}

/// What validation needs to know about the requester and the server.
pub struct Requester<'a> {
    pub session_id: i64,
    pub ids: &'a [Id],
    /// `zookeeper.skipACL=yes`: every ACL check passes.
    pub skip_acl: bool,
    pub extended_types_enabled: bool,
    /// `zookeeper.enforceQuota`: a write over a hard quota limit fails with QuotaExceeded.
    pub enforce_quota: bool,
    /// The optional authentication providers on (which ACL schemes are valid).
    pub providers: acl::Providers,
}

/// A decoded write op (single, or one step of a multi).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Create { op: OpCode, path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl_ms: i64 },
    Delete { path: String, version: i32 },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    Check { path: String, version: i32 },
}

impl WriteOp {
    /// The opcode this op was sent with (a multi answers each op by it).
    pub fn opcode(&self) -> OpCode {
        match self {
            WriteOp::Create { op, .. } => *op,
            WriteOp::Delete { .. } => OpCode::Delete,
            WriteOp::SetData { .. } => OpCode::SetData,
            WriteOp::SetAcl { .. } => OpCode::SetAcl,
            WriteOp::Check { .. } => OpCode::Check,
        }
    }
}

/// System nodes that can never be deleted (`DataTree.isSpecialPath`).
fn is_special_path(p: &str) -> bool {
    matches!(p, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

fn check_acl(acl: &[Acl], perm: i32, who: &Requester<'_>) -> Result<(), ErrorCode> {
    if who.skip_acl || acl::check_perm(acl, perm, who.ids) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// `checkAndIncVersion`: the version after a conditional write.
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// Apache's `checkQuota` against the applied tree (not the pending view, as Apache): a write
/// over a limit is logged; over a hard limit with quotas enforced it fails. Unlike Apache
/// 3.8, which says nothing unless `enforceQuota` is on, the warning is logged either way.
fn check_quota(
    view: &PendingView<'_>,
    path: &str,
    bytes_diff: i64,
    count_diff: i64,
    who: &Requester<'_>,
) -> Result<(), ErrorCode> {
    let Some(excess) = view.tree.quota_excess(path, bytes_diff, count_diff) else { return Ok(()) };
    log::warn!("{excess}");
    if excess.hard && who.enforce_quota {
        return Err(ErrorCode::QuotaExceeded);
    }
    Ok(())
}

fn valid_path(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

fn to_txn_acl(acl: &[Acl]) -> Vec<TxnAcl> {
    acl.iter().map(TxnAcl::from).collect()
}

/// Validates one op against `view`, records its effect there, and returns its txn op.
pub fn prepare(
    view: &mut PendingView<'_>,
    op: &WriteOp,
    who: &Requester<'_>,
    zxid: i64,
    time_ms: i64,
) -> Result<TxnOp, ErrorCode> {
    match op {
        WriteOp::Create { op, path, data, acl, flags, ttl_ms } => {
            prepare_create(view, *op, path, data, acl, *flags, *ttl_ms, who, zxid, time_ms)
        }
        WriteOp::Delete { path, version } => {
            // Apache's delete does not validate the path: it only refuses one without a
            // slash, with a NUL, or a system node, then looks up parent (and its ACL) first.
            if !path.contains('/') || path.contains('\0') || is_special_path(path) {
                return Err(ErrorCode::BadArguments);
            }
            let parent_path = path::parent(path);
            let mut parent = view.get(parent_path).ok_or(ErrorCode::NoNode)?;
            check_acl(&parent.acl, perms::DELETE, who)?;
            let node = view.get(path).ok_or(ErrorCode::NoNode)?;
            next_version(node.stat.version, *version)?;
            if node.num_children > 0 {
                return Err(ErrorCode::NotEmpty);
            }
            parent.num_children -= 1;
            parent.stat.pzxid = zxid;
            view.put(parent_path, Some(parent));
            view.put(path, None);
            Ok(TxnOp::Delete { path: path.clone() })
        }
        WriteOp::SetData { path, data, version } => {
            valid_path(path)?;
            let mut node = view.get(path).ok_or(ErrorCode::NoNode)?;
            check_acl(&node.acl, perms::WRITE, who)?;
            let old_len = view.tree.get(path).map_or(0, |n| n.data_len());
            check_quota(view, path, data.as_deref().map_or(0, <[u8]>::len) as i64 - old_len as i64, 0, who)?;
            let new_version = next_version(node.stat.version, *version)?;
            node.stat.version = new_version;
            node.stat.mzxid = zxid;
            node.stat.mtime = time_ms;
            view.put(path, Some(node));
            Ok(TxnOp::set_data(path.clone(), data.clone(), new_version))
        }
        WriteOp::SetAcl { path, acl: new_acl, version } => {
            valid_path(path)?;
            let fixed = acl::fixup_acl(new_acl, who.ids, who.providers).map_err(|_| ErrorCode::InvalidAcl)?;
            let mut node = view.get(path).ok_or(ErrorCode::NoNode)?;
            check_acl(&node.acl, perms::ADMIN, who)?;
            let new_version = next_version(node.stat.aversion, *version)?;
            node.stat.aversion = new_version;
            node.acl = Cow::Owned(fixed.clone());
            view.put(path, Some(node));
            Ok(TxnOp::SetAcl { path: path.clone(), acl: to_txn_acl(&fixed), version: new_version })
        }
        WriteOp::Check { path, version } => {
            valid_path(path)?;
            let node = view.get(path).ok_or(ErrorCode::NoNode)?;
            check_acl(&node.acl, perms::READ, who)?;
            if *version != -1 && *version != node.stat.version {
                return Err(ErrorCode::BadVersion);
            }
            Ok(TxnOp::Check { path: path.clone(), version: *version })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn prepare_create(
    view: &mut PendingView<'_>,
    op: OpCode,
    path: &str,
    data: &Option<Vec<u8>>,
    acl: &[Acl],
    flags: i32,
    ttl_ms: i64,
    who: &Requester<'_>,
    zxid: i64,
    time_ms: i64,
) -> Result<TxnOp, ErrorCode> {
    let mode = CreateMode::from_flag(flags).ok_or(ErrorCode::BadArguments)?;
    if mode.is_ttl() && !who.extended_types_enabled {
        return Err(ErrorCode::Unimplemented);
    }
    if mode.is_ttl() && (ttl_ms <= 0 || ttl_ms > tree::MAX_TTL_MS) {
        return Err(ErrorCode::BadArguments);
    }
    if op == OpCode::CreateTtl && !mode.is_ttl() {
        return Err(ErrorCode::BadArguments);
    }
    if op == OpCode::CreateContainer && !mode.is_container() {
        return Err(ErrorCode::BadArguments);
    }
    if mode.is_container() && op != OpCode::CreateContainer {
        return Err(ErrorCode::BadArguments);
    }
    if !path.contains('/') || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let fixed = acl::fixup_acl(acl, who.ids, who.providers).map_err(|_| ErrorCode::InvalidAcl)?;
    // Apache's parent is everything before the last slash, looked up before the path is validated.
    let parent_path = path::parent(path);
    let mut parent = view.get(parent_path).ok_or(ErrorCode::NoNode)?;
    check_acl(&parent.acl, perms::CREATE, who)?;
    let full_path =
        if mode.is_sequential() { format!("{path}{:010}", parent.stat.cversion) } else { path.to_string() };
    valid_path(&full_path)?;
    if view.get(&full_path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(owner_kind(parent.stat.ephemeral_owner), OwnerKind::Ephemeral(_)) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    check_quota(view, &full_path, data.as_deref().map_or(0, <[u8]>::len) as i64, 1, who)?;
    let new_cversion = parent.stat.cversion + 1;
    let ephemeral_owner = if mode.is_ephemeral() {
        who.session_id
    } else if mode.is_container() {
        tree::CONTAINER_EPHEMERAL_OWNER
    } else if mode.is_ttl() {
        tree::ttl_owner(ttl_ms)
    } else {
        0
    };
    parent.stat.cversion = new_cversion;
    parent.stat.pzxid = zxid;
    parent.num_children += 1;
    view.put(parent_path, Some(parent));
    let stat = NodeStat {
        czxid: zxid,
        mzxid: zxid,
        pzxid: zxid,
        ctime: time_ms,
        mtime: time_ms,
        ephemeral_owner,
        ..Default::default()
    };
    view.put(&full_path, Some(Record { stat, num_children: 0, acl: Cow::Owned(fixed.clone()) }));
    Ok(TxnOp::create(full_path, data.clone(), to_txn_acl(&fixed), ephemeral_owner, new_cversion))
}
