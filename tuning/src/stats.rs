//! Latency samples to summaries: percentiles and a log2-bucketed histogram.
//!
//! In: raw durations in nanoseconds (unsorted). Out: a [`LatencySummary`] (µs, as floats
//! rounded to 0.1) and [`HistogramBucket`]s whose upper bounds double, so one picture covers
//! a 20 µs NVMe flush and a 20 ms disk seek. Invariant: bucket counts add up to the samples.

use serde::{Deserialize, Serialize};

/// Percentiles of one measured series, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub samples: usize,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

/// Samples at or below `upper_us` (and above the previous bucket's bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBucket {
    pub upper_us: f64,
    pub count: usize,
}

fn round_tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The value at quantile `q` (0..=1) of sorted `values` (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Summarises `samples_ns`; `None` when there are none.
pub fn summarize(samples_ns: &[u64]) -> Option<LatencySummary> {
    if samples_ns.is_empty() {
        return None;
    }
    let mut sorted = samples_ns.to_vec();
    sorted.sort_unstable();
    let us = |ns: u64| round_tenth(ns as f64 / 1000.0);
    let mean = sorted.iter().map(|&n| n as f64).sum::<f64>() / sorted.len() as f64;
    Some(LatencySummary {
        samples: sorted.len(),
        min_us: us(sorted[0]),
        p50_us: us(quantile(&sorted, 0.50)),
        p90_us: us(quantile(&sorted, 0.90)),
        p99_us: us(quantile(&sorted, 0.99)),
        max_us: us(sorted[sorted.len() - 1]),
        mean_us: round_tenth(mean / 1000.0),
    })
}

/// Buckets with upper bounds 1, 2, 4, ... µs, from the one holding the smallest sample to
/// the one holding the largest.
pub fn histogram(samples_ns: &[u64]) -> Vec<HistogramBucket> {
    let Some(&max) = samples_ns.iter().max() else { return Vec::new() };
    let min = *samples_ns.iter().min().expect("non-empty");
    let bucket_of = |ns: u64| -> u32 {
        let us = ns.div_ceil(1000).max(1);
        us.next_power_of_two().trailing_zeros()
    };
    let (low, high) = (bucket_of(min), bucket_of(max));
    let mut counts = vec![0usize; (high - low + 1) as usize];
    for &ns in samples_ns {
        counts[(bucket_of(ns) - low) as usize] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| HistogramBucket { upper_us: (1u64 << (low + i as u32)) as f64, count })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let samples: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let s = summarize(&samples).unwrap();
        assert_eq!((s.min_us, s.p50_us, s.p90_us, s.p99_us, s.max_us), (1.0, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(s.mean_us, 50.5);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn histogram_doubles_and_counts_everything() {
        let samples = [900, 1000, 1500, 3000, 9000, 9000];
        let h = histogram(&samples);
        let bounds: Vec<f64> = h.iter().map(|b| b.upper_us).collect();
        assert_eq!(bounds, vec![1.0, 2.0, 4.0, 8.0, 16.0]);
        let counts: Vec<usize> = h.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 1, 1, 0, 2]);
    }
}
