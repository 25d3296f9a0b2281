//! Watch tables: one-shot, persistent and persistent-recursive watches, and which watchers a
//! tree change notifies, as Apache ZooKeeper 3.8's `WatchManager` and `DataTree` decide it.
//!
//! Owns two [`WatchTable`]s (data watches: getData/exists/addWatch; child watches:
//! getChildren/addWatch) keyed by path, with a reverse index watcher -> paths so a closed
//! connection is dropped in O(its watches). In: registrations and "this node was
//! created/deleted/changed" from the apply path. Out: [`Notification`]s in delivery order.
//! Invariants: the forward and reverse index of each table hold exactly the same
//! (path, watcher) pairs, no registration has an empty mode set, per-path watcher lists are
//! sorted by [`WatcherId`], and `recursive` counts the registrations holding the recursive
//! mode. Nothing returned depends on hash-map iteration order.
//!
//! ACLs are not checked here. Apache (3.8.4+, CVE-2024-23944) drops an event for a connection
//! that lacks READ on the ACL of the node named by the event path (for `NodeDeleted` the ACL
//! the node had; for `NodeChildrenChanged` the parent's): the request processor filters
//! [`Notification`]s with the ACLs each [`crate::tree::TreeChange`] carries.

use std::collections::HashSet;

use crate::FastMap;
use std::sync::Arc;

use crate::conn::ConnId;
use crate::proto::{watcher_type, EventType};

/// One watching party (one client connection), chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatcherId(pub ConnId);

/// One watch event to deliver: `event_type` on `path` to `watcher`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub watcher: WatcherId,
    pub event_type: EventType,
    pub path: String,
}

/// How a registration fires (`WatcherMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// One-shot: removed when it fires.
    Standard,
    /// Fires on every event at its path; stays until removed.
    Persistent,
    /// Fires on every event at its path and below, except `NodeChildrenChanged`.
    PersistentRecursive,
}

impl WatchMode {
    fn bit(self) -> u8 {
        match self {
            WatchMode::Standard => STANDARD,
            WatchMode::Persistent => PERSISTENT,
            WatchMode::PersistentRecursive => RECURSIVE,
        }
    }
}

const STANDARD: u8 = 1;
const PERSISTENT: u8 = 2;
const RECURSIVE: u8 = 4;

/// One table of watches (Apache keeps one for data and one for children).
///
/// A (path, watcher) registration holds a set of modes: unlike Apache 3.8, where a later
/// standard watch silently replaces a persistent one on the same path, the modes coexist
/// (as in 3.9) and the registration fires at most once per event.
#[derive(Debug, Default)]
pub struct WatchTable {
    /// path -> (watcher, mode bits), sorted by watcher, bits never 0.
    by_path: FastMap<Arc<str>, Vec<(WatcherId, u8)>>,
    /// watcher -> paths it has a registration on (keys shared with `by_path`).
    by_watcher: FastMap<WatcherId, HashSet<Arc<str>>>,
    /// Registrations holding the recursive mode; 0 means triggers skip the ancestor walk.
    recursive: usize,
    /// Number of (path, watcher) registrations.
    watches: usize,
}

