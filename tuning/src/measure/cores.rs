//! Cross-core message latency: two threads pinned with `core_affinity` bounce a token over a
//! pair of bounded crossbeam channels (the shape of the roles' bounded cross-core queues).
//!
//! In: the topology and [`CoreBounds`]. Out: one [`CorePairLatency`] per measured pair,
//! labelled by how the CPUs relate (same CPU, SMT siblings, same package, same NUMA node,
//! other node), so `recommend` can say what placing two roles on such CPUs costs.
//! Which pairs: from the first CPU the process may use to itself (roles sharing a CPU), to its
//! SMT sibling, to a CPU of the same package, of the same node, and of each other node, at
//! most `pairs_max`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Bounds;
use crate::probe::topology::CpuTopology;
use crate::stats::{summarize, LatencySummary};
use crate::TuneError;

/// How two CPUs relate, closest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreRelation {
    SameCpu,
    SmtSibling,
    SamePackage,
    SameNode,
    OtherNode,
}

impl CoreRelation {
    /// The relation of CPUs `a` and `b` in `topology`.
    pub fn of(topology: &CpuTopology, a: usize, b: usize) -> CoreRelation {
        let (Some(ca), Some(cb)) = (topology.cpu(a), topology.cpu(b)) else { return CoreRelation::OtherNode };
        if a == b {
            CoreRelation::SameCpu
        } else if topology.are_siblings(a, b) {
            CoreRelation::SmtSibling
        } else if ca.node != cb.node {
            CoreRelation::OtherNode
        } else if ca.package_id == cb.package_id {
            CoreRelation::SamePackage
        } else {
            CoreRelation::SameNode
        }
    }
}

/// Limits of the ping-pong measurement.
#[derive(Debug, Clone)]
pub struct CoreBounds {
    pub round_trips_max: usize,
    pub budget_per_pair: Duration,
    pub pairs_max: usize,
    pub quiet: bool,
}

/// Round-trip latency between two CPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorePairLatency {
    pub cpu_a: usize,
    pub cpu_b: usize,
    pub relation: CoreRelation,
    /// One token there and back.
    pub round_trip: LatencySummary,
}

/// The pairs worth measuring: one per relation class (and per other node), from the first
/// CPU this process may run on, among the CPUs in `allowed` (its affinity mask).
pub fn pairs_to_measure(topology: &CpuTopology, allowed: &[usize], pairs_max: usize) -> Vec<(usize, usize)> {
    let cpus: Vec<_> = topology.cpus.iter().filter(|c| allowed.contains(&c.id)).collect();
    let Some(first) = cpus.first() else { return Vec::new() };
    let mut pairs = vec![(first.id, first.id)];
    let mut seen_relations = vec![CoreRelation::SameCpu];
    let mut seen_nodes = vec![first.node];
    for cpu in &cpus[1..] {
        let relation = CoreRelation::of(topology, first.id, cpu.id);
        let new_node = relation == CoreRelation::OtherNode && !seen_nodes.contains(&cpu.node);
        if new_node || (relation != CoreRelation::OtherNode && !seen_relations.contains(&relation)) {
            pairs.push((first.id, cpu.id));
            seen_relations.push(relation);
            seen_nodes.push(cpu.node);
        }
    }
    pairs.truncate(pairs_max.max(1));
    pairs
}

/// CPUs this process may run on (`sched_getaffinity`; a container's cpuset may hide some).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; `set` is valid and writable for size_of::<cpu_set_t>() bytes.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads the initialised set, for ids below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

fn pin(cpu: usize) -> Result<(), TuneError> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(TuneError::Measure(format!("cannot pin a thread to CPU {cpu}")))
    }
}

/// Measures one pair: returns round-trip samples in ns.
fn ping_pong(a: usize, b: usize, bounds: &CoreBounds) -> Result<Vec<u64>, TuneError> {
    let (to_b, from_a) = crossbeam_channel::bounded::<u64>(1);
    let (to_a, from_b) = crossbeam_channel::bounded::<u64>(1);
    let echo = std::thread::Builder::new()
        .name(format!("tune-pong-{b}"))
        .spawn(move || -> Result<(), TuneError> {
            pin(b)?;
            // Ends when the pinging side drops its sender.
            while let Ok(token) = from_a.recv() {
                if to_a.send(token + 1).is_err() {
                    break;
                }
            }
            Ok(())
        })
        .map_err(|e| TuneError::Measure(format!("spawning the echo thread: {e}")))?;
    let pinger = std::thread::Builder::new()
        .name(format!("tune-ping-{a}"))
        .spawn({
            let bounds = bounds.clone();
            move || -> Result<Vec<u64>, TuneError> {
                pin(a)?;
                let label = format!("CPU {a} <-> CPU {b}");
                let mut limit =
                    Bounds::new(label, bounds.round_trips_max, bounds.budget_per_pair, bounds.quiet);
                let mut samples = Vec::with_capacity(bounds.round_trips_max.min(1 << 20));
                let mut token = 0u64;
                while limit.more(samples.len()) {
                    let start = Instant::now();
                    if to_b.send(token).is_err() {
                        break;
                    }
                    match from_b.recv() {
                        Ok(back) => token = back,
                        Err(_) => break,
                    }
                    samples.push(start.elapsed().as_nanos() as u64);
                }
                Ok(samples)
            }
        })
        .map_err(|e| TuneError::Measure(format!("spawning the ping thread: {e}")))?;
    let samples = pinger.join().map_err(|_| TuneError::Measure("ping thread panicked".into()))?;
    let echoed = echo.join().map_err(|_| TuneError::Measure("echo thread panicked".into()))?;
    let samples = samples?;
    echoed?;
    Ok(samples)
}

/// Measures the pairs [`pairs_to_measure`] picks.
pub fn measure_cores(topology: &CpuTopology, bounds: &CoreBounds) -> Result<Vec<CorePairLatency>, TuneError> {
    let mut out = Vec::new();
    for (a, b) in pairs_to_measure(topology, &allowed_cpus(), bounds.pairs_max) {
        let relation = CoreRelation::of(topology, a, b);
        if !bounds.quiet {
            eprintln!("ringkeeper-tune: ping-pong CPU {a} <-> CPU {b} ({relation:?})");
        }
        let samples = ping_pong(a, b, bounds)?;
        if let Some(round_trip) = summarize(&samples) {
            out.push(CorePairLatency { cpu_a: a, cpu_b: b, relation, round_trip });
        }
    }
    Ok(out)
}
