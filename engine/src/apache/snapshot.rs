//! Apache's snapshot file (`FileSnap`, uncompressed): decode with every check Apache makes
//! (magic, version, parents before children, known ACL ids, Adler32 seals), and encode a file
//! Apache 3.8 loads. Layout in `FORMAT.md`.

use super::records::{FileHeader, StatPersisted};
use super::{adler32, FormatError, FILE_FORMAT_VERSION};
use crate::proto::{Acl, Jute, JuteReader, JuteWriter};
use crate::tree::NodeStat;

/// `FileSnap.SNAP_MAGIC`: "ZKSN" as a big-endian int.
pub const SNAPSHOT_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// The ACL id that stands for OPEN_ACL_UNSAFE without an entry in the ACL map.
pub const OPEN_ACL_UNSAFE_ID: i64 = -1;

/// One znode as Apache stores it; the root's path is `/` here (Apache writes "").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApacheNode {
    pub path: String,
    /// `None` when the data is null (jute length -1: Apache keeps a znode created or set with
    /// null data as null, apart from empty data).
    pub data: Option<Vec<u8>>,
    /// A key of [`ApacheSnapshot::acls`], or [`OPEN_ACL_UNSAFE_ID`].
    pub acl: i64,
    pub stat: NodeStat,
}

/// The tree digest Apache 3.6+ appends after the first seal (`ZxidDigest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub digest_version: i32,
    pub digest: i64,
}

/// The content of an Apache snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApacheSnapshot {
    pub dbid: i64,
    /// (session id, timeout ms).
    pub sessions: Vec<(i64, i32)>,
    /// The ACL cache (`ReferenceCountedACLCache`): id -> list.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// Parents before children, the root first.
    pub nodes: Vec<ApacheNode>,
    pub digest: Option<ZxidDigest>,
}

impl ApacheSnapshot {
    /// The ACL list an id names (`ReferenceCountedACLCache.convertLong`).
    pub fn acl_list(&self, id: i64) -> Option<Vec<Acl>> {
        if id == OPEN_ACL_UNSAFE_ID {
            return Some(crate::acl::open_acl_unsafe());
        }
        self.acls.iter().find(|(key, _)| *key == id).map(|(_, list)| list.clone())
    }
}

fn stat_from(s: &StatPersisted) -> NodeStat {
    NodeStat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        pzxid: s.pzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
    }
}

fn stat_to(s: &NodeStat) -> StatPersisted {
    StatPersisted {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        pzxid: s.pzxid,
    }
}

/// Reads a value at the reader's position, turning a jute error into a located one.
fn read<'a, T>(
    r: &mut JuteReader<'a>,
    what: &str,
    f: impl FnOnce(&mut JuteReader<'a>) -> Result<T, crate::proto::DecodeError>,
) -> Result<T, FormatError> {
    f(r).map_err(|e| FormatError::decoding(0, what, e))
}

/// Reads the count in front of the session list or the ACL map, bounded by the bytes left
/// (every entry takes at least 12).
fn read_count(r: &mut JuteReader<'_>, what: &str) -> Result<usize, FormatError> {
    let at = r.offset();
    let count = read(r, what, |r| r.read_i32())?;
    if count < 0 || count as usize > r.remaining() / 12 {
        return Err(FormatError::at(at, format!("{what} {count} does not fit the file")));
    }
    Ok(count as usize)
}

/// Reads a seal (`SnapStream.sealStream`): the Adler32 of every byte before it, then "/".
fn check_seal(bytes: &[u8], r: &mut JuteReader<'_>) -> Result<(), FormatError> {
    let at = r.offset();
    let expected = adler32(&bytes[..at]);
    let stored = read(r, "checksum", |r| r.read_i64())?;
    let marker = read(r, "checksum marker", |r| r.read_string())?;
    if marker != "/" {
        return Err(FormatError::at(at + 8, format!("checksum marker is {marker:?}, not \"/\"")));
    }
    if stored != expected {
        return Err(FormatError::at(
            at,
            format!("checksum (Adler32) mismatch: stored {stored:#x}, computed {expected:#x}"),
        ));
    }
    Ok(())
}

/// Decodes and checks a whole snapshot file image.
pub fn decode(bytes: &[u8]) -> Result<ApacheSnapshot, FormatError> {
    let mut r = JuteReader::new(bytes);
    let header = read(&mut r, "file header", FileHeader::decode)?;
    if header.magic != SNAPSHOT_MAGIC {
        return Err(FormatError::at(0, "bad magic: not an Apache ZooKeeper snapshot (ZKSN)"));
    }
    if header.version != FILE_FORMAT_VERSION {
        return Err(FormatError::at(4, format!("unknown snapshot version {}", header.version)));
    }
    let mut snap = ApacheSnapshot { dbid: header.dbid, ..Default::default() };
    read_state(&mut r, &mut snap)?;
    check_seal(bytes, &mut r)?;
    if r.remaining() > 0 {
        let zxid = read(&mut r, "digest zxid", |r| r.read_i64())?;
        let digest_version = read(&mut r, "digest version", |r| r.read_i32())?;
        let digest = read(&mut r, "digest", |r| r.read_i64())?;
        check_seal(bytes, &mut r)?;
        snap.digest = Some(ZxidDigest { zxid, digest_version, digest });
    }
    if r.remaining() > 0 {
        return Err(FormatError::at(r.offset(), format!("{} unexpected bytes after the end", r.remaining())));
    }
    Ok(snap)
}

