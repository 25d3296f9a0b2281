//! From a probe to the `ringkeeper.*` zoo.cfg lines: core layout, group-commit limits and
//! queue depth, each with the reason it was chosen. Pure: no I/O, same probe → same lines.
//!
//! Core layout (the roles: network ×N, data/ZAB ×1, log ×1, see server/src/lib.rs):
//! - NUMA: roles stay on the node of the busiest NIC, else of the log disk, else of CPU 0
//!   (if that node has fewer than 3 CPUs, the whole host is used).
//! - Isolated CPUs (isolcpus=) on that node are used when there are at least 2 (they run only
//!   pinned threads, so `pin=true`); otherwise they are left out.
//! - 1 CPU: every role on it. 2 physical cores or fewer: network on the first, data and log
//!   share the second (the log role mostly waits on the disk). 3-4 physical cores: network
//!   gets the core the NIC interrupts land on, data and log one core each. 5 or more: the
//!   NIC-interrupt core(s) (one per 16 physical cores) go to the OS, data and log get whole
//!   physical cores (their SMT siblings stay idle, so the two never share a core's pipeline),
//!   the closest pair (same package, then same node) for data and log, which talk on every
//!   write; network gets one thread per remaining physical core, then siblings, at most
//!   [`NETWORK_CORES_MAX`].
//! - `pin=true` when one server runs on the host (and it has more than one CPU); several
//!   servers on one host float (`pin=false`), so the scheduler can spread them.
//!
//! Batching, from the measured log disk: a least-squares fit of the batch curve gives the fixed
//! cost of a flush and its cost per byte ([`FlushCostFit`]). `batchBytesMax` holds the larger of
//! a full in-flight window (the data role keeps at most 2 x `queue.depth` records in flight to
//! the log; a cap below that splits every full batch into a full and a tiny flush, which halved
//! write throughput on the development VM) and the batch that still flushes within
//! [`LATENCY_STRETCH_MAX`]x the fixed cost; `batchCountMax` is the window; `queue.depth` stays
//! the server default (the reason gives the window's flush time); `batchDelayMicros` is 0
//! unless the disk spins (rotational and not a virtual disk) and a flush is slow (p50 >=
//! [`SLOW_FLUSH_US`]), then a tenth of a flush: on the development VM a 385 µs delay added its
//! whole length to a lone writer's latency and bought no measurable throughput.
//!
//! Failover: `ringkeeper.zab.heartbeatMs` / `peerTimeoutMs` are always the fast-failover pair
//! (100 ms / 800 ms); without them an ensemble detects a silent peer after tickTime x
//! syncLimit, as Apache does.

use std::collections::BTreeSet;

use ringkeeper_server::config::{
    DEFAULT_LOG_BATCH_BYTES_MAX, DEFAULT_LOG_BATCH_COUNT_MAX, DEFAULT_LOG_BATCH_DELAY_MICROS,
    DEFAULT_QUEUE_DEPTH, FAST_FAILOVER_PEER_TIMEOUT_MS, HEARTBEATS_PER_PEER_TIMEOUT,
};
use serde::Serialize;

use crate::measure::cores::CoreRelation;
use crate::measure::disk::BatchPoint;
use crate::probe::topology::{format_cpu_list, CpuTopology};
use crate::probe::Probe;

