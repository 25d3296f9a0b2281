//! The layout of `dataDir` (and `dataLogDir`): every name the server gives a file there, and
//! the one recipe by which a small file is replaced durably.
//!
//! In: a directory and a name (from here). Out: files that exist under their final name only
//! complete and durable.
//!
//! | name                         | in         | written by                                   |
//! |------------------------------|------------|----------------------------------------------|
//! | `log.<zxid hex>`             | dataLogDir | the log role (`crate::log_role`)             |
//! | `segment.spare`              | dataLogDir | the log role (next segment, zero-filled)     |
//! | `snapshot.<zxid hex>`        | dataDir    | `crate::snapshot_store`, a SNAP (`replica`)  |
//! | `epochs.snapshot.<zxid hex>` | dataDir    | a SNAP: the leader's epoch ends beside it    |
//! | `acceptedEpoch`, `currentEpoch` | dataDir | an ensemble member (Apache's names; Apache's own are in `version-2/`) |
//! | `truncate.after`             | dataDir    | a TRUNC, carried out at the next start       |
//! | `install.after-restart`      | dataDir    | a SNAP, carried out at the next start        |
//! | `session.secret`             | dataDir    | a standalone server, once                    |
//! | `apache-sessions`            | dataDir    | `ringkeeper import-zk`                       |
//! | `<name>.tmp`                 | beside     | [`replace_durably_with`] while it writes     |
//!
//! The segment and snapshot names are the engine's (`ringkeeper_engine::log`,
//! `ringkeeper_engine::snapshot`, re-exported here): the simulator names files the same way.
//!
//! Invariant of [`replace_durably_with`] (and [`replace_durably`]): the file is written under
//! `<name>.tmp`, fsynced, renamed to `<name>`, then the directory is fsynced; a crash at any
//! point leaves either the old file or the complete new one under `<name>` (and perhaps a
//! `.tmp` file, which readers ignore). Each error names the step and the path.

use std::fs::File;
use std::io;
use std::path::Path;

pub use ringkeeper_engine::log::{parse_segment_file_name, segment_file_name, SEGMENT_PREFIX};
pub use ringkeeper_engine::snapshot::{parse_snapshot_file_name, snapshot_file_name, SNAPSHOT_PREFIX};

/// Apache's file of the epoch a member last accepted from a prospective leader.
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// Apache's file of the epoch a member last acknowledged a NEWLEADER of.
pub const CURRENT_EPOCH: &str = "currentEpoch";
/// Both epoch files, as an import or export copies them.
pub const EPOCH_FILES: [&str; 2] = [ACCEPTED_EPOCH, CURRENT_EPOCH];
/// A standalone server's session-password secret (hex).
pub const SESSION_SECRET: &str = "session.secret";
/// The zxid after which the log must be cut at the next start (a TRUNC).
pub const TRUNCATE_MARKER: &str = "truncate.after";
/// The snapshot received from the leader (a SNAP) that replaces every other snapshot and the
/// whole log at the next start.
pub const INSTALL_MARKER: &str = "install.after-restart";
/// Prefix of the file beside an installed snapshot: the leader's per-epoch last zxids.
pub const EPOCH_ENDS_PREFIX: &str = "epochs.";
/// The next log segment, zero-filled in the background while the current one is written and
/// renamed into place at a roll (not a `log.` name, so recovery never reads it; a leftover is
/// refilled at start-up).
pub const SPARE_SEGMENT: &str = "segment.spare";
/// Ids of the sessions an import brought from Apache ZooKeeper.
pub const APACHE_SESSIONS: &str = "apache-sessions";
/// Suffix of a file being written by [`replace_durably_with`].
pub const TEMP_SUFFIX: &str = ".tmp";

/// The name `name` is written under before it is renamed into place.
pub fn temp_name(name: &str) -> String {
    format!("{name}{TEMP_SUFFIX}")
}

/// Whether `name` is a file [`replace_durably_with`] had not finished (a crash mid-write).
pub fn is_temp_name(name: &str) -> bool {
    name.ends_with(TEMP_SUFFIX)
}

