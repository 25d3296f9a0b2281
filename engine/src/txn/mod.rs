//! The replicated transaction: the one record every write produces, and its one apply path.
//!
//! A [`Txn`] is made once by validation ([`crate::request`]), encoded once with rkyv
//! ([`encode`]), and those bytes are what the log stores and a leader sends; every replica
//! applies the archived form with [`apply`], the only function that mutates the tree.
//! Invariant: applying the same txn twice (replay over a fuzzy snapshot) leaves the same tree.
//! Replay is idempotent as Apache's `DataTree.processTxn`: a create of an existing node only
//! moves the parent's cversion/pzxid forward to the txn's values, a delete of a missing node
//! and a set on a missing node change nothing, a set carries its own resulting version, and
//! parent cversion/pzxid never move back (`crate::snapshot` tests this over random txns).
//! Like Apache, a write that fails validation still becomes a txn (`Error`) with its own zxid.

use rkyv::{Archive, Deserialize, Serialize};

use crate::proto::{Acl, ErrorCode, Id, Stat};
use crate::tree::{DataTree, TreeChange, TreeError};

/// One ACL entry in a txn.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TxnAcl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

impl From<&Acl> for TxnAcl {
    fn from(a: &Acl) -> Self {
        TxnAcl { perms: a.perms, scheme: a.id.scheme.clone(), id: a.id.id.clone() }
    }
}

impl From<&ArchivedTxnAcl> for Acl {
    fn from(a: &ArchivedTxnAcl) -> Self {
        Acl { perms: a.perms.to_native(), id: Id { scheme: a.scheme.to_string(), id: a.id.to_string() } }
    }
}

/// A tree operation (alone, or one step of a multi).
///
/// Archived layout rule (log format 2, `crate::log::FORMAT_VERSION`): variants are only ever
/// appended, never reordered or changed, and none may be larger than `Create`, so an archive
/// written by an older version is a valid archive of this type (the test
/// `log_format_1_records_still_decode` holds a frozen format-1 record).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Create, create2, createContainer, createTTL: the kind lives in `ephemeral_owner`.
    Create { path: String, data: Vec<u8>, acl: Vec<TxnAcl>, ephemeral_owner: i64, parent_cversion: i32 },
    /// Delete, also the container/TTL reaper's deleteContainer.
    Delete { path: String },
    /// New data; `version` is the node's version after the write.
    SetData { path: String, data: Vec<u8>, version: i32 },
    /// New ACL; `version` is the aversion after the write.
    SetAcl { path: String, acl: Vec<TxnAcl>, version: i32 },
    /// Multi's check op: no change.
    Check { path: String, version: i32 },
    /// A rejected write: the error code answered.
    Error { code: i32 },
    /// Create with null data (jute length -1), kept and read back as null (since format 2).
    CreateNullData { path: String, acl: Vec<TxnAcl>, ephemeral_owner: i64, parent_cversion: i32 },
    /// SetData with null data (since format 2).
    SetNullData { path: String, version: i32 },
}

impl TxnOp {
    /// A create of `data` (`None`: null data): the variant that archives it.
    pub fn create(
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<TxnAcl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    ) -> TxnOp {
        match data {
            Some(data) => TxnOp::Create { path, data, acl, ephemeral_owner, parent_cversion },
            None => TxnOp::CreateNullData { path, acl, ephemeral_owner, parent_cversion },
        }
    }

    /// A setData of `data` (`None`: null data) giving the node `version`.
    pub fn set_data(path: String, data: Option<Vec<u8>>, version: i32) -> TxnOp {
        match data {
            Some(data) => TxnOp::SetData { path, data, version },
            None => TxnOp::SetNullData { path, version },
        }
    }
}

/// What a txn does.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    CreateSession {
        timeout_ms: i32,
    },
    /// Closes the session; its ephemerals are deleted in this order.
    CloseSession {
        ephemerals: Vec<String>,
    },
    Op(TxnOp),
    /// All-or-nothing ops; a failed multi holds only `Error` ops (see [`multi_failure`]).
    Multi(Vec<TxnOp>),
}

