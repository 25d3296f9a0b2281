//! The production checklist: one [`CheckItem`] per concern, each with a verdict and why.
//!
//! In: the zoo.cfg (for dataDir, dataLogDir and the batch size that sizes io_uring memory),
//! optionally a probe file, and the live host (/proc, /sys, rlimits). Out: [`CheckItem`]s in a
//! fixed order. The verdict rules are pure functions of the values read (tested directly);
//! [`run_checks`] only gathers those values. A `fail` means the host loses durability or will
//! not run the server; a `warn` costs latency or throughput.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringkeeper_server::config::Config;
use serde::Serialize;

use crate::probe::disk::{read_disk, DiskInfo};
use crate::probe::topology::read_topology;
use crate::probe::Probe;

/// How an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        })
    }
}

/// One checklist line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    pub item: String,
    pub verdict: Verdict,
    pub why: String,
}

fn item(name: &str, verdict: Verdict, why: impl Into<String>) -> CheckItem {
    CheckItem { item: name.to_owned(), verdict, why: why.into() }
}

/// Open-file limit below which a busy server runs out of descriptors (connections + segments).
pub const OPEN_FILES_RECOMMENDED: u64 = 65536;
/// A probe older than this may no longer describe the host.
pub const PROBE_AGE_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// Swappiness at or below which swap is left for emergencies.
pub const SWAPPINESS_MAX: u32 = 10;
/// `CAP_IPC_LOCK`: pinned memory is not limited by RLIMIT_MEMLOCK.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// A data or log directory's filesystem.
pub fn check_filesystem(name: &str, disk: &DiskInfo) -> CheckItem {
    let fs = &disk.fs_type;
    let at = format!("{} is on {fs} ({})", disk.path.display(), disk.mount_point.display());
    if disk.is_volatile() {
        item(name, Verdict::Fail, format!("{at}: memory-backed, fdatasync makes nothing durable and a reboot loses every acknowledged write"))
    } else if disk.is_network() {
        item(name, Verdict::Warn, format!("{at}: a network filesystem, durability depends on the server's flush semantics and latency on the network"))
    } else {
        item(name, Verdict::Ok, format!("{at}, device {}", disk.device.as_deref().unwrap_or(&disk.dev)))
    }
}

/// Log and snapshots on one disk compete for it under heavy write load.
pub fn check_log_and_snapshot_disks(data: &DiskInfo, log: Option<&DiskInfo>) -> CheckItem {
    let name = "log and snapshot disks";
    match log {
        None => item(name, Verdict::Warn, format!(
            "dataLogDir is not set: log and snapshots share {} on {}; under heavy writes a snapshot competes with every log fdatasync",
            data.path.display(), data.device.as_deref().unwrap_or(&data.dev))),
        Some(log) if log.dev == data.dev || (log.device.is_some() && log.device == data.device) => item(name, Verdict::Warn, format!(
            "dataDir and dataLogDir are on the same disk ({}): under heavy writes a snapshot competes with every log fdatasync",
            log.device.as_deref().unwrap_or(&log.dev))),
        Some(log) => item(name, Verdict::Ok, format!(
            "log on {}, snapshots on {}", log.device.as_deref().unwrap_or(&log.dev), data.device.as_deref().unwrap_or(&data.dev))),
    }
}

/// Swap devices in use (from `/proc/swaps`) and `vm.swappiness`.
pub fn check_swap(swap_devices: usize, swappiness: Option<u32>) -> CheckItem {
    let name = "swap";
    match (swap_devices, swappiness) {
        (0, _) => item(name, Verdict::Ok, "no swap: the tree and sessions stay in memory"),
        (n, Some(s)) if s <= SWAPPINESS_MAX => {
            item(name, Verdict::Ok, format!("{n} swap device(s), vm.swappiness={s}: kept for emergencies"))
        }
        (n, s) => item(name, Verdict::Warn, format!(
            "{n} swap device(s) with vm.swappiness={}: a swapped-out tree page stalls requests for a disk read and can expire sessions; set vm.swappiness<={SWAPPINESS_MAX} or turn swap off",
            s.map_or("unknown".into(), |s| s.to_string()))),
    }
}