/// Most network cores worth giving: one data core orders every request, so past this the
/// extra network executors only add queues for it to poll.
pub const NETWORK_CORES_MAX: usize = 8;
/// Physical cores from which one (per 16) is left to the OS and NIC interrupts.
pub const OS_RESERVE_FROM_PHYSICAL_CORES: usize = 5;
/// Physical cores per core left to the OS on large hosts.
pub const PHYSICAL_CORES_PER_OS_CORE: usize = 16;
/// How much longer than the fixed cost of a flush a full batch's flush may take.
pub const LATENCY_STRETCH_MAX: f64 = 1.5;
/// Ceiling of `batchBytesMax`: bounds one DMA write and the log executor's buffer memory.
pub const BATCH_BYTES_MAX: u64 = 4 << 20;
/// Block devices of hypervisors (virtio, Xen): their `rotational` flag is a default, not a fact.
pub const VIRTUAL_DISK_PREFIXES: &[&str] = &["vd", "xvd"];
/// A flush of a spinning disk at least this slow (p50, µs) makes a batching delay worthwhile.
pub const SLOW_FLUSH_US: f64 = 1000.0;
/// Bounds of the batching delay on slow disks, µs.
pub const BATCH_DELAY_MICROS_MIN: u64 = 50;
pub const BATCH_DELAY_MICROS_MAX: u64 = 1000;
/// Size of a small write's log record, bytes (a 100-byte setData measured 228 B: header,
/// path, txn encoding).
pub const RECORD_BYTES: u64 = 256;
/// Records the data role keeps in flight to the log per `queue.depth` slot (the server's).
pub use ringkeeper_server::runtime::IN_FLIGHT_PER_QUEUE_SLOT;
/// Bounds of `batchCountMax` and `queue.depth`.
pub const BATCH_COUNT_MIN: u64 = 64;
pub const BATCH_COUNT_MAX: u64 = 65536;

/// What the caller knows that a probe cannot: how many servers share this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecommendOptions {
    pub servers_per_host: usize,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions { servers_per_host: 1 }
    }
}

/// Which CPU runs what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub network_cores: Vec<usize>,
    pub data_core: usize,
    pub log_core: usize,
    pub pin: bool,
    /// CPUs given no role: left to the OS, interrupts and other processes.
    pub os_cores: Vec<usize>,
}

impl Layout {
    /// Every CPU the layout names.
    pub fn cores_named(&self) -> BTreeSet<usize> {
        self.network_cores.iter().copied().chain([self.data_core, self.log_core]).collect()
    }
}

/// One zoo.cfg line and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

/// The lines `apply` writes, in order, plus what the layout leaves out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// `hostname, probe taken at <unix s>`: where the numbers come from.
    pub source: String,
    pub layout: Layout,
    pub settings: Vec<Setting>,
    /// Remarks that are no zoo.cfg line (CPUs left to the OS, skipped measurements).
    pub notes: Vec<String>,
}

/// Every key `recommend` writes (and `apply` therefore owns in a zoo.cfg).
pub const OWNED_KEYS: &[&str] = &[
    "ringkeeper.network.cores",
    "ringkeeper.data.core",
    "ringkeeper.log.core",
    "ringkeeper.pin",
    "ringkeeper.log.batchBytesMax",
    "ringkeeper.log.batchCountMax",
    "ringkeeper.log.batchDelayMicros",
    "ringkeeper.queue.depth",
    "ringkeeper.executors",
    "ringkeeper.zab.heartbeatMs",
    "ringkeeper.zab.peerTimeoutMs",
];

impl Recommendation {
    /// The zoo.cfg lines: a `# reason` comment line above each `key=value` (a properties file
    /// has no trailing comments).
    pub fn zoo_cfg_lines(&self) -> Vec<String> {
        self.settings
            .iter()
            .flat_map(|s| [format!("# {}", s.reason), format!("{}={}", s.key, s.value)])
            .collect()
    }

    /// The value recommended for `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.settings.iter().find(|s| s.key == key).map(|s| s.value.as_str())
    }
}

/// The NUMA node roles should stay on, and why.
fn preferred_node(probe: &Probe) -> (usize, String) {
    if probe.cpu.nodes.len() <= 1 {
        let node = probe.cpu.cpus[0].node;
        return (node, format!("one NUMA node ({node})"));
    }
    let busiest_nic = probe.nics.iter().filter(|n| n.numa_node.is_some()).max_by_key(|n| {
        (n.busiest_cpus().iter().map(|(_, c)| *c).sum::<u64>(), std::cmp::Reverse(n.name.clone()))
    });
    if let Some(nic) = busiest_nic {
        let node = nic.numa_node.expect("filtered");
        return (node, format!("NUMA node {node} holds NIC {}", nic.name));
    }
    if let Some((disk, node)) = probe.log_disk_info().and_then(|d| Some((d, d.numa_node?))) {
        let name = disk.device.clone().unwrap_or_else(|| disk.dev.clone());
        return (node, format!("NUMA node {node} holds the log disk {name}"));
    }
    let node = probe.cpu.cpus[0].node;
    (node, format!("no NIC or disk reports a NUMA node; node {node} of the first CPU"))
}

