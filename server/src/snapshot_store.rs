//! Snapshot files in `dataDir`: listing, writing (temp name, fsync, rename, directory fsync),
//! memory-mapped reading, and retention (`autopurge.snapRetainCount`).
//!
//! Plain blocking `std::fs`: called from start-up recovery (before any executor runs), from the
//! snapshot writer thread ([`crate::snapshotter`], never the data core) and from the
//! `snap-dump` / `snap-verify` tools. In: encoded images from `engine::snapshot`. Out: files
//! named `snapshot.<zxid hex>`, and [`MappedSnapshot`]s validated once.
//! Invariants: a file under a final name is complete and durable (written by
//! [`crate::data_files::replace_durably_with`]); retention never removes the newest `retain` snapshots whose
//! header checks, nor any log segment holding a record after the oldest of them, nor the last
//! segment.

use std::io::Write;
use std::path::{Path, PathBuf};

use ringkeeper_engine::snapshot::{self, ArchivedImage, SnapshotHeader, SnapshotImage};

use crate::data_files;
use crate::recovery::{numbered_files, segment_paths, RecoveryError};

/// Bytes written between two fdatasyncs of a snapshot file.
const SYNC_CHUNK_BYTES: usize = 8 << 20;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |error| RecoveryError::Io { path: path.to_path_buf(), error }
}

/// The snapshot files in `dir`, oldest first (a missing directory holds none).
pub fn snapshot_paths(dir: &Path) -> Result<Vec<(i64, PathBuf)>, RecoveryError> {
    numbered_files(dir, data_files::SNAPSHOT_PREFIX, data_files::parse_snapshot_file_name)
}

/// Removes `snapshot.*.tmp` files a crash left mid-write (they were never renamed into use).
pub fn remove_temp_files(dir: &Path) -> Result<(), RecoveryError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(data_files::SNAPSHOT_PREFIX) && data_files::is_temp_name(&name) {
            log::warn!("{}: removing an unfinished snapshot left by a crash", entry.path().display());
            std::fs::remove_file(entry.path()).map_err(io_error(&entry.path()))?;
        }
    }
    Ok(())
}

/// Writes an image as `dir/snapshot.<zxid>` durably; returns the path and the file size.
pub fn write_snapshot(dir: &Path, image: &SnapshotImage) -> std::io::Result<(PathBuf, u64)> {
    let encoded = snapshot::encode(image);
    let name = data_files::snapshot_file_name(image.zxid);
    data_files::replace_durably_with(dir, &name, |file| {
        file.write_all(&encoded.header)?;
        // Flushed chunk by chunk: hundreds of MiB of dirty pages would otherwise be flushed by
        // the log's next fdatasync (ext4 data=ordered commits them with the journal), stalling
        // acknowledged writes for the whole snapshot.
        for chunk in encoded.payload.chunks(SYNC_CHUNK_BYTES) {
            file.write_all(chunk)?;
            file.sync_data()?;
        }
        Ok(())
    })?;
    Ok((dir.join(name), (encoded.header.len() + encoded.payload.len()) as u64))
}

/// A snapshot file mapped read-only and validated once.
pub struct MappedSnapshot {
    pub path: PathBuf,
    pub header: SnapshotHeader,
    map: memmap2::Mmap,
}

impl MappedSnapshot {
    /// Maps and validates `path` (header, length, crc32c, rkyv archive).
    pub fn open(path: &Path) -> Result<MappedSnapshot, RecoveryError> {
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        // SAFETY: snapshot files are never modified after their rename into place (only
        // removed by retention, which unlinks: the mapping stays valid), so the mapped bytes
        // do not change under the references handed out.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error(path))?;
        let header = snapshot::decode(&map).map(|(header, _)| header).map_err(|e| corrupt(path, e))?;
        Ok(MappedSnapshot { path: path.to_path_buf(), header, map })
    }

    /// The archived image, read in place.
    pub fn image(&self) -> ArchivedImage<'_> {
        // SAFETY: `open` validated these exact mapped bytes with `snapshot::decode`, and the
        // mapping is read-only and never changes (see `open`).
        unsafe { snapshot::access_validated(&self.map) }
    }
}

