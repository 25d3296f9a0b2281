//! Log access for replica synchronisation (ZAB): the records after a zxid (a leader's DIFF)
//! and cutting the log after a zxid (a follower's TRUNC).
//!
//! Plain blocking `std::fs` over the segment files of `dataLogDir`, for the ZAB role to call
//! from a helper thread (or before the log role starts). In: a log directory and a zxid.
//! Out: the exact record payloads the log holds (the bytes the leader encoded once, to send
//! unchanged), or a shortened log. Invariants: [`records_after`] never changes a file and
//! only reports a log that holds every record after the zxid (else `Ok(None)`: send a SNAP);
//! [`truncate_after`] must not run while the log role appends to the same directory; it
//! leaves a log whose last record is the given zxid, durable (files and directory synced),
//! and removes the snapshots that may hold a txn after it.

use std::os::unix::fs::FileExt;
use std::path::Path;

use ringkeeper_engine::log::{self as txlog, SegmentEnd};
use ringkeeper_engine::txn::TxnBytes;

use crate::data_files;
use crate::recovery::{
    read_aligned, remove_if_never_written, scan_segment, segment_paths, LogTail, RecoveryError,
};
use crate::snapshot_store;

/// One logged txn: its zxid and its rkyv bytes exactly as logged.
#[derive(Debug, Clone)]
pub struct LoggedTxn {
    pub zxid: i64,
    pub bytes: TxnBytes,
}

