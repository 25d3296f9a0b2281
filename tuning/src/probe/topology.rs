//! CPU topology from sysfs: online CPUs, their physical core and package, SMT siblings, NUMA
//! node, the kernel's isolated CPUs and the frequency governor.
//!
//! In: a sysfs root (`/sys` on a live host; tests may hand another tree). Out: a
//! [`CpuTopology`], serialisable into the probe file. Missing files degrade to defaults
//! (package 0, node 0, no siblings, no governor) instead of failing, because VMs and
//! containers hide parts of sysfs; the CPU list itself is required.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TuneError;

/// One logical CPU (what zoo.cfg's core ids name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Logical CPU id (`cpuN`).
    pub id: usize,
    /// `topology/physical_package_id` (socket).
    pub package_id: usize,
    /// `topology/core_id`: logical CPUs sharing package and core id are SMT siblings.
    pub core_id: usize,
    /// NUMA node holding this CPU.
    pub node: usize,
    /// `topology/thread_siblings_list`, this CPU included.
    pub siblings: Vec<usize>,
}

/// The host's CPUs as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTopology {
    /// Online CPUs, ascending by id.
    pub cpus: Vec<Cpu>,
    /// `isolated` (isolcpus=): CPUs the scheduler leaves alone unless a thread is pinned there.
    pub isolated: Vec<usize>,
    /// `scaling_governor` of the online CPUs (`"performance"`, `"mixed: ..."`), if cpufreq exists.
    pub governor: Option<String>,
    /// NUMA node ids with at least one online CPU.
    pub nodes: Vec<usize>,
}

impl CpuTopology {
    /// The CPU with logical id `id`, if online.
    pub fn cpu(&self, id: usize) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.id == id)
    }

    /// Logical CPU ids, ascending.
    pub fn cpu_ids(&self) -> Vec<usize> {
        self.cpus.iter().map(|c| c.id).collect()
    }

    /// Whether two distinct CPUs are SMT siblings (threads of one physical core).
    pub fn are_siblings(&self, a: usize, b: usize) -> bool {
        a != b && self.cpu(a).is_some_and(|c| c.siblings.contains(&b))
    }

    /// Whether any physical core runs more than one online thread.
    pub fn has_smt(&self) -> bool {
        self.cpus.iter().any(|c| c.siblings.len() > 1)
    }
}

/// Parses a kernel CPU list (`0-3,8,10-11`; empty or blank = none).
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut out = BTreeSet::new();
    for part in text.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number =
            |s: &str| s.trim().parse::<usize>().map_err(|_| format!("{s:?} is not a CPU id in {text:?}"));
        match part.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (number(low)?, number(high)?);
                if low > high {
                    return Err(format!("descending range {part} in {text:?}"));
                }
                out.extend(low..=high);
            }
            None => {
                out.insert(number(part)?);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Formats CPU ids as the shortest kernel-style list (`0-3,8`), as zoo.cfg accepts it.
pub fn format_cpu_list(ids: &[usize]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => sorted[i].to_string(),
            1 => format!("{},{}", sorted[i], sorted[j]),
            _ => format!("{}-{}", sorted[i], sorted[j]),
        });
        i = j + 1;
    }
    parts.join(",")
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn read_number(path: &Path) -> Option<usize> {
    read_trimmed(path)?.parse().ok()
}