pub fn corrupt(path: &Path, error: snapshot::SnapshotError) -> RecoveryError {
    let snapshot::SnapshotError::Invalid { offset, detail } = error;
    RecoveryError::Inconsistent { path: path.to_path_buf(), offset, detail }
}

/// A snapshot's header, if it checks and the file has the length it declares (cheap: the
/// payload is not read), for retention and truncation.
fn checked_header(path: &Path) -> Option<SnapshotHeader> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; snapshot::SNAPSHOT_HEADER_BYTES];
    std::io::Read::read_exact(&mut file, &mut head).ok()?;
    let len = file.metadata().ok()?.len();
    snapshot::decode_header(&head)
        .ok()
        .filter(|h| h.payload_len + snapshot::SNAPSHOT_HEADER_BYTES as u64 == len)
}

/// The last zxid a snapshot may hold (its fuzzy end), if its header checks.
pub fn fuzzy_end_zxid(path: &Path) -> Option<i64> {
    checked_header(path).map(|h| h.fuzzy_end_zxid)
}

/// Removes the snapshot at `path` and the leader's epoch ends stored beside it for a SNAP
/// (`epochs.<its name>`), if there are any. The caller syncs the directory.
pub fn remove_snapshot(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return Ok(()) };
    match std::fs::remove_file(dir.join(data_files::epoch_ends_name(&name.to_string_lossy()))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What a purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub snapshots: Vec<PathBuf>,
    pub segments: Vec<PathBuf>,
}

/// Keeps the newest `retain` snapshots whose header checks, removes older snapshots and every
/// log segment whose records all precede the oldest kept snapshot (a segment is redundant
/// when the next one starts at or before that snapshot's zxid + 1), as Apache's
/// `PurgeTxnLog`. Does nothing until `retain` such snapshots exist. The last segment stays.
pub fn purge(data_dir: &Path, log_dir: &Path, retain: usize) -> Result<Purged, RecoveryError> {
    let retain = retain.max(1);
    let snapshots = snapshot_paths(data_dir)?;
    let mut kept = 0;
    let mut oldest_kept = None;
    for (index, (zxid, path)) in snapshots.iter().enumerate().rev() {
        if checked_header(path).is_some() {
            kept += 1;
            if kept == retain {
                oldest_kept = Some((index, *zxid));
                break;
            }
        }
    }
    let Some((oldest_index, oldest_zxid)) = oldest_kept else { return Ok(Purged::default()) };
    let mut purged = Purged::default();
    for (_, path) in &snapshots[..oldest_index] {
        remove_snapshot(path).map_err(io_error(path))?;
        purged.snapshots.push(path.clone());
    }
    let segments = segment_paths(log_dir)?;
    for pair in segments.windows(2) {
        let ((_, path), (next_first_zxid, _)) = (&pair[0], &pair[1]);
        if *next_first_zxid <= oldest_zxid.saturating_add(1) {
            std::fs::remove_file(path).map_err(io_error(path))?;
            purged.segments.push(path.clone());
        }
    }
    if !purged.snapshots.is_empty() {
        data_files::sync_dir(data_dir).map_err(io_error(data_dir))?;
    }
    if !purged.segments.is_empty() {
        data_files::sync_dir(log_dir).map_err(io_error(log_dir))?;
    }
    Ok(purged)
}

/// Prints a snapshot readably (for `ringkeeper snap-dump`): header, sessions, ACL lists, then
/// one line per node.
pub fn dump_snapshot(path: &Path, out: &mut impl Write) -> Result<(), RecoveryError> {
    let snap = MappedSnapshot::open(path)?;
    let image = snap.image();
    let h = snap.header;
    let w = |e| io_error(path)(e);
    writeln!(
        out,
        "{}: zxid {:#x}, fuzzy end {:#x}, {} nodes, {} sessions, {} ACL lists, payload {} bytes",
        path.display(),
        h.zxid,
        h.fuzzy_end_zxid,
        image.node_count(),
        image.sessions().len(),
        image.acls().len(),
        h.payload_len
    )
    .map_err(w)?;
    for s in image.sessions() {
        writeln!(out, "session {:#x} timeout {} ms", s.id, s.timeout_ms).map_err(w)?;
    }
    for (index, list) in image.acls().iter().enumerate() {
        let entries: Vec<String> =
            list.iter().map(|a| format!("{}:{}:{:#x}", a.scheme, a.id, a.perms.to_native())).collect();
        writeln!(out, "acl {index}: [{}]", entries.join(", ")).map_err(w)?;
    }
    for node in image.nodes() {
        let s = node.stat;
        let data = node.data.map_or_else(|| "null".to_string(), |d| format!("{} bytes", d.len()));
        writeln!(
            out,
            "{}  czxid {:#x} mzxid {:#x} pzxid {:#x} ctime {} mtime {} version {} cversion {} aversion {} owner {:#x} acl {} data {}",
            node.path,
            s.czxid.to_native(),
            s.mzxid.to_native(),
            s.pzxid.to_native(),
            s.ctime.to_native(),
            s.mtime.to_native(),
            s.version.to_native(),
            s.cversion.to_native(),
            s.aversion.to_native(),
            s.ephemeral_owner.to_native(),
            node.acl,
            data
        )
        .map_err(w)?;
    }
    Ok(())
}

