//! `ringkeeper-bench`: the command line over the `ringkeeper_bench` library.
//!
//! `write`, `read`, `mixed` drive a running server (`--hosts`; `--server-pid` adds its CPU per
//! op); `compare` starts ringkeeper and Apache ZooKeeper itself (1 or 3 servers each, sharing
//! the cores or each in a cgroup with the same CPU quota); `floor` measures the machine;
//! `election` fails the leader of an ensemble (started here or running) and times recovery.
//! Results: a live line per second on stderr, a plain table on stdout, JSON with `--json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use ringkeeper_bench::compare::STANDARD_CASES;
use ringkeeper_bench::election::{run_election, ElectionConfig, Fault, Target};
use ringkeeper_bench::hosts::ConnectString;
use ringkeeper_bench::servers::default_ringkeeper_binary;
use ringkeeper_bench::wire::ClientTls;
use ringkeeper_bench::{plot, servers};
use ringkeeper_bench::{
    run_compare, run_floor, run_load, write_json, Case, CompareConfig, CreateKind, FloorConfig, Isolation,
    LoadConfig, Op, OpMix, ServerProcess, Shape,
};
use ringkeeper_tests::command::ServerKind;
use ringkeeper_tests::ensemble::EnsemblePlan;

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
    /// setData of --size bytes on --keys pre-created znodes, or --op create / multi.
    Write {
        #[command(flatten)]
        load: LoadArgs,
        /// setData, create or multi.
        #[arg(long, default_value = "setData")]
        op: Op,
        /// Same as --op create.
        #[arg(long)]
        create: bool,
    },
    /// getData on --keys pre-created znodes of --size bytes, or --op exists / getChildren.
    Read {
        #[command(flatten)]
        load: LoadArgs,
        /// getData, exists or getChildren (of the keys' parent).
        #[arg(long, default_value = "getData")]
        op: Op,
    },
    /// A mix: --mix OP=PERCENT,... over all ops, or getData with --read-percent and --op.
    Mixed {
        #[command(flatten)]
        load: LoadArgs,
        /// Percent per op, e.g. getData=60,exists=10,getChildren=5,setData=15,create=5,multi=5.
        #[arg(long, conflicts_with_all = ["read_percent", "op"])]
        mix: Option<String>,
        /// Percentage of getData requests (without --mix).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=100))]
        read_percent: u32,
        /// The write op of --read-percent: setData, create or multi.
        #[arg(long, default_value = "setData")]
        op: Op,
    },
    /// Leader failure: time to a new leader and to the first acknowledged write, N trials.
    Election(ElectionArgs),
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
    #[command(flatten)]
    ops: OpArgs,
    /// Write the full result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG here: p50/p99 per second and the latency CDF.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// A server process (on this machine) whose CPU µs per op to report; repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Connect over TLS, trusting the CAs of this PEM file (--hosts names a secureClientPort
    /// or a client.portUnification port).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca: the client certificate (PEM) to present.
    #[arg(long, requires = "tls_ca", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// With --tls-cert: its private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Parameters of the ops a mix uses.
#[derive(Args)]
struct OpArgs {
    /// Kind of znode a create makes: persistent, ephemeral, persistent-sequential,
    /// ephemeral-sequential.
    #[arg(long, default_value = "ephemeral-sequential")]
    create_mode: CreateKind,
    /// setData ops in each multi.
    #[arg(long, default_value_t = 4)]
    multi_ops: usize,
    /// Probability (0..1) that a getData/exists/getChildren sets a watch; events are counted.
    #[arg(long, default_value_t = 0.0)]
    watch_prob: f64,
}

impl OpArgs {
    fn mix(&self, percents: [u32; 6]) -> OpMix {
        OpMix {
            percents,
            create_kind: self.create_mode,
            multi_ops: self.multi_ops,
            watch_probability: self.watch_prob,
        }
    }
}

/// Fails unless `op` reads (`reads`) or writes (`!reads`).
fn check_op(op: Op, reads: bool) -> anyhow::Result<Op> {
    if op.is_read() != reads {
        bail!("--op {}: expected a {} op", op.name(), if reads { "read" } else { "write" });
    }
    Ok(op)
}