/// Physical cores of `cpus` (threads grouped by package and core id), in order of first CPU.
fn physical_cores(topology: &CpuTopology, cpus: &[usize]) -> Vec<Vec<usize>> {
    let mut cores: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for &id in cpus {
        let cpu = topology.cpu(id).expect("candidate CPUs come from the topology");
        let key = (cpu.package_id, cpu.core_id);
        match cores.iter_mut().find(|(k, _)| *k == key) {
            Some((_, threads)) => threads.push(id),
            None => cores.push((key, vec![id])),
        }
    }
    cores.into_iter().map(|(_, threads)| threads).collect()
}

/// NIC interrupts handled by each CPU, summed over every NIC.
fn nic_interrupts_by_cpu(probe: &Probe) -> std::collections::BTreeMap<usize, u64> {
    let mut totals = std::collections::BTreeMap::new();
    for nic in &probe.nics {
        for (cpu, count) in nic.busiest_cpus() {
            *totals.entry(cpu).or_insert(0) += count;
        }
    }
    totals
}

/// Measured round trip (p50, µs) between CPUs of this relation, if the probe has one.
fn measured_round_trip_us(probe: &Probe, relation: CoreRelation) -> Option<f64> {
    probe.core_latency.iter().find(|p| p.relation == relation).map(|p| p.round_trip.p50_us)
}

fn relation_cost(probe: &Probe, relation: CoreRelation) -> String {
    match measured_round_trip_us(probe, relation) {
        Some(us) => format!("{relation:?} round trip measured {us} µs p50"),
        None => format!("{relation:?}, not measured"),
    }
}

struct LayoutPlan {
    layout: Layout,
    reasons: LayoutReasons,
    notes: Vec<String>,
}

struct LayoutReasons {
    network: String,
    data: String,
    log: String,
    pin: String,
}

