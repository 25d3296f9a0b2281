//! Log role: appends txn records to preallocated segment files with group commit.
//!
//! Runs on its own glommio executor (`ringkeeper.log.core`, pinned only when
//! `ringkeeper.pin=true`), or as a task beside the other roles (`ringkeeper.executors=one`).
//! In: [`LogRecord`]s (the txn bytes the processor encoded once) over a bounded
//! [`link`] from the data role, in zxid order. Out: "durable up to zxid Z" over a bounded
//! link back to the data role, which holds every reply until then. The write and sync are
//! io_uring requests, so on a shared executor the other roles keep running while it waits,
//! except for small commits (`ringkeeper.log.inlineMaxRecords`; unset, a lone writer's one
//! record, unless an ensemble member's roles share this executor:
//! [`Config::log_inline_max_records_for`]): io_uring runs a blocking write or sync on a kernel
//! worker thread and then wakes the executor, two thread wake-ups a lone writer waits for on
//! top of the disk, so those are plain blocking syscalls on the role's own thread
//! ([`Issue::Inline`]). On an executor shared with peer links the role first lets the reactor
//! submit what the other roles queued (a leader's proposal leaves before its own log write
//! blocks the thread, so the followers' disks work meanwhile).
//!
//! Group commit: take every record queued since the last flush (at most
//! `ringkeeper.log.batchCountMax` records / `batchBytesMax` bytes, optionally waiting
//! `batchDelayMicros` for more), write them with one write per segment touched, make them
//! durable, then report the batch's last zxid. `ringkeeper.log.writeMode` says how:
//! `dsync` (default) opens segments `O_DSYNC`, so the write itself returns once the data is on
//! stable storage: one I/O (one io_uring request, one wake-up) per batch; `fdatasync` writes
//! through the page cache and issues ONE fdatasync (Apache's way); `direct` writes with
//! O_DIRECT, then fdatasync. Not `direct` by default: glommio puts O_DIRECT I/O on its polled
//! ring, and an executor with polled I/O in flight spins instead of sleeping, which cost a
//! lone writer on a 3-server ensemble over a core of CPU (bench/results/profile-*.md).
//! A `direct` log's small commits are inline too: a blocking O_DIRECT write from one of the
//! reactor's aligned buffers on a duplicated descriptor, then a blocking fdatasync (before,
//! they went through io_uring: a lone writer's p50 was 272-307 µs against 198-238 inline,
//! `bench/results/cpu-per-write.md`).
//! Segments are `log.<first zxid hex>` in `dataLogDir`, preallocated
//! (`ringkeeper.log.segmentBytes`, 64 MiB by default; a record larger than that gets a
//! segment of its own). Page-cache writes go exactly where the records do; O_DIRECT writes
//! are 4 KiB aligned, so the partial last block is kept in memory and rewritten with the next
//! batch.
//! The next segment is zero-filled in the background (`segment.spare`) and renamed into place
//! at the roll, so appends land on written blocks and a sync commits no extent metadata.
//! Invariants: a zxid is reported only after the bytes holding it (and every earlier record)
//! are on disk; a failed write or fsync is fatal (log naming the file, `exit`), never retried.
//! `forceSync=no` skips the sync (and `O_DSYNC`) and says so loudly at start-up.

use std::cell::Cell;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::io::{BufferedFile, Directory, DmaFile, OpenOptions};
use prometheus::{Histogram, HistogramOpts};
use ringkeeper_engine::log::{self as txlog, SegmentHeader};
use ringkeeper_engine::zab::SharedTxn;

use crate::config::{Config, LogWriteMode};
use crate::data_files;
use crate::link;
use crate::recovery::LogTail;
use crate::request_stats::millisecond_histogram;

/// Bytes per zero-filling write of the spare segment.
const SPARE_FILL_CHUNK_BYTES: usize = 1 << 20;
/// Alignment of DMA write offsets and lengths (a multiple of any logical block size ≤ 4 KiB).
const WRITE_ALIGN: u64 = 4096;
/// Process exit status after a failed log write or fsync.
const EXIT_LOG_FAILURE: i32 = 70;