/// Every record with a zxid above `zxid`, in order, for a leader's DIFF. `Ok(None)` when the
/// log no longer holds all of them (older segments were purged, or `zxid` precedes the log):
/// the follower needs a snapshot instead. A torn tail of the last segment is not reported
/// (it was never acknowledged); corruption anywhere is an error naming file and offset. The
/// caller compares the last zxid returned with its own last zxid (an empty log returns none).
pub fn records_after(log_dir: &Path, zxid: i64) -> Result<Option<Vec<LoggedTxn>>, RecoveryError> {
    let segments = segment_paths(log_dir)?;
    // The segment holding the first record after `zxid`: the last one starting at or before
    // zxid + 1 (every later record is in it or after it).
    let start = segments.iter().rposition(|(first, _)| *first <= zxid.saturating_add(1)).unwrap_or(0);
    let mut out = Vec::new();
    for (index, (_, path)) in segments.iter().enumerate().skip(start) {
        let bytes = read_aligned(path)?;
        let scanned = scan_segment(path, &bytes, |record| {
            if record.zxid > zxid {
                let mut copy = TxnBytes::with_capacity(record.payload.len());
                copy.extend_from_slice(record.payload);
                out.push(LoggedTxn { zxid: record.zxid, bytes: copy });
            }
        })?;
        if index == start && scanned.header.prev_zxid > zxid {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// Cuts the log after `zxid` for a follower's TRUNC: removes every segment that starts after
/// it, zeroes the records after it in the segment holding it, and removes every snapshot that
/// may hold a later txn (its fuzzy end is past `zxid`). Returns where the log role continues
/// (`None` when no segment is left). A log that ends before `zxid` has nothing to cut (the
/// TRUNC named a txn this member held in memory but had not logged yet when it restarted), and
/// a last segment created but never written is removed, as at recovery. Fails, changing
/// nothing, when the log runs past `zxid` without holding it (a gap), or starts after it.
pub fn truncate_after(data_dir: &Path, log_dir: &Path, zxid: i64) -> Result<Option<LogTail>, RecoveryError> {
    let mut segments = segment_paths(log_dir)?;
    if let Some((_, last)) = segments.last() {
        if remove_if_never_written(log_dir, last, &read_aligned(last)?)? {
            segments.pop();
        }
    }
    let keep = segments.iter().rposition(|(first, _)| *first <= zxid);
    // Find the cut point before changing anything.
    let mut cut = None;
    if let Some(index) = keep {
        let path = &segments[index].1;
        let bytes = read_aligned(path)?;
        let mut after = None;
        let mut found = false;
        let scanned = scan_segment(path, &bytes, |record| {
            found |= record.zxid == zxid;
            if record.zxid > zxid && after.is_none() {
                after = Some(record.offset);
            }
        })?;
        if !found && scanned.last_zxid.is_some_and(|last| last > zxid) {
            return Err(RecoveryError::Inconsistent {
                path: path.clone(),
                offset: 0,
                detail: format!("no record with zxid {zxid:#x} to truncate after"),
            });
        }
        let end = match scanned.end {
            SegmentEnd::Clean { offset } => offset,
            SegmentEnd::TornTail { garbage_end, .. } => garbage_end,
        };
        let from = after.unwrap_or(scanned.end.append_offset());
        cut = Some((path.clone(), from, end));
    } else if let Some((_, first)) = segments.first() {
        let header = txlog::decode_segment_header(&read_aligned(first)?)
            .map_err(|error| RecoveryError::Corrupt { path: first.clone(), error })?;
        // A log that starts after `zxid` (it follows a snapshot past the cut, e.g. a SNAP
        // that held txns the new leader never had) goes whole, with that snapshot: the state
        // restarts from an older snapshot, or empty, and the leader syncs it again.
        if header.prev_zxid < zxid {
            return Err(RecoveryError::Inconsistent {
                path: first.clone(),
                offset: 0,
                detail: format!("the log starts after {:#x}, cannot truncate to {zxid:#x}", header.prev_zxid),
            });
        }
    }
    for (_, path) in &segments[keep.map_or(0, |k| k + 1)..] {
        std::fs::remove_file(path).map_err(io_error(path))?;
    }
    for (_, path) in snapshot_store::snapshot_paths(data_dir)? {
        if snapshot_store::fuzzy_end_zxid(&path).is_none_or(|end| end > zxid) {
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    let tail = match cut {
        Some((path, from, end)) => {
            let file = std::fs::OpenOptions::new().write(true).open(&path).map_err(io_error(&path))?;
            if end > from {
                file.write_all_at(&vec![0u8; (end - from) as usize], from).map_err(io_error(&path))?;
            }
            file.sync_data().map_err(io_error(&path))?;
            Some(LogTail { path, end_offset: from })
        }
        None => None,
    };
    for dir in [log_dir, data_dir] {
        data_files::sync_dir(dir).map_err(io_error(dir))?;
    }
    Ok(tail)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |error| RecoveryError::Io { path: path.to_path_buf(), error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringkeeper_engine::txn::{self, Txn, TxnBody, TxnOp};

    fn set(zxid: i64) -> TxnBytes {
        txn::encode(&Txn {
            session_id: 1,
            cxid: 1,
            zxid,
            time_ms: 0,
            body: TxnBody::Op(TxnOp::SetData {
                path: "/".into(),
                data: vec![zxid as u8],
                version: zxid as i32,
            }),
        })
    }

    /// Writes segments holding zxids `ranges` (each one segment), chained by prev_zxid.
    fn write_log(dir: &Path, ranges: &[std::ops::RangeInclusive<i64>]) {
        write_log_after(dir, 0, ranges)
    }

    /// As [`write_log`], for a log that follows a snapshot at `prev`.
    fn write_log_after(dir: &Path, mut prev: i64, ranges: &[std::ops::RangeInclusive<i64>]) {
        for range in ranges {
            let header = txlog::SegmentHeader { first_zxid: *range.start(), prev_zxid: prev };
            let mut buf = txlog::encode_segment_header(&header).to_vec();
            for zxid in range.clone() {
                txlog::append_record(&mut buf, zxid, &set(zxid));
            }
            buf.resize(buf.len() + 4096, 0);
            std::fs::write(dir.join(txlog::segment_file_name(*range.start())), buf).unwrap();
            prev = *range.end();
        }
    }

    fn zxids(records: &[LoggedTxn]) -> Vec<i64> {
        records.iter().map(|r| r.zxid).collect()
    }

    #[test]
    fn records_after_a_zxid_come_from_every_segment_after_it() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        write_log(&dir, &[1..=5, 6..=9, 10..=12]);
        assert_eq!(zxids(&records_after(&dir, 7).unwrap().unwrap()), [8, 9, 10, 11, 12]);
        assert_eq!(zxids(&records_after(&dir, 0).unwrap().unwrap()).len(), 12);
        assert!(records_after(&dir, 12).unwrap().unwrap().is_empty());
        let logged = &records_after(&dir, 10).unwrap().unwrap()[0];
        assert_eq!(&logged.bytes[..], &set(11)[..], "the bytes as logged");
        // After a purge of the first segment, zxid 3's successors are no longer all there.
        std::fs::remove_file(dir.join(txlog::segment_file_name(1))).unwrap();
        assert!(records_after(&dir, 3).unwrap().is_none(), "needs a snapshot");
        assert_eq!(zxids(&records_after(&dir, 5).unwrap().unwrap())[0], 6);
    }

    #[test]
    fn truncate_after_leaves_a_log_ending_at_the_zxid() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        write_log(&dir, &[1..=5, 6..=9, 10..=12]);
        snapshot_store::write_snapshot(
            &dir,
            &ringkeeper_engine::snapshot::SnapshotImage { zxid: 4, fuzzy_end_zxid: 4, ..Default::default() },
        )
        .unwrap();
        snapshot_store::write_snapshot(
            &dir,
            &ringkeeper_engine::snapshot::SnapshotImage { zxid: 6, fuzzy_end_zxid: 8, ..Default::default() },
        )
        .unwrap();
        truncate_after(&dir, &dir, 42).expect("nothing after 42 to cut");
        assert_eq!(records_after(&dir, 0).unwrap().unwrap().len(), 12, "the log as it was");
        let tail = truncate_after(&dir, &dir, 7).unwrap().expect("a segment is left");
        assert_eq!(tail.path, dir.join(txlog::segment_file_name(6)));
        assert_eq!(zxids(&records_after(&dir, 0).unwrap().unwrap()), [1, 2, 3, 4, 5, 6, 7]);
        let lines = crate::recovery::verify_log(&dir).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let snapshots: Vec<i64> =
            snapshot_store::snapshot_paths(&dir).unwrap().into_iter().map(|(z, _)| z).collect();
        assert_eq!(snapshots, [4], "the snapshot fuzzy up to 8 holds txns past 7");
    }

    #[test]
    fn truncate_before_a_log_that_follows_a_snapshot_removes_both() {
        // An installed SNAP at 10 (its log follows it), cut to 7: the snapshot holds txns
        // past the cut, so it goes with the whole log.
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        write_log_after(&dir, 10, &[11..=12]);
        snapshot_store::write_snapshot(
            &dir,
            &ringkeeper_engine::snapshot::SnapshotImage {
                zxid: 10,
                fuzzy_end_zxid: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(truncate_after(&dir, &dir, 7).unwrap().is_none(), "no segment left");
        assert!(segment_paths(&dir).unwrap().is_empty());
        assert!(snapshot_store::snapshot_paths(&dir).unwrap().is_empty());
    }

    /// A follower restarted for a TRUNC while its newest segment was created but not yet
    /// written (and the txns the TRUNC named were only in memory): the empty segment goes and
    /// nothing else is cut (it refused to start before: "bad segment header").
    #[test]
    fn truncate_after_a_zxid_past_the_logged_end_removes_a_never_written_segment() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        write_log(&dir, &[1..=5]);
        std::fs::write(dir.join(txlog::segment_file_name(6)), vec![0u8; 8192]).unwrap();
        let tail = truncate_after(&dir, &dir, 9).unwrap().expect("the first segment is kept");
        assert_eq!(tail.path, dir.join(txlog::segment_file_name(1)));
        assert_eq!(segment_paths(&dir).unwrap().len(), 1, "the never-written segment is gone");
        assert_eq!(zxids(&records_after(&dir, 0).unwrap().unwrap()), [1, 2, 3, 4, 5]);
    }
}
