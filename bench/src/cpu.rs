//! CPU time spent by the servers and by the bench itself over a measured window, so every
//! run can say what an op cost in CPU and whether the client was the bottleneck.
//!
//! Source: [`ringkeeper_tests::cpu_time`] (per-thread schedstat, else `/proc/<pid>/stat`),
//! the same reader for both isolations, both server kinds and the bench's own process.
//! A [`CpuWatch`] takes a [`CpuSample`] at the start and the end of a window;
//! [`CpuReport::between`] turns two samples and the op count into µs per op and % of a core.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::BenchError;

/// A server process whose CPU time a run reports (e.g. `server2`, pid 4242).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProcess {
    pub name: String,
    pub pid: u32,
    /// The `cpu.stat` of its own cgroup under equal isolation: how long the quota held it.
    pub quota_stat: Option<PathBuf>,
}

/// Time a cgroup's processes were held back by its CPU quota, in µs, from the text of its
/// `cpu.stat` (v1 `throttled_time` in ns, v2 `throttled_usec`).
fn throttled_us(cpu_stat: &str) -> Option<u64> {
    cpu_stat.lines().find_map(|line| match line.split_once(' ')? {
        ("throttled_time", ns) => ns.trim().parse::<u64>().ok().map(|ns| ns / 1000),
        ("throttled_usec", us) => us.trim().parse().ok(),
        _ => None,
    })
}

pub use ringkeeper_tests::cpu_time::this_thread_on_cpu_ns;

/// CPU time (user + system) a process has used so far, in µs; `pid` `None` is this process
/// ([`ringkeeper_tests::cpu_time`] reads it).
pub fn process_cpu_us(pid: Option<u32>) -> Result<u64, BenchError> {
    ringkeeper_tests::cpu_time::process_cpu_us(pid).map_err(BenchError::io_at("reading a process's CPU time"))
}

/// CPU times at one instant: the bench's own, then each watched server's (`None` when it
/// could not be read, e.g. the process had exited).
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    client_us: u64,
    servers_us: Vec<Option<u64>>,
    servers_throttled_us: Vec<Option<u64>>,
}

/// Takes [`CpuSample`]s of the bench and a fixed list of server processes.
#[derive(Debug, Clone, Default)]
pub struct CpuWatch {
    pub servers: Vec<ServerProcess>,
}

impl CpuWatch {
    pub fn new(servers: Vec<ServerProcess>) -> CpuWatch {
        CpuWatch { servers }
    }

    pub fn sample(&self) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            client_us: process_cpu_us(None).unwrap_or(0),
            servers_us: self.servers.iter().map(|s| process_cpu_us(Some(s.pid)).ok()).collect(),
            servers_throttled_us: self
                .servers
                .iter()
                .map(|s| throttled_us(&std::fs::read_to_string(s.quota_stat.as_ref()?).ok()?))
                .collect(),
        }
    }
}

/// CPU used by one process (or a sum of them) over a window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CpuUse {
    /// `server1`.., `servers` for the sum, `client` for the bench.
    pub name: String,
    pub cpu_us: u64,
    /// `cpu_us / ops`; 0 without ops.
    pub us_per_op: f64,
    /// CPU time over wall time, in % of one core.
    pub core_percent: f64,
    /// Equal isolation: time the CPU quota held the process back in the window, in % of the
    /// window, summed over the CPUs it had threads waiting on (so up to 100% x cores; `None`
    /// without a quota).
    pub throttled_percent: Option<f64>,
}

