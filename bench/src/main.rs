//! `ringkeeper-bench`: the command line over the `ringkeeper_bench` library.
//!
//! `write`, `read`, `mixed` drive a running server (`--hosts`); `compare` starts ringkeeper
//! and Apache ZooKeeper itself; `floor` measures the machine; `election` waits for ensembles.
//! Results: a live line per second on stderr, a plain table on stdout, JSON with `--json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use ringkeeper_bench::compare::STANDARD_CASES;
use ringkeeper_bench::servers::default_ringkeeper_binary;
use ringkeeper_bench::{
    run_compare, run_floor, run_load, write_json, Case, CompareConfig, CreateKind, FloorConfig, LoadConfig,
    OpMix, Shape, WriteOp,
};

#[derive(Parser)]
#[command(
    name = "ringkeeper-bench",
    version,
    about = "Benchmarks any ZooKeeper-compatible server (ringkeeper or Apache ZooKeeper)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// setData of --size bytes on --keys pre-created znodes (or creates, with --create).
    Write {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// getData on --keys pre-created znodes of --size bytes.
    Read {
        #[command(flatten)]
        load: LoadArgs,
    },
    /// getData with probability --read-percent, else the write op.
    Mixed {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        create: CreateArgs,
        /// Percentage of getData requests.
        #[arg(long, default_value_t = 90)]
        read_percent: u32,
    },
    /// Leader election time (needs an ensemble: not available yet).
    Election {
        /// ZooKeeper connect string of the ensemble.
        #[arg(long, default_value = "127.0.0.1:2181")]
        hosts: String,
    },
    /// Starts ringkeeper and Apache ZooKeeper and runs the same cases on both, alternating.
    Compare(CompareArgs),
    /// fdatasync latency of the data disk and loopback TCP round trip.
    Floor(FloorArgs),
}

/// Options every run shares (also used by `compare`).
#[derive(Args, Clone)]
struct ShapeArgs {
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of warm-up, not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Number of pre-created znodes the ops pick from.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Open loop: target ops/s over all sessions, latency from the intended send time.
    /// Closed loop when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Client runtime threads (1: everything on one thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the op and key choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Session timeout asked for, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    session_timeout_ms: i32,
    /// No per-second progress line.
    #[arg(long)]
    quiet: bool,
}

impl ShapeArgs {
    fn shape(&self) -> anyhow::Result<Shape> {
        let seconds = |v: f64, name: &str| {
            Duration::try_from_secs_f64(v)
                .with_context(|| format!("--{name} {v} is not a duration in seconds"))
        };
        Ok(Shape {
            warmup: seconds(self.warmup, "warmup")?,
            measure: seconds(self.seconds, "seconds")?,
            size_bytes: self.size,
            keys: self.keys,
            rate_ops_per_s: self.rate,
            threads: self.threads,
            session_timeout_ms: self.session_timeout_ms,
            seed: self.seed,
            progress: !self.quiet,
        })
    }
}

#[derive(Args)]
struct LoadArgs {
    /// ZooKeeper connect string (host:port,host:port[/chroot]); sessions are spread over it.
    #[arg(long, default_value = "127.0.0.1:2181")]
    hosts: String,
    /// Number of sessions.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Write the full result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct CreateArgs {
    /// Write by creating znodes instead of setData.
    #[arg(long)]
    create: bool,
    /// Kind of znode --create makes: persistent, ephemeral, persistent-sequential,
    /// ephemeral-sequential.
    #[arg(long, default_value = "ephemeral-sequential")]
    create_mode: CreateKind,
}

impl CreateArgs {
    fn write_op(&self) -> WriteOp {
        if self.create {
            WriteOp::Create(self.create_mode)
        } else {
            WriteOp::SetData
        }
    }
}

#[derive(Args)]
struct CompareArgs {
    /// WORKLOAD:CLIENTSxINFLIGHT, repeatable; WORKLOAD is write, create, read or mixedNN.
    /// Default: write:16x16, write:1x1, read:16x16.
    #[arg(long = "case")]
    cases: Vec<Case>,
    /// Runs per case and server, alternating which server goes first.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Servers per side (only 1 until ringkeeper has an ensemble).
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// The ringkeeper binary (default: target/release/ringkeeper of this workspace).
    #[arg(long)]
    ringkeeper_bin: Option<PathBuf>,
    #[arg(long, default_value = "java")]
    java: PathBuf,
    /// Directory both servers keep their data under (default: the temp directory).
    #[arg(long)]
    data_root: Option<PathBuf>,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Also print the summary as a Markdown table.
    #[arg(long)]
    markdown: bool,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct FloorArgs {
    /// A directory on the data disk (default: the temp directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 500)]
    fsyncs: usize,
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    /// Longest time each measurement may take, in seconds.
    #[arg(long, default_value_t = 10)]
    time_limit_s: u64,
    #[arg(long)]
    json: Option<PathBuf>,
}

fn load(args: &LoadArgs, mix: OpMix) -> anyhow::Result<()> {
    let config = LoadConfig {
        hosts: args.hosts.clone(),
        clients: args.clients,
        inflight: args.inflight,
        mix,
        shape: args.shape.shape()?,
    };
    let report = run_load(&config)?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if report.ops == 0 {
        bail!("no operation succeeded");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Write { load: args, create } => {
            load(&args, OpMix { read_percent: 0, write: create.write_op() })
        }
        Command::Read { load: args } => load(&args, OpMix { read_percent: 100, write: WriteOp::SetData }),
        Command::Mixed { load: args, create, read_percent } => {
            load(&args, OpMix { read_percent, write: create.write_op() })
        }
        Command::Election { hosts } => {
            bail!("election against {hosts}: needs an ensemble (issue 4: ZAB); ringkeeper serves a single node for now")
        }
        Command::Compare(args) => {
            let cases = if args.cases.is_empty() {
                STANDARD_CASES
                    .iter()
                    .map(|c| c.parse())
                    .collect::<Result<Vec<Case>, String>>()
                    .map_err(anyhow::Error::msg)?
            } else {
                args.cases
            };
            let config = CompareConfig {
                cases,
                repeat: args.repeat,
                servers: args.servers,
                ringkeeper_binary: args.ringkeeper_bin.unwrap_or_else(default_ringkeeper_binary),
                java: args.java,
                data_root: args.data_root.unwrap_or_else(std::env::temp_dir),
                shape: args.shape.shape()?,
            };
            let report = run_compare(&config, |what, run| eprint!("== {what}\n{}", run.table()))?;
            print!("{}", report.table());
            if args.markdown {
                print!("\n{}", report.markdown());
            }
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
            Ok(())
        }
        Command::Floor(args) => {
            let config = FloorConfig {
                dir: args.dir.unwrap_or_else(std::env::temp_dir),
                fsyncs: args.fsyncs,
                round_trips: args.round_trips,
                time_limit: Duration::from_secs(args.time_limit_s),
            };
            let report = run_floor(&config)?;
            print!("{}", report.table());
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
            Ok(())
        }
    }
}
