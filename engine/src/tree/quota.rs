//! Quotas as Apache ZooKeeper 3.8 keeps them: a quota on `/app` is the node
//! `/zookeeper/quota/app/zookeeper_limits` (the limits, written by a client such as zkCli's
//! `setquota`) next to `/zookeeper/quota/app/zookeeper_stats` (the usage: node count and data
//! bytes of the subtree at `/app`, itself included), both in [`StatsTrack`]'s text form
//! (`count=5,bytes=-1`, hard limits after a `=;`: `count=-1,bytes=-1=;countHardLimit=5`).
//!
//! In: every tree mutation ([`DataTree::create_node`], `delete_node`, `set_data`) calls the
//! hooks here, so the stats move as part of applying each txn and every replica agrees; a tree
//! rebuilt from a snapshot recounts them ([`DataTree::rebuild_quotas`], Apache's
//! `setupQuota`). Out: the usage in the stats nodes, and [`DataTree::quota_excess`] for write
//! validation (Apache's `ZooKeeperServer.checkQuota`): which limit a create or setData would
//! exceed, hard or soft. As in Apache, a stats node changes data without a new version or
//! mzxid and fires no watch.
//!
//! Invariant: `quota_paths` holds exactly the real paths whose limits node exists, and the
//! stats node of each of them (when it exists) holds the exact count and bytes of its subtree
//! (unlike Apache, a client write to a stats node, or limits created over an old stats node,
//! is followed by a recount, so a replica restored from a snapshot holds the same bytes as a
//! live one).

use std::collections::BTreeMap;

use super::{path, DataTree};

/// Parent of every quota node (`Quotas.quotaZookeeper`).
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// Name of the node holding a subtree's limits (`Quotas.limitNode`).
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the node holding a subtree's usage (`Quotas.statNode`).
pub const STAT_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// Apache's `StatsTrack`: `key=value` pairs separated by `,` or `;`; a missing value is -1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Reads the text form. Apache throws on a malformed pair; here such a pair is skipped.
    pub fn parse(bytes: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(bytes);
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut parts = pair.split('=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
            let value = if value.is_empty() { Ok(-1) } else { value.trim().parse::<i64>() };
            if let Ok(value) = value {
                values.insert(key.to_string(), value);
            }
        }
        StatsTrack { values }
    }

    /// A usage record of `count` nodes and `bytes` data bytes.
    pub fn usage(count: i64, bytes: i64) -> StatsTrack {
        let mut stats = StatsTrack::default();
        stats.values.insert(COUNT.into(), count);
        stats.values.insert(BYTES.into(), bytes);
        stats
    }

    fn value(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.value(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.value(BYTES)
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.value(COUNT_HARD_LIMIT)
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.value(BYTE_HARD_LIMIT)
    }

    /// The text form, byte for byte as Apache's `toString`: count and bytes first, then (after
    /// an extra `=` that old parsers skip) the other keys sorted, each after a `;`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = format!("{COUNT}={},{BYTES}={}", self.count(), self.bytes());
        let mut others = self.values.iter().filter(|(k, _)| *k != COUNT && *k != BYTES).peekable();
        if others.peek().is_some() {
            text.push('=');
            for (key, value) in others {
                text.push_str(&format!(";{key}={value}"));
            }
        }
        text.into_bytes()
    }
}

/// Which quota dimension a write would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    Count,
    Bytes,
}

/// A limit a write would exceed (Apache's "Quota exceeded" check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExcess {
    /// The real path the quota is set on.
    pub quota_path: String,
    pub kind: QuotaKind,
    /// Usage after the write.
    pub would_be: i64,
    pub limit: i64,
    /// A hard limit (`countHardLimit`/`byteHardLimit`): refused when quotas are enforced.
    pub hard: bool,
}

impl std::fmt::Display for QuotaExcess {
    /// Apache's log text: `Quota exceeded: /app [current count=6, hardCountLimit=5]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, limit_name) = match self.kind {
            QuotaKind::Count => ("count", "CountLimit"),
            QuotaKind::Bytes => ("bytes", "ByteLimit"),
        };
        let strength = if self.hard { "hard" } else { "soft" };
        write!(
            f,
            "Quota exceeded: {} [current {what}={}, {strength}{limit_name}={}]",
            self.quota_path, self.would_be, self.limit
        )
    }
}