#[derive(Args)]
struct CompareArgs {
    /// WORKLOAD:CLIENTSxINFLIGHT[@RATE], repeatable; WORKLOAD is write, read, an op name
    /// (exists, getChildren, create, multi) or mixedNN; @RATE: open loop at RATE ops/s.
    /// Default: write:16x16, write:1x1, read:16x16, write:16x16@8000.
    #[arg(long = "case")]
    cases: Vec<Case>,
    /// Runs per case and server, alternating which server goes first.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Servers per side: 1, or an ensemble of 3 (a side that cannot run it is reported as
    /// not supported).
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// fdatasyncs of the floor measured before the cases.
    #[arg(long, default_value_t = 300)]
    floor_fsyncs: usize,
    /// Loopback round trips of the floor.
    #[arg(long, default_value_t = 10_000)]
    floor_round_trips: usize,
    #[command(flatten)]
    servers_at: ServerArgs,
    #[command(flatten)]
    shape: ShapeArgs,
    /// After the cases, leave both ensembles idle this many seconds and report their CPU
    /// (0: skip).
    #[arg(long, default_value_t = 0.0)]
    idle_seconds: f64,
    /// Clients connect over TLS: both sides serve TLS on the client port (port unification;
    /// Apache on Netty) with a PKI made here, and sessions present a client certificate.
    #[arg(long)]
    tls: bool,
    /// Also print the summary as a Markdown table.
    #[arg(long)]
    markdown: bool,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ElectionArgs {
    /// Start this ensemble: ringkeeper or apache.
    #[arg(long, conflicts_with = "hosts")]
    start: Option<String>,
    /// With --start: the zoo.cfg (server.N=127.0.0.1:peer:election;clientPort lines; each
    /// member gets its own dataDir and myid). Default: --servers members on free ports.
    #[arg(long, requires = "start")]
    zoo_cfg: Option<PathBuf>,
    /// With --start and no --zoo-cfg: ensemble size.
    #[arg(long, default_value_t = 3)]
    servers: usize,
    /// With --start: freeze the leader (kill -STOP) instead of killing it (kill -9).
    #[arg(long, conflicts_with = "partition")]
    freeze: bool,
    /// With --start: cut the leader off from its peers (proxied black hole) instead.
    #[arg(long)]
    partition: bool,
    /// A running ensemble's connect string (needs --kill-command).
    #[arg(long, requires = "kill_command")]
    hosts: Option<String>,
    /// Shell command that kills a member of --hosts; {host} {port} {index} name the leader.
    #[arg(long)]
    kill_command: Option<String>,
    /// Shell command that restarts it (needed for more than one trial).
    #[arg(long)]
    restart_command: Option<String>,
    #[arg(long, default_value_t = 5)]
    trials: usize,
    /// Writer sessions (1 setData in flight each), spread over the members.
    #[arg(long, default_value_t = 6)]
    writers: usize,
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds of writing before the fault.
    #[arg(long, default_value_t = 2.0)]
    before: f64,
    /// Seconds of writing after the first write acknowledged after the fault.
    #[arg(long, default_value_t = 1.0)]
    after: f64,
    /// Longest wait, in seconds, for a new leader and a write after the fault.
    #[arg(long, default_value_t = 60.0)]
    recovery_timeout: f64,
    /// `srvr` poll interval in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// A write not answered in this many milliseconds counts as failed (new session).
    #[arg(long, default_value_t = 2000)]
    write_timeout_ms: u64,
    #[arg(long, default_value_t = 4000)]
    session_timeout_ms: i32,
    #[command(flatten)]
    servers_at: ServerArgs,
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Which binaries the harness starts servers from, and where their data goes.
#[derive(Args)]
struct ServerArgs {
    /// The ringkeeper binary (default: target/release/ringkeeper of this workspace).
    #[arg(long)]
    ringkeeper_bin: Option<PathBuf>,
    #[arg(long, default_value = "java")]
    java: PathBuf,
    /// Directory the servers keep their data under (default: the temp directory).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// How the server processes share the CPUs, both kinds alike: `shared` (plain children,
    /// the busiest may take every core) or `equal` (each in its own cgroup with the same CPU
    /// quota, --cpu-per-server: the stand-in for separate hosts). Default: equal for an
    /// ensemble, shared for 1 server.
    #[arg(long, value_parser = ["shared", "equal"])]
    isolation: Option<String>,
    /// With equal isolation: cores each server process may use. 0.5 on a 2-core host runs
    /// 3 servers in 1.5 cores and leaves half a core to the client.
    #[arg(long, default_value_t = 0.5)]
    cpu_per_server: f64,
    /// With equal isolation: the quota period in milliseconds (short, so a server that used
    /// its quota waits at most period x (1 - cpu-per-server), not the kernel's 100 ms default).
    #[arg(long, default_value_t = 10)]
    cpu_period_ms: u64,
}

impl ServerArgs {
    fn ringkeeper(&self) -> ServerKind {
        servers::ringkeeper(self.ringkeeper_bin.clone().unwrap_or_else(default_ringkeeper_binary))
    }

    fn apache(&self) -> ServerKind {
        servers::apache(self.java.clone())
    }

    fn data_root(&self) -> PathBuf {
        self.data_root.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// `--isolation`, or its default for `servers` per side.
    fn isolation(&self, servers: usize) -> Isolation {
        let equal = match self.isolation.as_deref() {
            Some(choice) => choice == "equal",
            None => servers > 1,
        };
        if equal {
            Isolation::Equal { cpus: self.cpu_per_server, period: Duration::from_millis(self.cpu_period_ms) }
        } else {
            Isolation::Shared
        }
    }
}

impl ElectionArgs {
    fn target(&self) -> anyhow::Result<Target> {
        if let Some(hosts) = &self.hosts {
            let parsed = ConnectString::parse(hosts)?;
            return Ok(Target::Running {
                addresses: parsed.hosts,
                kill_command: self.kill_command.clone().context("--hosts needs --kill-command")?,
                restart_command: self.restart_command.clone(),
            });
        }
        let kind = match self.start.as_deref() {
            Some("ringkeeper") => self.servers_at.ringkeeper(),
            Some("apache") => self.servers_at.apache(),
            Some(other) => bail!("--start {other}: expected ringkeeper or apache"),
            None => bail!("election needs --start ringkeeper|apache or --hosts with --kill-command"),
        };
        let root = self.servers_at.data_root();
        let plan = match &self.zoo_cfg {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                servers::plan_from_zoo_cfg(kind, &text, &root)?
            }
            None => servers::plan(kind, self.servers, &root)?,
        };
        let isolation = self.servers_at.isolation(plan.members.len());
        Ok(Target::Start(EnsemblePlan { isolation, ..plan }))
    }

    fn config(&self) -> anyhow::Result<ElectionConfig> {
        let seconds = |v: f64, name: &str| {
            Duration::try_from_secs_f64(v)
                .with_context(|| format!("--{name} {v} is not a duration in seconds"))
        };
        Ok(ElectionConfig {
            target: self.target()?,
            fault: match (self.freeze, self.partition) {
                (true, _) => Fault::Freeze,
                (_, true) => Fault::Partition,
                _ => Fault::Kill,
            },
            trials: self.trials,
            writers: self.writers,
            size_bytes: self.size,
            before: seconds(self.before, "before")?,
            after: seconds(self.after, "after")?,
            recovery_timeout: seconds(self.recovery_timeout, "recovery-timeout")?,
            settle_timeout: Duration::from_secs(120),
            poll_every: Duration::from_millis(self.poll_ms.max(1)),
            write_timeout: Duration::from_millis(self.write_timeout_ms.max(1)),
            session_timeout_ms: self.session_timeout_ms,
        })
    }
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
        server_processes: args
            .server_pids
            .iter()
            .map(|&pid| ServerProcess { name: format!("pid {pid}"), pid, quota_stat: None })
            .collect(),
        tls: match &args.tls_ca {
            Some(ca) => {
                let client = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
                Some(ClientTls::from_pem_files(ca, client)?)
            }
            None => None,
        },
    };
    let report = run_load(&config)?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot::svg(&report)).with_context(|| format!("writing {}", path.display()))?;
    }
    if report.ops == 0 {
        bail!("no operation succeeded");
    }
    Ok(())
}

