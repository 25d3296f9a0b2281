//! `compare`: the same workloads on ringkeeper and Apache ZooKeeper, each started here as 1
//! or N servers from the same generated zoo.cfg ([`EnsembleSpec`]), run back to back and
//! repeated with the order alternating (ringkeeper first on even repeats, Apache first on odd
//! ones), then summarised as medians with min–max spreads and ringkeeper/Apache ratios.
//!
//! In: cases (`write:16x16` = workload, sessions x in flight), a [`Shape`] shared by all
//! runs. Out: a [`CompareReport`] with every run's full [`LoadReport`] and the machine's
//! floor (fdatasync on the data root, loopback round trip) measured first in the same run;
//! every latency is also shown as a multiple of its case's floor. A kind that cannot run the
//! asked server count (ringkeeper before ensembles) is reported "not supported", never
//! substituted. Servers stay up for the whole comparison (the JVM keeps its JIT warm) and are
//! killed at the end or on the first error.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::floor::{run_floor, FloorConfig, FloorReport};
use crate::load::{run_load, LoadConfig, Shape};
use crate::report::{LoadReport, Spread};
use crate::servers::{Ensemble, EnsembleSpec, ServerKind};
use crate::workload::{Op, OpMix};
use crate::BenchError;

/// One workload at one concurrency: `WORKLOAD:CLIENTSxINFLIGHT`, where WORKLOAD is `write`
/// (setData), `read` (getData), an op name (`exists`, `create`, `multi`, ...; creates are
/// ephemeral-sequential, multis 4 setData) or `mixedNN` (NN% getData, the rest setData).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub mix: OpMix,
    pub clients: usize,
    pub inflight: usize,
}

impl FromStr for Case {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("case {s:?} is not WORKLOAD:CLIENTSxINFLIGHT (e.g. write:16x16, read:1x1, mixed90:16x16)")
        };
        let (workload, shape) = s.split_once(':').ok_or_else(bad)?;
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
        })
    }
}

/// Longest time each floor measurement of a comparison may take.
const FLOOR_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The standard cases of `bench/results/`.
pub const STANDARD_CASES: [&str; 3] = ["write:16x16", "write:1x1", "read:16x16"];

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
        }
    }
}

/// ringkeeper / Apache, of the medians.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub ops_per_s: f64,
    pub p50: f64,
    pub p99: f64,
}

/// One case on both servers. `ringkeeper` is `None` when it could not run (see
/// `CompareReport::ringkeeper_not_supported`).
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub case: String,
    /// The least latency this case can have here: loopback round trip, plus one fdatasync
    /// for a case that writes.
    pub floor_us: f64,
    pub ringkeeper: Option<SideSummary>,
    pub apache: SideSummary,
    pub ratio_ringkeeper_to_apache: Option<Ratios>,
    pub ringkeeper_runs: Vec<LoadReport>,
    pub apache_runs: Vec<LoadReport>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub servers: usize,
    pub repeat: usize,
    pub size_bytes: usize,
    pub warmup_s: f64,
    pub measure_s: f64,
    /// The floor measured in this run, before the cases, on the data root's disk.
    pub floor: FloorReport,
    /// Why ringkeeper has no figures in this run (e.g. no ensemble support), if it has none.
    pub ringkeeper_not_supported: Option<String>,
    pub cases: Vec<CaseReport>,
}

/// `median (min–max) [x floor]` of a latency.
fn latency_cell(spread: &Spread, over_floor: f64) -> String {
    format!("{} [{over_floor:.1}x]", spread.show())
}