/// One txn for the log: its zxid and the rkyv bytes the processor (or, on a learner, the
/// leader) encoded, shared with the ZAB history and the followers' queues without a copy.
#[derive(Debug)]
pub struct LogRecord {
    pub zxid: i64,
    pub bytes: SharedTxn,
}

/// What the log role measures, for the metrics endpoint (Prometheus collectors are shared
/// handles: the endpoint registers clones of these).
#[derive(Clone)]
pub struct LogStats {
    /// Write and sync of one group commit, ms (Apache's `fsynctime` times the sync alone).
    pub fsync_ms: Histogram,
    /// Records per group commit.
    pub batch_records: Histogram,
}

impl Default for LogStats {
    fn default() -> Self {
        let batch_records =
            HistogramOpts::new("ringkeeper_log_batch_records", "Records written per group commit")
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 12).expect("valid buckets"));
        LogStats {
            fsync_ms: millisecond_histogram(
                "fsynctime",
                "Time to write one group commit to the transaction log and make it durable, ms",
            ),
            batch_records: Histogram::with_opts(batch_records).expect("a valid metric"),
        }
    }
}

/// The settings the log role runs with (from zoo.cfg).
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub dir: PathBuf,
    pub force_sync: bool,
    pub batch_bytes_max: usize,
    pub batch_count_max: usize,
    pub batch_delay: Duration,
    pub segment_bytes: u64,
    /// `Dsync` only when `force_sync`: with `forceSync=no` nothing waits for the disk.
    pub write_mode: LogWriteMode,
    /// Group commits of at most this many records are [`Issue::Inline`]
    /// (`ringkeeper.log.inlineMaxRecords`).
    pub inline_max_records: usize,
    /// The log role shares its executor with a replica's peer links (an ensemble member under
    /// `ringkeeper.executors=one`): an inline write first lets the reactor submit what the
    /// other roles queued, so a leader's proposal leaves before the write holds the thread.
    pub executor_shared_with_peers: bool,
}

impl LogSettings {
    /// The settings of `config` for a log role that shares its executor with the other roles
    /// (`ringkeeper.executors=one`) or not.
    pub fn from_config(config: &Config, executor_shared: bool) -> LogSettings {
        LogSettings {
            dir: config.log_dir().to_path_buf(),
            force_sync: config.force_sync,
            batch_bytes_max: config.log_batch_bytes_max.min(usize::MAX as u64) as usize,
            batch_count_max: (config.log_batch_count_max as usize).max(1),
            batch_delay: Duration::from_micros(config.log_batch_delay_micros),
            segment_bytes: config.log_segment_bytes,
            write_mode: match config.log_write_mode {
                LogWriteMode::Dsync if !config.force_sync => LogWriteMode::Fdatasync,
                mode => mode,
            },
            inline_max_records: config.log_inline_max_records_for(executor_shared) as usize,
            executor_shared_with_peers: executor_shared && config.is_distributed(),
        }
    }
}

fn fatal(path: &Path, what: &str, error: impl Display) -> ! {
    log::error!(
        "FATAL: {what} {} failed: {error}. Stopping: a replica that cannot make its log durable must not acknowledge writes (no retry).",
        path.display()
    );
    std::process::exit(EXIT_LOG_FAILURE)
}

const fn align_down(n: u64) -> u64 {
    n & !(WRITE_ALIGN - 1)
}

const fn align_up(n: u64) -> u64 {
    align_down(n + WRITE_ALIGN - 1)
}

/// A segment file opened for O_DIRECT, or through the page cache (`O_DSYNC` when `dsync`):
/// the one recipe for writing the log durably (`ringkeeper-tune` measures the disk with it).
pub enum SegmentFile {
    /// `inline` is the same open file (a duplicated descriptor, also O_DIRECT) for
    /// [`Issue::Inline`]: a blocking write from an aligned buffer, then `fdatasync`.
    Dma { file: DmaFile, inline: std::fs::File },
    /// `inline` is the same open file (a duplicated descriptor) for [`Issue::Inline`].
    Buffered { file: BufferedFile, dsync: bool, inline: std::fs::File },
}

