//! `compare`: the same workloads on ringkeeper and Apache ZooKeeper, each started here as 1
//! or N servers from the same generated zoo.cfg ([`EnsembleSpec`]), run back to back and
//! repeated with the order alternating (ringkeeper first on even repeats, Apache first on odd
//! ones), then summarised as medians with min–max spreads and ringkeeper/Apache ratios.
//!
//! In: cases (`write:16x16` = workload, sessions x in flight, closed loop; `write:16x16@8000`
//! the same open loop at 8000 ops/s), a [`Shape`] shared by all runs, an [`Isolation`] for
//! both sides alike (each server process of either kind in its own cgroup with the same CPU
//! quota, or all sharing the cores). Out: a [`CompareReport`] with every run's full
//! [`LoadReport`] (CPU µs per op of each server and of the client included) and the machine's
//! floor (fdatasync on the data root, loopback round trip) measured first in the same run;
//! every latency is also shown as a multiple of its case's floor. A kind that cannot run the
//! asked server count (ringkeeper before ensembles) is reported "not supported", never
//! substituted. Servers stay up for the whole comparison (the JVM keeps its JIT warm); after
//! the cases, with `idle` set, both ensembles are left idle together and their CPU use is
//! reported as % of a core. They are killed at the end or on the first error.
//!
//! With `tls`, both sides serve TLS as Apache users turn it on (Apache on Netty, both with
//! `client.portUnification` on the client port, a PEM key store and trust store of a PKI made
//! here with `openssl`, [`ClientTlsSetup`]) and every session of the load connects over TLS
//! with a client certificate (the data path after the handshake is that of
//! `secureClientPort`; the setup probes stay plain).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::cpu::CpuWatch;
use crate::floor::{run_floor, FloorConfig, FloorReport};
use crate::load::{run_load, LoadConfig, Shape};
use crate::report::{LoadReport, Spread};
use crate::servers::{self, server_processes, Ensemble};
use crate::wire::ClientTls;
use crate::workload::{Op, OpMix};
use crate::BenchError;
use crate::Isolation;
use ringkeeper_tests::command::ServerKind;
use ringkeeper_tests::ensemble::EnsemblePlan;

/// One workload at one concurrency: `WORKLOAD:CLIENTSxINFLIGHT[@RATE]`, where WORKLOAD is
/// `write` (setData), `read` (getData), an op name (`exists`, `create`, `multi`, ...; creates
/// are ephemeral-sequential, multis 4 setData) or `mixedNN` (NN% getData, the rest setData);
/// `@RATE` makes it open loop at RATE ops/s over all sessions (else closed loop, unless the
/// shared `--rate` is given).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub mix: OpMix,
    pub clients: usize,
    pub inflight: usize,
    pub rate: Option<f64>,
}

impl FromStr for Case {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "case {s:?} is not WORKLOAD:CLIENTSxINFLIGHT[@RATE] (e.g. write:16x16, read:1x1, mixed90:16x16, write:16x16@8000)"
            )
        };
        let (workload, shape) = s.split_once(':').ok_or_else(bad)?;
        let (shape, rate) = match shape.split_once('@') {
            Some((shape, rate)) => {
                let rate: f64 = rate.parse().map_err(|_| bad())?;
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(bad());
                }
                (shape, Some(rate))
            }
            None => (shape, None),
        };
        let (clients, inflight) = shape.split_once('x').ok_or_else(bad)?;
        let mix = match workload {
            "write" => OpMix::only(Op::SetData),
            "read" => OpMix::only(Op::GetData),
            other => match (other.parse::<Op>(), other.strip_prefix("mixed").and_then(|p| p.parse().ok())) {
                (Ok(op), _) => OpMix::only(op),
                (_, Some(read_percent)) if read_percent <= 100 => {
                    OpMix::read_write(read_percent, Op::SetData)
                }
                _ => return Err(bad()),
            },
        };
        Ok(Case {
            name: s.to_string(),
            mix,
            clients: clients.parse().map_err(|_| bad())?,
            inflight: inflight.parse().map_err(|_| bad())?,
            rate,
        })
    }
}

/// Longest time each floor measurement of a comparison may take.
const FLOOR_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The standard cases of `bench/results/`: saturating (closed loop) writes from 16x16 and
/// from a lone writer, reads, and writes at a fixed rate both servers sustain (CPU per op and
/// latency at a moderate load).
pub const STANDARD_CASES: [&str; 4] = ["write:16x16", "write:1x1", "read:16x16", "write:16x16@8000"];

