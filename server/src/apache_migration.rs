//! Moving in from and back to Apache ZooKeeper 3.8: the files side of `ringkeeper import-zk`
//! and `ringkeeper export-zk`, and the start-up guard that refuses a dataDir holding only
//! Apache's files (ringkeeper would otherwise start empty beside them).
//!
//! Plain blocking `std::fs`, run by the offline commands and once at start-up before any
//! executor. The formats and the replay are in `engine::apache` (pure); what ringkeeper writes
//! goes through the owners of its own layout ([`snapshot_store::write_snapshot`], the epoch
//! files of [`crate::replica`]), and what it reads back for export through [`recovery::recover`].
//!
//! Import: the newest Apache snapshot that checks (a damaged newer one is skipped only when
//! the logs reach past its zxid, as ringkeeper's own recovery), then every logged txn after
//! it, with no zxid missing inside an epoch; the result is one ringkeeper snapshot at Apache's
//! last zxid. Damage is refused naming the file and byte offset; nothing is repaired.

use std::path::{Path, PathBuf};

use ringkeeper_engine::apache::replay::{apache_snapshot_of, ApacheReplay};
use ringkeeper_engine::apache::txnlog::LogEnd;
use ringkeeper_engine::apache::{self, FormatError};
use ringkeeper_engine::request::{Processor, ProcessorConfig};

use crate::data_files;
use crate::recovery::{self, RecoveryError};
use crate::snapshot_store;

/// Why a migration step cannot be carried out. Always names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: offset {offset}: {detail}")]
    Damaged { path: PathBuf, offset: u64, detail: String },
    #[error("{path}: {detail}")]
    Refused { path: PathBuf, detail: String },
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MigrationError + '_ {
    move |error| MigrationError::Io { path: path.to_path_buf(), error }
}

fn damaged(path: &Path, error: FormatError) -> MigrationError {
    MigrationError::Damaged { path: path.to_path_buf(), offset: error.offset, detail: error.detail }
}

fn refused(path: &Path, detail: impl Into<String>) -> MigrationError {
    MigrationError::Refused { path: path.to_path_buf(), detail: detail.into() }
}