/// How a write or sync reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// As an io_uring request: the executor runs other tasks meanwhile; a blocking write or
    /// sync runs on a kernel worker thread that wakes the executor when it is done.
    Ring,
    /// As a blocking syscall on the executor's thread: no worker thread and no wake-up, but
    /// nothing else on this executor runs until the disk answers (an O_DIRECT segment writes
    /// from one of the reactor's aligned buffers).
    Inline,
}

impl SegmentFile {
    /// Opens (or creates, failing if it exists) `path` for reading and writing as `mode` asks.
    /// `Direct` falls back to `Fdatasync` for the rest of the log where O_DIRECT is refused.
    pub async fn open(
        path: &Path,
        create: bool,
        mode: &mut LogWriteMode,
    ) -> glommio::Result<SegmentFile, ()> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(create);
        if *mode == LogWriteMode::Direct {
            match options.dma_open(path).await {
                Ok(file) => {
                    let inline = duplicate(&file)?;
                    return Ok(SegmentFile::Dma { file, inline });
                }
                Err(e) => {
                    log::error!(
                        "{}: cannot open with O_DIRECT ({e}); falling back to ringkeeper.log.writeMode=fdatasync \
                         for the whole log. fdatasync still makes batches durable, but writes go through the page cache.",
                        path.display()
                    );
                    *mode = LogWriteMode::Fdatasync;
                    // A failed O_CREAT|O_EXCL open may still have created the file.
                    if create {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        }
        let dsync = *mode == LogWriteMode::Dsync;
        if dsync {
            options.custom_flags(libc::O_DSYNC);
        }
        let file = options.buffered_open(path).await?;
        let inline = duplicate(&file)?;
        Ok(SegmentFile::Buffered { file, dsync, inline })
    }

    /// True for O_DIRECT: writes must start and end on 4 KiB boundaries, so the last partial
    /// block is written again in front of the next records. Page-cache writes go exactly
    /// where the records do.
    pub fn needs_aligned_writes(&self) -> bool {
        matches!(self, SegmentFile::Dma { .. })
    }

    /// True when a completed write is already on stable storage (`O_DSYNC`).
    pub fn writes_are_durable(&self) -> bool {
        matches!(self, SegmentFile::Buffered { dsync: true, .. })
    }

    /// Writes `len` bytes at `pos` (both 4 KiB aligned if [`SegmentFile::needs_aligned_writes`])
    /// from a buffer `fill` initialises. A short write (a filling disk writes what fits) is
    /// continued with the rest, so the caller sees either every byte written or the error
    /// (ENOSPC, EIO) that stopped it; `fill` is called again for each continuation.
    pub async fn write_at(
        &self,
        pos: u64,
        len: usize,
        issue: Issue,
        mut fill: impl FnMut(&mut [u8]),
    ) -> glommio::Result<usize, ()> {
        match (issue, self) {
            (Issue::Inline, SegmentFile::Buffered { inline, .. }) => {
                let mut buf = vec![0u8; len];
                fill(&mut buf);
                std::os::unix::fs::FileExt::write_all_at(inline, &buf, pos)?;
                return Ok(len);
            }
            (Issue::Inline, SegmentFile::Dma { file, inline }) => {
                // The reactor's DMA buffers are aligned for O_DIRECT.
                let mut buf = file.alloc_dma_buffer(len);
                fill(buf.as_bytes_mut());
                std::os::unix::fs::FileExt::write_all_at(inline, buf.as_bytes(), pos)?;
                return Ok(len);
            }
            (Issue::Ring, _) => {}
        }
        let mut done = 0;
        while done < len {
            let at = pos + done as u64;
            let written = match self {
                SegmentFile::Dma { file: f, .. } => {
                    let mut buf = f.alloc_dma_buffer(len);
                    fill(buf.as_bytes_mut());
                    if done == 0 {
                        f.write_at(buf, at).await?
                    } else {
                        let mut rest = f.alloc_dma_buffer(len - done);
                        rest.as_bytes_mut().copy_from_slice(&buf.as_bytes()[done..]);
                        f.write_at(rest, at).await?
                    }
                }
                SegmentFile::Buffered { file: f, .. } => {
                    let mut buf = vec![0u8; len];
                    fill(&mut buf);
                    buf.drain(..done);
                    f.write_at(buf, at).await?
                }
            };
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            done += written;
        }
        Ok(len)
    }

    async fn read_at(&self, pos: u64, len: usize) -> glommio::Result<Vec<u8>, ()> {
        let read = match self {
            SegmentFile::Dma { file: f, .. } => f.read_at(pos, len).await?,
            SegmentFile::Buffered { file: f, .. } => f.read_at(pos, len).await?,
        };
        Ok(read.to_vec())
    }

    /// fdatasync, needed after writes unless [`SegmentFile::writes_are_durable`].
    pub async fn fdatasync(&self, issue: Issue) -> glommio::Result<(), ()> {
        match (self, issue) {
            (SegmentFile::Buffered { inline, .. } | SegmentFile::Dma { inline, .. }, Issue::Inline) => {
                Ok(inline.sync_data()?)
            }
            (SegmentFile::Dma { file: f, .. }, Issue::Ring) => f.fdatasync().await,
            (SegmentFile::Buffered { file: f, .. }, Issue::Ring) => f.fdatasync().await,
        }
    }

    pub async fn pre_allocate(&self, size: u64) -> glommio::Result<(), ()> {
        match self {
            SegmentFile::Dma { file: f, .. } => f.pre_allocate(size, false).await,
            SegmentFile::Buffered { file: f, .. } => f.pre_allocate(size, false).await,
        }
    }
}

/// A second descriptor of `file`'s open file (same flags and offset-free use: positioned
/// writes only), for blocking [`Issue::Inline`] calls beside glommio's own.
fn duplicate(file: &impl std::os::fd::AsRawFd) -> std::io::Result<std::fs::File> {
    // SAFETY: the descriptor is open for as long as `file` is; it is only duplicated here.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(file.as_raw_fd()) };
    Ok(std::fs::File::from(fd.try_clone_to_owned()?))
}

/// The segment being appended to.
struct Segment {
    path: PathBuf,
    file: SegmentFile,
    /// Preallocated size; records never cross it.
    capacity: u64,
    /// Where the next record goes.
    cursor: u64,
    /// The bytes of `[cursor - tail.len(), cursor)` that the next write starts with: the last
    /// partial block when writes must be aligned (written again), else what is not written
    /// yet (a new segment's header).
    tail: Vec<u8>,
    /// Written since the last fdatasync.
    dirty: bool,
}

impl Segment {
    /// Appends `records` (which fit) with one write that starts with `tail`.
    async fn write(&mut self, records: &[LogRecord], issue: Issue) {
        let aligned = self.file.needs_aligned_writes();
        let head = self.tail.len();
        let write_pos = self.cursor - head as u64;
        debug_assert!(!aligned || write_pos == align_down(self.cursor));
        let total = head + records.iter().map(|r| txlog::record_len(r.bytes.len())).sum::<usize>();
        let len = if aligned { align_up(total as u64) as usize } else { total };
        assert!(write_pos + len as u64 <= self.capacity, "records must fit the segment");
        let mut new_tail = Vec::new();
        self.file
            .write_at(write_pos, len, issue, |buf| {
                new_tail.clear();
                buf[..head].copy_from_slice(&self.tail);
                let mut at = head;
                for r in records {
                    at += txlog::encode_record(&mut buf[at..], r.zxid, &r.bytes);
                }
                buf[at..].fill(0);
                if aligned {
                    new_tail.extend_from_slice(&buf[align_down(total as u64) as usize..total]);
                }
            })
            .await
            .unwrap_or_else(|e| fatal(&self.path, "write to", e));
        self.cursor = write_pos + total as u64;
        self.tail = new_tail;
        self.dirty = true;
    }

    async fn sync(&mut self, force_sync: bool, issue: Issue) {
        if self.dirty && force_sync && !self.file.writes_are_durable() {
            self.file.fdatasync(issue).await.unwrap_or_else(|e| fatal(&self.path, "fdatasync of", e));
        }
        self.dirty = false;
    }
}

/// State of the spare segment being zero-filled by a background task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spare {
    Filling,
    Ready,
    Failed,
}

/// Appends batches across segments.
struct LogWriter {
    settings: LogSettings,
    dir: Directory,
    segment: Option<Segment>,
    /// zxid of the last record appended (the next segment's `prev_zxid`).
    last_zxid: i64,
    /// How segments are opened and synced; `Direct` may fall back to `Fdatasync` at an open.
    write_mode: LogWriteMode,
    /// The zero-filled next segment ([`data_files::SPARE_SEGMENT`]), shared with its filling task.
    spare: Rc<Cell<Spare>>,
    stats: LogStats,
}

impl LogWriter {
    /// Opens the log directory and, if recovery found one, the last segment to continue it.
    async fn open(
        settings: LogSettings,
        tail: Option<LogTail>,
        last_zxid: i64,
        stats: LogStats,
    ) -> LogWriter {
        let dir = Directory::open(&settings.dir)
            .await
            .unwrap_or_else(|e| fatal(&settings.dir, "opening the log directory", e));
        let mut writer = LogWriter {
            write_mode: settings.write_mode,
            settings,
            dir,
            segment: None,
            last_zxid,
            spare: Rc::new(Cell::new(Spare::Failed)),
            stats,
        };
        if let Some(tail) = tail {
            let file = SegmentFile::open(&tail.path, false, &mut writer.write_mode)
                .await
                .unwrap_or_else(|e| fatal(&tail.path, "opening", e));
            let head = if file.needs_aligned_writes() {
                let block = align_down(tail.end_offset);
                file.read_at(block, (tail.end_offset - block) as usize)
                    .await
                    .unwrap_or_else(|e| fatal(&tail.path, "reading the tail of", e))
            } else {
                Vec::new()
            };
            let capacity = align_up(tail.end_offset).max(writer.settings.segment_bytes);
            // Restores the preallocation if the file was cut short (a repaired torn tail).
            file.pre_allocate(capacity).await.unwrap_or_else(|e| fatal(&tail.path, "preallocating", e));
            writer.segment = Some(Segment {
                path: tail.path,
                file,
                capacity,
                cursor: tail.end_offset,
                tail: head,
                dirty: false,
            });
        }
        writer.fill_spare();
        writer
    }