fn plan_layout(probe: &Probe, options: RecommendOptions) -> LayoutPlan {
    let topology = &probe.cpu;
    let mut notes = Vec::new();
    let (node, node_reason) = preferred_node(probe);
    let on_node: Vec<usize> = topology.cpus.iter().filter(|c| c.node == node).map(|c| c.id).collect();
    let mut candidates = if on_node.len() >= 3 || on_node.len() == topology.cpus.len() {
        on_node
    } else {
        notes.push(format!("{node_reason}, but it has only {} CPU(s): using every node", on_node.len()));
        topology.cpu_ids()
    };
    let isolated: Vec<usize> = candidates.iter().copied().filter(|c| topology.isolated.contains(c)).collect();
    let use_isolated = isolated.len() >= 2 && options.servers_per_host == 1;
    if use_isolated {
        candidates = isolated;
    } else if !topology.isolated.is_empty() {
        candidates.retain(|c| !topology.isolated.contains(c));
        notes.push(format!(
            "isolated CPUs {} left out (fewer than 2 on the node, or several servers per host): unpinned threads never run there",
            format_cpu_list(&topology.isolated)
        ));
    }
    if candidates.is_empty() {
        candidates = topology.cpu_ids();
    }

    let irq_by_cpu = nic_interrupts_by_cpu(probe);
    let irq_count =
        |core: &Vec<usize>| core.iter().map(|c| irq_by_cpu.get(c).copied().unwrap_or(0)).sum::<u64>();
    let mut cores = physical_cores(topology, &candidates);
    // The physical core handling most NIC interrupts first (stable: ties keep CPU order).
    cores.sort_by_key(|core| std::cmp::Reverse(irq_count(core)));
    let irq_note = if irq_by_cpu.is_empty() {
        "no NIC interrupt counts".to_owned()
    } else if irq_count(&cores[0]) == 0 {
        "NIC interrupts land on other CPUs".to_owned()
    } else {
        format!("NIC interrupts land mostly on CPU {}", format_cpu_list(&cores[0]))
    };
    let placement_reason =
        if use_isolated { format!("{node_reason}; isolated CPUs") } else { node_reason.clone() };

    let mut os_cores: Vec<usize> =
        topology.cpu_ids().into_iter().filter(|c| !candidates.contains(c)).collect();
    let (network_cores, data_core, log_core, reasons);
    if candidates.len() == 1 {
        let only = candidates[0];
        (network_cores, data_core, log_core) = (vec![only], only, only);
        reasons = LayoutReasons {
            network: format!("one CPU ({placement_reason}): every role shares CPU {only}"),
            data: "data/ZAB role shares the only CPU".into(),
            log: "log role shares the only CPU (it mostly waits on the disk)".into(),
            pin: String::new(),
        };
    } else if cores.len() <= 2 {
        // Network on the first physical core (where NIC interrupts land), data + log together.
        let (network_threads, shared) = if cores.len() == 1 {
            (vec![cores[0][0]], cores[0][1])
        } else {
            os_cores.extend(cores[1].iter().skip(1));
            (cores[0].clone(), cores[1][0])
        };
        (network_cores, data_core, log_core) = (network_threads, shared, shared);
        reasons = LayoutReasons {
            network: format!(
                "{} CPUs ({placement_reason}; {irq_note}): network on CPU {}, next to the interrupts it serves",
                candidates.len(),
                format_cpu_list(&network_cores)
            ),
            data: format!("data/ZAB role on CPU {shared}, apart from the network role that feeds it"),
            log: format!(
                "log role shares CPU {shared} with the data role: it mostly waits on the disk, and the two talk on every write ({})",
                relation_cost(probe, CoreRelation::SameCpu)
            ),
            pin: String::new(),
        };
    } else {
        // Isolated CPUs get no OS work anyway: nothing to reserve among them.
        let reserve = if !use_isolated && cores.len() >= OS_RESERVE_FROM_PHYSICAL_CORES {
            (cores.len() / PHYSICAL_CORES_PER_OS_CORE).max(1)
        } else {
            0
        };
        let reserved: Vec<Vec<usize>> = cores.drain(..reserve).collect();
        os_cores.extend(reserved.iter().flatten());
        // On 3-4 cores the NIC-interrupt core is kept for the network role.
        let interrupt_core = (reserve == 0 && irq_count(&cores[0]) > 0).then(|| cores.remove(0));
        // Remaining cores in CPU order: data on the first, log on the closest other core.
        cores.sort_by_key(|core| core[0]);
        let data = cores.remove(0);
        let closest = (0..cores.len())
            .min_by_key(|&i| (CoreRelation::of(topology, data[0], cores[i][0]), cores[i][0]))
            .expect("at least two physical cores remain");
        let log = cores.remove(closest);
        let relation = CoreRelation::of(topology, data[0], log[0]);
        os_cores.extend(data.iter().skip(1).chain(log.iter().skip(1)));
        // One thread per physical core first, then siblings, up to the cap.
        let network_where = match &interrupt_core {
            Some(core) => {
                format!("network on CPU {} (where NIC interrupts land) and the remaining cores", core[0])
            }
            None => "network on the remaining cores".to_owned(),
        };
        cores.splice(0..0, interrupt_core);
        let mut network: Vec<usize> = cores.iter().map(|c| c[0]).collect();
        network.extend(cores.iter().flat_map(|c| c.iter().skip(1)));
        if network.len() > NETWORK_CORES_MAX {
            os_cores.extend(network.drain(NETWORK_CORES_MAX..));
            notes.push(format!(
                "network limited to {NETWORK_CORES_MAX} CPUs: one data core orders every request, more network executors only add queues for it"
            ));
        }
        network.sort_unstable();
        (network_cores, data_core, log_core) = (network, data[0], log[0]);
        let smt = if topology.has_smt() {
            "; its SMT sibling stays idle so the role has the whole core"
        } else {
            ""
        };
        let reserve_reason = if reserve > 0 {
            format!(
                "; CPU {} left to the OS and NIC interrupts ({irq_note})",
                format_cpu_list(&reserved.concat())
            )
        } else {
            format!("; {irq_note}")
        };
        reasons = LayoutReasons {
            network: format!(
                "{} physical cores ({placement_reason}{reserve_reason}): {network_where}, one thread per physical core first",
                reserve + 2 + cores.len(),
            ),
            data: format!("data/ZAB role alone on CPU {}{smt}", data[0]),
            log: format!(
                "log role on CPU {}, the closest core to the data role, which it answers on every write ({}){smt}",
                log[0],
                relation_cost(probe, relation)
            ),
            pin: String::new(),
        };
    }
    let mut reasons = reasons;
    let shared =
        network_cores.contains(&data_core) || network_cores.contains(&log_core) || data_core == log_core;
    let pin = use_isolated || (candidates.len() > 1 && options.servers_per_host == 1);
    reasons.pin = if use_isolated {
        "roles run on isolated CPUs, which only pinned threads use".into()
    } else if options.servers_per_host > 1 {
        format!(
            "{} servers share this host: unpinned roles let the scheduler spread them",
            options.servers_per_host
        )
    } else if candidates.len() == 1 {
        "one CPU: there is nowhere else to run, pinning changes nothing".into()
    } else if shared {
        "one server on this host: pinned, each role stays where placed (data and log share a CPU by design); give --servers-per-host when several servers share the host".into()
    } else {
        "every role has its own CPU and one server runs here: pinning keeps caches warm".into()
    };
    os_cores.sort_unstable();
    os_cores.dedup();
    if !os_cores.is_empty() {
        notes.push(format!(
            "CPUs left to the OS, interrupts and other processes: {}",
            format_cpu_list(&os_cores)
        ));
    }
    LayoutPlan { layout: Layout { network_cores, data_core, log_core, pin, os_cores }, reasons, notes }
}

