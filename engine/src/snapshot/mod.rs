//! Snapshots: the on-disk (and on-the-wire) image of the data tree and the session table at a
//! zxid, how it is captured from a live tree without stopping it, and how a tree is rebuilt
//! from it. Pure: no I/O (byte layout in `FORMAT.md` beside this file).
//!
//! Who uses it: the server's data role captures ([`SnapshotCapture`], in bounded slices between
//! requests), a helper thread encodes and writes the file ([`encode`]), start-up recovery
//! validates a memory-mapped file once ([`decode`]) and rebuilds the tree from the archived
//! form in place ([`restore`]); a ZAB leader sends the same bytes to a follower (SNAP).
//!
//! Why fuzzy (Apache's design) rather than copy-on-write: the tree is a plain `HashMap` owned
//! by one core; a persistent structure would tax every read and write to make snapshots cheap.
//! Instead a capture walks the tree depth-first by path, [`SnapshotCapture::step`] copying at
//! most a budget of nodes per call, while writes go on between calls. The image is then
//! "fuzzy": it holds every txn up to [`SnapshotImage::zxid`] (the last zxid applied when the
//! capture started) and some of the txns applied while it ran, up to `fuzzy_end_zxid`.
//! Replaying the log from `zxid + 1` over it gives the live tree because `txn::apply` is
//! idempotent (see `crate::txn`; the test `fuzzy_snapshot_plus_replay_equals_live_tree`
//! checks it over random txn sequences). A snapshot is only usable with a log that reaches
//! `fuzzy_end_zxid`; the server writes the file only once the log is durable that far.
//!
//! Invariants: nodes are listed parents first (depth-first from `/`); every node's `acl`
//! indexes `acls`; a header is checked (magic, version, header crc32c, length, payload crc32c)
//! before the payload is validated by rkyv, and the payload is validated before any use.

use std::collections::HashMap;
use std::ops::Bound;

use rkyv::{Archive, Deserialize, Serialize};

use crate::proto::Acl;
use crate::session::SessionTable;
use crate::tree::{self, AclId, ArchivedNodeStat, DataTree, NodeStat};
use crate::txn::TxnAcl;

/// First eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RKSNAPSH";
/// Format version written in the header: 2 since node data may be null. Version 1 files
/// ([`SnapshotImageV1`]) are still read.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 2;
/// The oldest format version still read.
pub const SNAPSHOT_OLDEST_READABLE_VERSION: u16 = 1;
/// Bytes of the header; the rkyv payload follows (16-aligned within the file).
pub const SNAPSHOT_HEADER_BYTES: usize = 64;
/// Snapshot files are named `snapshot.` followed by the header zxid as 16 hex digits.
pub const SNAPSHOT_PREFIX: &str = "snapshot.";
/// Alignment the payload needs in memory (rkyv's `aligned` feature).
pub const PAYLOAD_ALIGN: usize = 16;

/// One znode in a snapshot.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Absolute path; the root is `/`.
    pub path: String,
    /// `None`: null data (see `tree::Node::data`).
    pub data: Option<Vec<u8>>,
    /// Index into [`SnapshotImage::acls`].
    pub acl: u32,
    pub stat: NodeStat,
}

/// One session (its ephemerals are the nodes whose `ephemeral_owner` is its id, as Apache).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSession {
    pub id: i64,
    pub timeout_ms: i32,
}

/// The archived content of a snapshot file.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotImage {
    /// Every txn up to this zxid is in the image (the last zxid applied when capture started).
    pub zxid: i64,
    /// The last zxid applied when capture ended: the log must reach it for the image to be used.
    pub fuzzy_end_zxid: i64,
    /// Interned ACL lists.
    pub acls: Vec<Vec<TxnAcl>>,
    /// Depth-first from `/`, parents before children.
    pub nodes: Vec<SnapshotNode>,
    pub sessions: Vec<SnapshotSession>,
}

/// Format 1's node, frozen: its data could not be null.
#[derive(Archive, Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNodeV1 {
    pub path: String,
    pub data: Vec<u8>,
    pub acl: u32,
    pub stat: NodeStat,
}

