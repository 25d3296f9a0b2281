//! `compare`: the same workloads on ringkeeper and Apache ZooKeeper, started here with
//! equivalent standalone configs, run back to back and repeated with the order alternating
//! (ringkeeper first on even repeats, Apache first on odd ones), then summarised as medians
//! with min–max spreads and ringkeeper/Apache ratios of the medians.
//!
//! In: cases (`write:16x16` = workload, sessions x in flight), a [`Shape`] shared by all
//! runs. Out: a [`CompareReport`] with every run's full [`LoadReport`]. Both servers stay up
//! for the whole comparison (the JVM keeps its JIT warm across repeats) and are killed at
//! the end or on the first error.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

use crate::load::{run_load, LoadConfig, Shape};
use crate::report::{LoadReport, Spread};
use crate::servers::{ServerKind, ServerProcess};
use crate::workload::{CreateKind, OpMix, WriteOp};
use crate::BenchError;

/// One workload at one concurrency: `WORKLOAD:CLIENTSxINFLIGHT`, where WORKLOAD is `write`,
/// `create`, `read` or `mixedNN` (NN% getData, the rest setData).
#[derive(Debug, Clone, PartialEq, Eq)]
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
            "write" => OpMix { read_percent: 0, write: WriteOp::SetData },
            "create" => OpMix { read_percent: 0, write: WriteOp::Create(CreateKind::EphemeralSequential) },
            "read" => OpMix { read_percent: 100, write: WriteOp::SetData },
            other => match other.strip_prefix("mixed").and_then(|p| p.parse().ok()) {
                Some(read_percent) => OpMix { read_percent, write: WriteOp::SetData },
                None => return Err(bad()),
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

/// The standard cases of `bench/results/`.
pub const STANDARD_CASES: [&str; 3] = ["write:16x16", "write:1x1", "read:16x16"];

/// A comparison.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub cases: Vec<Case>,
    pub repeat: usize,
    pub servers: usize,
    pub ringkeeper_binary: PathBuf,
    pub java: PathBuf,
    /// Both servers' directories go under here (same filesystem).
    pub data_root: PathBuf,
    pub shape: Shape,
}

/// Median and spread of one server's runs of one case.
#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    pub ops_per_s: Spread,
    pub p50_us: Spread,
    pub p99_us: Spread,
    pub errors: u64,
}

impl SideSummary {
    fn of(runs: &[LoadReport]) -> SideSummary {
        let figure = |f: &dyn Fn(&LoadReport) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        SideSummary {
            ops_per_s: figure(&|r| r.ops_per_s),
            p50_us: figure(&|r| r.latency.p50_us as f64),
            p99_us: figure(&|r| r.latency.p99_us as f64),
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

/// One case on both servers.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub case: String,
    pub ringkeeper: SideSummary,
    pub apache: SideSummary,
    pub ratio_ringkeeper_to_apache: Ratios,
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
    pub cases: Vec<CaseReport>,
}

impl CompareReport {
    /// The plain table: per case, each server's medians (min–max) and the ratio.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} server(s), {} B values, {} run(s) each, {:.0} s measured after {:.0} s warm-up; median (min–max)\n",
            self.servers, self.size_bytes, self.repeat, self.measure_s, self.warmup_s
        );
        let _ = writeln!(
            out,
            "{:<14} {:<12} {:>26} {:>22} {:>22} {:>7}",
            "case", "server", "ops/s", "p50 us", "p99 us", "errors"
        );
        for c in &self.cases {
            for (name, side) in [("ringkeeper", &c.ringkeeper), ("apache", &c.apache)] {
                let _ = writeln!(
                    out,
                    "{:<14} {:<12} {:>26} {:>22} {:>22} {:>7}",
                    c.case,
                    name,
                    side.ops_per_s.show(),
                    side.p50_us.show(),
                    side.p99_us.show(),
                    side.errors
                );
            }
            let r = &c.ratio_ringkeeper_to_apache;
            let _ = writeln!(
                out,
                "{:<14} {:<12} {:>26.2} {:>22.2} {:>22.2}",
                c.case, "rk/apache", r.ops_per_s, r.p50, r.p99
            );
        }
        out
    }

    /// The same as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| case | server | ops/s median (min–max) | p50 µs median (min–max) | p99 µs median (min–max) | errors |\n|---|---|---|---|---|---|\n",
        );
        for c in &self.cases {
            for (name, side) in [("ringkeeper", &c.ringkeeper), ("Apache 3.8", &c.apache)] {
                let _ = writeln!(
                    out,
                    "| {} | {name} | {} | {} | {} | {} |",
                    c.case,
                    side.ops_per_s.show(),
                    side.p50_us.show(),
                    side.p99_us.show(),
                    side.errors
                );
            }
            let r = &c.ratio_ringkeeper_to_apache;
            let _ = writeln!(
                out,
                "| {} | ratio rk/Apache | {:.2} | {:.2} | {:.2} | |",
                c.case, r.ops_per_s, r.p50, r.p99
            );
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

/// Runs the comparison; `on_run` sees every finished run (for printing as it goes).
pub fn run_compare(
    config: &CompareConfig,
    mut on_run: impl FnMut(&str, &LoadReport),
) -> Result<CompareReport, BenchError> {
    if config.cases.is_empty() || config.repeat == 0 {
        return Err(BenchError::Config("compare needs at least one case and --repeat >= 1".into()));
    }
    let ringkeeper_kind = ServerKind::Ringkeeper { binary: config.ringkeeper_binary.clone() };
    let apache_kind = ServerKind::Apache { java: config.java.clone() };
    let ringkeeper = ServerProcess::start(&ringkeeper_kind, config.servers, &config.data_root)?;
    let apache = ServerProcess::start(&apache_kind, config.servers, &config.data_root)?;
    // Side 0 is ringkeeper, side 1 Apache, here and in `runs`.
    let mut servers = [ringkeeper, apache];
    let mut runs: Vec<[Vec<LoadReport>; 2]> = vec![[Vec::new(), Vec::new()]; config.cases.len()];
    for repeat in 0..config.repeat {
        for (case_index, case) in config.cases.iter().enumerate() {
            let order = if repeat % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let server = &mut servers[side];
                if !server.is_running() {
                    return Err(BenchError::Server(format!(
                        "{} died; log:\n{}",
                        server.kind.name(),
                        server.log_tail()
                    )));
                }
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
    let cases = config
        .cases
        .iter()
        .zip(runs)
        .map(|(case, [ours, theirs])| {
            let (rk, ap) = (SideSummary::of(&ours), SideSummary::of(&theirs));
            CaseReport {
                case: case.name.clone(),
                ratio_ringkeeper_to_apache: Ratios {
                    ops_per_s: ratio(rk.ops_per_s.median, ap.ops_per_s.median),
                    p50: ratio(rk.p50_us.median, ap.p50_us.median),
                    p99: ratio(rk.p99_us.median, ap.p99_us.median),
                },
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
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse() {
        let c: Case = "mixed90:16x4".parse().unwrap();
        assert_eq!((c.mix.read_percent, c.clients, c.inflight), (90, 16, 4));
        assert_eq!("read:1x1".parse::<Case>().unwrap().mix.read_percent, 100);
        assert!("write:16".parse::<Case>().is_err());
        assert!("nap:1x1".parse::<Case>().is_err());
        for s in STANDARD_CASES {
            assert!(s.parse::<Case>().is_ok());
        }
    }
}
