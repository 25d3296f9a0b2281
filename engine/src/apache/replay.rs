//! Apache state in ringkeeper's terms: an Apache snapshot restored into a [`DataTree`] and a
//! session map, the Apache txns after it applied through ringkeeper's one apply path
//! ([`crate::txn::apply`], idempotent over a fuzzy snapshot as Apache's `processTxn`), and the
//! result captured as a ringkeeper [`SnapshotImage`]; and the other way, an image written as an
//! [`ApacheSnapshot`]. Sessions follow Apache's `FileTxnSnapLog.processTransaction`: a
//! createSession adds one, a closeSession removes it and deletes its ephemerals (the paths the
//! txn names, then any other the session still owns, as `DataTree.killSession`).

use std::collections::{BTreeMap, HashMap};

use super::snapshot::{ApacheNode, ApacheSnapshot};
use super::FormatError;
use crate::proto::Acl;
use crate::session::SessionTable;
use crate::snapshot::SnapshotImage;
use crate::tree::DataTree;
use crate::txn::{self, Txn, TxnBody};

/// A tree and session table being rebuilt from Apache's files.
pub struct ApacheReplay {
    tree: DataTree,
    /// Session id -> timeout ms.
    sessions: BTreeMap<i64, i32>,
}

impl ApacheReplay {
    /// The state a snapshot holds; `zxid` is the one its file name carries.
    pub fn from_snapshot(snap: &ApacheSnapshot, zxid: i64) -> Result<ApacheReplay, FormatError> {
        let acls: HashMap<i64, Vec<Acl>> = snap.acls.iter().cloned().collect();
        let mut tree = DataTree::new();
        tree.reserve(snap.nodes.len());
        for node in &snap.nodes {
            let acl = match acls.get(&node.acl) {
                Some(list) => list.clone(),
                None => snap.acl_list(node.acl).ok_or_else(|| {
                    FormatError::at(0, format!("node {} names unknown ACL id {}", node.path, node.acl))
                })?,
            };
            tree.restore_node(&node.path, node.data.as_deref(), &acl, node.stat)
                .map_err(|e| FormatError::at(0, format!("node {} cannot be restored: {e}", node.path)))?;
        }
        tree.last_processed_zxid = zxid;
        Ok(ApacheReplay { tree, sessions: snap.sessions.iter().copied().collect() })
    }

    /// Applies one txn (any zxid already in the tree is applied again harmlessly, as Apache
    /// replays a fuzzy snapshot).
    pub fn apply(&mut self, txn: &Txn) {
        let mut txn = txn.clone();
        match &mut txn.body {
            TxnBody::CreateSession { timeout_ms } => {
                self.sessions.insert(txn.session_id, *timeout_ms);
            }
            TxnBody::CloseSession { ephemerals } => {
                self.sessions.remove(&txn.session_id);
                for owned in self.tree.ephemerals_of(txn.session_id) {
                    if !ephemerals.contains(&owned) {
                        ephemerals.push(owned);
                    }
                }
            }
            TxnBody::Op(_) | TxnBody::Multi(_) => {}
        }
        let bytes = txn::encode(&txn);
        txn::apply(&mut self.tree, txn::access_trusted(&bytes));
    }

    /// zxid of the last txn in the state.
    pub fn last_zxid(&self) -> i64 {
        self.tree.last_processed_zxid
    }

    /// The state as a (consistent, not fuzzy) ringkeeper snapshot image.
    pub fn into_image(self) -> SnapshotImage {
        let mut table = SessionTable::new(0, 0, &[], 1);
        for (id, timeout_ms) in &self.sessions {
            table.add(*id, *timeout_ms, 0);
        }
        crate::snapshot::capture(&self.tree, &table)
    }
}

