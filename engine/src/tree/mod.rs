//! The data tree: every znode with its data, interned ACL, and exact `Stat` bookkeeping.
//!
//! Owned by the data role (one core); nothing else touches it. In: applied txns through the
//! mutation methods below (called only from [`crate::txn::apply`]), reads by path.
//! Out: node views and the list of [`TreeChange`]s each mutation made, which the caller turns
//! into watch notifications. Invariants: every node but `/` has its parent in the map and is
//! named in the parent's `children`; `ephemerals`, `containers` and `ttls` index exactly the
//! nodes whose `ephemeral_owner` says so; ACL reference counts equal the nodes using them;
//! quota usage nodes move with every mutation ([`quota`]).

pub mod acl_cache;
mod digest;
pub mod path;
pub mod quota;

use std::collections::{BTreeMap, BTreeSet};

use crate::FastMap;
use std::sync::Arc;

use crate::proto::{Acl, Stat};
pub use acl_cache::{AclCache, AclId};

/// `ephemeralOwner` of a container node (`EphemeralType.CONTAINER`).
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
/// High byte marking an extended `ephemeralOwner` (TTL nodes), as `EphemeralType`.
pub const EXTENDED_OWNER_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
/// Largest TTL Apache accepts (`EphemeralType.TTL` max: 0x00ff_ffff_ffff).
pub const MAX_TTL_MS: i64 = 0x00ff_ffff_ffff;

/// What kind of node an `ephemeralOwner` value denotes (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

pub fn owner_kind(ephemeral_owner: i64) -> OwnerKind {
    if ephemeral_owner == 0 {
        OwnerKind::Persistent
    } else if ephemeral_owner == CONTAINER_EPHEMERAL_OWNER {
        OwnerKind::Container
    } else if ephemeral_owner & EXTENDED_OWNER_MASK == EXTENDED_OWNER_MASK {
        OwnerKind::Ttl(ephemeral_owner & MAX_TTL_MS)
    } else {
        OwnerKind::Ephemeral(ephemeral_owner)
    }
}

/// `ephemeralOwner` for a TTL node.
pub fn ttl_owner(ttl_ms: i64) -> i64 {
    EXTENDED_OWNER_MASK | (ttl_ms & MAX_TTL_MS)
}

/// The persisted part of a Stat; `dataLength` and `numChildren` are derived. Archived as is
/// in snapshots (`crate::snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
}

/// One znode.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub stat: NodeStat,
    /// `None`: the node was given null data (jute length -1), which reads back as null as in
    /// Apache; `Some(empty)` is empty data. Both count as length 0.
    pub data: Option<Box<[u8]>>,
    pub acl: AclId,
    pub children: BTreeSet<Box<str>>,
}

impl Node {
    /// Bytes of data (0 for null data).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The wire Stat of this node, as Apache's `DataNode.copyStat`: the stored cversion counts
    /// child creations, the reported one creations plus deletions (`2 * created - children`);
    /// containers and TTL nodes report ephemeralOwner 0.
    pub fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: match owner_kind(s.ephemeral_owner) {
                OwnerKind::Ephemeral(owner) => owner,
                _ => 0,
            },
            data_length: self.data_len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// A change a mutation made, in the order watches must fire. Each carries the ACLs that
/// decide who may hear of it (Apache 3.8.4+, CVE-2024-23944): `acl` is the node's ACL when
/// the change was made (for a delete, the ACL the node had), `parent_acl` the parent's (for
/// its `NodeChildrenChanged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeChange {
    Created { path: String, acl: Arc<[Acl]>, parent_acl: Arc<[Acl]> },
    Deleted { path: String, acl: Arc<[Acl]>, parent_acl: Arc<[Acl]> },
    DataChanged { path: String, acl: Arc<[Acl]> },
}

impl TreeChange {
    pub fn path(&self) -> &str {
        match self {
            TreeChange::Created { path, .. }
            | TreeChange::Deleted { path, .. }
            | TreeChange::DataChanged { path, .. } => path,
        }
    }
}

/// An ACL list no session holds READ on (only `super` passes it): the ACL of a node that is
/// not there when a change is recorded, so its events fail closed.
pub fn unknown_node_acl() -> Arc<[Acl]> {
    Arc::from([Acl { perms: 0, id: crate::acl::anyone_id() }])
}

/// Why a mutation could not be applied (replaying a txn over a fuzzy state may hit these;
/// they are never client errors, which validation catches first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("no node {0}")]
    NoNode(String),
    #[error("node {0} exists")]
    NodeExists(String),
}