/// Format 1's archived content, frozen (read only, never written).
#[derive(Archive, Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotImageV1 {
    pub zxid: i64,
    pub fuzzy_end_zxid: i64,
    pub acls: Vec<Vec<TxnAcl>>,
    pub nodes: Vec<SnapshotNodeV1>,
    pub sessions: Vec<SnapshotSession>,
}

/// A validated payload of either readable format version, read in place.
#[derive(Clone, Copy)]
pub enum ArchivedImage<'a> {
    V1(&'a ArchivedSnapshotImageV1),
    V2(&'a ArchivedSnapshotImage),
}

/// One node of an [`ArchivedImage`], whatever its format.
pub struct NodeRef<'a> {
    pub path: &'a str,
    pub data: Option<&'a [u8]>,
    /// Index into the image's ACL lists.
    pub acl: u32,
    pub stat: &'a ArchivedNodeStat,
}

type ArchivedAclLists = rkyv::vec::ArchivedVec<rkyv::vec::ArchivedVec<crate::txn::ArchivedTxnAcl>>;

impl<'a> ArchivedImage<'a> {
    pub fn zxid(self) -> i64 {
        match self {
            ArchivedImage::V1(i) => i.zxid.to_native(),
            ArchivedImage::V2(i) => i.zxid.to_native(),
        }
    }

    pub fn fuzzy_end_zxid(self) -> i64 {
        match self {
            ArchivedImage::V1(i) => i.fuzzy_end_zxid.to_native(),
            ArchivedImage::V2(i) => i.fuzzy_end_zxid.to_native(),
        }
    }

    /// The interned ACL lists nodes refer to.
    pub fn acls(self) -> &'a ArchivedAclLists {
        match self {
            ArchivedImage::V1(i) => &i.acls,
            ArchivedImage::V2(i) => &i.acls,
        }
    }

    pub fn sessions(self) -> &'a [ArchivedSnapshotSession] {
        match self {
            ArchivedImage::V1(i) => i.sessions.as_slice(),
            ArchivedImage::V2(i) => i.sessions.as_slice(),
        }
    }

    pub fn node_count(self) -> usize {
        match self {
            ArchivedImage::V1(i) => i.nodes.len(),
            ArchivedImage::V2(i) => i.nodes.len(),
        }
    }

    /// The nodes, parents before children.
    pub fn nodes(self) -> Box<dyn Iterator<Item = NodeRef<'a>> + 'a> {
        match self {
            ArchivedImage::V1(i) => Box::new(i.nodes.iter().map(|n| NodeRef {
                path: n.path.as_str(),
                data: Some(n.data.as_slice()),
                acl: n.acl.to_native(),
                stat: &n.stat,
            })),
            ArchivedImage::V2(i) => Box::new(i.nodes.iter().map(|n| NodeRef {
                path: n.path.as_str(),
                data: n.data.as_ref().map(|d| d.as_slice()),
                acl: n.acl.to_native(),
                stat: &n.stat,
            })),
        }
    }
}

/// What the fixed header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Format version (written: [`SNAPSHOT_FORMAT_VERSION`]).
    pub version: u16,
    pub zxid: i64,
    pub fuzzy_end_zxid: i64,
    pub payload_len: u64,
    pub payload_crc32c: u32,
}

/// Why bytes are not a usable snapshot; `offset` is where in the file the fault is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("offset {offset}: {detail}")]
    Invalid { offset: u64, detail: String },
}

fn invalid<T>(offset: usize, detail: impl Into<String>) -> Result<T, SnapshotError> {
    Err(SnapshotError::Invalid { offset: offset as u64, detail: detail.into() })
}

/// `snapshot.<zxid as 16 hex digits>`.
pub fn snapshot_file_name(zxid: i64) -> String {
    format!("{SNAPSHOT_PREFIX}{:016x}", zxid as u64)
}