/// Where Apache keeps its files under a dataDir (`version-2/`), or the directory itself
/// when it is already that one.
fn apache_version_dir(dir: &Path) -> PathBuf {
    let inner = dir.join(apache::VERSION_DIR);
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Apache's files named `<prefix><hex zxid>` in `dir`, in zxid order. A name ringkeeper would
/// read as its own (16 hex digits) is left out: it is not Apache's.
fn apache_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, MigrationError> {
    let parse = if prefix == apache::SNAPSHOT_PREFIX { apache_snapshot_zxid } else { apache_log_zxid };
    Ok(recovery::numbered_files(dir, prefix, parse)?)
}

/// Whether a name is one of ringkeeper's own files (16 hex digits after the prefix).
fn ringkeeper_name(name: &str) -> bool {
    data_files::parse_snapshot_file_name(name).is_some()
        || data_files::parse_segment_file_name(name).is_some()
}

fn apache_snapshot_zxid(name: &str) -> Option<i64> {
    apache::parse_file_name(apache::SNAPSHOT_PREFIX, name).filter(|_| !ringkeeper_name(name))
}

fn apache_log_zxid(name: &str) -> Option<i64> {
    apache::parse_file_name(apache::LOG_PREFIX, name).filter(|_| !ringkeeper_name(name))
}

/// Every Apache snapshot or log file in `dir` or its `version-2/`.
pub fn apache_files_in(dir: &Path) -> Result<Vec<PathBuf>, MigrationError> {
    let mut found = Vec::new();
    for place in [dir.to_path_buf(), dir.join(apache::VERSION_DIR)] {
        for prefix in [apache::SNAPSHOT_PREFIX, apache::LOG_PREFIX] {
            found.extend(apache_files(&place, prefix)?.into_iter().map(|(_, path)| path));
        }
    }
    Ok(found)
}

/// The command that imports `dir`.
fn import_hint(dir: &Path) -> String {
    format!("ringkeeper import-zk --from {} --to NEW_DATADIR", dir.display())
}

/// Refuses to go on when the directories hold Apache ZooKeeper's files and none of
/// ringkeeper's: started there, ringkeeper would serve an empty tree beside Apache's data.
pub fn refuse_apache_only(data_dir: &Path, log_dir: &Path) -> Result<(), MigrationError> {
    let ours = !snapshot_store::snapshot_paths(data_dir)?.is_empty()
        || !recovery::segment_paths(log_dir)?.is_empty();
    if ours {
        return Ok(());
    }
    for dir in [data_dir, log_dir] {
        if let Some(file) = apache_files_in(dir)?.first() {
            return Err(refused(
                dir,
                format!(
                    "holds Apache ZooKeeper's files ({}) and none of ringkeeper's; ringkeeper \
                     does not read them in place. Import them first: {}",
                    file.display(),
                    import_hint(dir)
                ),
            ));
        }
    }
    Ok(())
}

/// For `snap-verify` / `log-verify`: refuses a single Apache file (by its magic) or a
/// directory holding only Apache's files, rather than reporting nothing wrong.
pub fn refuse_apache_path(path: &Path) -> Result<(), MigrationError> {
    if path.is_dir() {
        return refuse_apache_only(path, path);
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
    if read.is_ok() && (&magic == b"ZKSN" || &magic == b"ZKLG") {
        let parent = path.parent().unwrap_or(Path::new("."));
        let parent =
            if parent.ends_with(apache::VERSION_DIR) { parent.parent().unwrap_or(parent) } else { parent };
        return Err(refused(
            path,
            format!(
                "is an Apache ZooKeeper file, not ringkeeper's; import its dataDir: {}",
                import_hint(parent)
            ),
        ));
    }
    Ok(())
}

/// What an import found and wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    pub snapshot: PathBuf,
    pub logs: usize,
    pub txns: u64,
    pub last_zxid: i64,
    pub nodes: usize,
    pub sessions: usize,
    pub written: PathBuf,
}

/// Reads a whole file.
fn read(path: &Path) -> Result<Vec<u8>, MigrationError> {
    std::fs::read(path).map_err(io_error(path))
}

/// Refuses a destination that already holds ringkeeper data.
fn require_no_ringkeeper_files(dir: &Path) -> Result<(), MigrationError> {
    if !snapshot_store::snapshot_paths(dir)?.is_empty() || !recovery::segment_paths(dir)?.is_empty() {
        return Err(refused(
            dir,
            "already holds ringkeeper snapshot or log files; import into an empty directory",
        ));
    }
    Ok(())
}

/// `ringkeeper import-zk`: Apache's dataDir (`from`, and `from_log_dir` when its logs live
/// apart) into a new ringkeeper dataDir `to`.
pub fn import(from: &Path, from_log_dir: Option<&Path>, to: &Path) -> Result<Imported, MigrationError> {
    let snap_dir = apache_version_dir(from);
    let log_dir = apache_version_dir(from_log_dir.unwrap_or(from));
    let snapshots = apache_files(&snap_dir, apache::SNAPSHOT_PREFIX)?;
    let logs = apache_files(&log_dir, apache::LOG_PREFIX)?;
    if snapshots.is_empty() && logs.is_empty() {
        return Err(refused(&snap_dir, "holds no Apache ZooKeeper snapshot.* or log.* file"));
    }
    std::fs::create_dir_all(to).map_err(io_error(to))?;
    require_no_ringkeeper_files(to)?;

    // The newest snapshot that checks; damaged newer ones are remembered.
    let mut skipped: Vec<(i64, MigrationError)> = Vec::new();
    let mut base = None;
    for (zxid, path) in snapshots.iter().rev() {
        match apache::snapshot::decode(&read(path)?) {
            Ok(snap) => {
                let replay = ApacheReplay::from_snapshot(&snap, *zxid).map_err(|e| damaged(path, e))?;
                base = Some((path.clone(), *zxid, replay));
                break;
            }
            Err(error) => {
                log::warn!(
                    "skipping Apache snapshot {}: offset {}: {}",
                    path.display(),
                    error.offset,
                    error.detail
                );
                skipped.push((*zxid, damaged(path, error)));
            }
        }
    }
    let (snapshot, snapshot_zxid, mut replay) = match base {
        Some(base) => base,
        None if snapshots.is_empty() => {
            // Only logs: Apache replays them over its empty tree.
            let empty = apache::snapshot::ApacheSnapshot {
                nodes: vec![apache::snapshot::ApacheNode {
                    path: "/".into(),
                    data: Some(Vec::new()),
                    acl: apache::snapshot::OPEN_ACL_UNSAFE_ID,
                    stat: Default::default(),
                }],
                ..Default::default()
            };
            (PathBuf::new(), 0, ApacheReplay::from_snapshot(&empty, 0).expect("an empty tree restores"))
        }
        None => return Err(skipped.remove(0).1),
    };

    // The logs after the snapshot: the last one starting at or before snapshot + 1, and all
    // later ones (as FileTxnLog.getLogFiles).
    let start = logs.iter().rposition(|(first, _)| *first <= snapshot_zxid + 1).unwrap_or(0);
    let (mut txns, mut used, mut last) = (0u64, 0usize, snapshot_zxid);
    let count = logs.len();
    for (index, (_, path)) in logs.iter().enumerate().skip(start) {
        let log = apache::txnlog::decode(&read(path)?).map_err(|e| damaged(path, e))?;
        for record in &log.records {
            let zxid = record.txn.zxid;
            if zxid <= last {
                continue;
            }
            let same_epoch = zxid >> 32 == last >> 32;
            if last != 0 && same_epoch && zxid != last + 1 {
                return Err(MigrationError::Damaged {
                    path: path.clone(),
                    offset: record.offset,
                    detail: format!("txn {zxid:#x} follows {last:#x}: the txns between them are missing"),
                });
            }
            replay.apply(&record.txn);
            last = zxid;
            txns += 1;
        }
        if let LogEnd::Torn { offset, detail } = &log.end {
            let what = if index + 1 == count { "the last log ends" } else { "log ends" };
            log::warn!("{}: {what} with a record cut short at offset {offset} ({detail}): a write Apache never acknowledged", path.display());
        }
        used += 1;
    }
    // A damaged newer snapshot proves writes up to its zxid happened: the logs must hold them.
    if let Some((_, error)) = skipped.into_iter().find(|(zxid, _)| *zxid > last) {
        return Err(error);
    }
    let image = replay.into_image();
    let (nodes, sessions) = (image.nodes.len(), image.sessions.len());
    let ids: String = image.sessions.iter().map(|s| format!("{:#x}\n", s.id)).collect();
    data_files::replace_durably(to, APACHE_SESSIONS_FILE, ids.as_bytes())
        .map_err(io_error(&to.join(APACHE_SESSIONS_FILE)))?;
    let (written, _) = snapshot_store::write_snapshot(to, &image).map_err(io_error(to))?;
    copy_epoch_files(from, to)?;
    Ok(Imported { snapshot, logs: used, txns, last_zxid: last, nodes, sessions, written })
}

/// Written by an import beside the snapshot: the ids (hex, one a line) of the sessions that
/// came from Apache. At every start their clients' Apache-issued passwords are honoured
/// ([`adopt_apache_sessions`]), so a client whose session was open through the move
/// reconnects to it; ids no longer live are ignored.
pub const APACHE_SESSIONS_FILE: &str = data_files::APACHE_SESSIONS;

/// Gives the live sessions named in `data_dir/apache-sessions` the password Apache issued
/// them; returns how many were live.
pub fn adopt_apache_sessions(
    data_dir: &Path,
    sessions: &mut ringkeeper_engine::session::SessionTable,
) -> Result<usize, MigrationError> {
    let path = data_dir.join(APACHE_SESSIONS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(&path)(e)),
    };
    let mut adopted = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let id = u64::from_str_radix(line.trim().trim_start_matches("0x"), 16)
            .map_err(|_| refused(&path, format!("{line:?} is not a session id")))? as i64;
        adopted += usize::from(sessions.adopt_password(id, apache::apache_session_password(id)));
    }
    if adopted > 0 {
        log::info!("{adopted} session(s) imported from Apache ZooKeeper keep their Apache passwords");
    }
    Ok(adopted)
}