/// The znode tree.
#[derive(Debug)]
pub struct DataTree {
    nodes: FastMap<Box<str>, Node>,
    acls: AclCache,
    ephemerals: BTreeMap<i64, BTreeSet<Box<str>>>,
    containers: BTreeSet<Box<str>>,
    ttls: BTreeSet<Box<str>>,
    /// Sum of path and data lengths (Apache's `approximateDataSize`).
    approximate_data_size: i64,
    /// Real paths that have a quota (a `zookeeper_limits` node), see [`quota`].
    quota_paths: BTreeSet<Box<str>>,
    /// zxid of the last applied txn.
    pub last_processed_zxid: i64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree holding `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> Self {
        let mut tree = DataTree {
            nodes: FastMap::default(),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            approximate_data_size: 0,
            quota_paths: BTreeSet::new(),
            last_processed_zxid: 0,
        };
        let open = tree.acls.intern(&crate::acl::open_acl_unsafe());
        tree.nodes.insert("/".into(), Node { acl: open, data: Some(Box::default()), ..Default::default() });
        let read_only = crate::acl::read_acl_unsafe();
        for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let acl =
                if path == "/zookeeper/config" { read_only.clone() } else { crate::acl::open_acl_unsafe() };
            let _ = tree.create_node(path, Some(&[][..]), &acl, 0, -1, 0, 0);
        }
        // Apache links the system nodes in without counting them as child creations, so `/`
        // and `/zookeeper` start at stored cversion 0 (reported as minus their child count).
        for path in ["/", "/zookeeper"] {
            tree.nodes.get_mut(path).expect("just made").stat.cversion = 0;
        }
        // Apache sets the config node's ACL with version -1 (`DataTree.addConfigNode`), so its
        // aclVersion reads -1.
        tree.nodes.get_mut("/zookeeper/config").expect("just made").stat.aversion = -1;
        tree
    }

    /// The node at `path`; "" names the root, as in Apache's map.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// The ACL list of a node.
    pub fn acl_of(&self, node: &Node) -> &[Acl] {
        self.acls.get(node.acl)
    }

    /// The ACL list of the node at `path`, shared; [`unknown_node_acl`] when there is none.
    fn shared_acl_at(&self, path: &str) -> Arc<[Acl]> {
        self.get(path).map_or_else(unknown_node_acl, |n| self.acls.shared(n.acl))
    }

    /// Node count as Apache reports it (its map holds the root twice, as "" and "/").
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn approximate_data_size(&self) -> i64 {
        self.approximate_data_size
    }

    /// Paths of the ephemerals a session owns, sorted.
    pub fn ephemerals_of(&self, session_id: i64) -> Vec<String> {
        self.ephemerals
            .get(&session_id)
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default()
    }

    /// Every session that owns ephemerals, with its paths (for `dump`).
    pub fn all_ephemerals(&self) -> impl Iterator<Item = (i64, &BTreeSet<Box<str>>)> {
        self.ephemerals.iter().map(|(k, v)| (*k, v))
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn container_paths(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(|p| &**p)
    }

    pub fn ttl_paths(&self) -> impl Iterator<Item = &str> {
        self.ttls.iter().map(|p| &**p)
    }

    /// Number of descendants of `path` (getAllChildrenNumber).
    pub fn descendant_count(&self, path: &str) -> usize {
        let Some(node) = self.nodes.get(path) else { return 0 };
        let mut count = 0;
        let mut stack: Vec<String> = node.children.iter().map(|c| path::join(path, c)).collect();
        while let Some(p) = stack.pop() {
            count += 1;
            if let Some(n) = self.nodes.get(p.as_str()) {
                stack.extend(n.children.iter().map(|c| path::join(&p, c)));
            }
        }
        count
    }

    /// Adds a node. `parent_cversion` is the cversion the parent takes (-1: its current + 1);
    /// applied only if larger than the parent's, so replay over a fuzzy snapshot is idempotent.
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time_ms: i64,
    ) -> Result<(Stat, Vec<TreeChange>), TreeError> {
        let (parent_path, child_name) = path::split(path);
        match self.nodes.get(parent_path) {
            None => return Err(TreeError::NoNode(parent_path.to_string())),
            Some(parent) if parent.children.contains(child_name) => {
                return Err(TreeError::NodeExists(path.to_string()))
            }
            Some(_) => {}
        }
        if let Some(orphan) = self.nodes.remove(path) {
            // Linked under no parent: left by replaying the delete of its parent over a fuzzy
            // snapshot that already held it. Replaced, as Apache's createNode (which looks only
            // at the parent's children) does.
            self.unindex(path, &orphan);
        }
        let parent = self.nodes.get_mut(parent_path).expect("looked up above");
        raise_cversion(&mut parent.stat, parent_cversion, zxid);
        parent.children.insert(child_name.into());
        let acl = self.acls.intern(acl);
        let node = Node {
            stat: NodeStat {
                czxid: zxid,
                mzxid: zxid,
                pzxid: zxid,
                ctime: time_ms,
                mtime: time_ms,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner,
            },
            data: data.map(Into::into),
            acl,
            children: BTreeSet::new(),
        };
        let stat = node.stat();
        let change = TreeChange::Created {
            path: path.to_string(),
            acl: self.acls.shared(acl),
            parent_acl: self.shared_acl_at(parent_path),
        };
        self.insert_indexed(path, node);
        self.quota_after_create(path, data.map_or(0, <[u8]>::len));
        Ok((stat, vec![change]))
    }

    /// Inserts a node already linked under its parent, indexing it by owner kind.
    fn insert_indexed(&mut self, path: &str, node: Node) {
        let key: Box<str> = path.into();
        match owner_kind(node.stat.ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Container => {
                self.containers.insert(key.clone());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(key.clone());
            }
            OwnerKind::Ephemeral(owner) => {
                self.ephemerals.entry(owner).or_default().insert(key.clone());
            }
        }
        self.approximate_data_size += (path.len() + node.data_len()) as i64;
        self.nodes.insert(key, node);
    }

    /// A replayed create whose node already exists still moves its parent's cversion and
    /// pzxid as the txn says (Apache's `setCversionPzxid` on NODEEXISTS during replay).
    pub fn replay_parent_cversion(&mut self, path: &str, parent_cversion: i32, zxid: i64) {
        let (parent_path, _) = path::split(path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            raise_cversion(&mut parent.stat, parent_cversion, zxid);
        }
    }

    /// Every node with its path, in no particular order (snapshot digests, dumps).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(path, node)| (&**path, node))
    }

    /// Makes room for `additional` more nodes (a snapshot restore knows its node count).
    pub fn reserve(&mut self, additional: usize) {
        self.nodes.reserve(additional);
    }

    /// Puts a node read from a snapshot in place: a new node is linked under its parent (which
    /// must exist: snapshots list parents first) and indexed by its owner kind; an existing
    /// one (the system nodes of [`DataTree::new`]) takes the snapshot's stat, data and ACL.
    pub fn restore_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        stat: NodeStat,
    ) -> Result<(), TreeError> {
        let acl = self.acls.intern(acl);
        if let Some(node) = self.nodes.get_mut(path) {
            self.approximate_data_size += data.map_or(0, <[u8]>::len) as i64 - node.data_len() as i64;
            let old_acl = std::mem::replace(&mut node.acl, acl);
            node.data = data.map(Into::into);
            node.stat = stat;
            self.acls.release(old_acl);
            return Ok(());
        }
        let (parent_path, child_name) = path::split(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            self.acls.release(acl);
            return Err(TreeError::NoNode(parent_path.to_string()));
        };
        parent.children.insert(child_name.into());
        self.insert_indexed(path, Node { stat, data: data.map(Into::into), acl, children: BTreeSet::new() });
        Ok(())
    }

    /// Removes a leaf node; the parent's pzxid moves forward (never back).
    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Result<Vec<TreeChange>, TreeError> {
        let (parent_path, child_name) = path::split(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return Err(TreeError::NoNode(parent_path.to_string()));
        };
        parent.children.remove(child_name);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = self.acls.shared(parent.acl);
        let Some(node) = self.nodes.remove(path) else {
            return Err(TreeError::NoNode(path.to_string()));
        };
        let acl = self.acls.shared(node.acl);
        self.unindex(path, &node);
        self.quota_after_delete(path, node.data_len());
        Ok(vec![TreeChange::Deleted { path: path.to_string(), acl, parent_acl }])
    }

    /// Undoes what [`Self::insert_indexed`] did for a node just removed from the map.
    fn unindex(&mut self, path: &str, node: &Node) {
        self.acls.release(node.acl);
        self.approximate_data_size -= (path.len() + node.data_len()) as i64;
        match owner_kind(node.stat.ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Ephemeral(owner) => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
        }
    }

    /// Replaces a node's data; `version` is the new version the txn carries.
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time_ms: i64,
    ) -> Result<(Stat, Vec<TreeChange>), TreeError> {
        let Some(node) = self.nodes.get_mut(path) else {
            return Err(TreeError::NoNode(path.to_string()));
        };
        let bytes_diff = data.map_or(0, <[u8]>::len) as i64 - node.data_len() as i64;
        self.approximate_data_size += bytes_diff;
        node.data = data.map(Into::into);
        node.stat.mtime = time_ms;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let stat = node.stat();
        let acl = self.acls.shared(node.acl);
        self.quota_after_set_data(path, bytes_diff);
        Ok((stat, vec![TreeChange::DataChanged { path: path.to_string(), acl }]))
    }

    /// Replaces a node's ACL; `version` is the new aversion the txn carries.
    pub fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, TreeError> {
        let new_acl = self.acls.intern(acl);
        let Some(node) = self.nodes.get_mut(path) else {
            self.acls.release(new_acl);
            return Err(TreeError::NoNode(path.to_string()));
        };
        let old = std::mem::replace(&mut node.acl, new_acl);
        node.stat.aversion = version;
        let stat = node.stat();
        self.acls.release(old);
        Ok(stat)
    }

    /// Number of distinct ACL lists in use.
    pub fn acl_list_count(&self) -> usize {
        self.acls.len()
    }
}

/// Sets a parent's cversion to `new_cversion` (-1: its current + 1) and its pzxid to `zxid`,
/// only when that moves the cversion forward, so a replayed txn never moves it back.
fn raise_cversion(parent: &mut NodeStat, new_cversion: i32, zxid: i64) {
    let new_cversion = if new_cversion == -1 { parent.cversion + 1 } else { new_cversion };
    if new_cversion > parent.cversion {
        parent.cversion = new_cversion;
        parent.pzxid = zxid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::open_acl_unsafe;

    #[test]
    fn fresh_tree_has_the_zookeeper_system_nodes() {
        let tree = DataTree::new();
        assert!(tree.contains("/zookeeper/quota"));
        assert!(tree.contains("/zookeeper/config"));
        assert_eq!(tree.node_count(), 5);
        assert_eq!(tree.get("/").unwrap().stat().num_children, 1);
    }

    #[test]
    fn create_and_delete_keep_parent_stat_and_indexes() {
        let mut tree = DataTree::new();
        let (stat, _) =
            tree.create_node("/a", Some(b"x".as_slice()), &open_acl_unsafe(), 0, -1, 7, 100).unwrap();
        assert_eq!((stat.czxid, stat.mzxid, stat.pzxid, stat.data_length), (7, 7, 7, 1));
        tree.create_node("/a/e", Some(b"".as_slice()), &open_acl_unsafe(), 42, -1, 8, 101).unwrap();
        let a = tree.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (1, 8, 1));
        assert_eq!(tree.ephemerals_of(42), vec!["/a/e".to_string()]);
        tree.delete_node("/a/e", 9).unwrap();
        let a = tree.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 9, 0), "reported cversion counts the delete");
        assert!(tree.ephemerals_of(42).is_empty());
        assert_eq!(
            tree.create_node("/a", Some(b"".as_slice()), &open_acl_unsafe(), 0, -1, 10, 0).unwrap_err(),
            TreeError::NodeExists("/a".into())
        );
    }

    #[test]
    fn replayed_create_does_not_move_parent_cversion_back() {
        let mut tree = DataTree::new();
        tree.create_node("/p", Some(b"".as_slice()), &open_acl_unsafe(), 0, -1, 1, 0).unwrap();
        tree.create_node("/p/a", Some(b"".as_slice()), &open_acl_unsafe(), 0, 1, 2, 0).unwrap();
        tree.create_node("/p/b", Some(b"".as_slice()), &open_acl_unsafe(), 0, 2, 3, 0).unwrap();
        tree.delete_node("/p/a", 4).unwrap();
        // Replay of the first create over this state (fuzzy snapshot).
        tree.create_node("/p/a", Some(b"".as_slice()), &open_acl_unsafe(), 0, 1, 2, 0).unwrap();
        let p = tree.get("/p").unwrap().stat();
        assert_eq!((p.cversion, p.pzxid), (2, 4));
    }

    #[test]
    fn owner_kinds_round_trip() {
        assert_eq!(owner_kind(0), OwnerKind::Persistent);
        assert_eq!(owner_kind(CONTAINER_EPHEMERAL_OWNER), OwnerKind::Container);
        assert_eq!(owner_kind(ttl_owner(5000)), OwnerKind::Ttl(5000));
        assert_eq!(owner_kind(0x1234), OwnerKind::Ephemeral(0x1234));
    }
}