    /// Starts zero-filling a fresh spare segment in a background task on this executor.
    /// Writing real zeros (not just `fallocate`, which leaves unwritten extents) means a later
    /// fdatasync of records in it flushes data only, not extent conversions (as Apache pads
    /// its log with zeros). A failure only costs that optimisation: rolling then falls back
    /// to a preallocated file.
    fn fill_spare(&mut self) {
        let spare = Rc::new(Cell::new(Spare::Filling));
        self.spare = spare.clone();
        let path = self.settings.dir.join(data_files::SPARE_SEGMENT);
        let size = self.settings.segment_bytes;
        // Zeros need no O_DSYNC: the fill ends with one fdatasync.
        let mut fill_mode = match self.write_mode {
            LogWriteMode::Dsync => LogWriteMode::Fdatasync,
            other => other,
        };
        crate::role_stats::spawn(crate::role_stats::Role::Log, async move {
            let _ = std::fs::remove_file(&path);
            let filled = async {
                let file = SegmentFile::open(&path, true, &mut fill_mode).await?;
                let mut pos = 0;
                while pos < size {
                    let len = (size - pos).min(SPARE_FILL_CHUNK_BYTES as u64) as usize;
                    let written = file.write_at(pos, len, Issue::Ring, |buf| buf.fill(0)).await?;
                    pos += written as u64;
                }
                file.fdatasync(Issue::Ring).await
            };
            match filled.await {
                Ok(()) => spare.set(Spare::Ready),
                Err(e) => {
                    log::warn!("zero-filling the spare log segment {} failed: {e}", path.display());
                    let _ = std::fs::remove_file(&path);
                    spare.set(Spare::Failed);
                }
            }
        })
        .detach();
    }