/// Copies Apache's epoch files to ringkeeper's place for them (`to`, the dataDir root). Apache
/// keeps them beside its snapshots, in `version-2/` (`QuorumPeer` reads and writes
/// `FileTxnSnapLog.getSnapDir()`); a dataDir an older `export-zk` wrote holds them at its root,
/// which is read when `version-2/` has none.
fn copy_epoch_files(from: &Path, to: &Path) -> Result<(), MigrationError> {
    let version_dir = apache_version_dir(from);
    for name in data_files::EPOCH_FILES {
        let bytes = std::fs::read(version_dir.join(name)).or_else(|_| std::fs::read(from.join(name)));
        if let Ok(bytes) = bytes {
            data_files::replace_durably(to, name, &bytes).map_err(io_error(&to.join(name)))?;
        }
    }
    Ok(())
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub snapshot: PathBuf,
    pub last_zxid: i64,
    pub nodes: usize,
    pub sessions: usize,
}

/// `ringkeeper export-zk`: a stopped ringkeeper dataDir (`from`, its log in `log_dir`) as an
/// Apache dataDir `to` (`version-2/snapshot.<zxid>` and, beside it, the epoch files). Reads the data the
/// way start-up does ([`recovery::recover`], which also cuts a torn log tail).
pub fn export(from: &Path, log_dir: &Path, to: &Path) -> Result<Exported, MigrationError> {
    let version_dir = to.join(apache::VERSION_DIR);
    std::fs::create_dir_all(&version_dir).map_err(io_error(&version_dir))?;
    if let Some(existing) = apache_files_in(to)?.first() {
        return Err(refused(
            to,
            format!("already holds Apache files ({}); export into an empty directory", existing.display()),
        ));
    }
    if snapshot_store::snapshot_paths(from)?.is_empty() && recovery::segment_paths(log_dir)?.is_empty() {
        return Err(refused(from, "holds no ringkeeper snapshot or log to export"));
    }
    // Only the tree and the session ids are exported: no password is derived here.
    let mut processor = Processor::new(ProcessorConfig::default(), 0, &[]);
    let recovered = recovery::recover(from, log_dir, &mut processor, 0)?;
    let image = ringkeeper_engine::snapshot::capture(&processor.tree, &processor.sessions);
    let bytes = apache::snapshot::encode(&apache_snapshot_of(&image, 0));
    let name = apache::file_name(apache::SNAPSHOT_PREFIX, recovered.last_zxid);
    data_files::replace_durably(&version_dir, &name, &bytes).map_err(io_error(&version_dir.join(&name)))?;
    // Apache reads its epoch files from `version-2/`, beside the snapshot (`QuorumPeer`
    // with `FileTxnSnapLog.getSnapDir()`).
    let epoch = (recovered.last_zxid >> 32) as u32;
    for name in data_files::EPOCH_FILES {
        let bytes = std::fs::read(from.join(name)).unwrap_or_else(|_| format!("{epoch}\n").into_bytes());
        data_files::replace_durably(&version_dir, name, &bytes).map_err(io_error(&version_dir.join(name)))?;
    }
    Ok(Exported {
        snapshot: version_dir.join(name),
        last_zxid: recovered.last_zxid,
        nodes: image.nodes.len(),
        sessions: image.sessions.len(),
    })
}
