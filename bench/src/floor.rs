//! The physical floor of this machine, against which every latency is read: fdatasync
//! latency of the data disk (4 KiB written, then `fdatasync`, into a preallocated file as a
//! ZooKeeper log is, and appended to a growing file) and the loopback TCP round trip
//! (64-byte ping-pong with `TCP_NODELAY`).
//!
//! Each figure also carries the CPU one operation cost the thread that did it (on-CPU time
//! from `/proc/thread-self/schedstat`): for the round trip, the echo side's cost of being
//! woken by one message and answering it. That is the least CPU any server pays per message
//! it is woken for on this host, so a write's server CPU reads as wake-ups times this floor.
//!
//! Plain std threads and blocking calls; every loop is bounded by a count and a time limit.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::this_thread_on_cpu_ns;
use crate::report::{new_histogram, LatencySummary};
use crate::BenchError;

const BLOCK_BYTES: usize = 4096;
const MESSAGE_BYTES: usize = 64;

/// What to measure.
#[derive(Debug, Clone)]
pub struct FloorConfig {
    /// A directory on the data disk (a scratch file is made and removed there).
    pub dir: PathBuf,
    pub fsyncs: usize,
    pub round_trips: usize,
    /// Each measurement stops at this time even if its count is not reached.
    pub time_limit: Duration,
}

/// One measured floor.
#[derive(Debug, Clone, Serialize)]
pub struct FloorFigure {
    pub what: String,
    pub samples: u64,
    pub latency: LatencySummary,
    /// On-CPU µs per operation of the thread that did it (the echo side for the round
    /// trip); `None` where the thread's schedstat cannot be read.
    pub cpu_us_per_op: Option<f64>,
}

/// All floors of the machine.
#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    pub dir: String,
    pub fdatasync_preallocated: FloorFigure,
    pub fdatasync_append: FloorFigure,
    pub loopback_round_trip: FloorFigure,
}

impl FloorReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<44} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11}\n",
            "floor", "samples", "p50 us", "p99 us", "max us", "mean us", "cpu us/op"
        );
        for f in [&self.fdatasync_preallocated, &self.fdatasync_append, &self.loopback_round_trip] {
            let l = &f.latency;
            let cpu = f.cpu_us_per_op.map_or("-".to_string(), |c| format!("{c:.1}"));
            out += &format!(
                "{:<44} {:>8} {:>9} {:>9} {:>9} {:>9.1} {:>11}\n",
                f.what, f.samples, l.p50_us, l.p99_us, l.max_us, l.mean_us, cpu
            );
        }
        out
    }
}

/// Measures the floors.
pub fn run_floor(config: &FloorConfig) -> Result<FloorReport, BenchError> {
    if config.fsyncs == 0 || config.round_trips == 0 {
        return Err(BenchError::Config("--fsyncs and --round-trips must be > 0".into()));
    }
    Ok(FloorReport {
        dir: config.dir.display().to_string(),
        fdatasync_preallocated: fdatasync(config, true)?,
        fdatasync_append: fdatasync(config, false)?,
        loopback_round_trip: round_trip(config)?,
    })
}

/// A figure from its latencies and the on-CPU ns the measuring thread spent on `ops` of them.
fn figure(what: String, histogram: &Histogram<u64>, cpu_ns: Option<u64>, ops: u64) -> FloorFigure {
    FloorFigure {
        what,
        samples: histogram.len(),
        latency: LatencySummary::of(histogram),
        cpu_us_per_op: cpu_ns.filter(|_| ops > 0).map(|ns| (ns as f64 / ops as f64 / 100.0).round() / 10.0),
    }
}

/// On-CPU ns the calling thread spent since `start` (a [`this_thread_on_cpu_ns`] reading).
fn thread_cpu_since(start: Option<u64>) -> Option<u64> {
    Some(this_thread_on_cpu_ns()?.saturating_sub(start?))
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

fn fdatasync(config: &FloorConfig, preallocate: bool) -> Result<FloorFigure, BenchError> {
    let scratch = tempfile::Builder::new()
        .prefix("rk-bench-floor-")
        .tempfile_in(&config.dir)
        .map_err(BenchError::io_at(format!("creating a scratch file in {}", config.dir.display())))?;
    let mut file = OpenOptions::new().write(true).open(scratch.path())?;
    if preallocate {
        let zeros = vec![0u8; 1 << 20];
        let total = config.fsyncs * BLOCK_BYTES;
        for _ in 0..total.div_ceil(zeros.len()) {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        file.seek(SeekFrom::Start(0))?;
    }
    let block = vec![0xa5u8; BLOCK_BYTES];
    let mut histogram = new_histogram();
    let deadline = Instant::now() + config.time_limit;
    let cpu_start = this_thread_on_cpu_ns();
    for _ in 0..config.fsyncs {
        if Instant::now() >= deadline {
            break;
        }
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        histogram.saturating_record(micros(started));
    }
    let cpu_ns = thread_cpu_since(cpu_start);
    let what = if preallocate {
        "write 4 KiB + fdatasync (preallocated)"
    } else {
        "write 4 KiB + fdatasync (append)"
    };
    Ok(figure(what.to_string(), &histogram, cpu_ns, histogram.len()))
}

fn round_trip(config: &FloorConfig) -> Result<FloorFigure, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let count = config.round_trips;
    // Returns its own on-CPU ns and the messages it answered.
    let echo = std::thread::spawn(move || -> std::io::Result<(Option<u64>, u64)> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut message = [0u8; MESSAGE_BYTES];
        let cpu_start = this_thread_on_cpu_ns();
        let mut answered = 0;
        for _ in 0..count {
            if stream.read_exact(&mut message).is_err() {
                break;
            }
            stream.write_all(&message)?;
            answered += 1;
        }
        Ok((thread_cpu_since(cpu_start), answered))
    });
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut message = [0u8; MESSAGE_BYTES];
    let mut histogram = new_histogram();
    let deadline = Instant::now() + config.time_limit;
    for _ in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        let started = Instant::now();
        stream.write_all(&message)?;
        stream.read_exact(&mut message)?;
        histogram.saturating_record(micros(started));
    }
    drop(stream);
    let (echo_cpu_ns, answered) =
        echo.join().map_err(|_| BenchError::Protocol("echo thread panicked".into()))??;
    Ok(figure(format!("loopback TCP round trip ({MESSAGE_BYTES} B)"), &histogram, echo_cpu_ns, answered))
}
