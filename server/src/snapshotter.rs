//! Taking snapshots without stalling writes: when, how the tree is copied, and who writes it.
//!
//! Runs on the data core as one extra task beside request handling, plus one helper thread
//! (`rk-snap`) for all file I/O. In: "a txn was logged" and "durable up to zxid Z" from the data
//! role, and on-demand requests (the `snap` four-letter word). Out: snapshot files in
//! `dataDir` and, with `autopurge.purgeInterval` > 0, retention after each one.
//!
//! When: after a randomised count of logged txns, as Apache's `SyncRequestProcessor`
//! (snapCount/2 + rand(snapCount/2), so the replicas of an ensemble do not all snapshot at once),
//! or on demand. How: a fuzzy capture ([`SnapshotCapture`], see `engine::snapshot`) copies at
//! most [`SLICE_NODES`] nodes, then pauses ([`SLICE_PAUSE`]) so waiting requests run before
//! the next slice: a write waits for at most one slice, never for the whole tree. The rkyv
//! encoding, checksum, write, fsync, rename and purge happen on the helper thread.
//! Invariants: at most one snapshot is being captured or written at a time; an image is handed
//! to the writer only once the log is durable up to the last zxid the image may hold
//! (`fuzzy_end_zxid`), so a snapshot file never holds a write the log could lose.

use std::cell::RefCell;
use std::future::poll_fn;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use prometheus::Histogram;
use ringkeeper_engine::replica::Node;

use ringkeeper_engine::snapshot::{SnapshotCapture, SnapshotImage};

use crate::config::Config;
use crate::request_stats::millisecond_histogram;
use crate::snapshot_store;

/// Nodes copied per slice of a capture: about 0.15 ms of an idle core (0.6 µs per 100-byte
/// znode measured on the 1M-znode tree), the longest a request waits behind a capture.
pub const SLICE_NODES: usize = 256;
/// Pause between slices. A timer (not a plain yield) so the executor's queue runs empty and
/// glommio polls its reactor: requests that arrived from the network cores are picked up
/// between every two slices instead of after the 100 ms preemption timer.
const SLICE_PAUSE: Duration = Duration::from_micros(20);
/// How often a capture request re-checks a writer that is still busy with the previous one.
const WRITER_BUSY_RECHECK: Duration = Duration::from_millis(20);

/// Snapshot and retention settings (from zoo.cfg).
#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    /// `snapCount`.
    pub snap_count: u64,
    /// `autopurge.snapRetainCount` (at least 3).
    pub retain_count: usize,
    /// `autopurge.purgeInterval` in hours; 0 turns retention off.
    pub purge_interval_hours: u32,
    /// Time to encode and write one snapshot, ms (Apache's `snapshottime`, for metrics).
    pub write_time_ms: Histogram,
}

impl SnapshotSettings {
    pub fn from_config(config: &Config, log_dir: PathBuf) -> SnapshotSettings {
        SnapshotSettings {
            data_dir: config.data_dir.clone(),
            log_dir,
            snap_count: config.snap_count.max(2),
            retain_count: config.autopurge_snap_retain_count as usize,
            purge_interval_hours: config.autopurge_purge_interval_hours,
            write_time_ms: millisecond_histogram("snapshottime", "Time to encode and write one snapshot, ms"),
        }
    }
}

/// The helper thread that encodes, writes and purges.
struct SnapshotWriter {
    jobs: mpsc::Sender<SnapshotImage>,
    busy: Arc<AtomicBool>,
}

