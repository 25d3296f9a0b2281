//! `ringkeeper-bench`: measures any ZooKeeper-compatible server (ringkeeper or Apache
//! ZooKeeper) over the plain client protocol, with the engine's own jute codec.
//!
//! Runs on the client side only, never inside a server. Flow:
//! ```text
//!  LoadConfig ──▶ load::run_load ──▶ sessions (tokio tasks, pipelined, closed or open loop)
//!                      │                       │ replies: latency from the *intended* send
//!                      ▼                       ▼
//!                 report::LoadReport ◀── hdrhistogram per session + per-second timeline
//!  compare::run_compare: floor, then servers::Ensemble (ringkeeper, Apache; 1 or N; shared
//!                        or equal CPU quotas) × cases × repeats, CPU per op, idle CPU
//!  election::run_election: writers on an ensemble, its leader killed or frozen, N trials
//!  floor::run_floor: fdatasync latency of the data disk, loopback TCP round trip
//! ```
//! - [`hosts`]: the ZooKeeper connect string.
//! - [`wire`]: framing, the session handshake and a small pipelined client for setup.
//! - [`workload`]: what each session sends (op mix, keys, pre-encoded request bodies).
//! - [`load`]: the load generator itself.
//! - [`report`]: results, percentiles, the plain table and medians.
//! - [`plot`]: the SVG of a run (latency per second, latency CDF).
//! - [`cpu`]: CPU time of the servers and of the bench over a measured window, per op.
//! - [`servers`]: ringkeeper or Apache ZooKeeper ensembles (1 or N) on 127.0.0.1, started by the
//!   test harness's one launcher ([`ringkeeper_tests::ensemble`]: zoo.cfg, `myid`, command
//!   lines, proxies for partitions, CPU isolation `shared` or `equal`), with the bench's settings.
//! - [`four_letter`]: `srvr` and the `Mode:` it reports.
//! - [`hops`]: ringkeeper's per-hop breakdown of sampled writes, read from `mntr`.
//! - [`election`]: time to a new leader and to the first write after the leader fails.
//! - [`compare`]: the same workloads on both, alternating, with medians, spreads and ratios.
//! - [`floor`]: the physical floor of the machine.
//!
//! Invariant: every loop that sends load is bounded in time (warm-up + measure + drain) and
//! every queue in count (`inflight` per session).

pub mod compare;
pub mod cpu;
pub mod election;
pub mod floor;
pub mod four_letter;
pub mod hops;
pub mod hosts;
pub mod load;
pub mod plot;
pub mod report;
pub mod servers;
pub mod wire;
pub mod workload;

pub use compare::{run_compare, Case, CompareConfig, CompareReport};
pub use cpu::{CpuReport, ServerProcess};
pub use floor::{run_floor, FloorConfig, FloorReport};
pub use load::{run_load, LoadConfig, Shape};
pub use report::LoadReport;
pub use ringkeeper_tests::cgroup::Isolation;
pub use workload::{CreateKind, Op, OpMix};

/// Everything that can stop a benchmark. Server error codes in replies are not errors here:
/// they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid option: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{context}: {source}")]
    IoAt { context: String, source: std::io::Error },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("setup request {what} failed with ZooKeeper error {code}")]
    Setup { what: String, code: i32 },
    #[error("server: {0}")]
    Server(String),
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    /// Wraps an I/O error with what was being done.
    pub fn io_at(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let context = context.into();
        move |source| BenchError::IoAt { context, source }
    }
}

/// Writes any serialisable result as pretty JSON to `path`.
pub fn write_json<T: serde::Serialize>(path: &std::path::Path, value: &T) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(BenchError::io_at(format!("writing {}", path.display())))
}