impl CompareReport {
    fn floor_line(&self) -> String {
        let f = &self.floor;
        format!(
            "floor (same run): fdatasync p50 {} us p99 {} us, loopback round trip p50 {} us p99 {} us",
            f.fdatasync_preallocated.latency.p50_us,
            f.fdatasync_preallocated.latency.p99_us,
            f.loopback_round_trip.latency.p50_us,
            f.loopback_round_trip.latency.p99_us
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

    /// The plain table: per case, each server's medians (min–max), latencies also as a
    /// multiple of the case's floor `[Nx]`, and the ratio.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} server(s), {} B values, {} run(s) each, {:.0} s measured after {:.0} s warm-up; median (min–max) [x floor]\n{}\n",
            self.servers, self.size_bytes, self.repeat, self.measure_s, self.warmup_s, self.floor_line()
        );
        let _ = writeln!(
            out,
            "{:<14} {:<12} {:>9} {:>26} {:>30} {:>30} {:>7}",
            "case", "server", "floor us", "ops/s", "p50 us", "p99 us", "errors"
        );
        for c in &self.cases {
            for (name, side) in self.sides(c, "apache") {
                let _ = match side {
                    Ok(side) => writeln!(
                        out,
                        "{:<14} {:<12} {:>9.0} {:>26} {:>30} {:>30} {:>7}",
                        c.case,
                        name,
                        c.floor_us,
                        side.ops_per_s.show(),
                        latency_cell(&side.p50_us, side.p50_over_floor),
                        latency_cell(&side.p99_us, side.p99_over_floor),
                        side.errors
                    ),
                    Err(why) => writeln!(out, "{:<14} {:<12} not supported: {why}", c.case, name),
                };
            }
            if let Some(r) = &c.ratio_ringkeeper_to_apache {
                let _ = writeln!(
                    out,
                    "{:<14} {:<12} {:>9} {:>26.2} {:>30.2} {:>30.2}",
                    c.case, "rk/apache", "", r.ops_per_s, r.p50, r.p99
                );
            }
        }
        out
    }

    /// The same as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{}\n\n| case | server | ops/s median (min–max) | p50 µs median (min–max) [x floor] | p99 µs median (min–max) [x floor] | errors |\n|---|---|---|---|---|---|\n",
            self.floor_line()
        );
        for c in &self.cases {
            for (name, side) in self.sides(c, "Apache 3.8") {
                let _ = match side {
                    Ok(side) => writeln!(
                        out,
                        "| {} | {name} | {} | {} | {} | {} |",
                        c.case,
                        side.ops_per_s.show(),
                        latency_cell(&side.p50_us, side.p50_over_floor),
                        latency_cell(&side.p99_us, side.p99_over_floor),
                        side.errors
                    ),
                    Err(why) => writeln!(out, "| {} | {name} | not supported: {why} | | | |", c.case),
                };
            }
            if let Some(r) = &c.ratio_ringkeeper_to_apache {
                let _ = writeln!(
                    out,
                    "| {} | ratio rk/Apache | {:.2} | {:.2} | {:.2} | |",
                    c.case, r.ops_per_s, r.p50, r.p99
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
fn start_side(spec: EnsembleSpec) -> Result<Result<Ensemble, String>, BenchError> {
    match Ensemble::start(spec) {
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
    let spec = |kind| EnsembleSpec::with_free_ports(kind, config.servers, &config.data_root);
    let ringkeeper = start_side(spec(config.ringkeeper.clone())?)?;
    let apache = Ensemble::start(spec(config.apache.clone())?)?;
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
                    shape: config.shape.clone(),
                };
                let report = run_load(&load)?;
                on_run(
                    &format!("{} {} run {}/{}", case.name, server.kind.name(), repeat + 1, config.repeat),
                    &report,
                );
                runs[case_index][side].push(report);
            }
        }
    }
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
                ratio_ringkeeper_to_apache: rk.as_ref().map(|rk| Ratios {
                    ops_per_s: ratio(rk.ops_per_s.median, ap.ops_per_s.median),
                    p50: ratio(rk.p50_us.median, ap.p50_us.median),
                    p99: ratio(rk.p99_us.median, ap.p99_us.median),
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
        repeat: config.repeat,
        size_bytes: config.shape.size_bytes,
        warmup_s: config.shape.warmup.as_secs_f64(),
        measure_s: config.shape.measure.as_secs_f64(),
        floor,
        ringkeeper_not_supported,
        cases,
    })
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
        for s in STANDARD_CASES {
            assert!(s.parse::<Case>().is_ok());
        }
    }
}
