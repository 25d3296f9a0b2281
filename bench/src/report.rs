//! Results: latency summaries from hdrhistogram, the per-second timeline, the [`LoadReport`]
//! written as JSON, the plain table, and medians with spreads over repeated runs.
//!
//! All latencies are microseconds; a latency runs from the request's *intended* send time
//! (open loop) or its actual send time (closed loop) to the moment its reply was read.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::CpuReport;
use crate::hops::MemberHops;

/// Highest latency a histogram tracks (60 s, in µs); larger values are clamped to it.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// A latency histogram in microseconds with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("static histogram bounds are valid")
}

/// Percentiles of one histogram, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// One point of a latency CDF: `quantile` of the ops took at most `latency_us`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CdfPoint {
    pub quantile: f64,
    pub latency_us: u64,
}

/// Quantiles 0.00..0.99 in steps of 0.01, then 0.995, 0.999, 0.9995, 0.9999 and 1 (max).
pub fn cdf_of(h: &Histogram<u64>) -> Vec<CdfPoint> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..100)
        .map(|i| f64::from(i) / 100.0)
        .chain([0.995, 0.999, 0.9995, 0.9999, 1.0])
        .map(|quantile| CdfPoint { quantile, latency_us: h.value_at_quantile(quantile) })
        .collect()
}

/// One second of a run, as the live progress line showed it.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the load started (warm-up included).
    pub t_s: u64,
    pub measuring: bool,
    pub ops: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// The full result of one load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub workload: String,
    pub hosts: String,
    pub clients: usize,
    pub inflight: usize,
    pub size_bytes: usize,
    pub keys: usize,
    /// Open-loop target (ops/s over all sessions); `None` for closed loop.
    pub rate_target: Option<f64>,
    pub warmup_s: f64,
    pub measure_s: f64,
    /// Successful ops whose intended send time fell in the measurement window.
    pub ops: u64,
    pub ops_per_s: f64,
    /// Error replies, plus requests lost to a broken connection or the drain time-out.
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful measured ops by op name (a multi counts once).
    pub ops_by_op: BTreeMap<String, u64>,
    /// Watch notifications received during the whole run (warm-up and drain included).
    pub watch_events: u64,
    pub latency: LatencySummary,
    /// The latency distribution of the measured ops: (quantile, µs) points for a CDF plot.
    pub cdf: Vec<CdfPoint>,
    pub timeline: Vec<Second>,
    /// CPU of the measure window: the bench itself, and each server it was told about.
    pub cpu: CpuReport,
    /// Per member, where the servers' time of a sampled write went over the measure window
    /// (ringkeeper servers only; empty for others).
    pub hops: Vec<MemberHops>,
    /// Anything the run could not do cleanly (cleanup left behind, sessions lost).
    pub notes: Vec<String>,
}

impl LoadReport {
    /// The plain table printed at the end of a run.
    pub fn table(&self) -> String {
        let l = &self.latency;
        let mut out = String::new();
        let loop_kind = match self.rate_target {
            Some(r) => format!("open loop at {r:.0} ops/s"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            out,
            "{} {} B on {} — {} sessions x {} in flight, {}, {} s measured after {} s warm-up",
            self.workload,
            self.size_bytes,
            self.hosts,
            self.clients,
            self.inflight,
            loop_kind,
            self.measure_s,
            self.warmup_s
        );
        let _ = writeln!(
            out,
            "{:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "ops/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "ops", "errors"
        );
        let _ = writeln!(
            out,
            "{:>12.0} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            self.ops_per_s, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, self.ops, self.errors
        );
        let _ = writeln!(out, "  cpu: {}", self.cpu.line());
        if self.ops_by_op.len() > 1 {
            let counts: Vec<String> = self.ops_by_op.iter().map(|(op, n)| format!("{op} {n}")).collect();
            let _ = writeln!(out, "  ops: {}", counts.join(", "));
        }
        if self.watch_events > 0 {
            let _ = writeln!(out, "  watch events received: {}", self.watch_events);
        }
        for (kind, count) in &self.errors_by_kind {
            let _ = writeln!(out, "  error {kind}: {count}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out.push_str(&crate::hops::table(&self.hops));
        out
    }
}

/// Median and range of one figure over repeated runs.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// Of a non-empty list (the median of an even count is the mean of the middle two).
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
        Spread { median, min: v[0], max: v[v.len() - 1] }
    }

    /// `median (min–max)` with no decimals.
    pub fn show(&self) -> String {
        format!("{:.0} ({:.0}–{:.0})", self.median, self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_middle_value_or_mean_of_middle_two() {
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn summary_of_recorded_values() {
        let mut h = new_histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.max_us, 1000);
    }
}