    /// The file for a new segment at `path`: the zero-filled spare renamed into place when it
    /// is ready and large enough (true), else a new preallocated file (false).
    async fn new_segment_file(&mut self, path: &Path, capacity: u64) -> (SegmentFile, bool) {
        if self.spare.get() == Spare::Ready && capacity == self.settings.segment_bytes {
            let spare = self.settings.dir.join(data_files::SPARE_SEGMENT);
            self.spare.set(Spare::Failed);
            match std::fs::rename(&spare, path) {
                Ok(()) => {
                    let file = SegmentFile::open(path, false, &mut self.write_mode)
                        .await
                        .unwrap_or_else(|e| fatal(path, "opening", e));
                    return (file, true);
                }
                Err(e) => log::warn!("renaming the spare log segment to {} failed: {e}", path.display()),
            }
        }
        let file = SegmentFile::open(path, true, &mut self.write_mode)
            .await
            .unwrap_or_else(|e| fatal(path, "creating", e));
        file.pre_allocate(capacity).await.unwrap_or_else(|e| fatal(path, "preallocating", e));
        (file, false)
    }

    /// Ends the current segment (durably) and starts `log.<first_zxid>` with room for `need` bytes.
    async fn roll(&mut self, first_zxid: i64, need: u64) {
        if let Some(mut old) = self.segment.take() {
            old.sync(self.settings.force_sync, Issue::Ring).await;
        }
        let path = self.settings.dir.join(data_files::segment_file_name(first_zxid));
        let capacity = self.settings.segment_bytes.max(align_up(txlog::SEGMENT_HEADER_BYTES as u64 + need));
        let (file, zero_filled) = self.new_segment_file(&path, capacity).await;
        if self.spare.get() != Spare::Filling {
            self.fill_spare();
        }
        // The new name must be durable before anything in it is reported durable.
        file.fdatasync(Issue::Ring).await.unwrap_or_else(|e| fatal(&path, "fdatasync of", e));
        self.dir.sync().await.unwrap_or_else(|e| fatal(&self.settings.dir, "fsync of the directory", e));
        let header = txlog::encode_segment_header(&SegmentHeader { first_zxid, prev_zxid: self.last_zxid });
        log::info!(
            "log segment {} started (follows zxid {:#x}; {})",
            path.display(),
            self.last_zxid,
            if zero_filled { "zero-filled in advance" } else { "preallocated now" }
        );
        self.segment = Some(Segment {
            path,
            file,
            capacity,
            cursor: header.len() as u64,
            tail: header.to_vec(),
            dirty: false,
        });
    }