/// One transaction with its header (`TxnHeader`: clientId, cxid, zxid, time).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub session_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
    pub body: TxnBody,
}

/// rkyv's aligned byte buffer holding one encoded txn.
pub type TxnBytes = rkyv::util::AlignedVec;

/// Encodes a txn once; these bytes are logged, sent and applied.
pub fn encode(txn: &Txn) -> TxnBytes {
    rkyv::to_bytes::<rkyv::rancor::Error>(txn).expect("txn serialization cannot fail")
}

/// Validates untrusted bytes (from disk or a peer) and gives the archived txn.
pub fn access(bytes: &[u8]) -> Result<&ArchivedTxn, rkyv::rancor::Error> {
    rkyv::access::<ArchivedTxn, rkyv::rancor::Error>(bytes)
}

/// The archived view of bytes this process produced with [`encode`] (no validation).
pub fn access_trusted(bytes: &TxnBytes) -> &ArchivedTxn {
    // SAFETY: `bytes` came from `encode` on a `Txn` in this process: a valid, aligned archive.
    unsafe { rkyv::access_unchecked::<ArchivedTxn>(bytes) }
}

/// Builds the body of a failed multi as Apache does: ops before the failing one answer Ok,
/// the failing one its code, the ones after it RuntimeInconsistency.
pub fn multi_failure(op_count: usize, failed_index: usize, code: ErrorCode) -> TxnBody {
    let ops = (0..op_count)
        .map(|i| {
            let code = match i.cmp(&failed_index) {
                std::cmp::Ordering::Less => ErrorCode::Ok,
                std::cmp::Ordering::Equal => code,
                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
            };
            TxnOp::Error { code: code.code() }
        })
        .collect();
    TxnBody::Multi(ops)
}

/// The result of one applied op, enough to build the client's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    AclSet { stat: Stat },
    Checked,
    Error { code: i32 },
    SessionCreated,
    SessionClosed,
}

/// Everything applying one txn did.
#[derive(Debug, Default)]
pub struct Applied {
    /// One result per op (one for non-multi txns).
    pub results: Vec<OpResult>,
    /// Tree changes in watch-firing order.
    pub changes: Vec<TreeChange>,
}

/// Applies one archived txn to the tree. The only mutation path of the tree.
pub fn apply(tree: &mut DataTree, txn: &ArchivedTxn) -> Applied {
    let zxid = txn.zxid.to_native();
    let time_ms = txn.time_ms.to_native();
    let mut applied = Applied::default();
    match &txn.body {
        ArchivedTxnBody::CreateSession { .. } => applied.results.push(OpResult::SessionCreated),
        ArchivedTxnBody::CloseSession { ephemerals } => {
            for path in ephemerals.iter() {
                if let Ok(changes) = tree.delete_node(path.as_str(), zxid) {
                    applied.changes.extend(changes);
                }
            }
            applied.results.push(OpResult::SessionClosed);
        }
        ArchivedTxnBody::Op(op) => {
            let result = apply_op(tree, op, zxid, time_ms, &mut applied.changes);
            applied.results.push(result);
        }
        ArchivedTxnBody::Multi(ops) => {
            for op in ops.iter() {
                let result = apply_op(tree, op, zxid, time_ms, &mut applied.changes);
                applied.results.push(result);
            }
        }
    }
    if zxid > tree.last_processed_zxid {
        tree.last_processed_zxid = zxid;
    }
    applied
}

