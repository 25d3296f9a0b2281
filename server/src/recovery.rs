//! Start-up recovery: rebuilds the processor's state from the newest valid snapshot and the
//! transaction log segments after it.
//!
//! Runs once on the main thread before any executor starts (plain blocking `std::fs`; nothing
//! else runs yet). In: `snapshot.<zxid hex>` files in `dataDir` (memory-mapped, validated
//! once, rebuilt from the archived form) and the segment files `log.<first zxid hex>` in
//! `dataLogDir`, replayed from the first record after the snapshot. Out: the
//! replayed [`Processor`] (tree, sessions, last zxid) and the [`LogTail`] the log role appends
//! after. Invariant: the server never serves a tree missing an acknowledged write. Only a
//! torn tail of the LAST segment is repaired (zeroed and reported, since its records were
//! never acknowledged); corruption anywhere else, a missing segment or an invalid payload is
//! a [`RecoveryError`] naming the file and offset, and the server refuses to start.
//! The same scan backs `ringkeeper log-verify` ([`verify_segment`]).

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ringkeeper_engine::log::{self as txlog, LogError, Record, SegmentEnd, SegmentHeader, SegmentScanner};
use ringkeeper_engine::request::Processor;
use ringkeeper_engine::txn::TxnBytes as AlignedVec;

use crate::data_files;
use crate::snapshot_store::{self, MappedSnapshot};

/// Where the log role continues appending.
#[derive(Debug, Clone)]
pub struct LogTail {
    /// The last segment file.
    pub path: PathBuf,
    /// Offset just after its last valid record.
    pub end_offset: u64,
}

/// What recovery found.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// zxid of the last txn in the recovered state (snapshot or log; 0 when both are empty).
    pub last_zxid: i64,
    /// Records replayed (after the snapshot).
    pub records: u64,
    /// Segments read.
    pub segments: usize,
    /// `None` when there is no segment yet.
    pub tail: Option<LogTail>,
    /// The snapshot the tree was rebuilt from (`None`: replayed from an empty tree).
    pub snapshot: Option<PathBuf>,
}

/// Why the log cannot be trusted (or read). Always names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    // Fields are not named `source`: the message already carries the cause, once.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {error}")]
    Corrupt { path: PathBuf, error: LogError },
    #[error("{path}: offset {offset}: {detail}")]
    Inconsistent { path: PathBuf, offset: u64, detail: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |error| RecoveryError::Io { path: path.to_path_buf(), error }
}

/// The files in `dir` named `<prefix><16 hex digits>` (parsed by `parse`), in zxid order; a
/// missing directory holds none. Other files starting with `prefix` are ignored with a warning
/// (a `.tmp` file silently: an unfinished write).
pub fn numbered_files(
    dir: &Path,
    prefix: &str,
    parse: fn(&str) -> Option<i64>,
) -> Result<Vec<(i64, PathBuf)>, RecoveryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match parse(name) {
            Some(zxid) => files.push((zxid, entry.path())),
            None if name.starts_with(prefix) && !data_files::is_temp_name(name) => {
                log::warn!(
                    "{}: ignoring a file not named {prefix}<zxid> as expected here",
                    entry.path().display()
                )
            }
            None => {}
        }
    }
    files.sort();
    Ok(files)
}

/// The segment files in `dir`, in zxid order (a missing directory holds none).
pub fn segment_paths(dir: &Path) -> Result<Vec<(i64, PathBuf)>, RecoveryError> {
    numbered_files(dir, data_files::SEGMENT_PREFIX, data_files::parse_segment_file_name)
}

/// Reads a whole file into a 16-byte aligned buffer (payloads are then aligned archives).
pub fn read_aligned(path: &Path) -> Result<AlignedVec, RecoveryError> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len() as usize;
    let mut bytes = AlignedVec::with_capacity(len);
    bytes.resize(len, 0);
    file.read_exact(&mut bytes).map_err(io_error(path))?;
    Ok(bytes)
}

/// What scanning one segment found.
#[derive(Debug, Clone, Copy)]
pub struct Scanned {
    pub header: SegmentHeader,
    pub end: SegmentEnd,
    pub records: u64,
    pub first_zxid: Option<i64>,
    pub last_zxid: Option<i64>,
}

/// Scans one segment, handing each validated record to `on_record`.
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    mut on_record: impl FnMut(&Record<'_>),
) -> Result<Scanned, RecoveryError> {
    let corrupt = |error| RecoveryError::Corrupt { path: path.to_path_buf(), error };
    let mut scanner = SegmentScanner::new(bytes).map_err(corrupt)?;
    let (mut records, mut first_zxid, mut last_zxid) = (0, None, None);
    for record in &mut scanner {
        let record = record.map_err(corrupt)?;
        records += 1;
        first_zxid.get_or_insert(record.zxid);
        last_zxid = Some(record.zxid);
        on_record(&record);
    }
    let end = scanner.end().expect("scan finished without error");
    Ok(Scanned { header: scanner.header(), end, records, first_zxid, last_zxid })
}