/// On ctrl-c: kill the servers this process started, remove their directories, exit 130.
fn clean_up_on_ctrl_c() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() else { return };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            eprintln!("interrupted: stopping the servers started here");
            servers::clean_up_after_interrupt();
            std::process::exit(130);
        }
    });
}

fn main() -> anyhow::Result<()> {
    clean_up_on_ctrl_c();
    match Cli::parse().command {
        Command::Write { load: args, op, create } => {
            let op = if create { Op::Create } else { check_op(op, false)? };
            load(&args, args.ops.mix(OpMix::only(op).percents))
        }
        Command::Read { load: args, op } => {
            load(&args, args.ops.mix(OpMix::only(check_op(op, true)?).percents))
        }
        Command::Mixed { load: args, mix, read_percent, op } => {
            let percents = match mix {
                Some(text) => OpMix::parse_percents(&text).map_err(anyhow::Error::msg)?,
                None => OpMix::read_write(read_percent, check_op(op, false)?).percents,
            };
            load(&args, args.ops.mix(percents))
        }
        Command::Election(args) => {
            let report = run_election(&args.config()?)?;
            print!("{}", report.table());
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
            Ok(())
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
                ringkeeper: args.servers_at.ringkeeper(),
                apache: args.servers_at.apache(),
                data_root: args.servers_at.data_root(),
                shape: args.shape.shape()?,
                floor_fsyncs: args.floor_fsyncs,
                floor_round_trips: args.floor_round_trips,
                isolation: args.servers_at.isolation(args.servers),
                idle: Duration::try_from_secs_f64(args.idle_seconds)
                    .with_context(|| format!("--idle-seconds {} is not a duration", args.idle_seconds))?,
                tls: args.tls,
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