/// The zxid a snapshot file name carries (`None` for other names, temp files included).
pub fn parse_snapshot_file_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix(SNAPSHOT_PREFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// The header for a payload.
pub fn encode_header(header: &SnapshotHeader) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut out = [0u8; SNAPSHOT_HEADER_BYTES];
    out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    out[8..10].copy_from_slice(&header.version.to_le_bytes());
    out[16..24].copy_from_slice(&header.zxid.to_le_bytes());
    out[24..32].copy_from_slice(&header.fuzzy_end_zxid.to_le_bytes());
    out[32..40].copy_from_slice(&header.payload_len.to_le_bytes());
    out[40..44].copy_from_slice(&header.payload_crc32c.to_le_bytes());
    let crc = crc32c::crc32c(&out[..60]);
    out[60..64].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks and reads a header (the first [`SNAPSHOT_HEADER_BYTES`] of `bytes`).
pub fn decode_header(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return invalid(
            0,
            format!("{} bytes: shorter than the {SNAPSHOT_HEADER_BYTES}-byte header", bytes.len()),
        );
    }
    let h = &bytes[..SNAPSHOT_HEADER_BYTES];
    if h[0..8] != SNAPSHOT_MAGIC {
        return invalid(0, "bad magic: not a ringkeeper snapshot");
    }
    let le64 = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    let le32 = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().expect("4 bytes"));
    if le32(60) != crc32c::crc32c(&h[..60]) {
        return invalid(60, "header checksum (crc32c) mismatch");
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if !(SNAPSHOT_OLDEST_READABLE_VERSION..=SNAPSHOT_FORMAT_VERSION).contains(&version) {
        return invalid(8, format!("unknown snapshot format version {version}"));
    }
    if h[10..16].iter().chain(&h[44..60]).any(|&b| b != 0) {
        return invalid(10, "non-zero reserved bytes in the header");
    }
    Ok(SnapshotHeader {
        version,
        zxid: le64(16) as i64,
        fuzzy_end_zxid: le64(24) as i64,
        payload_len: le64(32),
        payload_crc32c: le32(40),
    })
}

/// An encoded snapshot: the header and the rkyv payload, written (or sent) one after the other.
pub struct EncodedSnapshot {
    pub header: [u8; SNAPSHOT_HEADER_BYTES],
    pub payload: rkyv::util::AlignedVec,
}