/// Whether a segment's bytes are those of a file created (or a zero-filled spare renamed
/// into place) but never written: no valid header and nothing but zeros. As the last segment
/// that is what a crash between creating a segment and writing its first records leaves;
/// nothing in it was acknowledged.
pub fn never_written(bytes: &[u8]) -> bool {
    txlog::decode_segment_header(bytes).is_err() && bytes.iter().all(|&b| b == 0)
}

/// Reads and scans one segment file.
pub fn verify_segment(path: &Path, on_record: impl FnMut(&Record<'_>)) -> Result<Scanned, RecoveryError> {
    scan_segment(path, &read_aligned(path)?, on_record)
}

/// Zeroes `[from, to)` of `path` and makes it durable: cuts a torn tail off a preallocated
/// segment, so later appends are not followed by stale bytes.
fn zero_range(path: &Path, from: u64, to: u64) -> Result<(), RecoveryError> {
    let file = std::fs::OpenOptions::new().write(true).open(path).map_err(io_error(path))?;
    let zeros = vec![0u8; (to - from) as usize];
    file.write_all_at(&zeros, from).map_err(io_error(path))?;
    file.sync_data().map_err(io_error(path))
}

/// Removes the last segment of the log in `dir` when `bytes` (its contents) were never
/// written ([`never_written`]): created, or a zero-filled spare renamed into place, then a
/// crash or restart before its first records; nothing in it was acknowledged. True if removed.
pub fn remove_if_never_written(dir: &Path, path: &Path, bytes: &[u8]) -> Result<bool, RecoveryError> {
    if !never_written(bytes) {
        return Ok(false);
    }
    log::warn!("{}: removing an empty log segment (no header written)", path.display());
    remove_segment(dir, path)?;
    Ok(true)
}

/// Deletes a segment that holds nothing acknowledged, durably (the directory is synced).
fn remove_segment(dir: &Path, path: &Path) -> Result<(), RecoveryError> {
    std::fs::remove_file(path).map_err(io_error(path))?;
    data_files::sync_dir(dir).map_err(io_error(dir))
}

/// What the segment header's `prev_zxid` must say for a segment to fit the log before it.
#[derive(Debug, Clone, Copy)]
pub enum Follows {
    /// The previous segment ended at this zxid.
    Exactly(i64),
    /// The first segment replayed after a snapshot at this zxid: nothing between the snapshot
    /// and the segment may be missing (a log whose older segments were purged starts here).
    AtMost(i64),
}

/// Checks how a scanned segment fits the log before it: name, header chain, first record, and
/// that only the last segment may end torn or be empty.
fn check_link(
    path: &Path,
    name_zxid: i64,
    scanned: &Scanned,
    follows: Follows,
    is_last: bool,
) -> Result<(), RecoveryError> {
    let inconsistent = |offset: u64, detail: String| {
        Err(RecoveryError::Inconsistent { path: path.to_path_buf(), offset, detail })
    };
    let header = scanned.header;
    if header.first_zxid != name_zxid {
        return inconsistent(
            0,
            format!("header says first zxid {:#x}, the file name says {name_zxid:#x}", header.first_zxid),
        );
    }
    match follows {
        Follows::Exactly(log_last_zxid) if header.prev_zxid != log_last_zxid => {
            return inconsistent(0, format!("segment follows zxid {:#x} but the log before it ends at {log_last_zxid:#x}: a segment is missing", header.prev_zxid));
        }
        Follows::AtMost(snapshot_zxid) if header.prev_zxid > snapshot_zxid => {
            return inconsistent(0, format!("segment follows zxid {:#x} but the snapshot ends at {snapshot_zxid:#x}: the segments between them are missing", header.prev_zxid));
        }
        _ => {}
    }
    if let Some(first) = scanned.first_zxid.filter(|z| *z != header.first_zxid) {
        return inconsistent(
            txlog::SEGMENT_HEADER_BYTES as u64,
            format!("first record has zxid {first:#x}, expected {:#x}", header.first_zxid),
        );
    }
    if let (SegmentEnd::TornTail { offset, fault, .. }, false) = (scanned.end, is_last) {
        return inconsistent(offset, format!("{fault} in a segment that is not the last one"));
    }
    if scanned.records == 0 && !is_last {
        return inconsistent(
            txlog::SEGMENT_HEADER_BYTES as u64,
            "segment holds no record but is not the last one".into(),
        );
    }
    Ok(())
}

/// Checks a log directory (or one segment file) without changing it, for
/// `ringkeeper log-verify`: every segment, the chain between them, and how the log ends.
/// Returns one summary line per segment.
pub fn verify_log(path: &Path) -> Result<Vec<String>, RecoveryError> {
    let segments =
        if path.is_dir() { segment_paths(path)? } else { vec![(segment_zxid_of(path)?, path.to_path_buf())] };
    let mut lines = Vec::new();
    let mut last_zxid = None;
    let count = segments.len();
    for (index, (name_zxid, segment)) in segments.into_iter().enumerate() {
        let scanned = verify_segment(&segment, |_| {})?;
        // The first (or a lone) file is checked against its own header: retention may have
        // removed the segments before it.
        let follows = last_zxid.map_or(Follows::AtMost(i64::MAX), Follows::Exactly);
        check_link(&segment, name_zxid, &scanned, follows, index + 1 == count)?;
        let last = scanned.last_zxid.unwrap_or(last_zxid.unwrap_or(scanned.header.prev_zxid));
        last_zxid = Some(last);
        let last_zxid = last;
        lines.push(format!(
            "{}: ok, {} records, first zxid {:#x}, last zxid {last_zxid:#x}, follows {:#x}, {:?}",
            segment.display(),
            scanned.records,
            scanned.header.first_zxid,
            scanned.header.prev_zxid,
            scanned.end
        ));
    }
    Ok(lines)
}

fn segment_zxid_of(path: &Path) -> Result<i64, RecoveryError> {
    path.file_name().and_then(|n| n.to_str()).and_then(data_files::parse_segment_file_name).ok_or_else(|| {
        RecoveryError::Inconsistent {
            path: path.to_path_buf(),
            offset: 0,
            detail: "not named like a log segment (log.<16 hex digits>)".into(),
        }
    })
}

/// Snapshots that failed validation: the zxid in the name and why, newest first.
type SkippedSnapshots = Vec<(i64, RecoveryError)>;

/// The newest snapshot that validates, and the newer ones that did not.
fn newest_valid_snapshot(
    data_dir: &Path,
) -> Result<(Option<MappedSnapshot>, SkippedSnapshots), RecoveryError> {
    snapshot_store::remove_temp_files(data_dir)?;
    let mut skipped = Vec::new();
    for (zxid, path) in snapshot_store::snapshot_paths(data_dir)?.into_iter().rev() {
        match MappedSnapshot::open(&path) {
            Ok(snapshot) => return Ok((Some(snapshot), skipped)),
            Err(error) => {
                log::warn!("skipping snapshot {error}; trying an older one");
                skipped.push((zxid, error));
            }
        }
    }
    Ok((None, skipped))
}

/// Rebuilds `processor` from the newest valid snapshot in `data_dir` and the log segments in
/// `log_dir` after it (every segment from the beginning when there is no snapshot),
/// repairing a torn tail of the last segment. See `engine/src/snapshot/FORMAT.md` for how a
/// damaged snapshot is handled.
pub fn recover(
    data_dir: &Path,
    log_dir: &Path,
    processor: &mut Processor,
    now_ms: i64,
) -> Result<Recovered, RecoveryError> {
    let (snapshot, skipped) = newest_valid_snapshot(data_dir)?;
    let mut recovered = Recovered::default();
    if let Some(snapshot) = &snapshot {
        let restored =
            ringkeeper_engine::snapshot::restore(snapshot.image(), &mut processor.sessions, now_ms)
                .map_err(|e| snapshot_store::corrupt(&snapshot.path, e))?;
        processor.tree = restored;
        recovered.snapshot = Some(snapshot.path.clone());
        recovered.last_zxid = snapshot.header.zxid;
    }
    replay_log(log_dir, processor, now_ms, &mut recovered).map_err(|log_error| match skipped.first() {
        // The damaged snapshot is the cause: name it, with why the log cannot replace it.
        Some((_, snapshot_error)) => {
            let (path, offset, detail) = snapshot_error.located();
            let detail = format!("{detail}; the log cannot stand in for it: {log_error}");
            RecoveryError::Inconsistent { path, offset, detail }
        }
        None => log_error,
    })?;
    if let Some(snapshot) = &snapshot {
        if recovered.last_zxid < snapshot.header.fuzzy_end_zxid {
            return Err(RecoveryError::Inconsistent {
                path: snapshot.path.clone(),
                offset: 24,
                detail: format!(
                    "the snapshot holds txns up to {:#x} but the log ends at {:#x}: log segments are missing",
                    snapshot.header.fuzzy_end_zxid, recovered.last_zxid
                ),
            });
        }
    }
    // A damaged newer snapshot proves writes up to its zxid happened: the log must hold them.
    if let Some((_, error)) = skipped.into_iter().find(|(zxid, _)| *zxid > recovered.last_zxid) {
        return Err(error);
    }
    remove_orphan_ephemerals(processor);
    Ok(recovered)
}

impl RecoveryError {
    /// The file, byte offset (0 when the error has none) and reason.
    fn located(&self) -> (PathBuf, u64, String) {
        match self {
            RecoveryError::Io { path, error } => (path.clone(), 0, error.to_string()),
            RecoveryError::Corrupt { path, error } => (path.clone(), 0, error.to_string()),
            RecoveryError::Inconsistent { path, offset, detail } => (path.clone(), *offset, detail.clone()),
        }
    }
}

/// Replays the segments after `recovered.last_zxid` (the snapshot's zxid, 0 without one).
fn replay_log(
    log_dir: &Path,
    processor: &mut Processor,
    now_ms: i64,
    recovered: &mut Recovered,
) -> Result<(), RecoveryError> {
    let snapshot_zxid = recovered.last_zxid;
    let segments = segment_paths(log_dir)?;
    // The segment holding the first record after the snapshot: the last one starting at or
    // before snapshot + 1 (every later record is in it or after it).
    let start =
        segments.iter().rposition(|(first, _)| *first <= snapshot_zxid.saturating_add(1)).unwrap_or(0);
    let count = segments.len();
    let mut log_last = None;
    for (index, (name_zxid, path)) in segments.into_iter().enumerate().skip(start) {
        let is_last = index + 1 == count;
        let bytes = read_aligned(&path)?;
        if is_last && remove_if_never_written(log_dir, &path, &bytes)? {
            continue;
        }
        let mut replayed = 0;
        let scanned = scan_segment(&path, &bytes, |record| {
            if record.zxid > snapshot_zxid {
                processor.replay(record.txn, now_ms);
                replayed += 1;
            }
        })?;
        let follows = log_last.map_or(Follows::AtMost(snapshot_zxid), Follows::Exactly);
        check_link(&path, name_zxid, &scanned, follows, is_last)?;
        if let SegmentEnd::TornTail { offset, fault, garbage_end } = scanned.end {
            log::warn!("{}: torn record at offset {offset} ({fault}); cutting the log there (bytes {offset}..{garbage_end} were never acknowledged)", path.display());
            zero_range(&path, offset, garbage_end)?;
        }
        let Some(last_zxid) = scanned.last_zxid else {
            log::warn!("{}: removing the last log segment: it holds no complete record", path.display());
            remove_segment(log_dir, &path)?;
            continue;
        };
        log_last = Some(last_zxid);
        recovered.last_zxid = recovered.last_zxid.max(last_zxid);
        recovered.records += replayed;
        recovered.segments += 1;
        recovered.tail = Some(LogTail { path: path.clone(), end_offset: scanned.end.append_offset() });
    }
    Ok(())
}

/// Deletes ephemerals whose session is not in the recovered table (Apache's start-up cleanup
/// of dead sessions, `ZooKeeperServer.loadData`); a consistent snapshot + log leaves none.
fn remove_orphan_ephemerals(processor: &mut Processor) {
    let orphans: Vec<(i64, Vec<String>)> = processor
        .tree
        .all_ephemerals()
        .filter(|(owner, _)| processor.sessions.get(*owner).is_none())
        .map(|(owner, paths)| (owner, paths.iter().map(|p| p.to_string()).collect()))
        .collect();
    let zxid = processor.tree.last_processed_zxid;
    for (owner, paths) in orphans {
        log::warn!(
            "removing {} ephemeral node(s) of session {owner:#x}, which no longer exists",
            paths.len()
        );
        for path in paths {
            let _ = processor.tree.delete_node(&path, zxid);
        }
    }
}

/// Prints a segment readably (for `ringkeeper log-dump`), then its end or the error.
pub fn dump_segment(path: &Path, out: &mut impl Write) -> Result<(), RecoveryError> {
    let result = verify_segment(path, |r| {
        let t = r.to_txn();
        let _ = writeln!(
            out,
            "offset {:>10}  zxid {:#018x}  session {:#x}  cxid {}  time {}  {:?}",
            r.offset, r.zxid, t.session_id, t.cxid, t.time_ms, t.body
        );
    });
    let scanned = result?;
    let _ = writeln!(
        out,
        "{}: first zxid {:#x}, follows {:#x}, {} records, {:?}",
        path.display(),
        scanned.header.first_zxid,
        scanned.header.prev_zxid,
        scanned.records,
        scanned.end
    );
    Ok(())
}