/// Reads the topology under `sys_root` (normally `/sys`).
pub fn read_topology(sys_root: &Path) -> Result<CpuTopology, TuneError> {
    let cpu_dir = sys_root.join("devices/system/cpu");
    let online_path = cpu_dir.join("online");
    let online_text = std::fs::read_to_string(&online_path)
        .map_err(|e| TuneError::io(&online_path, "reading the online CPU list", e))?;
    let online = parse_cpu_list(&online_text)
        .map_err(|reason| TuneError::BadProbe { path: online_path.clone(), reason })?;

    let node_dir = sys_root.join("devices/system/node");
    let mut node_of_cpu = std::collections::BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(&node_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(node) = name.strip_prefix("node").and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            let list = read_trimmed(&entry.path().join("cpulist")).unwrap_or_default();
            for cpu in parse_cpu_list(&list).unwrap_or_default() {
                node_of_cpu.insert(cpu, node);
            }
        }
    }

    let mut governors = BTreeSet::new();
    let cpus: Vec<Cpu> = online
        .iter()
        .map(|&id| {
            let dir = cpu_dir.join(format!("cpu{id}"));
            if let Some(g) = read_trimmed(&dir.join("cpufreq/scaling_governor")) {
                governors.insert(g);
            }
            let siblings = read_trimmed(&dir.join("topology/thread_siblings_list"))
                .and_then(|s| parse_cpu_list(&s).ok())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec![id]);
            Cpu {
                id,
                package_id: read_number(&dir.join("topology/physical_package_id")).unwrap_or(0),
                core_id: read_number(&dir.join("topology/core_id")).unwrap_or(id),
                node: node_of_cpu.get(&id).copied().unwrap_or(0),
                // Only online siblings count: an offline thread cannot be given a role.
                siblings: siblings.into_iter().filter(|s| online.contains(s)).collect(),
            }
        })
        .collect();
    let isolated =
        read_trimmed(&cpu_dir.join("isolated")).and_then(|s| parse_cpu_list(&s).ok()).unwrap_or_default();
    let governor = match governors.len() {
        0 => None,
        1 => governors.into_iter().next(),
        _ => Some(format!("mixed: {}", governors.into_iter().collect::<Vec<_>>().join(", "))),
    };
    let nodes: BTreeSet<usize> = cpus.iter().map(|c| c.node).collect();
    Ok(CpuTopology { cpus, isolated, governor, nodes: nodes.into_iter().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list(" \n").unwrap(), Vec::<usize>::new());
        assert_eq!(format_cpu_list(&[11, 0, 1, 2, 3, 8, 10]), "0-3,8,10,11");
        assert_eq!(format_cpu_list(&[5]), "5");
        assert!(parse_cpu_list("3-1").unwrap_err().contains("descending"));
        assert!(parse_cpu_list("a").unwrap_err().contains("\"a\" is not a CPU id"));
    }

    #[test]
    fn reads_a_sysfs_tree() {
        let root = tempfile::tempdir().unwrap();
        let cpu = root.path().join("devices/system/cpu");
        let write = |rel: &str, text: &str| {
            let p = root.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("devices/system/cpu/online", "0-3\n");
        write("devices/system/cpu/isolated", "3\n");
        for id in 0..4 {
            write(&format!("devices/system/cpu/cpu{id}/topology/core_id"), &format!("{}\n", id % 2));
            write(&format!("devices/system/cpu/cpu{id}/topology/physical_package_id"), "0\n");
            let sib = if id % 2 == 0 { "0,2" } else { "1,3" };
            write(&format!("devices/system/cpu/cpu{id}/topology/thread_siblings_list"), sib);
            write(&format!("devices/system/cpu/cpu{id}/cpufreq/scaling_governor"), "performance\n");
        }
        write("devices/system/node/node0/cpulist", "0-1\n");
        write("devices/system/node/node1/cpulist", "2-3\n");
        assert!(cpu.exists());
        let t = read_topology(root.path()).unwrap();
        assert_eq!(t.cpu_ids(), vec![0, 1, 2, 3]);
        assert_eq!(t.isolated, vec![3]);
        assert_eq!(t.nodes, vec![0, 1]);
        assert_eq!(t.governor.as_deref(), Some("performance"));
        assert!(t.are_siblings(0, 2) && !t.are_siblings(0, 1) && t.has_smt());
        assert_eq!(t.cpu(3).unwrap().node, 1);
    }
}