impl CpuUse {
    fn of(name: &str, cpu_us: u64, ops: u64, window_us: f64) -> CpuUse {
        let per = |denominator: f64| if denominator > 0.0 { cpu_us as f64 / denominator } else { 0.0 };
        CpuUse {
            name: name.to_string(),
            cpu_us,
            us_per_op: round2(per(ops as f64)),
            core_percent: round2(100.0 * per(window_us)),
            throttled_percent: None,
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// CPU of a measured window: the bench itself, each server, and the servers' sum.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct CpuReport {
    pub window_s: f64,
    /// The bench process (all its threads): near 100% x threads means the client, not the
    /// server, set the pace.
    pub client: Option<CpuUse>,
    /// Per server process, in member order (empty when the run did not know the servers).
    pub servers: Vec<CpuUse>,
    /// Sum of `servers`; `None` without servers or when one could not be read.
    pub servers_total: Option<CpuUse>,
}

impl CpuReport {
    /// What was used between `start` and `end` for `ops` operations.
    pub fn between(watch: &CpuWatch, start: &CpuSample, end: &CpuSample, ops: u64) -> CpuReport {
        let window_us = end.at.saturating_duration_since(start.at).as_secs_f64() * 1e6;
        let used = |a: u64, b: u64| b.saturating_sub(a);
        let servers: Vec<Option<CpuUse>> = watch
            .servers
            .iter()
            .enumerate()
            .map(|(index, server)| {
                let (Some(a), Some(b)) = (start.servers_us[index], end.servers_us[index]) else {
                    return None;
                };
                let throttled = match (start.servers_throttled_us[index], end.servers_throttled_us[index]) {
                    (Some(a), Some(b)) if window_us > 0.0 => {
                        Some(round2(100.0 * used(a, b) as f64 / window_us))
                    }
                    _ => None,
                };
                Some(CpuUse {
                    throttled_percent: throttled,
                    ..CpuUse::of(&server.name, used(a, b), ops, window_us)
                })
            })
            .collect();
        let servers_total = (!servers.is_empty() && servers.iter().all(Option::is_some)).then(|| {
            let total = servers.iter().flatten().map(|s| s.cpu_us).sum();
            CpuUse::of("servers", total, ops, window_us)
        });
        CpuReport {
            window_s: round2(window_us / 1e6),
            client: Some(CpuUse::of("client", used(start.client_us, end.client_us), ops, window_us)),
            servers: servers.into_iter().flatten().collect(),
            servers_total,
        }
    }

    /// `servers 200 µs/op (120+40+40), client 15 µs/op (35% of a core)`.
    pub fn line(&self) -> String {
        let servers = match &self.servers_total {
            Some(total) => format!(
                "servers {:.1} us/op ({}), {:.0}% of a core",
                total.us_per_op,
                self.servers.iter().map(|s| format!("{:.1}", s.us_per_op)).collect::<Vec<_>>().join("+"),
                total.core_percent
            ),
            None => "servers not measured".to_string(),
        };
        let throttled: Vec<String> =
            self.servers.iter().filter_map(|s| s.throttled_percent.map(|t| format!("{t:.0}%"))).collect();
        let servers = if throttled.is_empty() {
            servers
        } else {
            format!("{servers}, held by the quota {} of the time", throttled.join("/"))
        };
        match &self.client {
            Some(c) => {
                format!("{servers}; client {:.1} us/op, {:.0}% of a core", c.us_per_op, c.core_percent)
            }
            None => servers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_time_is_read_from_either_cgroup_version() {
        assert_eq!(throttled_us("nr_periods 10\nnr_throttled 2\nthrottled_time 5000000\n"), Some(5000));
        assert_eq!(throttled_us("usage_usec 9\nnr_throttled 2\nthrottled_usec 700\n"), Some(700));
        assert_eq!(throttled_us("usage_usec 9\n"), None);
    }

    #[test]
    fn this_process_uses_cpu_and_the_report_divides_by_ops_and_wall_time() {
        let watch = CpuWatch::new(vec![ServerProcess {
            name: "self".into(),
            pid: std::process::id(),
            quota_stat: None,
        }]);
        let start = watch.sample();
        // Spin until 30 ms of CPU have been charged (bounded in time).
        let give_up = Instant::now() + std::time::Duration::from_secs(10);
        let before = process_cpu_us(None).unwrap();
        let mut x = 0u64;
        while process_cpu_us(None).unwrap() < before + 30_000 && Instant::now() < give_up {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        let end = watch.sample();
        let report = CpuReport::between(&watch, &start, &end, 10);
        let client = report.client.as_ref().unwrap();
        assert!(client.cpu_us > 0, "{report:?}");
        assert_eq!(client.us_per_op, round2(client.cpu_us as f64 / 10.0));
        assert!(client.core_percent > 0.0 && client.core_percent <= 100.0 * 64.0, "{report:?}");
        let total = report.servers_total.as_ref().unwrap();
        assert_eq!(total.cpu_us, report.servers[0].cpu_us);
    }
}