/// An open-loop run below this share of its target rate did not sustain it.
const SUSTAINED_SHARE: f64 = 0.95;

/// A comparison.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub cases: Vec<Case>,
    pub repeat: usize,
    pub servers: usize,
    /// The two sides (`ServerKind::Ringkeeper`, `ServerKind::Apache`).
    pub ringkeeper: ServerKind,
    pub apache: ServerKind,
    /// Both servers' directories go under here (same filesystem); the floor is measured here.
    pub data_root: PathBuf,
    pub shape: Shape,
    /// fdatasyncs and loopback round trips of the floor measured before the cases.
    pub floor_fsyncs: usize,
    pub floor_round_trips: usize,
    /// How every server process of both sides shares the CPUs.
    pub isolation: Isolation,
    /// After the cases: both ensembles left idle this long, their CPU measured (zero: not).
    pub idle: Duration,
    /// Clients connect over TLS ([`ClientTlsSetup`]).
    pub tls: bool,
}

/// Client TLS on both sides: a throw-away PKI (a CA, the servers' certificate for
/// 127.0.0.1, a client certificate), the zoo.cfg lines that turn TLS on in ringkeeper and
/// Apache alike, and the bench's client side of it. The PKI's directory lives as long as this.
pub struct ClientTlsSetup {
    pki: ringkeeper_tests::pki::Pki,
    pub client: ClientTls,
}

impl ClientTlsSetup {
    /// Makes the PKI (`openssl`) and the client's TLS configuration.
    pub fn new() -> Result<ClientTlsSetup, BenchError> {
        let pki = ringkeeper_tests::pki::Pki::empty();
        pki.ca("ca", "/CN=ringkeeper-bench CA");
        pki.leaf("server", "ca", "/CN=ringkeeper-bench server", "serverAuth", "subjectAltName=IP:127.0.0.1");
        pki.leaf("client", "ca", "/CN=ringkeeper-bench client", "clientAuth", "");
        let client = ClientTls::from_pem_files(
            &pki.path("ca.pem"),
            Some((&pki.path("client.crt"), &pki.path("client.key"))),
        )?;
        Ok(ClientTlsSetup { pki, client })
    }

    /// zoo.cfg lines: Apache serves TLS only on Netty (ringkeeper ignores the factory), TLS
    /// and plain clients on the client port, client certificates needed (Apache's default)
    /// and taken as `x509` ids (both close a connection with a certificate otherwise).
    pub fn zoo_cfg(&self) -> String {
        format!(
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\nclient.portUnification=true\n\
             ssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth=need\n\
             authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
            self.pki.path("server.pem").display(),
            self.pki.path("ca.pem").display()
        )
    }
}

/// Median and spread of one server's runs of one case.
#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    pub ops_per_s: Spread,
    pub p50_us: Spread,
    pub p99_us: Spread,
    pub errors: u64,
    /// Median p50 and p99 divided by the case's floor (`CaseReport::floor_us`).
    pub p50_over_floor: f64,
    pub p99_over_floor: f64,
    /// Server CPU µs per op, all members summed; `None` if a run could not read it.
    pub server_cpu_us_per_op: Option<Spread>,
    /// The same per member, in member order (`server1`, `server2`, ...).
    pub server_cpu_us_per_op_by_member: Vec<Spread>,
    /// The bench's own CPU µs per op and % of a core: near 100% x `--threads` means the
    /// client set the pace.
    pub client_cpu_us_per_op: Spread,
    pub client_cpu_core_percent: Spread,
    /// Open loop: whether every run reached 95% of the target rate.
    pub sustained_rate: Option<bool>,
}