fn apply_op(
    tree: &mut DataTree,
    op: &ArchivedTxnOp,
    zxid: i64,
    time_ms: i64,
    changes: &mut Vec<TreeChange>,
) -> OpResult {
    match op {
        ArchivedTxnOp::Create { path, data, acl, ephemeral_owner, parent_cversion } => {
            let create = Create::from_archived(path, acl, ephemeral_owner, parent_cversion);
            apply_create(tree, create, Some(data.as_slice()), zxid, time_ms, changes)
        }
        ArchivedTxnOp::CreateNullData { path, acl, ephemeral_owner, parent_cversion } => {
            let create = Create::from_archived(path, acl, ephemeral_owner, parent_cversion);
            apply_create(tree, create, None, zxid, time_ms, changes)
        }
        ArchivedTxnOp::Delete { path } => match tree.delete_node(path.as_str(), zxid) {
            Ok(c) => {
                changes.extend(c);
                OpResult::Deleted
            }
            Err(_) => OpResult::Error { code: ErrorCode::NoNode.code() },
        },
        ArchivedTxnOp::SetData { path, data, version } => {
            apply_set_data(tree, path, Some(data.as_slice()), version.to_native(), zxid, time_ms, changes)
        }
        ArchivedTxnOp::SetNullData { path, version } => {
            apply_set_data(tree, path, None, version.to_native(), zxid, time_ms, changes)
        }
        ArchivedTxnOp::SetAcl { path, acl, version } => {
            let acl: Vec<Acl> = acl.iter().map(Acl::from).collect();
            match tree.set_acl(path.as_str(), &acl, version.to_native()) {
                Ok(stat) => OpResult::AclSet { stat },
                Err(_) => OpResult::Error { code: ErrorCode::NoNode.code() },
            }
        }
        ArchivedTxnOp::Check { .. } => OpResult::Checked,
        ArchivedTxnOp::Error { code } => OpResult::Error { code: code.to_native() },
    }
}

/// The fields a create txn carries besides its data (shared by both create variants).
struct Create<'a> {
    path: &'a str,
    acl: Vec<Acl>,
    ephemeral_owner: i64,
    parent_cversion: i32,
}

impl<'a> Create<'a> {
    fn from_archived(
        path: &'a rkyv::string::ArchivedString,
        acl: &rkyv::vec::ArchivedVec<ArchivedTxnAcl>,
        ephemeral_owner: &rkyv::rend::i64_le,
        parent_cversion: &rkyv::rend::i32_le,
    ) -> Self {
        Create {
            path: path.as_str(),
            acl: acl.iter().map(Acl::from).collect(),
            ephemeral_owner: ephemeral_owner.to_native(),
            parent_cversion: parent_cversion.to_native(),
        }
    }
}

fn apply_create(
    tree: &mut DataTree,
    create: Create<'_>,
    data: Option<&[u8]>,
    zxid: i64,
    time_ms: i64,
    changes: &mut Vec<TreeChange>,
) -> OpResult {
    let Create { path, acl, ephemeral_owner, parent_cversion } = create;
    match tree.create_node(path, data, &acl, ephemeral_owner, parent_cversion, zxid, time_ms) {
        Ok((stat, c)) => {
            changes.extend(c);
            OpResult::Created { path: path.to_string(), stat }
        }
        Err(TreeError::NodeExists(_)) => {
            // Replay over a fuzzy snapshot: the node is there already, but the parent's
            // cversion/pzxid still move as this txn says (Apache's DataTree.processTxn).
            tree.replay_parent_cversion(path, parent_cversion, zxid);
            OpResult::Error { code: ErrorCode::NodeExists.code() }
        }
        Err(TreeError::NoNode(_)) => OpResult::Error { code: ErrorCode::NoNode.code() },
    }
}