impl SnapshotWriter {
    fn spawn(settings: SnapshotSettings) -> std::io::Result<SnapshotWriter> {
        let (jobs, queue) = mpsc::channel::<SnapshotImage>();
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        std::thread::Builder::new().name("rk-snap".into()).spawn(move || {
            let purge_every = Duration::from_secs(3600 * settings.purge_interval_hours as u64);
            let mut next_purge = Instant::now() + purge_every;
            loop {
                let job = if purge_every.is_zero() {
                    queue.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                } else {
                    queue.recv_timeout(next_purge.saturating_duration_since(Instant::now()))
                };
                match job {
                    Ok(image) => {
                        write(&settings, &image);
                        drop(image);
                        if !purge_every.is_zero() {
                            purge(&settings);
                            next_purge = Instant::now() + purge_every;
                        }
                        done.store(false, Ordering::Release);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        purge(&settings);
                        next_purge = Instant::now() + purge_every;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
        Ok(SnapshotWriter { jobs, busy })
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    fn submit(&self, image: SnapshotImage) {
        self.busy.store(true, Ordering::Release);
        if self.jobs.send(image).is_err() {
            self.busy.store(false, Ordering::Release);
            log::error!("the snapshot writer thread is gone; no more snapshots will be written");
        }
    }
}

/// Writes one image; a failure is logged, not fatal: the log still holds every txn.
fn write(settings: &SnapshotSettings, image: &SnapshotImage) {
    let started = Instant::now();
    match snapshot_store::write_snapshot(&settings.data_dir, image) {
        Ok((path, bytes)) => {
            settings.write_time_ms.observe(started.elapsed().as_secs_f64() * 1000.0);
            log::info!(
                "snapshot {} written: zxid {:#x} (fuzzy to {:#x}), {} nodes, {} bytes in {:?}",
                path.display(),
                image.zxid,
                image.fuzzy_end_zxid,
                image.nodes.len(),
                bytes,
                started.elapsed()
            )
        }
        Err(e) => log::error!(
            "writing a snapshot at zxid {:#x} into {} failed: {e}; the log still holds every txn",
            image.zxid,
            settings.data_dir.display()
        ),
    }
}

fn purge(settings: &SnapshotSettings) {
    match snapshot_store::purge(&settings.data_dir, &settings.log_dir, settings.retain_count) {
        Ok(purged) if purged.snapshots.is_empty() && purged.segments.is_empty() => {}
        Ok(purged) => log::info!(
            "autopurge: removed {} snapshot(s) and {} log segment(s), keeping the newest {} snapshots",
            purged.snapshots.len(),
            purged.segments.len(),
            settings.retain_count
        ),
        Err(e) => log::error!("autopurge failed: {e}"),
    }
}

/// The data role's snapshot state.
pub struct Snapshotter {
    snap_count: u64,
    txns_since_snapshot: u64,
    /// Take the next snapshot after this many logged txns.
    threshold: u64,
    requested: bool,
    durable_zxid: i64,
    /// A captured image waiting for the log to be durable up to its fuzzy end.
    waiting: Option<SnapshotImage>,
    writer: SnapshotWriter,
    waker: Option<Waker>,
    rng_state: u64,
}

impl Snapshotter {
    /// Starts the writer thread. `durable_zxid` is what recovery found on disk.
    pub fn new(settings: SnapshotSettings, durable_zxid: i64, seed: u64) -> std::io::Result<Snapshotter> {
        let snap_count = settings.snap_count;
        let mut snapshotter = Snapshotter {
            snap_count,
            txns_since_snapshot: 0,
            threshold: snap_count,
            requested: false,
            durable_zxid,
            waiting: None,
            writer: SnapshotWriter::spawn(settings)?,
            waker: None,
            rng_state: seed | 1,
        };
        snapshotter.threshold = snapshotter.roll_threshold();
        Ok(snapshotter)
    }

    /// snapCount/2 + rand(snapCount/2), as Apache's `SyncRequestProcessor.resetSnapshotStats`.
    fn roll_threshold(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let half = (self.snap_count / 2).max(1);
        half + (self.rng_state >> 33) % half
    }

    /// One more txn went to the log.
    pub fn txn_logged(&mut self) {
        self.txns_since_snapshot += 1;
        if self.txns_since_snapshot >= self.threshold {
            self.request();
        }
    }

    /// Asks for a snapshot as soon as the previous one (if any) is written.
    pub fn request(&mut self) {
        if !self.requested {
            self.requested = true;
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// The log is durable up to `zxid`: a waiting image may go to the writer.
    pub fn durable(&mut self, zxid: i64) {
        self.durable_zxid = zxid;
        if self.waiting.as_ref().is_some_and(|image| image.fuzzy_end_zxid <= zxid) {
            let image = self.waiting.take().expect("checked above");
            self.writer.submit(image);
        }
    }

    fn captured(&mut self, image: SnapshotImage) {
        self.waiting = Some(image);
        self.durable(self.durable_zxid);
    }

    fn idle(&self) -> bool {
        self.waiting.is_none() && !self.writer.is_busy()
    }
}

/// Runs captures on the data core, for as long as the executor runs. `node` (whose processor
/// holds the tree) is borrowed only inside a slice, never across an await.
pub async fn run(snapshots: &RefCell<Snapshotter>, node: &RefCell<Node>) {
    loop {
        poll_fn(|cx| {
            let mut s = snapshots.borrow_mut();
            if s.requested {
                Poll::Ready(())
            } else {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        while !snapshots.borrow().idle() {
            glommio::timer::sleep(WRITER_BUSY_RECHECK).await;
        }
        {
            let mut s = snapshots.borrow_mut();
            s.requested = false;
            s.txns_since_snapshot = 0;
            s.threshold = s.roll_threshold();
        }
        let started = Instant::now();
        let mut capture = {
            let node = node.borrow();
            SnapshotCapture::start(&node.processor().tree, &node.processor().sessions)
        };
        let mut slices = 0u64;
        while !capture.step(&node.borrow().processor().tree, SLICE_NODES) {
            slices += 1;
            glommio::timer::sleep(SLICE_PAUSE).await;
        }
        let image = capture.finish(&node.borrow().processor().tree);
        log::info!(
            "snapshot captured: zxid {:#x} (fuzzy to {:#x}), {} nodes in {slices} slices over {:?}",
            image.zxid,
            image.fuzzy_end_zxid,
            image.nodes.len(),
            started.elapsed()
        );
        snapshots.borrow_mut().captured(image);
    }
}