/// The file holding the epoch ends of the installed snapshot named `snapshot_name`.
pub fn epoch_ends_name(snapshot_name: &str) -> String {
    format!("{EPOCH_ENDS_PREFIX}{snapshot_name}")
}

/// `error` with the step and the path it failed on in front (the log line then says which).
fn failed(step: &str, path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{step} {}: {error}", path.display()))
}

/// Makes the entries of `dir` (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| failed("fsync of the directory", dir, e))
}

/// Replaces `dir/name` durably with what `write` puts in a new file: written as
/// `name.tmp`, fsynced, renamed, the directory fsynced. On failure the temp file is removed
/// (best effort) and `dir/name` is what it was, unless only the directory fsync failed (then
/// the new file is in place but perhaps not durable).
pub fn replace_durably_with(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let temp = dir.join(temp_name(name));
    let path = dir.join(name);
    let written = File::create(&temp)
        .map_err(|e| failed("creating", &temp, e))
        .and_then(|mut file| {
            write(&mut file).map_err(|e| failed("writing", &temp, e))?;
            file.sync_all().map_err(|e| failed("fsync of", &temp, e))
        })
        .and_then(|()| std::fs::rename(&temp, &path).map_err(|e| failed("renaming to", &path, e)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Replaces `dir/name` durably with `bytes` (see [`replace_durably_with`]).
pub fn replace_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    replace_durably_with(dir, name, |file| io::Write::write_all(file, bytes))
}

/// Replaces the file at `path` durably with `bytes` (a config file, a probe: anywhere, see
/// [`replace_durably_with`]); a relative path with no directory is in the current one.
pub fn replace_path_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file name", path.display()))
    })?;
    replace_durably(dir, name, bytes)
}

/// Reads `dir/name` (`None` if there is none) and makes it durable first (the file, then the
/// directory): a file left by a write whose directory fsync failed is visible but not
/// durable, and what the server acts on must not vanish in a power loss.
pub fn read_durably(dir: &Path, name: &str) -> io::Result<Option<String>> {
    let path = dir.join(name);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed("opening", &path, e)),
    };
    let text = io::read_to_string(&file).map_err(|e| failed("reading", &path, e))?;
    file.sync_all().map_err(|e| failed("fsync of", &path, e))?;
    sync_dir(dir)?;
    Ok(Some(text))
}

/// Removes `dir/name` (if there) durably: the directory is fsynced.
pub fn remove_durably(dir: &Path, name: &str) -> io::Result<()> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed("removing", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_holds_the_new_bytes_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        replace_durably(dir.path(), CURRENT_EPOCH, b"1\n").unwrap();
        replace_durably(dir.path(), CURRENT_EPOCH, b"2\n").unwrap();
        assert_eq!(std::fs::read(dir.path().join(CURRENT_EPOCH)).unwrap(), b"2\n");
        assert!(!dir.path().join(temp_name(CURRENT_EPOCH)).exists());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_names_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        replace_durably(dir.path(), SESSION_SECRET, b"old").unwrap();
        let error = replace_durably_with(dir.path(), SESSION_SECRET, |_| Err(io::Error::other("no room")))
            .unwrap_err();
        assert!(error.to_string().contains(&temp_name(SESSION_SECRET)), "{error}");
        assert!(error.to_string().contains("no room"), "{error}");
        assert_eq!(std::fs::read(dir.path().join(SESSION_SECRET)).unwrap(), b"old");
        assert!(!dir.path().join(temp_name(SESSION_SECRET)).exists());
    }

    #[test]
    fn removing_a_missing_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        remove_durably(dir.path(), TRUNCATE_MARKER).unwrap();
        replace_durably(dir.path(), TRUNCATE_MARKER, b"0x5\n").unwrap();
        remove_durably(dir.path(), TRUNCATE_MARKER).unwrap();
        assert!(!dir.path().join(TRUNCATE_MARKER).exists());
    }
}