/// Reads what both a snapshot file and a leader's SNAP stream hold
/// (`SerializeUtils.deserializeSnapshot`): sessions, the ACL map, every node, the "/" end.
fn read_state(r: &mut JuteReader<'_>, snap: &mut ApacheSnapshot) -> Result<(), FormatError> {
    for _ in 0..read_count(r, "session count")? {
        let id = read(r, "session id", |r| r.read_i64())?;
        let timeout = read(r, "session timeout", |r| r.read_i32())?;
        snap.sessions.push((id, timeout));
    }
    for _ in 0..read_count(r, "ACL map size")? {
        let id = read(r, "ACL id", |r| r.read_i64())?;
        let list = read(r, "ACL list", |r| r.read_vec(Acl::decode))?;
        snap.acls.push((id, list));
    }
    let mut paths = std::collections::HashSet::new();
    loop {
        let at = r.offset();
        let path = read(r, "node path", |r| r.read_string())?;
        if path == "/" {
            break;
        }
        let data = read(r, "node data", |r| r.read_nullable_buffer())?;
        let acl = read(r, "node ACL id", |r| r.read_i64())?;
        let stat = read(r, "node stat", StatPersisted::decode)?;
        if acl != OPEN_ACL_UNSAFE_ID && !snap.acls.iter().any(|(id, _)| *id == acl) {
            return Err(FormatError::at(at, format!("node {path:?} names ACL id {acl}, not in the ACL map")));
        }
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            let parent = &path[..path.rfind('/').unwrap_or(0)];
            let parent = if parent.is_empty() { "/" } else { parent };
            if !path.starts_with('/') || !paths.contains(parent) {
                return Err(FormatError::at(at, format!("node {path:?} comes before its parent")));
            }
            path
        };
        paths.insert(path.clone());
        snap.nodes.push(ApacheNode { path, data, acl, stat: stat_from(&stat) });
    }
    if !paths.contains("/") {
        return Err(FormatError::at(r.offset(), "the snapshot holds no root node"));
    }
    Ok(())
}

/// The state a leader streams after a SNAP packet (`ZKDatabase.serializeSnapshot`: the
/// snapshot file's content without file header, seals or digest), exactly `bytes`.
pub fn decode_streamed_state(bytes: &[u8]) -> Result<ApacheSnapshot, FormatError> {
    let mut r = JuteReader::new(bytes);
    let mut snap = ApacheSnapshot::default();
    read_state(&mut r, &mut snap)?;
    if r.remaining() > 0 {
        return Err(FormatError::at(
            r.offset(),
            format!("{} unexpected bytes after the state", r.remaining()),
        ));
    }
    Ok(snap)
}

/// Encodes the state as a leader streams it after SNAP (the inverse of
/// [`decode_streamed_state`]; tests build leader streams with it).
/// Test fixture: a state of one session (`session`, `timeout`) and the root with one child
/// `path` holding `data` (open ACL id -1, zero stats).
#[cfg(test)]
pub(crate) fn one_node_state(session: (i64, i32), path: &str, data: Vec<u8>) -> ApacheSnapshot {
    let node = |path: &str, data: Vec<u8>| ApacheNode {
        path: path.into(),
        data: Some(data),
        acl: -1,
        stat: Default::default(),
    };
    ApacheSnapshot {
        sessions: vec![session],
        nodes: vec![node("/", vec![]), node(path, data)],
        ..Default::default()
    }
}

pub fn encode_streamed_state(snap: &ApacheSnapshot) -> Vec<u8> {
    let mut out = Vec::new();
    write_state(&mut JuteWriter::new(&mut out), snap);
    out
}

fn write_state(w: &mut JuteWriter<'_>, snap: &ApacheSnapshot) {
    w.write_i32(snap.sessions.len() as i32);
    for (id, timeout) in &snap.sessions {
        w.write_i64(*id);
        w.write_i32(*timeout);
    }
    w.write_i32(snap.acls.len() as i32);
    for (id, list) in &snap.acls {
        w.write_i64(*id);
        w.write_vec(list, |w, acl| acl.encode(w));
    }
    for node in &snap.nodes {
        w.write_string(if node.path == "/" { "" } else { &node.path });
        w.write_nullable_buffer(node.data.as_deref());
        w.write_i64(node.acl);
        stat_to(&node.stat).encode(w);
    }
    w.write_string("/");
}

/// Encodes a snapshot file Apache 3.8 loads (`FileSnap.deserialize`).
pub fn encode(snap: &ApacheSnapshot) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = JuteWriter::new(&mut out);
    FileHeader { magic: SNAPSHOT_MAGIC, version: FILE_FORMAT_VERSION, dbid: snap.dbid }.encode(&mut w);
    write_state(&mut w, snap);
    seal(&mut out);
    if let Some(d) = snap.digest {
        let mut w = JuteWriter::new(&mut out);
        w.write_i64(d.zxid);
        w.write_i32(d.digest_version);
        w.write_i64(d.digest);
        seal(&mut out);
    }
    out
}

fn seal(out: &mut Vec<u8>) {
    let sum = adler32(out);
    let mut w = JuteWriter::new(out);
    w.write_i64(sum);
    w.write_string("/");
}