/// `/sys/kernel/mm/transparent_hugepage/enabled`.
pub fn check_transparent_huge_pages(enabled: Option<&str>) -> CheckItem {
    let name = "transparent huge pages";
    let active = enabled.and_then(|t| Some(t[t.find('[')? + 1..t.find(']')?].to_owned()));
    match active.as_deref() {
        Some("always") => item(
            name,
            Verdict::Warn,
            "THP=always: khugepaged compaction causes latency spikes; use madvise or never",
        ),
        Some(mode) => item(name, Verdict::Ok, format!("THP={mode}")),
        None => item(name, Verdict::Ok, "no THP control in sysfs"),
    }
}

/// The CPU frequency governor.
pub fn check_governor(governor: Option<&str>) -> CheckItem {
    let name = "CPU frequency governor";
    match governor {
        None => {
            item(name, Verdict::Ok, "no cpufreq: the frequency is fixed by the platform (VM or firmware)")
        }
        Some("performance") => item(name, Verdict::Ok, "performance"),
        Some(g) => item(
            name,
            Verdict::Warn,
            format!(
                "{g}: cores clock down between requests, adding latency to each wake-up; use performance"
            ),
        ),
    }
}

/// io_uring memory the server will register with this config (log executor + the others).
pub fn io_uring_memory_needed(config: &Config) -> u64 {
    use ringkeeper_server::runtime::{log_io_memory_bytes, EXECUTOR_IO_MEMORY_BYTES};
    let log = log_io_memory_bytes(config.log_batch_bytes_max.min(usize::MAX as u64) as usize) as u64;
    let others = config.network_cores.len().max(1) as u64 + 1;
    log + others * EXECUTOR_IO_MEMORY_BYTES as u64
}

/// RLIMIT_MEMLOCK against the io_uring memory needed (`None` limit = unlimited).
pub fn check_memlock(limit_bytes: Option<u64>, needed_bytes: u64, cap_ipc_lock: bool) -> CheckItem {
    let name = "memlock limit (io_uring)";
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1 << 20) as f64);
    match limit_bytes {
        _ if cap_ipc_lock => item(name, Verdict::Ok, format!("CAP_IPC_LOCK: registered buffers are not limited (server needs {})", mib(needed_bytes))),
        None => item(name, Verdict::Ok, "unlimited"),
        Some(l) if l >= needed_bytes => item(name, Verdict::Ok, format!("{} ≥ {} the server registers", mib(l), mib(needed_bytes))),
        Some(l) => item(name, Verdict::Warn, format!(
            "{} < {} the server registers for io_uring buffers: raise `ulimit -l` (LimitMEMLOCK= in systemd)", mib(l), mib(needed_bytes))),
    }
}

/// RLIMIT_NOFILE (soft).
pub fn check_open_files(soft_limit: Option<u64>) -> CheckItem {
    let name = "open-file limit";
    match soft_limit {
        None => item(name, Verdict::Ok, "unlimited"),
        Some(n) if n >= OPEN_FILES_RECOMMENDED => item(name, Verdict::Ok, format!("{n}")),
        Some(n) => item(name, Verdict::Warn, format!(
            "{n} < {OPEN_FILES_RECOMMENDED}: every client connection and log segment holds a descriptor; raise `ulimit -n` (LimitNOFILE=)")),
    }
}

/// The current clock source.
pub fn check_clocksource(current: Option<&str>) -> CheckItem {
    let name = "clock source";
    match current {
        Some(c @ ("tsc" | "kvm-clock" | "arch_sys_counter" | "hyperv_clocksource_tsc_page")) => {
            item(name, Verdict::Ok, format!("{c}: clock reads stay in user space (vDSO)"))
        }
        Some(c) => item(name, Verdict::Warn, format!(
            "{c}: every clock read (timers, latency accounting) is a slow system call or port read; prefer tsc")),
        None => item(name, Verdict::Warn, "clock source unknown"),
    }
}