/// An Apache snapshot holding exactly an image's tree and sessions (ACL ids from 1 in order of
/// first use, as Apache's cache numbers them).
pub fn apache_snapshot_of(image: &SnapshotImage, dbid: i64) -> ApacheSnapshot {
    let acls: Vec<(i64, Vec<Acl>)> = image
        .acls
        .iter()
        .enumerate()
        .map(|(index, list)| (index as i64 + 1, list.iter().map(acl_of).collect()))
        .collect();
    let nodes = image
        .nodes
        .iter()
        .map(|node| ApacheNode {
            path: node.path.clone(),
            data: node.data.clone(),
            acl: node.acl as i64 + 1,
            stat: node.stat,
        })
        .collect();
    ApacheSnapshot {
        dbid,
        sessions: image.sessions.iter().map(|s| (s.id, s.timeout_ms)).collect(),
        acls,
        nodes,
        digest: None,
    }
}

fn acl_of(a: &txn::TxnAcl) -> Acl {
    Acl { perms: a.perms, id: crate::proto::Id { scheme: a.scheme.clone(), id: a.id.clone() } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apache::{snapshot, txnlog};
    use crate::txn::{TxnAcl, TxnOp};

    fn create(path: &str, zxid: i64, owner: i64) -> Txn {
        Txn {
            session_id: 7,
            cxid: 1,
            zxid,
            time_ms: 1_000 + zxid,
            body: TxnBody::Op(TxnOp::Create {
                path: path.into(),
                data: b"v".to_vec(),
                acl: crate::acl::open_acl_unsafe().iter().map(TxnAcl::from).collect(),
                ephemeral_owner: owner,
                parent_cversion: -1,
            }),
        }
    }

    #[test]
    fn snapshot_round_trips_through_apache_bytes_and_close_session_drops_ephemerals() {
        let empty = ApacheSnapshot {
            nodes: vec![ApacheNode {
                path: "/".into(),
                data: Some(vec![]),
                acl: -1,
                stat: Default::default(),
            }],
            ..Default::default()
        };
        let mut replay = ApacheReplay::from_snapshot(&empty, 0).unwrap();
        replay.apply(&Txn {
            session_id: 7,
            cxid: 0,
            zxid: 1,
            time_ms: 5,
            body: TxnBody::CreateSession { timeout_ms: 30_000 },
        });
        replay.apply(&create("/a", 2, 0));
        replay.apply(&create("/a/e", 3, 7));
        let mut null_data = create("/a/null", 4, 0);
        if let TxnBody::Op(TxnOp::Create { path, acl, .. }) = null_data.body {
            null_data.body = TxnBody::Op(TxnOp::create(path, None, acl, 0, -1));
        }
        replay.apply(&null_data);
        let image = replay.into_image();
        assert_eq!(image.sessions.len(), 1);
        let data_of = |image: &SnapshotImage, path: &str| {
            image.nodes.iter().find(|n| n.path == path).map(|n| n.data.clone()).expect("node in the image")
        };
        assert_eq!(data_of(&image, "/a/null"), None, "null data is kept null");
        assert_eq!(data_of(&image, "/"), Some(vec![]), "the root's data is empty, not null");
        let bytes = snapshot::encode(&apache_snapshot_of(&image, 0));
        let decoded = snapshot::decode(&bytes).expect("our own Apache snapshot decodes");
        let again = ApacheReplay::from_snapshot(&decoded, image.zxid).unwrap().into_image();
        assert_eq!(again, image, "an image survives the Apache snapshot format unchanged");
        let mut again = ApacheReplay::from_snapshot(&decoded, image.zxid).unwrap();
        again.apply(&Txn {
            session_id: 7,
            cxid: 0,
            zxid: 5,
            time_ms: 6,
            body: TxnBody::CloseSession { ephemerals: vec![] },
        });
        let closed = again.into_image();
        assert!(closed.sessions.is_empty());
        assert!(closed.nodes.iter().all(|n| n.path != "/a/e"), "the session's ephemeral is gone");
        // A flipped byte inside the tree is caught by the seal and located.
        let mut damaged = bytes.clone();
        damaged[40] ^= 0x01;
        assert!(snapshot::decode(&damaged).is_err());
        // The log reader refuses a file that is not a log.
        assert!(txnlog::decode(&bytes).unwrap_err().detail.contains("ZKLG"));
    }
}