impl SideSummary {
    fn of(runs: &[LoadReport], floor_us: f64) -> SideSummary {
        let figure = |f: &dyn Fn(&LoadReport) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        let p50_us = figure(&|r| r.latency.p50_us as f64);
        let p99_us = figure(&|r| r.latency.p99_us as f64);
        SideSummary {
            ops_per_s: figure(&|r| r.ops_per_s),
            p50_over_floor: ratio(p50_us.median, floor_us),
            p99_over_floor: ratio(p99_us.median, floor_us),
            p50_us,
            p99_us,
            errors: runs.iter().map(|r| r.errors).sum(),
            server_cpu_us_per_op: runs
                .iter()
                .map(|r| r.cpu.servers_total.as_ref().map(|t| t.us_per_op))
                .collect::<Option<Vec<f64>>>()
                .map(|v| Spread::of(&v)),
            server_cpu_us_per_op_by_member: (0..runs.iter().map(|r| r.cpu.servers.len()).min().unwrap_or(0))
                .map(|member| figure(&|r| r.cpu.servers[member].us_per_op))
                .collect(),
            client_cpu_us_per_op: figure(&|r| r.cpu.client.as_ref().map_or(0.0, |c| c.us_per_op)),
            client_cpu_core_percent: figure(&|r| r.cpu.client.as_ref().map_or(0.0, |c| c.core_percent)),
            sustained_rate: runs.first().and_then(|r| r.rate_target).map(|_| {
                runs.iter().all(|r| r.rate_target.is_some_and(|rate| r.ops_per_s >= SUSTAINED_SHARE * rate))
            }),
        }
    }

    /// `200 (120+40+40)`: median µs per op summed over members, then each member's median.
    fn server_cpu_cell(&self) -> String {
        match &self.server_cpu_us_per_op {
            Some(total) => format!(
                "{:.0} ({})",
                total.median,
                self.server_cpu_us_per_op_by_member
                    .iter()
                    .map(|m| format!("{:.0}", m.median))
                    .collect::<Vec<_>>()
                    .join("+")
            ),
            None => "n/a".into(),
        }
    }

    /// `12 [35%]`: client µs per op and % of a core (medians).
    fn client_cpu_cell(&self) -> String {
        format!("{:.0} [{:.0}%]", self.client_cpu_us_per_op.median, self.client_cpu_core_percent.median)
    }

    /// The ops/s cell, marked when an open-loop run fell short of its target.
    fn ops_cell(&self) -> String {
        let shortfall = if self.sustained_rate == Some(false) { " BELOW RATE" } else { "" };
        format!("{}{shortfall}", self.ops_per_s.show())
    }
}

/// ringkeeper / Apache, of the medians.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub ops_per_s: f64,
    pub p50: f64,
    pub p99: f64,
    /// Server CPU per op (members summed), when both sides have it.
    pub server_cpu_per_op: Option<f64>,
}

/// One case on both servers. `ringkeeper` is `None` when it could not run (see
/// `CompareReport::ringkeeper_not_supported`).
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub case: String,
    /// The least latency this case can have here: loopback round trip, plus one fdatasync
    /// for a case that writes.
    pub floor_us: f64,
    /// Open-loop target in ops/s over all sessions; `None` for closed loop.
    pub rate: Option<f64>,
    pub ringkeeper: Option<SideSummary>,
    pub apache: SideSummary,
    pub ratio_ringkeeper_to_apache: Option<Ratios>,
    pub ringkeeper_runs: Vec<LoadReport>,
    pub apache_runs: Vec<LoadReport>,
}

/// CPU of an idle ensemble: both sides left alone together after the cases.
#[derive(Debug, Clone, Serialize)]
pub struct IdleCpu {
    pub seconds: f64,
    /// % of one core, all members summed; `None` for a side that did not run.
    pub ringkeeper_core_percent: Option<f64>,
    pub apache_core_percent: f64,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub servers: usize,
    /// Clients connected over TLS.
    pub tls: bool,
    /// How the server processes shared the CPUs (same for both sides).
    pub isolation: String,
    pub repeat: usize,
    pub size_bytes: usize,
    pub warmup_s: f64,
    pub measure_s: f64,
    /// The floor measured in this run, before the cases, on the data root's disk.
    pub floor: FloorReport,
    /// Why ringkeeper has no figures in this run (e.g. no ensemble support), if it has none.
    pub ringkeeper_not_supported: Option<String>,
    pub cases: Vec<CaseReport>,
    /// Idle CPU after the cases (`None` when not measured).
    pub idle: Option<IdleCpu>,
}

/// `median (min–max) [x floor]` of a latency.
fn latency_cell(spread: &Spread, over_floor: f64) -> String {
    format!("{} [{over_floor:.1}x]", spread.show())
}