/// How old the probe is and whether it describes this host.
pub fn check_probe_age(probe: Option<(&Path, &Probe)>, host_cpus: usize, host_kernel: &str) -> CheckItem {
    let name = "time since last probe";
    let Some((path, probe)) = probe else {
        return item(
            name,
            Verdict::Warn,
            "no probe file given (--probe): run `ringkeeper-tune probe` on this host",
        );
    };
    let age = probe.age();
    let days = age.as_secs() / 86400;
    let hours = age.as_secs() / 3600;
    let at = format!(
        "{} is {}",
        path.display(),
        if days > 0 { format!("{days} day(s) old") } else { format!("{hours} hour(s) old") }
    );
    if probe.cpu.cpus.len() != host_cpus {
        item(
            name,
            Verdict::Warn,
            format!("{at} and lists {} CPUs; this host has {host_cpus}: probe again", probe.cpu.cpus.len()),
        )
    } else if probe.kernel != host_kernel {
        item(
            name,
            Verdict::Warn,
            format!("{at} and was taken on kernel {} (now {host_kernel}): probe again", probe.kernel),
        )
    } else if age > PROBE_AGE_MAX {
        item(name, Verdict::Warn, format!("{at}: disks age and firmware changes; probe again"))
    } else {
        item(name, Verdict::Ok, at)
    }
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

fn has_cap_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim().to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK_BIT) != 0)
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// `dir`, or its nearest existing ancestor (the server creates missing directories there).
fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.exists()).unwrap_or(Path::new(".")).to_path_buf()
}

/// What the checklist looks at besides the host itself.
pub struct CheckInputs {
    pub config: Config,
    pub probe: Option<(PathBuf, Probe)>,
}

/// Runs every check on this host.
pub fn run_checks(inputs: &CheckInputs) -> Vec<CheckItem> {
    let config = &inputs.config;
    let mut items = Vec::new();
    let data = read_disk("dataDir", &nearest_existing(&config.data_dir));
    let log = config.data_log_dir.as_ref().map(|d| read_disk("dataLogDir", &nearest_existing(d)));
    match &data {
        Ok(d) => items.push(check_filesystem("dataDir filesystem", d)),
        Err(e) => items.push(item("dataDir filesystem", Verdict::Fail, e.to_string())),
    }
    match &log {
        Some(Ok(l)) => items.push(check_filesystem("dataLogDir filesystem", l)),
        Some(Err(e)) => items.push(item("dataLogDir filesystem", Verdict::Fail, e.to_string())),
        None => {}
    }
    if let Ok(d) = &data {
        items.push(check_log_and_snapshot_disks(d, log.as_ref().and_then(|l| l.as_ref().ok())));
    }
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let swappiness = read_trimmed("/proc/sys/vm/swappiness").and_then(|s| s.parse().ok());
    items.push(check_swap(swaps.lines().skip(1).filter(|l| !l.trim().is_empty()).count(), swappiness));
    items.push(check_transparent_huge_pages(
        read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled").as_deref(),
    ));
    let topology = read_topology(Path::new("/sys")).ok();
    items.push(check_governor(topology.as_ref().and_then(|t| t.governor.as_deref())));
    items.push(check_memlock(
        rlimit(libc::RLIMIT_MEMLOCK),
        io_uring_memory_needed(config),
        has_cap_ipc_lock(),
    ));
    items.push(check_open_files(rlimit(libc::RLIMIT_NOFILE)));
    items.push(check_clocksource(
        read_trimmed("/sys/devices/system/clocksource/clocksource0/current_clocksource").as_deref(),
    ));
    let kernel = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
    let host_cpus = topology.map_or(0, |t| t.cpus.len());
    items.push(check_probe_age(
        inputs.probe.as_ref().map(|(p, probe)| (p.as_path(), probe)),
        host_cpus,
        &kernel,
    ));
    items
}

/// The worst verdict of `items` (`Ok` when empty).
pub fn worst(items: &[CheckItem]) -> Verdict {
    items.iter().map(|i| i.verdict).max().unwrap_or(Verdict::Ok)
}
