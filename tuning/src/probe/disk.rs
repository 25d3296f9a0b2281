//! The disk behind a directory: mount, filesystem, block device and its queue settings,
//! free space.
//!
//! In: a directory path (it must exist), `/proc/self/mountinfo`, `/sys/dev/block/MAJ:MIN`.
//! Out: a [`DiskInfo`]. A partition is traced to its whole disk for the queue settings;
//! filesystems without a block device (tmpfs, NFS, overlay) report `device: None` and are
//! recognised by their filesystem type. Only `statvfs` and the path's `stat` may fail.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::TuneError;

/// Where a directory's data lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    /// What the directory is for: `dataDir` or `dataLogDir`.
    pub role: String,
    /// The directory, canonical.
    pub path: PathBuf,
    /// `major:minor` of the filesystem's device (`st_dev`).
    pub dev: String,
    pub mount_point: PathBuf,
    /// Filesystem type from mountinfo (`ext4`, `xfs`, `tmpfs`, `nfs4`, ...).
    pub fs_type: String,
    /// Mount source (`/dev/nvme0n1p2`, `server:/export`, `tmpfs`).
    pub mount_source: String,
    /// Whole-disk block device name (`nvme0n1`, `sda`, `vda`), when there is one.
    pub device: Option<String>,
    /// Active I/O scheduler (`none`, `mq-deadline`, ...).
    pub scheduler: Option<String>,
    /// `queue/rotational`: true for spinning disks (virtio disks often claim true).
    pub rotational: Option<bool>,
    /// `queue/write_cache`: `write back` (flushes needed) or `write through`.
    pub write_cache: Option<String>,
    /// NUMA node of the device, when the platform says.
    pub numa_node: Option<usize>,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// Filesystems whose contents do not survive a reboot: fsync makes nothing durable there.
pub const VOLATILE_FS_TYPES: &[&str] = &["tmpfs", "ramfs", "devtmpfs"];
/// Network and userspace filesystems: fsync semantics depend on a server or daemon.
pub const NETWORK_FS_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "fuse.glusterfs",
    "lustre",
    "virtiofs",
];

impl DiskInfo {
    /// `tmpfs` and friends.
    pub fn is_volatile(&self) -> bool {
        VOLATILE_FS_TYPES.contains(&self.fs_type.as_str())
    }

    /// NFS, CIFS, 9p, Ceph, ... and FUSE network filesystems.
    pub fn is_network(&self) -> bool {
        NETWORK_FS_TYPES.contains(&self.fs_type.as_str())
    }
}

/// One mountinfo line: mount point, type and source.
struct Mount {
    point: PathBuf,
    fs_type: String,
    source: String,
}

/// Unescapes mountinfo's octal escapes (`\040` for a space).
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let right: Vec<&str> = right.split_whitespace().collect();
            Some(Mount {
                point: PathBuf::from(unescape_mount_path(left.get(4)?)),
                fs_type: right.first()?.to_string(),
                source: right.get(1).map(|s| unescape_mount_path(s)).unwrap_or_default(),
            })
        })
        .collect()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The active scheduler in `[brackets]` of `queue/scheduler`.
fn active_scheduler(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_owned())
}

/// Reads the disk facts of `dir` (which must exist).
pub fn read_disk(role: &str, dir: &Path) -> Result<DiskInfo, TuneError> {
    let path = std::fs::canonicalize(dir).map_err(|e| TuneError::io(dir, "resolving the directory", e))?;
    let meta = std::fs::metadata(&path).map_err(|e| TuneError::io(&path, "stat", e))?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let dev = format!("{major}:{minor}");

    let mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    // The deepest mount point containing the path; the last one mounted there wins (over-mounts).
    let mount =
        mounts.iter().filter(|m| path.starts_with(&m.point)).max_by_key(|m| m.point.components().count());

    let (free_bytes, total_bytes) = statvfs_bytes(&path)?;
    let mut info = DiskInfo {
        role: role.to_owned(),
        path: path.clone(),
        dev: dev.clone(),
        mount_point: mount.map(|m| m.point.clone()).unwrap_or_else(|| PathBuf::from("/")),
        fs_type: mount.map(|m| m.fs_type.clone()).unwrap_or_else(|| "unknown".into()),
        mount_source: mount.map(|m| m.source.clone()).unwrap_or_default(),
        device: None,
        scheduler: None,
        rotational: None,
        write_cache: None,
        numa_node: None,
        free_bytes,
        total_bytes,
    };
    let Ok(mut block) = std::fs::canonicalize(format!("/sys/dev/block/{dev}")) else { return Ok(info) };
    if block.join("partition").exists() {
        block = block.parent().map(Path::to_path_buf).unwrap_or(block);
    }
    info.device = block.file_name().map(|n| n.to_string_lossy().into_owned());
    let queue = block.join("queue");
    info.scheduler = read_trimmed(&queue.join("scheduler")).and_then(|s| active_scheduler(&s));
    info.rotational = read_trimmed(&queue.join("rotational")).map(|s| s == "1");
    info.write_cache = read_trimmed(&queue.join("write_cache"));
    info.numa_node = read_trimmed(&block.join("device/numa_node"))
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|n| usize::try_from(n).ok());
    Ok(info)
}

/// Free (for unprivileged users) and total bytes of the filesystem holding `path`.
pub fn statvfs_bytes(path: &Path) -> Result<(u64, u64), TuneError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| {
        TuneError::io(path, "statvfs", std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and st a writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(TuneError::io(path, "statvfs", std::io::Error::last_os_error()));
    }
    let frag = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * frag, st.f_blocks as u64 * frag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    40 22 0:35 / /mnt/my\\040disk rw - tmpfs tmpfs rw,size=10k\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!((mounts[0].point.to_str(), mounts[0].fs_type.as_str()), (Some("/"), "ext4"));
        assert_eq!(mounts[1].point, PathBuf::from("/mnt/my disk"));
        assert_eq!(mounts[1].source, "tmpfs");
    }

    #[test]
    fn scheduler_in_brackets() {
        assert_eq!(active_scheduler("none [mq-deadline] kyber").as_deref(), Some("mq-deadline"));
        assert_eq!(active_scheduler("none"), None);
    }

    #[test]
    fn reads_this_hosts_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let info = read_disk("dataDir", dir.path()).unwrap();
        assert_eq!(info.role, "dataDir");
        assert!(info.total_bytes >= info.free_bytes && info.total_bytes > 0);
        assert!(!info.fs_type.is_empty() && info.fs_type != "unknown");
    }
}
