//! A digest of the whole tree, to compare replicas (Apache's tree digest serves the same).
//!
//! Order-independent: the wrapping sum of one hash per znode over its path, data, persisted
//! stat and ACL list, so two trees with the same znodes have the same digest whatever their
//! insertion order. `/zookeeper/config` is left out: each member sets it itself, outside
//! txns, when its configuration is loaded or versioned (Apache's digest leaves out the whole
//! `/zookeeper/` subtree). O(znodes); used by the simulator and by replica checks, not on the
//! request path.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::DataTree;
use crate::zab::membership::CONFIG_NODE;

impl DataTree {
    /// The digest of every znode (see the module header).
    pub fn digest(&self) -> u64 {
        let mut sum = 0u64;
        for (path, node) in &self.nodes {
            if &**path == CONFIG_NODE {
                continue;
            }
            let mut h = DefaultHasher::new();
            path.hash(&mut h);
            node.data.hash(&mut h);
            let s = &node.stat;
            (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime).hash(&mut h);
            (s.version, s.cversion, s.aversion, s.ephemeral_owner).hash(&mut h);
            for acl in self.acl_of(node) {
                (acl.perms, &acl.id.scheme, &acl.id.id).hash(&mut h);
            }
            sum = sum.wrapping_add(h.finish());
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use crate::tree::DataTree;

    #[test]
    fn equal_trees_have_equal_digests_and_a_change_shows() {
        let a = DataTree::new();
        let b = DataTree::new();
        assert_eq!(a.digest(), b.digest());
        let mut c = DataTree::new();
        c.last_processed_zxid = 5;
        assert_eq!(a.digest(), c.digest(), "only znodes count");
        c.set_data("/zookeeper", Some(b"x".as_slice()), 1, 2, -1).unwrap();
        assert_ne!(a.digest(), c.digest());
    }
}