impl EncodedSnapshot {
    /// The whole file image in one aligned buffer (copies the payload once).
    pub fn to_bytes(&self) -> rkyv::util::AlignedVec {
        let mut out = rkyv::util::AlignedVec::with_capacity(SNAPSHOT_HEADER_BYTES + self.payload.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Encodes an image: rkyv payload plus a header with its length and crc32c.
pub fn encode(image: &SnapshotImage) -> EncodedSnapshot {
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(image).expect("snapshot serialization cannot fail");
    let header = encode_header(&SnapshotHeader {
        version: SNAPSHOT_FORMAT_VERSION,
        zxid: image.zxid,
        fuzzy_end_zxid: image.fuzzy_end_zxid,
        payload_len: payload.len() as u64,
        payload_crc32c: crc32c::crc32c(&payload),
    });
    EncodedSnapshot { header, payload }
}

/// Validates a whole snapshot file image once: header, length, payload crc32c, then the rkyv
/// archive. `bytes` must start 16-aligned (a memory map or an aligned buffer).
pub fn decode(bytes: &[u8]) -> Result<(SnapshotHeader, ArchivedImage<'_>), SnapshotError> {
    let header = decode_header(bytes)?;
    let payload = &bytes[SNAPSHOT_HEADER_BYTES..];
    if payload.len() as u64 != header.payload_len {
        return invalid(
            SNAPSHOT_HEADER_BYTES + payload.len().min(header.payload_len as usize),
            format!("payload is {} bytes, the header says {}", payload.len(), header.payload_len),
        );
    }
    if !(payload.as_ptr() as usize).is_multiple_of(PAYLOAD_ALIGN) {
        return invalid(SNAPSHOT_HEADER_BYTES, "payload is not 16-byte aligned in memory (caller bug)");
    }
    if crc32c::crc32c(payload) != header.payload_crc32c {
        return invalid(SNAPSHOT_HEADER_BYTES, "payload checksum (crc32c) mismatch");
    }
    let not_archive = |e: rkyv::rancor::Error| SnapshotError::Invalid {
        offset: SNAPSHOT_HEADER_BYTES as u64,
        detail: format!("payload is not a valid archive: {e}"),
    };
    let archived = if header.version == 1 {
        ArchivedImage::V1(
            rkyv::access::<ArchivedSnapshotImageV1, rkyv::rancor::Error>(payload).map_err(not_archive)?,
        )
    } else {
        ArchivedImage::V2(
            rkyv::access::<ArchivedSnapshotImage, rkyv::rancor::Error>(payload).map_err(not_archive)?,
        )
    };
    if archived.zxid() != header.zxid || archived.fuzzy_end_zxid() != header.fuzzy_end_zxid {
        return invalid(16, "header zxids differ from the archive's");
    }
    Ok((header, archived))
}

/// The archived image of a whole snapshot file image that [`decode`] already validated.
///
/// # Safety
/// `bytes` must be exactly bytes that [`decode`] accepted, unchanged since, at the same address
/// alignment (a read-only memory map that is never written, for example).
pub unsafe fn access_validated(bytes: &[u8]) -> ArchivedImage<'_> {
    let payload = &bytes[SNAPSHOT_HEADER_BYTES..];
    // SAFETY (both): the caller guarantees `decode` validated this payload with `rkyv::access`
    // as the type its header's version names.
    if u16::from_le_bytes([bytes[8], bytes[9]]) == 1 {
        ArchivedImage::V1(unsafe { rkyv::access_unchecked::<ArchivedSnapshotImageV1>(payload) })
    } else {
        ArchivedImage::V2(unsafe { rkyv::access_unchecked::<ArchivedSnapshotImage>(payload) })
    }
}

fn node_stat(s: &ArchivedNodeStat) -> NodeStat {
    NodeStat {
        czxid: s.czxid.to_native(),
        mzxid: s.mzxid.to_native(),
        pzxid: s.pzxid.to_native(),
        ctime: s.ctime.to_native(),
        mtime: s.mtime.to_native(),
        version: s.version.to_native(),
        cversion: s.cversion.to_native(),
        aversion: s.aversion.to_native(),
        ephemeral_owner: s.ephemeral_owner.to_native(),
    }
}

/// Rebuilds a tree from a validated archive (its `last_processed_zxid` is the image's zxid),
/// and registers the image's sessions in `sessions` with deadlines counted from `now_ms`
/// (as Apache, a restored session gets its whole timeout again).
pub fn restore(
    image: ArchivedImage<'_>,
    sessions: &mut SessionTable,
    now_ms: i64,
) -> Result<DataTree, SnapshotError> {
    let acls: Vec<Vec<Acl>> = image.acls().iter().map(|list| list.iter().map(Acl::from).collect()).collect();
    let mut tree = DataTree::new();
    tree.reserve(image.node_count());
    for (index, node) in image.nodes().enumerate() {
        let Some(acl) = acls.get(node.acl as usize) else {
            return invalid(
                SNAPSHOT_HEADER_BYTES,
                format!("node {index} ({}) names ACL {} of {}", node.path, node.acl, acls.len()),
            );
        };
        let path = node.path;
        if path != "/" && tree::path::split(path).1.is_empty() {
            return invalid(SNAPSHOT_HEADER_BYTES, format!("node {index}: malformed path {path:?}"));
        }
        tree.restore_node(path, node.data, acl, node_stat(node.stat)).or_else(|e| {
            invalid(SNAPSHOT_HEADER_BYTES, format!("node {index} ({path}) before its parent: {e}"))
        })?;
    }
    tree.rebuild_quotas();
    tree.last_processed_zxid = image.zxid();
    for session in image.sessions() {
        sessions.add(session.id.to_native(), session.timeout_ms.to_native(), now_ms);
    }
    Ok(tree)
}

/// A capture in progress: a depth-first walk by path that survives mutations between steps.
pub struct SnapshotCapture {
    image: SnapshotImage,
    acl_index: HashMap<Vec<Acl>, u32>,
    /// (path of a node whose children are being walked, last child visited).
    stack: Vec<(String, Option<Box<str>>)>,
}

impl SnapshotCapture {
    /// Starts at the tree's last zxid: takes the session table and the root now.
    pub fn start(tree: &DataTree, sessions: &SessionTable) -> SnapshotCapture {
        let mut capture = SnapshotCapture {
            image: SnapshotImage {
                zxid: tree.last_processed_zxid,
                sessions: sessions
                    .all()
                    .into_iter()
                    .map(|s| SnapshotSession { id: s.id, timeout_ms: s.timeout_ms })
                    .collect(),
                ..Default::default()
            },
            acl_index: HashMap::new(),
            stack: Vec::new(),
        };
        let root = tree.get("/").expect("the root always exists");
        let mut acl_ids = HashMap::new();
        capture.copy_node(tree, &mut acl_ids, "/", root);
        capture.stack.push(("/".to_string(), None));
        capture
    }

    /// Copies up to `node_budget` more nodes; true once the walk is complete. The tree may
    /// change freely between calls (that is what makes the image fuzzy).
    pub fn step(&mut self, tree: &DataTree, node_budget: usize) -> bool {
        // AclId -> image index, valid only while the tree does not change (one step).
        let mut acl_ids: HashMap<AclId, u32> = HashMap::new();
        let mut copied = 0;
        while copied < node_budget {
            let Some((parent_path, last)) = self.stack.last_mut() else { return true };
            let next = tree.get(parent_path).and_then(|parent| match last {
                None => parent.children.iter().next(),
                Some(last) => {
                    parent.children.range::<str, _>((Bound::Excluded(&**last), Bound::Unbounded)).next()
                }
            });
            let Some(child) = next else {
                self.stack.pop();
                continue;
            };
            *last = Some(child.clone());
            let child_path = tree::path::join(parent_path, child);
            let node = tree.get(&child_path).expect("a listed child exists");
            self.copy_node(tree, &mut acl_ids, &child_path, node);
            self.stack.push((child_path, None));
            copied += 1;
        }
        self.stack.is_empty()
    }

    fn copy_node(
        &mut self,
        tree: &DataTree,
        acl_ids: &mut HashMap<AclId, u32>,
        path: &str,
        node: &tree::Node,
    ) {
        let acl = *acl_ids.entry(node.acl).or_insert_with(|| {
            let list = tree.acl_of(node);
            let next = self.image.acls.len() as u32;
            *self.acl_index.entry(list.to_vec()).or_insert_with(|| {
                self.image.acls.push(list.iter().map(TxnAcl::from).collect());
                next
            })
        });
        self.image.nodes.push(SnapshotNode {
            path: path.to_string(),
            data: node.data.as_deref().map(<[u8]>::to_vec),
            acl,
            stat: node.stat,
        });
    }

    /// Nodes copied so far.
    pub fn node_count(&self) -> usize {
        self.image.nodes.len()
    }

    /// The finished image; `tree` gives the fuzzy end (its last zxid now).
    pub fn finish(mut self, tree: &DataTree) -> SnapshotImage {
        debug_assert!(self.stack.is_empty(), "finish after the walk completed");
        self.image.fuzzy_end_zxid = tree.last_processed_zxid;
        self.image
    }
}

/// A consistent (not fuzzy) image of a tree and sessions in one go, e.g. for a leader's SNAP.
pub fn capture(tree: &DataTree, sessions: &SessionTable) -> SnapshotImage {
    let mut capture = SnapshotCapture::start(tree, sessions);
    while !capture.step(tree, usize::MAX) {}
    capture.finish(tree)
}

/// A canonical digest of a tree's content (paths, wire Stats, data, ACLs), independent of
/// map order: equal digests mean equal trees for every client-visible answer.
pub fn tree_digest(tree: &DataTree) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut nodes: Vec<(&str, &tree::Node)> = tree.iter().collect();
    nodes.sort_unstable_by_key(|(path, _)| *path);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (path, node) in nodes {
        path.hash(&mut hasher);
        let s = node.stat();
        (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion).hash(&mut hasher);
        (s.ephemeral_owner, node.stat.ephemeral_owner, s.data_length, s.num_children).hash(&mut hasher);
        node.data.hash(&mut hasher);
        for acl in tree.acl_of(node) {
            (acl.perms, &acl.id.scheme, &acl.id.id).hash(&mut hasher);
        }
    }
    hasher.finish()
}

#[cfg(test)]
mod tests;
