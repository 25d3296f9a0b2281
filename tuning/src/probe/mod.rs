//! The probe: what `ringkeeper-tune probe` learns about a host, saved as a JSON probe file.
//!
//! In: the directories dataDir and dataLogDir (created if missing) and the measurement bounds.
//! Out: a [`Probe`]: facts read from /sys and /proc ([`topology`], [`network`], [`disk`]) and
//! the measurements of [`crate::measure`]. A probe file is everything `recommend`, `apply`,
//! `check` and `report` need, so a probe recorded on one host can be judged on another (that is
//! how the tests cover hosts of other shapes). `format_version` guards the schema.

pub mod disk;
pub mod network;
pub mod topology;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringkeeper_server::data_files;
use serde::{Deserialize, Serialize};

use crate::measure::cores::{measure_cores, CoreBounds, CorePairLatency};
use crate::measure::disk::{measure_disk, DiskBounds, DiskMeasurement};
use crate::TuneError;
use disk::DiskInfo;
use network::Nic;
use topology::CpuTopology;

/// Schema version of the probe file.
pub const PROBE_FORMAT_VERSION: u32 = 1;

/// Everything known about a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub format_version: u32,
    /// When the probe ran, seconds since the Unix epoch.
    pub taken_at_unix_s: u64,
    pub hostname: String,
    pub kernel: String,
    pub cpu: CpuTopology,
    pub nics: Vec<Nic>,
    /// dataDir first, then dataLogDir when it is a different directory.
    pub disks: Vec<DiskInfo>,
    /// The log disk (dataLogDir, else dataDir); `None` when measurements were skipped.
    pub log_disk: Option<DiskMeasurement>,
    /// Ping-pong round trips between CPU pairs; empty when skipped.
    pub core_latency: Vec<CorePairLatency>,
}

/// What to probe and how long measurements may take.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub data_dir: PathBuf,
    pub data_log_dir: Option<PathBuf>,
    /// `None`: read facts only, measure nothing.
    pub disk: Option<DiskBounds>,
    /// `None`: no ping-pong.
    pub cores: Option<CoreBounds>,
}

impl Probe {
    /// Reads a probe file, checking its schema version.
    pub fn load(path: &Path) -> Result<Probe, TuneError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| TuneError::io(path, "reading the probe file", e))?;
        let probe: Probe = serde_json::from_str(&text).map_err(|e| TuneError::BadProbe {
            path: path.to_path_buf(),
            reason: format!("not a probe file: {e}"),
        })?;
        if probe.format_version != PROBE_FORMAT_VERSION {
            return Err(TuneError::BadProbe {
                path: path.to_path_buf(),
                reason: format!(
                    "format_version {} (this ringkeeper-tune reads {PROBE_FORMAT_VERSION}); probe again",
                    probe.format_version
                ),
            });
        }
        if probe.cpu.cpus.is_empty() {
            return Err(TuneError::BadProbe { path: path.to_path_buf(), reason: "cpu.cpus is empty".into() });
        }
        Ok(probe)
    }

    /// Writes the probe as pretty JSON, durably ([`data_files::replace_path_durably`]).
    pub fn save(&self, path: &Path) -> Result<(), TuneError> {
        let text = serde_json::to_string_pretty(self).expect("a probe serialises");
        data_files::replace_path_durably(path, (text + "\n").as_bytes())
            .map_err(|e| TuneError::io(path, "writing the probe file", e))
    }

    /// The disk of dataLogDir (the last entry: dataDir's when they are one directory).
    pub fn log_disk_info(&self) -> Option<&DiskInfo> {
        self.disks.last()
    }

    /// Seconds since the probe ran (0 when its clock is ahead of ours).
    pub fn age(&self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Duration::from_secs(now.saturating_sub(self.taken_at_unix_s))
    }
}

fn ensure_dir(dir: &Path) -> Result<(), TuneError> {
    std::fs::create_dir_all(dir).map_err(|e| TuneError::io(dir, "creating the directory", e))
}

fn read_first_line(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// Probes this host.
pub fn run_probe(options: &ProbeOptions) -> Result<Probe, TuneError> {
    ensure_dir(&options.data_dir)?;
    let mut disks = vec![disk::read_disk("dataDir", &options.data_dir)?];
    let log_dir = options.data_log_dir.clone().unwrap_or_else(|| options.data_dir.clone());
    if let Some(data_log_dir) = &options.data_log_dir {
        ensure_dir(data_log_dir)?;
        let info = disk::read_disk("dataLogDir", data_log_dir)?;
        if info.path != disks[0].path {
            disks.push(info);
        }
    }
    let cpu = topology::read_topology(Path::new("/sys"))?;
    let nics = network::read_nics(Path::new("/sys"), Path::new("/proc"));
    let log_disk = match &options.disk {
        Some(bounds) => Some(measure_disk(&log_dir, bounds.clone())?),
        None => None,
    };
    let core_latency = match &options.cores {
        Some(bounds) => measure_cores(&cpu, bounds)?,
        None => Vec::new(),
    };
    Ok(Probe {
        format_version: PROBE_FORMAT_VERSION,
        taken_at_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
        hostname: read_first_line("/proc/sys/kernel/hostname"),
        kernel: read_first_line("/proc/sys/kernel/osrelease"),
        cpu,
        nics,
        disks,
        log_disk,
        core_latency,
    })
}