impl CompareReport {
    fn floor_line(&self) -> String {
        let f = &self.floor;
        let cpu = |figure: &crate::floor::FloorFigure| {
            figure.cpu_us_per_op.map_or("n/a".to_string(), |c| format!("{c:.0}"))
        };
        format!(
            "floor (same run): fdatasync p50 {} us p99 {} us (CPU {} us each), loopback round trip p50 {} us p99 {} us \
             (CPU of being woken by one message and answering it: {} us)",
            f.fdatasync_preallocated.latency.p50_us,
            f.fdatasync_preallocated.latency.p99_us,
            cpu(&f.fdatasync_preallocated),
            f.loopback_round_trip.latency.p50_us,
            f.loopback_round_trip.latency.p99_us,
            cpu(&f.loopback_round_trip)
        )
    }

    /// (server name, its summary or why it has none) for both sides of a case.
    fn sides<'a>(
        &'a self,
        c: &'a CaseReport,
        apache_name: &'static str,
    ) -> [(&'static str, Result<&'a SideSummary, &'a str>); 2] {
        let not_supported = self.ringkeeper_not_supported.as_deref().unwrap_or("no figures");
        [("ringkeeper", c.ringkeeper.as_ref().ok_or(not_supported)), (apache_name, Ok(&c.apache))]
    }

    /// The heading both tables start with: shape, isolation, floor, idle CPU.
    fn heading(&self) -> String {
        let mut out = format!(
            "{} server(s){}, {} B values, {} run(s) each, {:.0} s measured after {:.0} s warm-up; isolation {}\n{}\n",
            self.servers,
            if self.tls { ", clients over TLS" } else { "" },
            self.size_bytes,
            self.repeat,
            self.measure_s,
            self.warmup_s,
            self.isolation,
            self.floor_line()
        );
        if let Some(idle) = &self.idle {
            let rk = idle.ringkeeper_core_percent.map_or("n/a".into(), |p| format!("{p:.1}%"));
            let _ = writeln!(
                out,
                "idle {:.0} s after the cases, CPU of all members summed: ringkeeper {rk} of a core, apache {:.1}%",
                idle.seconds, idle.apache_core_percent
            );
        }
        out.push_str(
            "server cpu = CPU µs per op of all server processes summed (each member's in brackets); \
             client cpu = the bench's own µs per op [% of a core]\n",
        );
        out
    }

    /// The plain table: per case, each server's medians (min–max), latencies also as a
    /// multiple of the case's floor `[Nx]`, CPU per op, and the ratio; then per case the
    /// servers' per-hop breakdown of ringkeeper's last run.
    pub fn table(&self) -> String {
        let mut out = self.heading();
        let _ = writeln!(
            out,
            "{:<18} {:<12} {:>9} {:>26} {:>30} {:>30} {:>7} {:>22} {:>12}",
            "case",
            "server",
            "floor us",
            "ops/s",
            "p50 us",
            "p99 us",
            "errors",
            "server cpu us/op",
            "client cpu"
        );
        for c in &self.cases {
            for (name, side) in self.sides(c, "apache") {
                let _ = match side {
                    Ok(side) => writeln!(
                        out,
                        "{:<18} {:<12} {:>9.0} {:>26} {:>30} {:>30} {:>7} {:>22} {:>12}",
                        c.case,
                        name,
                        c.floor_us,
                        side.ops_cell(),
                        latency_cell(&side.p50_us, side.p50_over_floor),
                        latency_cell(&side.p99_us, side.p99_over_floor),
                        side.errors,
                        side.server_cpu_cell(),
                        side.client_cpu_cell()
                    ),
                    Err(why) => writeln!(out, "{:<18} {:<12} not supported: {why}", c.case, name),
                };
            }
            if let Some(r) = &c.ratio_ringkeeper_to_apache {
                let _ = writeln!(
                    out,
                    "{:<18} {:<12} {:>9} {:>26.2} {:>30.2} {:>30.2} {:>7} {:>22}",
                    c.case,
                    "rk/apache",
                    "",
                    r.ops_per_s,
                    r.p50,
                    r.p99,
                    "",
                    r.server_cpu_per_op.map_or("".into(), |v| format!("{v:.2}"))
                );
            }
        }
        for c in &self.cases {
            if let Some(run) = c.ringkeeper_runs.last().filter(|run| !run.hops.is_empty()) {
                let _ = writeln!(out, "{}: where ringkeeper's time went (its last run)", c.case);
                out.push_str(&crate::hops::table(&run.hops));
            }
        }
        out
    }

    /// The same as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = self.heading().replace('\n', "\n\n");
        out.push_str(
            "| case | server | ops/s median (min–max) | p50 µs median (min–max) [x floor] | p99 µs median (min–max) [x floor] | errors | server CPU µs/op (per member) | client CPU µs/op [% core] |\n|---|---|---|---|---|---|---|---|\n",
        );
        for c in &self.cases {
            for (name, side) in self.sides(c, "Apache 3.8") {
                let _ = match side {
                    Ok(side) => writeln!(
                        out,
                        "| {} | {name} | {} | {} | {} | {} | {} | {} |",
                        c.case,
                        side.ops_cell(),
                        latency_cell(&side.p50_us, side.p50_over_floor),
                        latency_cell(&side.p99_us, side.p99_over_floor),
                        side.errors,
                        side.server_cpu_cell(),
                        side.client_cpu_cell()
                    ),
                    Err(why) => writeln!(out, "| {} | {name} | not supported: {why} | | | | | |", c.case),
                };
            }
            if let Some(r) = &c.ratio_ringkeeper_to_apache {
                let _ = writeln!(
                    out,
                    "| {} | ratio rk/Apache | {:.2} | {:.2} | {:.2} | | {} | |",
                    c.case,
                    r.ops_per_s,
                    r.p50,
                    r.p99,
                    r.server_cpu_per_op.map_or("".into(), |v| format!("{v:.2}"))
                );
            }
        }
        out
    }
}