impl WatchTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `w` on `path` with `mode`. True when this mode was not already held.
    pub fn add(&mut self, path: &str, w: WatcherId, mode: WatchMode) -> bool {
        let bit = mode.bit();
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(path),
        };
        let list = self.by_path.entry(Arc::clone(&key)).or_default();
        match list.binary_search_by_key(&w, |e| e.0) {
            Ok(i) => {
                if list[i].1 & bit != 0 {
                    return false;
                }
                list[i].1 |= bit;
            }
            Err(i) => {
                list.insert(i, (w, bit));
                self.watches += 1;
                self.by_watcher.entry(w).or_default().insert(key);
            }
        }
        if bit == RECURSIVE {
            self.recursive += 1;
        }
        true
    }

    /// Drop `w`'s registration on `path` (all its modes). True when there was one.
    pub fn remove(&mut self, path: &str, w: WatcherId) -> bool {
        let Some(list) = self.by_path.get_mut(path) else {
            return false;
        };
        let Ok(i) = list.binary_search_by_key(&w, |e| e.0) else {
            return false;
        };
        let (_, bits) = list.remove(i);
        if list.is_empty() {
            self.by_path.remove(path);
        }
        self.forget(bits);
        if let Some(paths) = self.by_watcher.get_mut(&w) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_watcher.remove(&w);
            }
        }
        true
    }

    /// Drop every registration of `w`, in O(its registrations).
    pub fn remove_watcher(&mut self, w: WatcherId) {
        let Some(paths) = self.by_watcher.remove(&w) else {
            return;
        };
        for path in paths {
            let Some(list) = self.by_path.get_mut(&*path) else {
                continue;
            };
            if let Ok(i) = list.binary_search_by_key(&w, |e| e.0) {
                let (_, bits) = list.remove(i);
                if list.is_empty() {
                    self.by_path.remove(&*path);
                }
                self.forget(bits);
            }
        }
    }

    /// Does `w` hold a registration (any mode) on exactly `path`?
    pub fn contains(&self, path: &str, w: WatcherId) -> bool {
        self.by_path.get(path).is_some_and(|l| l.binary_search_by_key(&w, |e| e.0).is_ok())
    }

    /// The modes `w` holds on exactly `path`.
    pub fn modes(&self, path: &str, w: WatcherId) -> Vec<WatchMode> {
        let bits = self
            .by_path
            .get(path)
            .and_then(|l| l.binary_search_by_key(&w, |e| e.0).ok().map(|i| l[i].1))
            .unwrap_or(0);
        [WatchMode::Standard, WatchMode::Persistent, WatchMode::PersistentRecursive]
            .into_iter()
            .filter(|m| bits & m.bit() != 0)
            .collect()
    }

    /// `WatchManager.triggerWatch`: append to `out` the watchers `event` on `path` fires
    /// (sorted, no duplicates; only `out[start..]` is touched) and consume the one-shot
    /// registrations on `path`. Non-recursive registrations fire only on `path` itself;
    /// recursive ones on `path` and its ancestors, never for `NodeChildrenChanged`.
    fn trigger(&mut self, path: &str, event: EventType, out: &mut Vec<WatcherId>) {
        let start = out.len();
        let children = event == EventType::NodeChildrenChanged;
        let mut emptied = false;
        if let Some(list) = self.by_path.get_mut(path) {
            let by_watcher = &mut self.by_watcher;
            let mut consumed = 0;
            list.retain_mut(|(w, bits)| {
                if *bits & (STANDARD | PERSISTENT) != 0 || (*bits & RECURSIVE != 0 && !children) {
                    out.push(*w);
                }
                if *bits & STANDARD == 0 {
                    return true;
                }
                *bits &= !STANDARD;
                if *bits != 0 {
                    return true;
                }
                consumed += 1;
                if let Some(paths) = by_watcher.get_mut(w) {
                    paths.remove(path);
                    if paths.is_empty() {
                        by_watcher.remove(w);
                    }
                }
                false
            });
            self.watches -= consumed;
            emptied = list.is_empty();
        }
        if emptied {
            self.by_path.remove(path);
        }
        if self.recursive > 0 && !children {
            let exact = out.len();
            let mut p = path;
            while let Some(parent) = parent_of(p) {
                if let Some(list) = self.by_path.get(parent) {
                    out.extend(list.iter().filter(|e| e.1 & RECURSIVE != 0).map(|e| e.0));
                }
                p = parent;
            }
            if out.len() > exact {
                // A watcher may hold registrations at several levels: sort and dedup in place.
                out[start..].sort_unstable();
                let mut kept = start;
                for i in start..out.len() {
                    if kept == start || out[i] != out[kept - 1] {
                        out[kept] = out[i];
                        kept += 1;
                    }
                }
                out.truncate(kept);
            }
        }
    }

    fn forget(&mut self, bits: u8) {
        self.watches -= 1;
        if bits & RECURSIVE != 0 {
            self.recursive -= 1;
        }
    }

    /// Number of (path, watcher) registrations (`IWatchManager.size`).
    pub fn watch_count(&self) -> usize {
        self.watches
    }

    /// Number of watched paths.
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// Number of watchers holding at least one registration.
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }

    /// Registrations holding the persistent-recursive mode.
    pub fn recursive_count(&self) -> usize {
        self.recursive
    }

    /// Watcher -> its paths, both sorted (`wchc`).
    pub fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut v: Vec<(WatcherId, Vec<String>)> = self
            .by_watcher
            .iter()
            .map(|(w, paths)| {
                let mut p: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
                p.sort_unstable();
                (*w, p)
            })
            .collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    /// Path -> its watchers, both sorted (`wchp`).
    pub fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut v: Vec<(String, Vec<WatcherId>)> = self
            .by_path
            .iter()
            .map(|(p, list)| (p.to_string(), list.iter().map(|e| e.0).collect()))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Parent of an absolute path; `None` for `/` (and for anything without a `/`).
fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(i) if i > 0 => Some(&path[..i]),
        _ => None,
    }
}

/// Data and child watch tables, triggered as Apache's `DataTree` triggers them.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: WatchTable,
    child: WatchTable,
    /// Reused buffers for triggers (no allocation per write once warm).
    scratch: Vec<WatcherId>,
    fired: Vec<WatcherId>,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// getData / exists with watch=true (exists on a missing node too): one-shot data watch.
    pub fn add_data_watch(&mut self, path: &str, w: WatcherId) {
        self.data.add(path, w, WatchMode::Standard);
    }

    /// getChildren with watch=true: one-shot child watch.
    pub fn add_child_watch(&mut self, path: &str, w: WatcherId) {
        self.child.add(path, w, WatchMode::Standard);
    }

    /// addWatch: a persistent (optionally recursive) watch, registered in both tables as
    /// Apache 3.8's `DataTree.addWatch` does.
    pub fn add_persistent_watch(&mut self, path: &str, w: WatcherId, recursive: bool) {
        let mode = if recursive { WatchMode::PersistentRecursive } else { WatchMode::Persistent };
        // Apache 3.8 keeps one persistent mode per (watcher, path): the newer one replaces.
        for table in [&mut self.data, &mut self.child] {
            let other = if recursive { WatchMode::Persistent } else { WatchMode::PersistentRecursive };
            let modes = table.modes(path, w);
            if modes.contains(&other) {
                table.remove(path, w);
                for kept in modes.into_iter().filter(|m| *m != other) {
                    table.add(path, w, kept);
                }
            }
            table.add(path, w, mode);
        }
    }

    /// addWatch with a raw `add_watch_mode` value; false (nothing added) for unknown modes.
    pub fn add_watch_mode(&mut self, path: &str, w: WatcherId, mode: i32) -> bool {
        use crate::proto::add_watch_mode::{PERSISTENT, PERSISTENT_RECURSIVE};
        match mode {
            PERSISTENT => self.add_persistent_watch(path, w, false),
            PERSISTENT_RECURSIVE => self.add_persistent_watch(path, w, true),
            _ => return false,
        }
        true
    }

    /// `path` was created under `parent`: `NodeCreated` from the data table on `path`, then
    /// `NodeChildrenChanged` from the child table on `parent`.
    pub fn node_created(&mut self, path: &str, parent: &str) -> Vec<Notification> {
        let mut out = Vec::new();
        self.fire_data(path, EventType::NodeCreated, &mut out);
        self.fire_child(parent, EventType::NodeChildrenChanged, false, &mut out);
        out
    }

    /// `path` was deleted from `parent`: `NodeDeleted` from the data table, `NodeDeleted`
    /// from the child table to watchers the data table did not already notify, then
    /// `NodeChildrenChanged` on `parent`. One-shot watches of suppressed watchers are still
    /// consumed.
    pub fn node_deleted(&mut self, path: &str, parent: &str) -> Vec<Notification> {
        let mut out = Vec::new();
        self.fire_data(path, EventType::NodeDeleted, &mut out);
        self.fire_child(path, EventType::NodeDeleted, true, &mut out);
        self.fire_child(parent, EventType::NodeChildrenChanged, false, &mut out);
        out
    }

    /// setData on `path`: `NodeDataChanged` from the data table.
    pub fn data_changed(&mut self, path: &str) -> Vec<Notification> {
        let mut out = Vec::new();
        self.fire_data(path, EventType::NodeDataChanged, &mut out);
        out
    }

    /// Data-table trigger; remembers who fired in `self.fired` for a following suppression.
    fn fire_data(&mut self, path: &str, event: EventType, out: &mut Vec<Notification>) {
        self.fired.clear();
        self.data.trigger(path, event, &mut self.fired);
        out.extend(self.fired.iter().map(|&watcher| Notification {
            watcher,
            event_type: event,
            path: path.to_owned(),
        }));
    }

    fn fire_child(&mut self, path: &str, event: EventType, suppress: bool, out: &mut Vec<Notification>) {
        self.scratch.clear();
        self.child.trigger(path, event, &mut self.scratch);
        let fired = &self.fired;
        out.extend(
            self.scratch
                .iter()
                .filter(|w| !suppress || fired.binary_search(w).is_err())
                .map(|&watcher| Notification { watcher, event_type: event, path: path.to_owned() }),
        );
    }

    /// Connection closed: drop everything of `w`, in O(its watches).
    pub fn remove_watcher(&mut self, w: WatcherId) {
        self.data.remove_watcher(w);
        self.child.remove_watcher(w);
    }

    /// removeWatches (`DataTree.removeWatch`): drop `w`'s registration on `path` from the
    /// child table (`CHILDREN`), the data table (`DATA`) or both (`ANY`), whatever its modes
    /// (so persistent watches go too, in the table named). False (the server answers
    /// `NoWatcher`) when nothing matched or the type is unknown.
    pub fn remove_watches(&mut self, path: &str, watcher_type: i32, w: WatcherId) -> bool {
        match watcher_type {
            watcher_type::CHILDREN => self.child.remove(path, w),
            watcher_type::DATA => self.data.remove(path, w),
            watcher_type::ANY => {
                let c = self.child.remove(path, w);
                let d = self.data.remove(path, w);
                c || d
            }
            _ => false,
        }
    }

    /// checkWatches (`DataTree.containsWatcher`): does `w` hold a registration on exactly
    /// `path` in the table(s) named by `watcher_type`?
    pub fn contains_watch(&self, path: &str, watcher_type: i32, w: WatcherId) -> bool {
        match watcher_type {
            watcher_type::CHILDREN => self.child.contains(path, w),
            watcher_type::DATA => self.data.contains(path, w),
            watcher_type::ANY => self.child.contains(path, w) || self.data.contains(path, w),
            _ => false,
        }
    }

    /// Registrations in both tables (`DataTree.getWatchCount`, mntr `zk_watch_count`).
    pub fn watch_count(&self) -> usize {
        self.data.watch_count() + self.child.watch_count()
    }

    /// Watched paths in the data table (`wchs`: Apache reports the data table only).
    pub fn path_count(&self) -> usize {
        self.data.path_count()
    }

    /// Watchers in the data table (`wchs`: Apache reports the data table only).
    pub fn watcher_count(&self) -> usize {
        self.data.watcher_count()
    }

    /// `wchc`: data-table watches by watcher, sorted (Apache reports the data table only).
    pub fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        self.data.by_watcher()
    }

    /// `wchp`: data-table watches by path, sorted (Apache reports the data table only).
    pub fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        self.data.by_path()
    }

    /// The data table (getData/exists/addWatch).
    pub fn data_table(&self) -> &WatchTable {
        &self.data
    }

    /// The child table (getChildren/addWatch).
    pub fn child_table(&self) -> &WatchTable {
        &self.child
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

    const A: WatcherId = WatcherId(ConnId::client(0, 1));
    const B: WatcherId = WatcherId(ConnId::client(0, 2));
    const C: WatcherId = WatcherId(ConnId::client(0, 3));

    fn n(w: WatcherId, t: EventType, p: &str) -> Notification {
        Notification { watcher: w, event_type: t, path: p.to_owned() }
    }

    /// Forward and reverse indexes agree and counters match.
    fn check_invariants(t: &WatchTable) {
        let mut pairs = 0;
        let mut rec = 0;
        for (p, list) in &t.by_path {
            assert!(!list.is_empty());
            assert!(list.windows(2).all(|x| x[0].0 < x[1].0));
            for (w, bits) in list {
                assert_ne!(*bits, 0);
                assert!(t.by_watcher[w].contains(p));
                pairs += 1;
                rec += usize::from(bits & RECURSIVE != 0);
            }
        }
        let rev: usize = t.by_watcher.values().map(|s| s.len()).sum();
        assert!(t.by_watcher.values().all(|s| !s.is_empty()));
        assert_eq!(pairs, rev);
        assert_eq!(pairs, t.watches);
        assert_eq!(rec, t.recursive);
    }

    fn check(m: &WatchManager) {
        check_invariants(&m.data);
        check_invariants(&m.child);
    }

    #[test]
    fn one_shot_fires_once() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", A);
        m.add_data_watch("/a", B);
        m.add_data_watch("/a", A);
        assert_eq!(m.watch_count(), 2);
        assert_eq!(m.data_changed("/a"), vec![n(A, NodeDataChanged, "/a"), n(B, NodeDataChanged, "/a")]);
        assert!(m.data_changed("/a").is_empty());
        assert_eq!(m.watch_count(), 0);
        assert_eq!(m.path_count(), 0);
        assert_eq!(m.watcher_count(), 0);
        check(&m);
    }

    #[test]
    fn exists_watch_on_missing_node_fires_created() {
        let mut m = WatchManager::new();
        m.add_data_watch("/x", A);
        m.add_child_watch("/", B);
        assert_eq!(m.node_created("/x", "/"), vec![n(A, NodeCreated, "/x"), n(B, NodeChildrenChanged, "/")]);
        assert!(m.node_created("/x", "/").is_empty());
        check(&m);
    }

    #[test]
    fn delete_notifies_once_per_watcher_and_parent() {
        let mut m = WatchManager::new();
        m.add_data_watch("/p/c", A);
        m.add_child_watch("/p/c", A);
        m.add_child_watch("/p/c", B);
        m.add_child_watch("/p", A);
        m.add_data_watch("/p", C);
        assert_eq!(
            m.node_deleted("/p/c", "/p"),
            vec![n(A, NodeDeleted, "/p/c"), n(B, NodeDeleted, "/p/c"), n(A, NodeChildrenChanged, "/p")]
        );
        // A's child watch on /p/c was consumed although suppressed; C's data watch on /p stays.
        assert_eq!(m.watch_count(), 1);
        assert!(m.contains_watch("/p", watcher_type::DATA, C));
        check(&m);
    }

    #[test]
    fn persistent_fires_repeatedly() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", A, false);
        for _ in 0..3 {
            assert_eq!(m.data_changed("/a"), vec![n(A, NodeDataChanged, "/a")]);
        }
        assert_eq!(m.node_created("/a/b", "/a"), vec![n(A, NodeChildrenChanged, "/a")]);
        assert_eq!(m.node_deleted("/a/b", "/a"), vec![n(A, NodeChildrenChanged, "/a")]);
        assert_eq!(m.node_deleted("/a", "/"), vec![n(A, NodeDeleted, "/a")]);
        assert_eq!(m.node_created("/a", "/"), vec![n(A, NodeCreated, "/a")]);
        // Not on grandchildren.
        assert!(m.data_changed("/a/b").is_empty());
        assert_eq!(m.watch_count(), 2);
        check(&m);
    }

    #[test]
    fn standard_and_persistent_coexist_and_fire_once() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/a", A, false);
        m.add_data_watch("/a", A);
        assert_eq!(m.data_changed("/a"), vec![n(A, NodeDataChanged, "/a")]);
        assert_eq!(m.data_changed("/a"), vec![n(A, NodeDataChanged, "/a")]);
        assert_eq!(m.data_table().modes("/a", A), vec![WatchMode::Persistent]);
        check(&m);
    }

    #[test]
    fn recursive_gets_descendants_but_not_children_changed() {
        let mut m = WatchManager::new();
        m.add_persistent_watch("/", A, true);
        m.add_persistent_watch("/a", B, true);
        m.add_child_watch("/a", C);
        assert_eq!(
            m.node_created("/a/b", "/a"),
            vec![n(A, NodeCreated, "/a/b"), n(B, NodeCreated, "/a/b"), n(C, NodeChildrenChanged, "/a")]
        );
        assert_eq!(
            m.data_changed("/a/b/c/d"),
            vec![n(A, NodeDataChanged, "/a/b/c/d"), n(B, NodeDataChanged, "/a/b/c/d")]
        );
        assert_eq!(m.data_changed("/a"), vec![n(A, NodeDataChanged, "/a"), n(B, NodeDataChanged, "/a")]);
        assert_eq!(m.data_changed("/other"), vec![n(A, NodeDataChanged, "/other")]);
        assert_eq!(m.node_deleted("/a/b", "/a"), vec![n(A, NodeDeleted, "/a/b"), n(B, NodeDeleted, "/a/b")]);
        // "/a" changes its children again; recursive watchers do not hear NodeChildrenChanged.
        assert!(m.node_created("/a/z", "/a").iter().all(|x| x.event_type != NodeChildrenChanged));
        assert_eq!(m.data_table().recursive_count(), 2);
        m.remove_watcher(A);
        m.remove_watcher(B);
        assert_eq!(m.data_table().recursive_count(), 0);
        assert!(m.data_changed("/a").is_empty());
        check(&m);
    }

    #[test]
    fn remove_watcher_cleans_both_indexes() {
        let mut m = WatchManager::new();
        for p in ["/a", "/b", "/c"] {
            m.add_data_watch(p, A);
            m.add_child_watch(p, A);
            m.add_data_watch(p, B);
        }
        m.add_persistent_watch("/d", A, true);
        m.remove_watcher(A);
        check(&m);
        assert_eq!(m.watch_count(), 3);
        assert_eq!(m.child_table().watch_count(), 0);
        assert_eq!(m.by_watcher(), vec![(B, vec!["/a".to_owned(), "/b".to_owned(), "/c".to_owned()])]);
        assert_eq!(
            m.by_path(),
            vec![("/a".to_owned(), vec![B]), ("/b".to_owned(), vec![B]), ("/c".to_owned(), vec![B])]
        );
        assert_eq!(m.data_changed("/a"), vec![n(B, NodeDataChanged, "/a")]);
        assert!(m.node_created("/d/e", "/d").is_empty());
        m.remove_watcher(B);
        m.remove_watcher(B);
        assert_eq!((m.watch_count(), m.path_count(), m.watcher_count()), (0, 0, 0));
        check(&m);
    }

    #[test]
    fn remove_and_contains_by_type() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", A);
        m.add_child_watch("/a", A);
        m.add_child_watch("/a", B);
        assert!(m.contains_watch("/a", watcher_type::DATA, A));
        assert!(m.contains_watch("/a", watcher_type::CHILDREN, A));
        assert!(!m.contains_watch("/a", watcher_type::DATA, B));
        assert!(m.contains_watch("/a", watcher_type::ANY, B));
        assert!(!m.contains_watch("/a/b", watcher_type::ANY, A));
        assert!(!m.contains_watch("/a", 7, A));

        assert!(m.remove_watches("/a", watcher_type::DATA, A));
        assert!(!m.remove_watches("/a", watcher_type::DATA, A));
        assert!(!m.contains_watch("/a", watcher_type::DATA, A));
        assert!(m.contains_watch("/a", watcher_type::CHILDREN, A));
        assert!(!m.remove_watches("/a", watcher_type::DATA, B));
        assert!(m.remove_watches("/a", watcher_type::ANY, B));
        assert!(!m.remove_watches("/a", watcher_type::ANY, B));
        check(&m);

        // Persistent watches live in both tables; ANY removes both, DATA only the data one.
        m.add_persistent_watch("/p", C, true);
        assert!(m.contains_watch("/p", watcher_type::DATA, C));
        assert!(m.contains_watch("/p", watcher_type::CHILDREN, C));
        assert!(m.remove_watches("/p", watcher_type::DATA, C));
        assert!(m.contains_watch("/p", watcher_type::CHILDREN, C));
        assert!(m.remove_watches("/p", watcher_type::ANY, C));
        assert!(!m.contains_watch("/p", watcher_type::ANY, C));
        assert_eq!(m.child_table().recursive_count() + m.data_table().recursive_count(), 0);
        check(&m);
    }

    #[test]
    fn watch_mode_from_wire() {
        let mut m = WatchManager::new();
        assert!(m.add_watch_mode("/a", A, crate::proto::add_watch_mode::PERSISTENT_RECURSIVE));
        assert!(!m.add_watch_mode("/a", A, 9));
        assert_eq!(m.data_table().modes("/a", A), vec![WatchMode::PersistentRecursive]);
        assert_eq!(m.data_changed("/a/b"), vec![n(A, NodeDataChanged, "/a/b")]);
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("a"), None);
    }
}
