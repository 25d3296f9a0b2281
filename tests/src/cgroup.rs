//! CPU isolation of an ensemble's server processes ([`crate::ensemble::EnsemblePlan::isolation`]):
//! `shared` (every server process a plain child of the harness, all of them competing thread
//! by thread for the machine's cores) or `equal` (each server process in its own cgroup with
//! the same CPU quota — the stand-in for separate, equal hosts).
//!
//! `equal` works with plain files, on either cgroup version (whichever offers the `cpu`
//! controller; v2 preferred):
//! - v2: a directory under the cgroup2 mount, `cpu.max` = `QUOTA PERIOD` (µs);
//! - v1: a directory under the `cpu` hierarchy, `cpu.cfs_period_us` and `cpu.cfs_quota_us`.
//!
//! A process joins by its pid written to `cgroup.procs` (all its threads move); its children
//! and later threads inherit the group. A [`CpuLimit`] removes its directory when dropped
//! (after its processes have been killed), and [`remove_live_limits`] does so on ctrl-c. When
//! neither version can be used, [`CpuLimit::create`] fails naming what is missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::HarnessError;

/// How server processes share the machine's CPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Isolation {
    /// Plain children of the bench: the busiest server may take every core.
    Shared,
    /// Each server process in its own cgroup, limited to `cpus` cores (e.g. 0.5) over a
    /// quota period of `period`.
    Equal { cpus: f64, period: Duration },
}

impl Isolation {
    /// `shared` or `equal, 0.5 CPU per server (quota period 10 ms)`.
    pub fn describe(&self) -> String {
        match self {
            Isolation::Shared => "shared (servers compete for all cores)".into(),
            Isolation::Equal { cpus, period } => format!(
                "equal ({cpus} CPU per server process, cgroup quota period {} ms)",
                period.as_millis()
            ),
        }
    }
}

/// Where cgroups with a CPU quota can be made on this machine.
#[derive(Debug, Clone, PartialEq)]
enum Hierarchy {
    /// A cgroup2 mount whose `cgroup.controllers` lists `cpu`.
    V2(PathBuf),
    /// A cgroup v1 mount with the `cpu` controller (`cpu.cfs_quota_us` present).
    V1(PathBuf),
}

/// Finds the cgroup v2 mount with the `cpu` controller, else the v1 `cpu` hierarchy, from
/// the text of `/proc/self/mounts`; the error says what was looked for and not found.
fn find_hierarchy(
    mounts: &str,
    exists: impl Fn(&Path) -> bool,
    read: impl Fn(&Path) -> String,
) -> Result<Hierarchy, String> {
    let mut looked = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, kind, ..] = fields[..] else { continue };
        let dir = PathBuf::from(dir);
        if kind == "cgroup2" {
            let controllers = read(&dir.join("cgroup.controllers"));
            if controllers.split_whitespace().any(|c| c == "cpu") {
                return Ok(Hierarchy::V2(dir));
            }
            looked.push(format!(
                "cgroup v2 at {} offers no cpu controller (cgroup.controllers: {:?})",
                dir.display(),
                controllers.trim()
            ));
        }
    }
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, kind, options, ..] = fields[..] else { continue };
        if kind == "cgroup" && options.split(',').any(|o| o == "cpu") {
            let dir = PathBuf::from(dir);
            if exists(&dir.join("cpu.cfs_quota_us")) {
                return Ok(Hierarchy::V1(dir));
            }
            looked.push(format!("cgroup v1 cpu hierarchy at {} has no cpu.cfs_quota_us (kernel without CFS bandwidth control)", dir.display()));
        }
    }
    if looked.is_empty() {
        looked.push(
            "no cgroup2 mount and no cgroup v1 mount with the cpu controller in /proc/self/mounts".into(),
        );
    }
    Err(looked.join("; "))
}

/// Directories of every live [`CpuLimit`], for [`remove_live_limits`].
static LIVE_LIMITS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn set_live(dir: &Path, alive: bool) {
    let mut set = LIVE_LIMITS.lock().unwrap_or_else(|e| e.into_inner());
    if alive {
        set.insert(dir.to_path_buf());
    } else {
        set.remove(dir);
    }
}

/// How long removing an emptied cgroup is retried (the kernel lets a killed process go a
/// moment after it was reaped).
const REMOVE_RETRY_FOR: Duration = Duration::from_secs(2);