/// Group-commit limits and queue depth with reasons.
struct Batching {
    bytes_max: u64,
    count_max: u64,
    delay_micros: u64,
    queue_depth: usize,
    reasons: [String; 4],
}

/// `latency = fixed_us + per_byte_us * bytes`, fitted by least squares to the p50s of a
/// batch curve: the fixed cost of a flush and what each byte adds to it. A fit over every
/// size is steadier than any single point on a disk other processes share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlushCostFit {
    pub fixed_us: f64,
    pub per_byte_us: f64,
}

impl FlushCostFit {
    /// Fits `curve` (non-empty). A falling curve (noise) fits as a flat one at the mean p50; a
    /// negative intercept becomes the fastest p50.
    pub fn of(curve: &[BatchPoint]) -> FlushCostFit {
        let n = curve.len() as f64;
        let mean_x = curve.iter().map(|p| p.batch_bytes as f64).sum::<f64>() / n;
        let mean_y = curve.iter().map(|p| p.latency.p50_us).sum::<f64>() / n;
        let sxx: f64 = curve.iter().map(|p| (p.batch_bytes as f64 - mean_x).powi(2)).sum();
        let sxy: f64 =
            curve.iter().map(|p| (p.batch_bytes as f64 - mean_x) * (p.latency.p50_us - mean_y)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        if slope <= 0.0 {
            // Larger batches did not take longer (noise from other I/O): no per-byte cost seen.
            return FlushCostFit { fixed_us: mean_y, per_byte_us: 0.0 };
        }
        let fastest = curve.iter().map(|p| p.latency.p50_us).fold(f64::MAX, f64::min);
        let intercept = mean_y - slope * mean_x;
        FlushCostFit { fixed_us: if intercept > 0.0 { intercept } else { fastest }, per_byte_us: slope }
    }

    /// The batch size whose transfer adds `fraction` of the fixed cost; `None` when bytes
    /// cost nothing measurable (flat or falling curve).
    pub fn bytes_per_extra_fixed_cost(&self, fraction: f64) -> Option<f64> {
        (self.per_byte_us > 0.0).then(|| fraction * self.fixed_us / self.per_byte_us)
    }
}

fn plan_batching(probe: &Probe) -> Batching {
    let defaults = |why: &str| Batching {
        bytes_max: DEFAULT_LOG_BATCH_BYTES_MAX,
        count_max: DEFAULT_LOG_BATCH_COUNT_MAX as u64,
        delay_micros: DEFAULT_LOG_BATCH_DELAY_MICROS,
        queue_depth: DEFAULT_QUEUE_DEPTH,
        reasons: [why, why, why, why].map(|w| format!("{w}: server default kept")),
    };
    let Some(disk) = &probe.log_disk else { return defaults("no disk measurement in the probe") };
    let curve = &disk.batch_curve;
    if curve.is_empty() {
        return defaults("no batch curve in the probe");
    }
    let fit = FlushCostFit::of(curve);
    let kib = |b: u64| b / 1024;
    let largest = curve.iter().map(|p| p.batch_bytes as u64).max().expect("non-empty");
    // The data role keeps at most IN_FLIGHT_PER_QUEUE_SLOT x queue.depth records in flight to
    // the log: a batch can never be larger, and a cap below it cuts full batches.
    let queue_depth = DEFAULT_QUEUE_DEPTH;
    let window_records = (IN_FLIGHT_PER_QUEUE_SLOT * queue_depth) as u64;
    let window_bytes = window_records * RECORD_BYTES;
    let flush_us = |bytes: u64| fit.fixed_us + fit.per_byte_us * bytes as f64;
    // The batch whose flush stays within LATENCY_STRETCH_MAX of the fixed cost, as far as measured.
    let near_floor_bytes = fit
        .bytes_per_extra_fixed_cost(LATENCY_STRETCH_MAX - 1.0)
        .map_or(largest, |b| (b as u64).min(largest));
    let bytes_max = window_bytes.max(near_floor_bytes).next_power_of_two().min(BATCH_BYTES_MAX);
    let bytes_reason = format!(
        "one batch holds a full in-flight window ({window_records} records of ~{RECORD_BYTES} B = {} KiB; a cap below it splits each full batch into a full and a tiny flush) and the {} KiB that flush within {LATENCY_STRETCH_MAX}x the fixed cost; fitted flush cost {:.0} µs + {:.0} µs per MiB, so a full batch flushes in ~{:.0} µs",
        kib(window_bytes),
        kib(near_floor_bytes),
        fit.fixed_us,
        fit.per_byte_us * (1u64 << 20) as f64,
        flush_us(bytes_max),
    );
    let count_max = window_records.clamp(BATCH_COUNT_MIN, BATCH_COUNT_MAX);
    let count_reason = format!(
        "the data role keeps at most {IN_FLIGHT_PER_QUEUE_SLOT} x queue.depth = {count_max} records in flight to the log: all of them may share one flush"
    );
    let queue_reason = format!(
        "server default kept: its in-flight window ({window_records} records, ~{} KiB) flushes in ~{:.0} µs on this disk, {:.1}x the fixed flush cost",
        kib(window_bytes),
        flush_us(window_bytes),
        flush_us(window_bytes) / fit.fixed_us
    );
    let flush = &disk.fdatasync;
    let info = probe.log_disk_info();
    let device = info.and_then(|d| d.device.clone()).unwrap_or_else(|| "the log disk".into());
    let virtual_disk = VIRTUAL_DISK_PREFIXES.iter().any(|p| device.starts_with(p));
    let spinning = info.and_then(|d| d.rotational) == Some(true) && !virtual_disk;
    let (delay_micros, delay_reason) = if spinning && flush.p50_us >= SLOW_FLUSH_US {
        let delay =
            ((flush.p50_us / 10.0).round() as u64).clamp(BATCH_DELAY_MICROS_MIN, BATCH_DELAY_MICROS_MAX);
        let reason = format!(
            "{device} spins and a flush is slow (durable 4 KiB write p50 {} µs, p99 {} µs): waiting a tenth of a flush lets more writes share each seek; a lone writer pays at most that tenth",
            flush.p50_us, flush.p99_us
        );
        (delay, reason)
    } else {
        let what = if virtual_disk {
            format!(
                "{device} is a virtual disk (its rotational flag says nothing; flush p50 {} µs)",
                flush.p50_us
            )
        } else {
            format!("{device} does not spin or flushes fast (durable 4 KiB write p50 {} µs)", flush.p50_us)
        };
        let reason = format!(
            "{what}: the next batch gathers while one syncs, and a wait adds its whole length to a lone writer (+~400 µs p50 for write:1x1 with a 385 µs delay on the dev VM)"
        );
        (0, reason)
    };
    Batching {
        bytes_max,
        count_max,
        delay_micros,
        queue_depth,
        reasons: [bytes_reason, count_reason, delay_reason, queue_reason],
    }
}

/// `ringkeeper.executors`: an executor per role only for one pinned server with a CPU for
/// each role; otherwise every role on one executor (see the server's `Executors`).
fn plan_executors(layout: &Layout, options: RecommendOptions) -> Setting {
    let (value, reason) = if layout.pin && options.servers_per_host == 1 && layout.cores_named().len() >= 3 {
        ("per-role", "one pinned server with a CPU for each role: the roles work in parallel, worth a cross-core hop per request stage")
    } else {
        ("one", "roles share CPUs here: one executor per server spares every request its cross-thread wake-ups (less CPU per write, a faster lone writer)")
    };
    Setting { key: "ringkeeper.executors", value: value.into(), reason: reason.into() }
}

/// The recommendation for `probe`.
pub fn recommend(probe: &Probe, options: RecommendOptions) -> Recommendation {
    let LayoutPlan { layout, reasons, mut notes } = plan_layout(probe, options);
    let batching = plan_batching(probe);
    if probe.core_latency.is_empty() {
        notes.push(
            "no cross-core measurement in the probe: core distances come from the topology alone".into(),
        );
    }
    let [bytes_reason, count_reason, delay_reason, queue_reason] = batching.reasons;
    let setting = |key: &'static str, value: String, reason: String| Setting { key, value, reason };
    let settings = vec![
        setting("ringkeeper.network.cores", format_cpu_list(&layout.network_cores), reasons.network),
        setting("ringkeeper.data.core", layout.data_core.to_string(), reasons.data),
        setting("ringkeeper.log.core", layout.log_core.to_string(), reasons.log),
        setting("ringkeeper.pin", layout.pin.to_string(), reasons.pin),
        setting("ringkeeper.log.batchBytesMax", batching.bytes_max.to_string(), bytes_reason),
        setting("ringkeeper.log.batchCountMax", batching.count_max.to_string(), count_reason),
        setting("ringkeeper.log.batchDelayMicros", batching.delay_micros.to_string(), delay_reason),
        setting("ringkeeper.queue.depth", batching.queue_depth.to_string(), queue_reason),
        plan_executors(&layout, options),
        setting(
            "ringkeeper.zab.heartbeatMs",
            (FAST_FAILOVER_PEER_TIMEOUT_MS / HEARTBEATS_PER_PEER_TIMEOUT).to_string(),
            format!(
                "leader pings {HEARTBEATS_PER_PEER_TIMEOUT} times per peer timeout: a peer link is judged silent only after that many went unanswered"
            ),
        ),
        setting(
            "ringkeeper.zab.peerTimeoutMs",
            FAST_FAILOVER_PEER_TIMEOUT_MS.to_string(),
            "fast failover: a leader whose host vanishes (no TCP reset) is replaced within about a second, \
             not after tickTime x syncLimit (10 s for 2000 x 5, Apache's detection and the default without this line); \
             keep peer round trips well under it"
                .into(),
        ),
    ];
    debug_assert_eq!(settings.iter().map(|s| s.key).collect::<Vec<_>>(), OWNED_KEYS);
    Recommendation {
        source: format!("{}, probe taken at {} (unix s)", probe.hostname, probe.taken_at_unix_s),
        layout,
        settings,
        notes,
    }
}