fn ratio(ours: f64, theirs: f64) -> f64 {
    if theirs == 0.0 {
        f64::NAN
    } else {
        ours / theirs
    }
}

/// Starts one side; `Ok(None)` with the reason when that kind cannot run this spec.
fn start_side(plan: EnsemblePlan) -> Result<Result<Ensemble, String>, BenchError> {
    match servers::start(&plan) {
        Ok(ensemble) => Ok(Ok(ensemble)),
        Err(BenchError::NotSupported(why)) => Ok(Err(why)),
        Err(e) => Err(e),
    }
}

/// Runs the comparison; `on_run` sees every finished run (for printing as it goes).
pub fn run_compare(
    config: &CompareConfig,
    mut on_run: impl FnMut(&str, &LoadReport),
) -> Result<CompareReport, BenchError> {
    if config.cases.is_empty() || config.repeat == 0 {
        return Err(BenchError::Config("compare needs at least one case and --repeat >= 1".into()));
    }
    let floor = run_floor(&FloorConfig {
        dir: config.data_root.clone(),
        fsyncs: config.floor_fsyncs,
        round_trips: config.floor_round_trips,
        time_limit: FLOOR_TIME_LIMIT,
    })?;
    let tls = config.tls.then(ClientTlsSetup::new).transpose()?;
    let plan = |kind| -> Result<EnsemblePlan, BenchError> {
        let plan = servers::plan(kind, config.servers, &config.data_root)?;
        let extra_config = tls.as_ref().map(ClientTlsSetup::zoo_cfg).unwrap_or_default();
        Ok(EnsemblePlan { isolation: config.isolation, extra_config, ..plan })
    };
    let ringkeeper = start_side(plan(config.ringkeeper.clone())?)?;
    let apache = servers::start(&plan(config.apache.clone())?)?;
    let ringkeeper_not_supported = ringkeeper.as_ref().err().cloned();
    // Side 0 is ringkeeper, side 1 Apache, here and in `runs`.
    let mut servers = [ringkeeper.ok(), Some(apache)];
    let mut runs: Vec<[Vec<LoadReport>; 2]> = vec![[Vec::new(), Vec::new()]; config.cases.len()];
    for repeat in 0..config.repeat {
        for (case_index, case) in config.cases.iter().enumerate() {
            let order = if repeat % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let Some(server) = servers[side].as_mut() else { continue };
                server.check_running()?;
                let load = LoadConfig {
                    hosts: server.connect_string(),
                    clients: case.clients,
                    inflight: case.inflight,
                    mix: case.mix,
                    shape: Shape {
                        rate_ops_per_s: case.rate.or(config.shape.rate_ops_per_s),
                        ..config.shape.clone()
                    },
                    server_processes: server_processes(server),
                    tls: tls.as_ref().map(|tls| tls.client.clone()),
                };
                let report = run_load(&load)?;
                on_run(
                    &format!("{} {} run {}/{}", case.name, server.target.name(), repeat + 1, config.repeat),
                    &report,
                );
                runs[case_index][side].push(report);
            }
        }
    }
    let idle = if config.idle.is_zero() { None } else { Some(measure_idle(&servers, config.idle)?) };
    drop(servers);
    let rtt_us = floor.loopback_round_trip.latency.p50_us as f64;
    let fsync_us = floor.fdatasync_preallocated.latency.p50_us as f64;
    let cases = config
        .cases
        .iter()
        .zip(runs)
        .map(|(case, [ours, theirs])| {
            let floor_us = if case.mix.writes() { rtt_us + fsync_us } else { rtt_us };
            let ap = SideSummary::of(&theirs, floor_us);
            let rk = (!ours.is_empty()).then(|| SideSummary::of(&ours, floor_us));
            CaseReport {
                case: case.name.clone(),
                floor_us,
                rate: case.rate.or(config.shape.rate_ops_per_s),
                ratio_ringkeeper_to_apache: rk.as_ref().map(|rk| Ratios {
                    ops_per_s: ratio(rk.ops_per_s.median, ap.ops_per_s.median),
                    p50: ratio(rk.p50_us.median, ap.p50_us.median),
                    p99: ratio(rk.p99_us.median, ap.p99_us.median),
                    server_cpu_per_op: rk
                        .server_cpu_us_per_op
                        .zip(ap.server_cpu_us_per_op)
                        .map(|(ours, theirs)| ratio(ours.median, theirs.median)),
                }),
                ringkeeper: rk,
                apache: ap,
                ringkeeper_runs: ours,
                apache_runs: theirs,
            }
        })
        .collect();
    Ok(CompareReport {
        servers: config.servers,
        tls: config.tls,
        isolation: config.isolation.describe(),
        repeat: config.repeat,
        size_bytes: config.shape.size_bytes,
        warmup_s: config.shape.warmup.as_secs_f64(),
        measure_s: config.shape.measure.as_secs_f64(),
        floor,
        ringkeeper_not_supported,
        cases,
        idle,
    })
}

