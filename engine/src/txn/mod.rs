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
            let acl: Vec<Acl> = acl.iter().map(Acl::from).collect();
            match tree.create_node(
                path.as_str(),
                data.as_slice(),
                &acl,
                ephemeral_owner.to_native(),
                parent_cversion.to_native(),
                zxid,
                time_ms,
            ) {
                Ok((stat, c)) => {
                    changes.extend(c);
                    OpResult::Created { path: path.to_string(), stat }
                }
                Err(TreeError::NodeExists(_)) => {
                    // Replay over a fuzzy snapshot: the node is there already, but the parent's
                    // cversion/pzxid still move as this txn says (Apache's DataTree.processTxn).
                    tree.replay_parent_cversion(path.as_str(), parent_cversion.to_native(), zxid);
                    OpResult::Error { code: ErrorCode::NodeExists.code() }
                }
                Err(TreeError::NoNode(_)) => OpResult::Error { code: ErrorCode::NoNode.code() },
            }
        }
        ArchivedTxnOp::Delete { path } => match tree.delete_node(path.as_str(), zxid) {
            Ok(c) => {
                changes.extend(c);
                OpResult::Deleted
            }
            Err(_) => OpResult::Error { code: ErrorCode::NoNode.code() },
        },
        ArchivedTxnOp::SetData { path, data, version } => {
            match tree.set_data(path.as_str(), data.as_slice(), version.to_native(), zxid, time_ms) {
                Ok((stat, c)) => {
                    changes.extend(c);
                    OpResult::DataSet { stat }
                }
                Err(_) => OpResult::Error { code: ErrorCode::NoNode.code() },
            }
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
        assert_eq!(applied.changes, vec![TreeChange::Created { path: "/a".into() }]);
    }

    #[test]
    fn corrupted_bytes_fail_validation() {
        let bytes = encode(&create("/a", 5));
        // A cut archive: the root's relative pointers now point outside the buffer.
        let mut cut = TxnBytes::new();
        cut.extend_from_slice(&bytes[bytes.len() / 2..]);
        assert!(access(&cut).is_err());
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