fn apply_set_data(
    tree: &mut DataTree,
    path: &rkyv::string::ArchivedString,
    data: Option<&[u8]>,
    version: i32,
    zxid: i64,
    time_ms: i64,
    changes: &mut Vec<TreeChange>,
) -> OpResult {
    match tree.set_data(path.as_str(), data, version, zxid, time_ms) {
        Ok((stat, c)) => {
            changes.extend(c);
            OpResult::DataSet { stat }
        }
        Err(_) => OpResult::Error { code: ErrorCode::NoNode.code() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, zxid: i64) -> Txn {
        Txn {
            session_id: 1,
            cxid: 1,
            zxid,
            time_ms: 1000,
            body: TxnBody::Op(TxnOp::Create {
                path: path.into(),
                data: b"v".to_vec(),
                acl: crate::acl::open_acl_unsafe().iter().map(TxnAcl::from).collect(),
                ephemeral_owner: 0,
                parent_cversion: -1,
            }),
        }
    }

    #[test]
    fn encoded_bytes_validate_and_apply() {
        let mut tree = DataTree::new();
        let bytes = encode(&create("/a", 5));
        let archived = access(&bytes).expect("valid archive");
        let applied = apply(&mut tree, archived);
        assert!(
            matches!(&applied.results[0], OpResult::Created { path, stat } if path == "/a" && stat.czxid == 5)
        );
        assert_eq!(tree.last_processed_zxid, 5);
        assert_eq!(applied.changes.iter().map(TreeChange::path).collect::<Vec<_>>(), vec!["/a"]);
        assert!(matches!(applied.changes[0], TreeChange::Created { .. }));
    }

    #[test]
    fn corrupted_bytes_fail_validation() {
        let bytes = encode(&create("/a", 5));
        // A cut archive: the root's relative pointers now point outside the buffer.
        let mut cut = TxnBytes::new();
        cut.extend_from_slice(&bytes[bytes.len() / 2..]);
        assert!(access(&cut).is_err());
    }

    /// A multi record exactly as log format 1 archived it (before the null-data variants
    /// were appended): it must still validate and read back as the same txn.
    #[test]
    fn log_format_1_records_still_decode() {
        let hex = include_str!("testdata/multi_v1.hex").trim();
        let mut bytes = TxnBytes::new();
        let decoded: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        bytes.extend_from_slice(&decoded);
        let archived = access(&bytes).expect("a format-1 archive is a valid archive");
        let txn: Txn = rkyv::deserialize::<Txn, rkyv::rancor::Error>(archived).unwrap();
        let acl = vec![TxnAcl { perms: 31, scheme: "world".into(), id: "anyone".into() }];
        let expected = Txn {
            session_id: 0x1234,
            cxid: 7,
            zxid: 0x1_0000_0005,
            time_ms: 1_700_000_000_000,
            body: TxnBody::Multi(vec![
                TxnOp::Create {
                    path: "/a".into(),
                    data: b"xy".to_vec(),
                    acl: acl.clone(),
                    ephemeral_owner: 0,
                    parent_cversion: 3,
                },
                TxnOp::SetData { path: "/a".into(), data: b"z".to_vec(), version: 2 },
                TxnOp::SetAcl { path: "/a".into(), acl, version: 1 },
                TxnOp::Check { path: "/a".into(), version: 2 },
                TxnOp::Delete { path: "/a".into() },
                TxnOp::Error { code: -101 },
            ]),
        };
        assert_eq!(txn, expected);
        assert_eq!(encode(&expected).as_slice(), bytes.as_slice(), "the layout of old variants is unchanged");
    }

    #[test]
    fn null_data_is_kept_apart_from_empty_data() {
        let mut tree = DataTree::new();
        let open: Vec<TxnAcl> = crate::acl::open_acl_unsafe().iter().map(TxnAcl::from).collect();
        let ops = vec![
            TxnOp::create("/null".into(), None, open.clone(), 0, -1),
            TxnOp::create("/empty".into(), Some(Vec::new()), open, 0, -1),
        ];
        let txn = Txn { session_id: 1, cxid: 1, zxid: 5, time_ms: 0, body: TxnBody::Multi(ops) };
        apply(&mut tree, access(&encode(&txn)).unwrap());
        assert_eq!(tree.get("/null").unwrap().data, None);
        assert_eq!(tree.get("/empty").unwrap().data.as_deref(), Some(&[][..]));
        let set = TxnOp::set_data("/empty".into(), None, 1);
        let txn = Txn { session_id: 1, cxid: 2, zxid: 6, time_ms: 0, body: TxnBody::Op(set) };
        apply(&mut tree, access(&encode(&txn)).unwrap());
        let node = tree.get("/empty").unwrap();
        assert_eq!((node.data.as_deref(), node.stat().data_length, node.stat().version), (None, 0, 1));
    }

    #[test]
    fn failed_multi_layout() {
        let TxnBody::Multi(ops) = multi_failure(3, 1, ErrorCode::NoNode) else { panic!() };
        assert_eq!(
            ops,
            vec![TxnOp::Error { code: 0 }, TxnOp::Error { code: -101 }, TxnOp::Error { code: -2 }]
        );
    }
}
