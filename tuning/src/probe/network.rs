//! NIC IRQ placement: which CPUs handle the interrupts of each physical network interface.
//!
//! In: `/sys/class/net/*` (interfaces backed by a device; `lo`, bridges and other virtual
//! interfaces have none and are skipped), the device's `msi_irqs` (on the device or, for
//! virtio, its PCI parent), `/proc/interrupts` (per-CPU counts, and names carrying the
//! interface or virtio device name) and `/proc/irq/N/effective_affinity_list`.
//! Out: one [`Nic`] per interface. Unreadable parts leave fields empty; nothing here fails.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::topology::parse_cpu_list;

/// One interrupt line of a NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicIrq {
    pub irq: u32,
    /// The action name in `/proc/interrupts` (`eth0-TxRx-0`, `virtio2-input.0`).
    pub name: String,
    /// CPUs the kernel delivers it to now (`effective_affinity_list`, else `smp_affinity_list`).
    pub affinity: Vec<usize>,
    /// Interrupts handled so far, indexed like the `/proc/interrupts` CPU columns.
    pub counts_per_cpu: Vec<(usize, u64)>,
}

/// A network interface backed by a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    /// NUMA node of the device (`None` when the platform does not say: `-1` or missing).
    pub numa_node: Option<usize>,
    /// Link speed in Mbit/s, when the driver reports one.
    pub speed_mbps: Option<u64>,
    pub irqs: Vec<NicIrq>,
}

impl Nic {
    /// Interrupts per CPU summed over this NIC's IRQs, busiest first.
    pub fn busiest_cpus(&self) -> Vec<(usize, u64)> {
        let mut totals = std::collections::BTreeMap::new();
        for irq in &self.irqs {
            for &(cpu, count) in &irq.counts_per_cpu {
                *totals.entry(cpu).or_insert(0u64) += count;
            }
        }
        let mut out: Vec<(usize, u64)> = totals.into_iter().filter(|(_, n)| *n > 0).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

/// One parsed `/proc/interrupts` line of a numbered IRQ.
struct InterruptLine {
    irq: u32,
    counts: Vec<u64>,
    name: String,
}

/// Parses `/proc/interrupts`: the header names the CPU columns; numbered lines follow.
fn parse_interrupts(text: &str) -> (Vec<usize>, Vec<InterruptLine>) {
    let mut lines = text.lines();
    let columns: Vec<usize> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.strip_prefix("CPU")?.parse().ok())
        .collect();
    let parsed = lines
        .filter_map(|line| {
            let (irq, rest) = line.trim_start().split_once(':')?;
            let irq: u32 = irq.trim().parse().ok()?;
            let mut fields = rest.split_whitespace();
            let counts: Vec<u64> =
                fields.by_ref().take(columns.len()).map(|f| f.parse().unwrap_or(0)).collect();
            let name = rest.split_whitespace().last().unwrap_or_default().to_owned();
            Some(InterruptLine { irq, counts, name })
        })
        .collect();
    (columns, parsed)
}

fn irq_numbers_of(dir: &Path) -> BTreeSet<u32> {
    std::fs::read_dir(dir.join("msi_irqs"))
        .map(|entries| entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Reads every device-backed interface under `sys_root` with IRQs from `proc_root`.
pub fn read_nics(sys_root: &Path, proc_root: &Path) -> Vec<Nic> {
    let interrupts = std::fs::read_to_string(proc_root.join("interrupts")).unwrap_or_default();
    let (columns, lines) = parse_interrupts(&interrupts);
    let mut nics = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys_root.join("class/net")) else { return nics };
    let mut names: Vec<String> =
        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let iface = sys_root.join("class/net").join(&name);
        let Ok(device) = std::fs::canonicalize(iface.join("device")) else { continue };
        let parent = device.parent().map(Path::to_path_buf).unwrap_or_else(|| device.clone());
        let mut irq_numbers = irq_numbers_of(&device);
        if irq_numbers.is_empty() {
            irq_numbers = irq_numbers_of(&parent);
        }
        // A multi-function parent (virtio PCI) lists its config IRQs too; keep the queue
        // lines, which carry the interface or the virtio device's name.
        let device_name = device.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let irqs = lines
            .iter()
            .filter(|l| {
                let named =
                    l.name.starts_with(&format!("{name}-")) || l.name.starts_with(&format!("{device_name}-"));
                (irq_numbers.contains(&l.irq) || named) && !l.name.ends_with("-config")
            })
            .map(|l| {
                let irq_dir = proc_root.join("irq").join(l.irq.to_string());
                let affinity = ["effective_affinity_list", "smp_affinity_list"]
                    .iter()
                    .find_map(|f| parse_cpu_list(&std::fs::read_to_string(irq_dir.join(f)).ok()?).ok())
                    .unwrap_or_default();
                NicIrq {
                    irq: l.irq,
                    name: l.name.clone(),
                    affinity,
                    counts_per_cpu: columns.iter().copied().zip(l.counts.iter().copied()).collect(),
                }
            })
            .collect();
        let numa_node = [device.join("numa_node"), parent.join("numa_node")]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<i64>().ok())
            .and_then(|n| usize::try_from(n).ok());
        let speed_mbps = std::fs::read_to_string(iface.join("speed"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(|s| u64::try_from(s).ok());
        nics.push(Nic { name, numa_node, speed_mbps, irqs });
    }
    nics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_interrupts() {
        let text = "           CPU0       CPU1\n 38:          0       3783 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\nLOC:     957120     984499   Local timer interrupts\n";
        let (columns, lines) = parse_interrupts(text);
        assert_eq!(columns, vec![0, 1]);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (lines[0].irq, lines[0].counts.clone(), lines[0].name.as_str()),
            (38, vec![0, 3783], "virtio2-input.0")
        );
    }

    #[test]
    fn busiest_cpus_sum_over_irqs() {
        let irq = |counts: Vec<(usize, u64)>| NicIrq {
            irq: 1,
            name: "x".into(),
            affinity: vec![],
            counts_per_cpu: counts,
        };
        let nic = Nic {
            name: "eth0".into(),
            numa_node: None,
            speed_mbps: None,
            irqs: vec![irq(vec![(0, 5), (1, 100)]), irq(vec![(0, 10), (1, 0)])],
        };
        assert_eq!(nic.busiest_cpus(), vec![(1, 100), (0, 15)]);
    }
}