/// `/zookeeper/quota<real>/<name>` for a real path.
pub fn quota_node_path(real_path: &str, name: &str) -> String {
    format!("{QUOTA_ROOT}{real_path}/{name}")
}

/// The real path a quota node's parent stands for (`/zookeeper/quota/app` gives `/app`); None
/// for a parent outside the quota tree or the quota root itself.
fn real_path_of(quota_parent: &str) -> Option<&str> {
    quota_parent.strip_prefix(QUOTA_ROOT).filter(|rest| rest.starts_with('/'))
}

impl DataTree {
    /// The deepest path, `path` itself included, that has a quota (Apache's
    /// `getMaxPrefixWithQuota`); never `/`.
    pub fn quota_prefix<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.quota_paths.is_empty() {
            return None;
        }
        let ends = path.match_indices('/').map(|(i, _)| i).skip(1).chain([path.len()]);
        ends.map(|end| &path[..end]).filter(|prefix| self.quota_paths.contains(*prefix)).last()
    }

    /// The limit a write adding `count_diff` nodes and `bytes_diff` bytes under `path` would
    /// exceed, if any: hard limits win over soft ones, counts are checked before bytes.
    pub fn quota_excess(&self, path: &str, bytes_diff: i64, count_diff: i64) -> Option<QuotaExcess> {
        let prefix = self.quota_prefix(path)?;
        let limits = StatsTrack::parse(
            self.get(&quota_node_path(prefix, LIMIT_NODE))?.data.as_deref().unwrap_or_default(),
        );
        let usage = StatsTrack::parse(
            self.get(&quota_node_path(prefix, STAT_NODE))?.data.as_deref().unwrap_or_default(),
        );
        let checks = [
            (QuotaKind::Count, count_diff, usage.count(), limits.count(), limits.count_hard_limit()),
            (QuotaKind::Bytes, bytes_diff, usage.bytes(), limits.bytes(), limits.byte_hard_limit()),
        ];
        checks.into_iter().find_map(|(kind, diff, used, soft, hard)| {
            if diff == 0 || (soft < 0 && hard < 0) {
                return None;
            }
            let (limit, is_hard) = if hard > -1 { (hard, true) } else { (soft, false) };
            let would_be = used + diff;
            (would_be > limit).then(|| QuotaExcess {
                quota_path: prefix.to_string(),
                kind,
                would_be,
                limit,
                hard: is_hard,
            })
        })
    }

    /// After a node was created: a limits node starts a quota, a stats node is counted, and
    /// the new node counts towards the quota it falls under.
    pub(super) fn quota_after_create(&mut self, path: &str, data_len: usize) {
        let (parent, name) = path::split(path);
        if let Some(real) = real_path_of(parent) {
            if name == LIMIT_NODE {
                self.quota_paths.insert(real.into());
                self.recount_quota(real);
            } else if name == STAT_NODE {
                self.recount_quota(real);
            }
        }
        self.add_quota_usage(path, data_len as i64, 1);
    }

    /// After a node was deleted: a deleted limits node ends its quota; the node no longer
    /// counts towards the quota it fell under.
    pub(super) fn quota_after_delete(&mut self, path: &str, data_len: usize) {
        let (parent, name) = path::split(path);
        if name == LIMIT_NODE {
            if let Some(real) = real_path_of(parent) {
                self.quota_paths.remove(real);
            }
        }
        self.add_quota_usage(path, -(data_len as i64), -1);
    }

    /// After a node's data changed size; a client write to a stats node is recounted over.
    pub(super) fn quota_after_set_data(&mut self, path: &str, bytes_diff: i64) {
        let (parent, name) = path::split(path);
        if let Some(real) = real_path_of(parent).filter(|_| name == STAT_NODE) {
            if self.quota_paths.contains(real) {
                self.recount_quota(real);
            }
        }
        self.add_quota_usage(path, bytes_diff, 0);
    }

    /// Finds every limits node under the quota root and recounts its stats (after a snapshot
    /// restore; Apache's `setupQuota`).
    pub fn rebuild_quotas(&mut self) {
        self.quota_paths.clear();
        let mut limited = Vec::new();
        let mut stack = vec![QUOTA_ROOT.to_string()];
        while let Some(dir) = stack.pop() {
            let Some(node) = self.nodes.get(dir.as_str()) else { continue };
            for child in &node.children {
                if &**child == LIMIT_NODE {
                    if let Some(real) = real_path_of(&dir) {
                        limited.push(real.to_string());
                    }
                } else {
                    stack.push(path::join(&dir, child));
                }
            }
        }
        for real in limited {
            self.quota_paths.insert(real.as_str().into());
            self.recount_quota(&real);
        }
    }

    /// Adds to the usage of the quota `path` falls under, if any (Apache's `updateQuotaStat`).
    fn add_quota_usage(&mut self, path: &str, bytes_diff: i64, count_diff: i64) {
        if bytes_diff == 0 && count_diff == 0 {
            return;
        }
        let Some(prefix) = self.quota_prefix(path) else { return };
        let stat_path = quota_node_path(prefix, STAT_NODE);
        let Some(node) = self.nodes.get(stat_path.as_str()) else { return };
        let mut usage = StatsTrack::parse(node.data.as_deref().unwrap_or_default());
        usage.values.insert(COUNT.into(), usage.count() + count_diff);
        usage.values.insert(BYTES.into(), usage.bytes() + bytes_diff);
        self.replace_stats_data(&stat_path, usage.to_bytes());
    }

    /// Writes the exact usage of the subtree at `real_path` into its stats node, if that
    /// exists (Apache's `updateQuotaForPath`).
    fn recount_quota(&mut self, real_path: &str) {
        let stat_path = quota_node_path(real_path, STAT_NODE);
        if !self.nodes.contains_key(stat_path.as_str()) {
            return;
        }
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![real_path.to_string()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.nodes.get(p.as_str()) else { continue };
            count += 1;
            bytes += node.data_len() as i64;
            stack.extend(node.children.iter().map(|c| path::join(&p, c)));
        }
        self.replace_stats_data(&stat_path, StatsTrack::usage(count, bytes).to_bytes());
    }

    /// New data for a stats node: no version, mzxid or watch moves, as in Apache.
    fn replace_stats_data(&mut self, stat_path: &str, data: Vec<u8>) {
        if let Some(node) = self.nodes.get_mut(stat_path) {
            self.approximate_data_size += data.len() as i64 - node.data_len() as i64;
            node.data = Some(data.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::open_acl_unsafe;

    fn mk(tree: &mut DataTree, path: &str, data: &[u8]) {
        tree.create_node(path, Some(data), &open_acl_unsafe(), 0, -1, 1, 0).unwrap();
    }

    fn usage(tree: &DataTree, real: &str) -> String {
        String::from_utf8(
            tree.get(&quota_node_path(real, STAT_NODE)).unwrap().data.as_deref().unwrap_or_default().to_vec(),
        )
        .unwrap()
    }

    /// What zkCli's `setquota` creates, in its order.
    fn set_quota(tree: &mut DataTree, real: &str, limits: &str) {
        mk(tree, &format!("{QUOTA_ROOT}{real}"), b"");
        mk(tree, &quota_node_path(real, LIMIT_NODE), limits.as_bytes());
        mk(tree, &quota_node_path(real, STAT_NODE), b"count=0,bytes=0");
    }

    #[test]
    fn stats_text_round_trips_as_apache_writes_it() {
        let soft = StatsTrack::parse(b"count=5,bytes=-1");
        assert_eq!((soft.count(), soft.bytes(), soft.count_hard_limit()), (5, -1, -1));
        assert_eq!(soft.to_bytes(), b"count=5,bytes=-1");
        let hard = StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=5");
        assert_eq!((hard.count_hard_limit(), hard.byte_hard_limit()), (5, 100));
        assert_eq!(hard.to_bytes(), b"count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=5");
        assert_eq!(StatsTrack::parse(b"count=,bytes=7").count(), -1);
    }

    #[test]
    fn usage_follows_creates_sets_and_deletes_under_the_quota() {
        let mut tree = DataTree::new();
        mk(&mut tree, "/app", b"abc");
        mk(&mut tree, "/app/a", b"");
        set_quota(&mut tree, "/app", "count=5,bytes=-1");
        assert_eq!(usage(&tree, "/app"), "count=2,bytes=3", "existing subtree counted at setquota");
        mk(&mut tree, "/app/a/b", b"12345");
        mk(&mut tree, "/apple", b"not under /app");
        assert_eq!(usage(&tree, "/app"), "count=3,bytes=8");
        tree.set_data("/app/a/b", Some(b"1"), 1, 2, 0).unwrap();
        assert_eq!(usage(&tree, "/app"), "count=3,bytes=4");
        tree.delete_node("/app/a/b", 3).unwrap();
        assert_eq!(usage(&tree, "/app"), "count=2,bytes=3");
        tree.delete_node(&quota_node_path("/app", LIMIT_NODE), 4).unwrap();
        mk(&mut tree, "/app/c", b"");
        assert_eq!(usage(&tree, "/app"), "count=2,bytes=3", "no limits node, no tracking");
        assert_eq!(tree.quota_prefix("/app/c"), None);
    }

    #[test]
    fn excess_names_the_limit_and_whether_it_is_hard() {
        let mut tree = DataTree::new();
        mk(&mut tree, "/app", b"");
        set_quota(&mut tree, "/app", "count=2,bytes=-1=;byteHardLimit=10");
        mk(&mut tree, "/app/a", b"");
        assert_eq!(
            tree.quota_excess("/app/x", 0, 1).unwrap().to_string(),
            "Quota exceeded: /app [current count=3, softCountLimit=2]"
        );
        let bytes = tree.quota_excess("/app/a", 11, 0).unwrap();
        assert!(bytes.hard && bytes.kind == QuotaKind::Bytes, "{bytes:?}");
        assert_eq!(tree.quota_excess("/app/a", 10, 0), None);
        assert_eq!(tree.quota_excess("/other", 100, 1), None);
    }

    #[test]
    fn nested_paths_count_towards_the_deepest_quota() {
        let mut tree = DataTree::new();
        mk(&mut tree, "/a", b"");
        mk(&mut tree, "/a/b", b"");
        set_quota(&mut tree, "/a", "count=10,bytes=-1");
        mk(&mut tree, "/zookeeper/quota/a/b", b"");
        mk(&mut tree, &quota_node_path("/a/b", LIMIT_NODE), b"count=10,bytes=-1");
        mk(&mut tree, &quota_node_path("/a/b", STAT_NODE), b"");
        mk(&mut tree, "/a/b/c", b"");
        assert_eq!(tree.quota_prefix("/a/b/c"), Some("/a/b"));
        assert_eq!(usage(&tree, "/a/b"), "count=2,bytes=0");
        assert_eq!(
            usage(&tree, "/a"),
            "count=2,bytes=0",
            "Apache counts a node under its deepest quota only"
        );
    }

    #[test]
    fn rebuild_recounts_what_a_snapshot_holds() {
        let mut tree = DataTree::new();
        mk(&mut tree, "/app", b"xy");
        set_quota(&mut tree, "/app", "count=5,bytes=-1");
        mk(&mut tree, "/app/1", b"z");
        let mut copy = DataTree::new();
        let mut nodes: Vec<_> = tree.iter().map(|(p, n)| (p.to_string(), n.clone())).collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, node) in &nodes {
            let data: Option<&[u8]> =
                if path.ends_with(STAT_NODE) { Some(b"count=99,bytes=99") } else { node.data.as_deref() };
            copy.restore_node(path, data, tree.acl_of(node), node.stat).unwrap();
        }
        copy.rebuild_quotas();
        assert_eq!(usage(&copy, "/app"), "count=2,bytes=3");
        assert_eq!(copy.digest(), tree.digest());
        mk(&mut copy, "/app/2", b"");
        assert_eq!(usage(&copy, "/app"), "count=3,bytes=3");
    }
}
