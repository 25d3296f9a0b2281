//! Log-disk measurements on the log role's own path: its `SegmentFile` in the
//! `ringkeeper.log.writeMode` asked for (default `dsync`), preallocated, written sequentially
//! in 4 KiB-aligned writes, each made durable as the log role does.
//!
//! In: a directory (dataLogDir) and [`DiskBounds`]. Out: [`DiskMeasurement`]: the fdatasync
//! latency distribution after 4 KiB writes, and per batch size the latency of write +
//! fdatasync and the resulting throughput (the curve group commit rides on).
//! The measurement file `.ringkeeper-tune-<pid>.tmp` is at most `file_bytes_max` long and is
//! removed when the measurement ends, also when it fails. Where the filesystem refuses
//! O_DIRECT (tmpfs) `direct` runs buffered, as the log role then does, and says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glommio::Placement;
use ringkeeper_server::config::LogWriteMode;
use ringkeeper_server::log_role::{Issue, SegmentFile};
use serde::{Deserialize, Serialize};

use super::Bounds;
use crate::stats::{histogram, summarize, HistogramBucket, LatencySummary};
use crate::TuneError;

/// Alignment of every write (as the log role: a multiple of any logical block size ≤ 4 KiB).
pub const WRITE_ALIGN_BYTES: usize = 4096;
/// io_uring registered-buffer memory of the measuring executor (larger buffers use the heap,
/// as in the server's log executor).
const MEASURE_IO_MEMORY_BYTES: usize = 2 << 20;

/// Limits of the disk measurement.
#[derive(Debug, Clone)]
pub struct DiskBounds {
    /// fdatasync samples (each after one 4 KiB write).
    pub fsyncs_max: usize,
    /// Batch sizes of the curve, bytes (rounded up to 4 KiB).
    pub batch_sizes: Vec<usize>,
    /// Samples per batch size.
    pub writes_per_size_max: usize,
    /// Wall-clock budget for the fsync series and for each batch size.
    pub budget_per_series: Duration,
    /// Largest measurement file; writes wrap around to offset 0 past it.
    pub file_bytes_max: u64,
    /// No progress lines.
    pub quiet: bool,
    /// How the writes are made durable: the server's `ringkeeper.log.writeMode`.
    pub write_mode: LogWriteMode,
}

/// One point of the latency-vs-batch curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPoint {
    pub batch_bytes: usize,
    /// One write of `batch_bytes` plus one fdatasync.
    pub latency: LatencySummary,
    /// `batch_bytes` / mean latency, bytes per second (one writer, one batch at a time).
    pub throughput_bytes_per_s: f64,
}

/// What the log disk did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskMeasurement {
    /// The directory measured (canonical).
    pub dir: PathBuf,
    /// Whether the writes were O_DIRECT (`direct` mode, where the filesystem accepts it).
    pub direct_io: bool,
    /// The `ringkeeper.log.writeMode` measured (`dsync`, `fdatasync`, `direct`); empty in
    /// probes recorded before the mode existed (they measured `direct`).
    #[serde(default)]
    pub write_mode: String,
    /// Time to durable after a 4 KiB write: the fdatasync alone, or with `dsync` the write.
    pub fdatasync: LatencySummary,
    pub fdatasync_histogram: Vec<HistogramBucket>,
    /// Ascending by batch size.
    pub batch_curve: Vec<BatchPoint>,
}

/// Removes the measurement file when dropped (normal end, error or panic).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Name of the measurement file in `dir`.
pub fn measurement_file(dir: &Path) -> PathBuf {
    dir.join(format!(".ringkeeper-tune-{}.tmp", std::process::id()))
}

/// Measures the disk under `dir` on a glommio executor (blocks until done).
pub fn measure_disk(dir: &Path, bounds: DiskBounds) -> Result<DiskMeasurement, TuneError> {
    // glommio opens with openat(-1, ...): the path must be absolute.
    let dir = std::fs::canonicalize(dir).map_err(|e| TuneError::io(dir, "resolving the log directory", e))?;
    let handle = ringkeeper_server::runtime::executor_builder(
        Placement::Unbound,
        "tune-disk",
        MEASURE_IO_MEMORY_BYTES,
    )
    .spawn(move || async move { run(dir, bounds).await })
    .map_err(|e| TuneError::Measure(format!("starting the disk measurement executor: {e}")))?;
    handle.join().map_err(|e| TuneError::Measure(format!("disk measurement executor: {e}")))?
}

async fn open(path: &Path, mode: &mut LogWriteMode) -> Result<SegmentFile, TuneError> {
    SegmentFile::open(path, true, mode).await.map_err(|e| {
        TuneError::io(path, "creating the measurement file", std::io::Error::other(e.to_string()))
    })
}