/// Checks a snapshot file, or every snapshot in a directory, fully (header, checksums, archive,
/// tree structure) without changing anything, for `ringkeeper snap-verify`. One line each.
pub fn verify_snapshots(path: &Path) -> Result<Vec<String>, RecoveryError> {
    let files = if path.is_dir() { snapshot_paths(path)? } else { vec![(0, path.to_path_buf())] };
    let mut lines = Vec::new();
    for (_, file) in files {
        let snap = MappedSnapshot::open(&file)?;
        let mut sessions = ringkeeper_engine::session::SessionTable::new(0, 0, b"0", 1);
        let tree = snapshot::restore(snap.image(), &mut sessions, 0).map_err(|e| corrupt(&file, e))?;
        lines.push(format!(
            "{}: ok, zxid {:#x}, fuzzy end {:#x}, {} nodes, {} sessions",
            file.display(),
            snap.header.zxid,
            snap.header.fuzzy_end_zxid,
            tree.node_count() - 1,
            sessions.len()
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(zxid: i64) -> SnapshotImage {
        SnapshotImage { zxid, fuzzy_end_zxid: zxid, ..Default::default() }
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn purge_keeps_the_newest_valid_snapshots_and_the_log_after_the_oldest_kept() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        for zxid in [10, 20, 30, 40, 50, 60] {
            write_snapshot(&dir, &image(zxid)).unwrap();
        }
        // The newest one is damaged: it does not count as kept.
        // The oldest was installed from a leader: its epoch ends go with it.
        let oldest_ends = dir.join(data_files::epoch_ends_name(&snapshot::snapshot_file_name(10)));
        std::fs::write(&oldest_ends, b"0xa\n").unwrap();
        let newest = dir.join(snapshot::snapshot_file_name(60));
        std::fs::write(&newest, b"garbage").unwrap();
        for first in [1, 15, 25, 35, 45, 55] {
            std::fs::write(dir.join(ringkeeper_engine::log::segment_file_name(first)), b"").unwrap();
        }
        let purged = purge(&dir, &dir, 3).unwrap();
        assert_eq!(names(&purged.snapshots), ["snapshot.000000000000000a", "snapshot.0000000000000014"]);
        assert!(!oldest_ends.exists(), "the purged snapshot's epoch ends are left behind");
        // Kept: 30, 40, 50 (+ the damaged 60). log.15 holds 15..24 only; log.25 holds 31.
        assert_eq!(names(&purged.segments), ["log.0000000000000001", "log.000000000000000f"]);
        let left: Vec<i64> = snapshot_paths(&dir).unwrap().into_iter().map(|(z, _)| z).collect();
        assert_eq!(left, [30, 40, 50, 60]);
        assert_eq!(purge(&dir, &dir, 3).unwrap(), Purged::default(), "nothing more to remove");
        // Fewer valid snapshots than the retain count: nothing is removed.
        assert_eq!(purge(&dir, &dir, 5).unwrap(), Purged::default());
    }

    #[test]
    fn written_snapshots_map_validate_and_leave_no_temp_file() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        let (path, bytes) = write_snapshot(&dir, &image(7)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes);
        let mapped = MappedSnapshot::open(&path).unwrap();
        assert_eq!((mapped.header.zxid, mapped.image().zxid()), (7, 7));
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
    }
}