/// Leaves both sides idle for `window` and returns each side's CPU, members summed, as % of
/// one core (both measured over the same window).
fn measure_idle(servers: &[Option<Ensemble>; 2], window: Duration) -> Result<IdleCpu, BenchError> {
    let watch = |side: &Option<Ensemble>| side.as_ref().map(|e| CpuWatch::new(server_processes(e)));
    let watches: Vec<Option<CpuWatch>> = servers.iter().map(watch).collect();
    let starts: Vec<_> = watches.iter().map(|w| w.as_ref().map(CpuWatch::sample)).collect();
    std::thread::sleep(window);
    let percent = |index: usize| -> Option<f64> {
        let watch = watches[index].as_ref()?;
        let end = watch.sample();
        let report = crate::cpu::CpuReport::between(watch, starts[index].as_ref()?, &end, 0);
        report.servers_total.map(|total| total.core_percent)
    };
    let ringkeeper_core_percent = percent(0);
    let apache_core_percent = percent(1)
        .ok_or_else(|| BenchError::Server("could not read the idle CPU of Apache's processes".into()))?;
    Ok(IdleCpu { seconds: window.as_secs_f64(), ringkeeper_core_percent, apache_core_percent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse() {
        let c: Case = "mixed90:16x4".parse().unwrap();
        assert_eq!((c.mix, c.clients, c.inflight), (OpMix::read_write(90, Op::SetData), 16, 4));
        assert_eq!("read:1x1".parse::<Case>().unwrap().mix, OpMix::only(Op::GetData));
        assert_eq!("multi:1x1".parse::<Case>().unwrap().mix, OpMix::only(Op::Multi));
        assert!("mixed101:1x1".parse::<Case>().is_err());
        assert!("write:16".parse::<Case>().is_err());
        assert!("nap:1x1".parse::<Case>().is_err());
        let open = "write:16x4@8000".parse::<Case>().unwrap();
        assert_eq!((open.clients, open.inflight, open.rate), (16, 4, Some(8000.0)));
        assert_eq!("write:16x16".parse::<Case>().unwrap().rate, None);
        for bad in ["write:1x1@", "write:1x1@0", "write:1x1@-5", "write:1x1@fast"] {
            assert!(bad.parse::<Case>().is_err(), "{bad}");
        }
        for s in STANDARD_CASES {
            assert!(s.parse::<Case>().is_ok());
        }
    }
}