/// One series: `len`-byte writes, each made durable as the log role does (the write itself
/// under `O_DSYNC`, else one fdatasync after it), sequential and wrapping.
/// Returns (write+sync ns, ns from the write's start (`O_DSYNC`) or end (fdatasync) to durable)
/// per sample.
async fn series(
    file: &SegmentFile,
    path: &Path,
    len: usize,
    file_bytes_max: u64,
    cursor: &mut u64,
    mut bounds: Bounds,
) -> Result<(Vec<u64>, Vec<u64>), TuneError> {
    let fail = |what: &str, e: glommio::GlommioError<()>| {
        TuneError::io(path, what.to_owned(), std::io::Error::other(e.to_string()))
    };
    let (mut total_ns, mut sync_ns) = (Vec::new(), Vec::new());
    while bounds.more(total_ns.len()) {
        if *cursor + len as u64 > file_bytes_max {
            *cursor = 0;
        }
        let start = Instant::now();
        let written = file
            .write_at(*cursor, len, Issue::Ring, |buf| buf.fill(0xa5))
            .await
            .map_err(|e| fail("writing", e))?;
        if written != len {
            return Err(TuneError::Measure(format!(
                "{}: short write {written} of {len} bytes",
                path.display()
            )));
        }
        // Under O_DSYNC the write was the sync; otherwise time the fdatasync alone.
        let synced = if file.writes_are_durable() {
            start
        } else {
            let synced = Instant::now();
            file.fdatasync(Issue::Ring).await.map_err(|e| fail("fdatasync", e))?;
            synced
        };
        let end = Instant::now();
        total_ns.push((end - start).as_nanos() as u64);
        sync_ns.push((end - synced).as_nanos() as u64);
        *cursor += len as u64;
    }
    Ok((total_ns, sync_ns))
}

async fn run(dir: PathBuf, bounds: DiskBounds) -> Result<DiskMeasurement, TuneError> {
    let path = measurement_file(&dir);
    let mut write_mode = bounds.write_mode;
    let file = open(&path, &mut write_mode).await?;
    let direct_io = matches!(file, SegmentFile::Dma { .. });
    let _remove = RemoveOnDrop(path.clone());
    let align = |n: usize| n.div_ceil(WRITE_ALIGN_BYTES).max(1) * WRITE_ALIGN_BYTES;
    let mut sizes: Vec<usize> = bounds.batch_sizes.iter().map(|&s| align(s)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let largest = sizes.last().copied().unwrap_or(WRITE_ALIGN_BYTES) as u64;
    let file_bytes_max = bounds.file_bytes_max.max(largest);
    // Preallocate as the log role does, so the curve measures data writes, not extent allocation.
    if let Err(e) = file.pre_allocate(file_bytes_max).await {
        eprintln!("  {}: fallocate refused ({e}); measuring without preallocation", path.display());
    }

    let mut cursor = 0u64;
    // Warm-up: one pass so that the first samples do not pay for unwritten-extent conversion.
    let warm = Bounds::new("warm-up", 8, bounds.budget_per_series, true);
    series(&file, &path, WRITE_ALIGN_BYTES, file_bytes_max, &mut cursor, warm).await?;

    if !bounds.quiet {
        eprintln!("ringkeeper-tune: fdatasync latency in {} (4 KiB writes)", dir.display());
    }
    let fsync_bounds = Bounds::new("fdatasync", bounds.fsyncs_max, bounds.budget_per_series, bounds.quiet);
    let (_, sync_ns) =
        series(&file, &path, WRITE_ALIGN_BYTES, file_bytes_max, &mut cursor, fsync_bounds).await?;
    let fdatasync =
        summarize(&sync_ns).ok_or_else(|| TuneError::Measure("no fdatasync sample fit the budget".into()))?;

    let mut batch_curve = Vec::new();
    for &size in &sizes {
        if !bounds.quiet {
            eprintln!("ringkeeper-tune: write + fdatasync of {} KiB batches", size / 1024);
        }
        let label = format!("{} KiB", size / 1024);
        let b = Bounds::new(label, bounds.writes_per_size_max, bounds.budget_per_series, bounds.quiet);
        let (total_ns, _) = series(&file, &path, size, file_bytes_max, &mut cursor, b).await?;
        let Some(latency) = summarize(&total_ns) else { continue };
        let throughput_bytes_per_s = size as f64 / (latency.mean_us / 1e6);
        batch_curve.push(BatchPoint {
            batch_bytes: size,
            latency,
            throughput_bytes_per_s: throughput_bytes_per_s.round(),
        });
    }
    drop(file);
    let write_mode = write_mode.name().to_owned();
    Ok(DiskMeasurement {
        dir,
        direct_io,
        write_mode,
        fdatasync,
        fdatasync_histogram: histogram(&sync_ns),
        batch_curve,
    })
}