    /// Appends a batch and makes it durable (one fdatasync per segment touched).
    async fn append(&mut self, batch: &[LogRecord]) {
        // Timed from the write: with `O_DSYNC` the write is where the disk is waited for.
        let started = Instant::now();
        crate::hops::recorder().log_append(batch.last().map_or(0, |r| r.zxid));
        let inline = batch.len() <= self.settings.inline_max_records;
        let issue = if inline { Issue::Inline } else { Issue::Ring };
        if issue == Issue::Inline && self.settings.executor_shared_with_peers {
            let_queued_io_go().await;
        }
        let mut start = 0;
        while start < batch.len() {
            let need = txlog::record_len(batch[start].bytes.len()) as u64;
            if self.segment.as_ref().is_none_or(|s| s.cursor + need > s.capacity) {
                self.roll(batch[start].zxid, need).await;
            }
            let segment = self.segment.as_mut().expect("a segment after roll");
            let mut end = start;
            let mut bytes = 0u64;
            while end < batch.len() {
                let len = txlog::record_len(batch[end].bytes.len()) as u64;
                if segment.cursor + bytes + len > segment.capacity {
                    break;
                }
                bytes += len;
                end += 1;
            }
            segment.write(&batch[start..end], issue).await;
            self.last_zxid = batch[end - 1].zxid;
            start = end;
        }
        self.stats.batch_records.observe(batch.len() as f64);
        if let Some(segment) = self.segment.as_mut() {
            segment.sync(self.settings.force_sync, issue).await;
            self.stats.fsync_ms.observe(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

/// Returns after one turn of this executor's reactor, which submits every io_uring request
/// the tasks on it have queued (glommio submits them only when it polls): on a shared
/// executor, what the other roles sent (a leader's proposal, replies) goes out before an
/// [`Issue::Inline`] write holds the thread.
async fn let_queued_io_go() {
    // Due almost at once, but (unlike a zero timer, which is ready when first polled) it
    // fires only when the reactor next processes timers, in the same turn that submits.
    glommio::timer::sleep(Duration::from_micros(1)).await;
}

/// Limits of one group commit.
struct Batch {
    records: Vec<LogRecord>,
    bytes: usize,
    count_max: usize,
    bytes_max: usize,
}

impl Batch {
    fn push(&mut self, record: LogRecord) {
        crate::role_stats::taken(crate::role_stats::Role::Log, 1);
        self.bytes += txlog::record_len(record.bytes.len());
        self.records.push(record);
    }

    fn is_full(&self) -> bool {
        self.records.len() >= self.count_max || self.bytes >= self.bytes_max
    }

    /// Takes what is already queued, without waiting.
    async fn take_queued(&mut self, from_data: &link::Receiver<LogRecord>) {
        while !self.is_full() {
            match from_data.recv_ready().await {
                Some(record) => self.push(record),
                None => return,
            }
        }
    }

    /// Waits up to `delay` for more records (batchDelayMicros).
    async fn wait_for_more(&mut self, from_data: &link::Receiver<LogRecord>, delay: Duration) {
        let deadline = Instant::now() + delay;
        while !self.is_full() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return;
            }
            let next = future::or(async { from_data.recv().await }, async {
                glommio::timer::sleep(remaining).await;
                None
            })
            .await;
            match next {
                Some(record) => self.push(record),
                None => return,
            }
        }
    }
}

/// Runs the log role until the data role hangs up.
pub async fn run(
    settings: LogSettings,
    tail: Option<LogTail>,
    last_zxid: i64,
    from_data: link::Receiver<LogRecord>,
    to_data: link::Sender<i64>,
    stats: LogStats,
) {
    if !settings.force_sync {
        log::warn!(
            "forceSync=no: the log is NOT fsynced. Acknowledged writes can be LOST on power failure or kernel crash \
             (they survive a process crash). Do not run production data this way."
        );
    }
    let delay = settings.batch_delay;
    let mut batch = Batch {
        records: Vec::new(),
        bytes: 0,
        count_max: settings.batch_count_max,
        bytes_max: settings.batch_bytes_max,
    };
    let mut writer = LogWriter::open(settings, tail, last_zxid, stats).await;
    while let Some(first) = from_data.recv().await {
        batch.push(first);
        batch.take_queued(&from_data).await;
        if !delay.is_zero() {
            batch.wait_for_more(&from_data, delay).await;
        }
        let Some(_permit) = crate::stop::commit_permit() else {
            // The process is stopping (SIGTERM/SIGINT): nothing of this batch was acknowledged.
            return std::future::pending().await;
        };
        writer.append(&batch.records).await;
        let durable = writer.last_zxid;
        crate::hops::recorder().durable(durable);
        batch.records.clear();
        batch.bytes = 0;
        if to_data.send(durable).await.is_err() {
            break;
        }
    }
}