fn remove_group(dir: &Path) {
    let deadline = Instant::now() + REMOVE_RETRY_FOR;
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if dir.exists() {
        eprintln!("warning: could not remove cgroup {} (a process still in it?)", dir.display());
    }
}

/// Removes the cgroups of every live [`CpuLimit`]: for a ctrl-c handler, after the servers
/// have been killed, where no destructor runs.
pub fn remove_live_limits() {
    for dir in std::mem::take(&mut *LIVE_LIMITS.lock().unwrap_or_else(|e| e.into_inner())) {
        remove_group(&dir);
    }
}

/// One cgroup with a CPU quota; removed when dropped.
#[derive(Debug)]
pub struct CpuLimit {
    dir: PathBuf,
}

impl CpuLimit {
    /// Creates the cgroup `name` (made unique with this process's id) limited to `cpus`
    /// cores over `period`.
    pub fn create(name: &str, cpus: f64, period: Duration) -> Result<CpuLimit, HarnessError> {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(HarnessError::Config(format!("--cpu-per-server {cpus}: must be > 0")));
        }
        let period_us = period.as_micros() as u64;
        if !(1_000..=1_000_000).contains(&period_us) {
            return Err(HarnessError::Config("the cgroup quota period must be 1 ms ..= 1 s".into()));
        }
        let quota_us = ((cpus * period_us as f64).round() as u64).max(1_000);
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let hierarchy =
            find_hierarchy(&mounts, Path::exists, |p| std::fs::read_to_string(p).unwrap_or_default())
                .map_err(|why| {
                    HarnessError::NotSupported(format!(
                    "--isolation equal needs a cgroup with a CPU quota, and none can be made here: {why} \
                     (use --isolation shared, or mount the cpu controller)"
                ))
                })?;
        let root = match &hierarchy {
            Hierarchy::V2(root) | Hierarchy::V1(root) => root,
        };
        let dir = root.join(format!("rk-harness-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| {
            HarnessError::NotSupported(format!(
                "--isolation equal: cannot create cgroup {} ({e}; creating cgroups needs root or a delegated subtree)",
                dir.display()
            ))
        })?;
        set_live(&dir, true);
        let limit = CpuLimit { dir };
        let write = |file: &str, value: String| {
            let path = limit.dir.join(file);
            std::fs::write(&path, &value)
                .map_err(HarnessError::io_at(format!("writing {value:?} to {}", path.display())))
        };
        match hierarchy {
            Hierarchy::V2(_) => write("cpu.max", format!("{quota_us} {period_us}"))?,
            Hierarchy::V1(_) => {
                write("cpu.cfs_period_us", period_us.to_string())?;
                write("cpu.cfs_quota_us", quota_us.to_string())?;
            }
        }
        Ok(limit)
    }

    /// Moves process `pid` (all its threads) into this cgroup.
    pub fn add(&self, pid: u32) -> Result<(), HarnessError> {
        let path = self.dir.join("cgroup.procs");
        std::fs::write(&path, pid.to_string())
            .map_err(HarnessError::io_at(format!("moving pid {pid} into {}", path.display())))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        remove_group(&self.dir);
        set_live(&self.dir, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
        cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0\n\
        cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";

    #[test]
    fn v2_is_used_only_when_it_offers_cpu_else_the_v1_cpu_hierarchy() {
        let no_cpu_in_v2 = find_hierarchy(HYBRID, |_| true, |_| "memory pids\n".into());
        assert_eq!(no_cpu_in_v2, Ok(Hierarchy::V1("/sys/fs/cgroup/cpu".into())));
        let v2 = find_hierarchy(HYBRID, |_| true, |_| "cpuset cpu io\n".into());
        assert_eq!(v2, Ok(Hierarchy::V2("/sys/fs/cgroup/unified".into())));
        let combined = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n";
        assert_eq!(
            find_hierarchy(combined, |_| true, |_| String::new()),
            Ok(Hierarchy::V1("/sys/fs/cgroup/cpu,cpuacct".into()))
        );
    }

    #[test]
    fn neither_version_usable_names_what_is_missing() {
        let why = find_hierarchy(HYBRID, |_| false, |_| "memory\n".into()).unwrap_err();
        assert!(why.contains("no cpu controller") && why.contains("cpu.cfs_quota_us"), "{why}");
        let none = find_hierarchy("proc /proc proc rw 0 0\n", |_| true, |_| String::new()).unwrap_err();
        assert!(none.contains("no cgroup2 mount"), "{none}");
    }
}
