//! Apache ZooKeeper 3.8's on-disk formats, read and written without I/O: the way in
//! (`ringkeeper import-zk`) and the way back (`ringkeeper export-zk`). Byte layout in
//! `FORMAT.md` beside this file.
//!
//! - [`snapshot`]: `version-2/snapshot.<zxid hex>` (FileSnap): sessions, ACL cache, every
//!   znode with its StatPersisted, Adler32 seals, the optional tree digest.
//! - [`txnlog`]: `version-2/log.<zxid hex>` (FileTxnLog): Adler32-checked txn records, each
//!   turned into ringkeeper's own [`crate::txn::Txn`].
//! - [`replay`]: an Apache snapshot plus the txns after it, applied with ringkeeper's one apply
//!   path, into a ringkeeper [`crate::snapshot::SnapshotImage`]; and an image back into an
//!   Apache snapshot.
//!
//! Who uses it: `server/src/apache_migration.rs` (files, directories, the two commands) and the
//! start-up check that refuses a dataDir holding only Apache's files. In: whole file images.
//! Out: typed content, or a [`FormatError`] with the byte offset of the fault; nothing
//! unchecked is ever used (every length is bounded by the bytes present, every seal checked).

pub mod quorum;
pub mod records;
pub mod replay;
pub mod snapshot;
pub mod txnlog;

use crate::proto::DecodeError;

/// Apache's snapshot and log files live in this subdirectory of dataDir / dataLogDir.
pub const VERSION_DIR: &str = "version-2";
/// Format version in every Apache file header.
pub const FILE_FORMAT_VERSION: i32 = 2;
/// Prefix of Apache's snapshot files.
pub const SNAPSHOT_PREFIX: &str = "snapshot.";
/// Prefix of Apache's log files.
pub const LOG_PREFIX: &str = "log.";

/// Why bytes are not a usable Apache file; `offset` is where in the file the fault is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset}: {detail}")]
pub struct FormatError {
    pub offset: u64,
    pub detail: String,
}

impl FormatError {
    pub fn at(offset: usize, detail: impl Into<String>) -> FormatError {
        FormatError { offset: offset as u64, detail: detail.into() }
    }

    /// A jute decoding error of a record that starts at `base` in the file.
    pub fn decoding(base: usize, what: &str, error: DecodeError) -> FormatError {
        let inner = match &error {
            DecodeError::Truncated { offset, .. }
            | DecodeError::BadLength { offset, .. }
            | DecodeError::BadUtf8 { offset } => *offset,
            DecodeError::UnknownOpcode(_) => 0,
        };
        FormatError::at(base + inner, format!("{what}: {error}"))
    }
}

/// `<prefix><zxid in lower-case hex, no padding>`, as Apache's `Long.toHexString`.
pub fn file_name(prefix: &str, zxid: i64) -> String {
    format!("{prefix}{:x}", zxid as u64)
}

/// The zxid an Apache file name carries (`snapshot.1a`, `log.100000001`), `None` otherwise.
pub fn parse_file_name(prefix: &str, name: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// Adler32 of `bytes`, as Java's `java.util.zip.Adler32.getValue()` (a non-negative long).
pub fn adler32(bytes: &[u8]) -> i64 {
    let mut sum = adler2::Adler32::new();
    sum.write_slice(bytes);
    sum.checksum() as i64
}

/// `ZooKeeperServer.superSecret`: the constant Apache seeds session passwords with.
const APACHE_SUPER_SECRET: i64 = 0xB341_5C00;

/// The password Apache gives session `id` (`ZooKeeperServer.generatePasswd`: 16 bytes of
/// `java.util.Random(id ^ superSecret).nextBytes`). A client that holds a session Apache
/// created presents it when it reconnects, to ringkeeper after an import too.
pub fn apache_session_password(id: i64) -> [u8; crate::session::PASSWORD_LEN] {
    // java.util.Random: a 48-bit linear congruential generator.
    const MULTIPLIER: i64 = 0x5_DEEC_E66D;
    const MASK: i64 = (1 << 48) - 1;
    let mut seed = (id ^ APACHE_SUPER_SECRET ^ MULTIPLIER) & MASK;
    let mut out = [0u8; crate::session::PASSWORD_LEN];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        let mut word = (seed >> 16) as i32;
        for byte in chunk {
            *byte = word as u8;
            word >>= 8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_password_matches_apaches_generate_passwd() {
        // From Java: new Random(0x100000123456789L ^ 0xB3415C00L).nextBytes(new byte[16]).
        let expected =
            [0xb1, 0x16, 0x47, 0xe5, 0xdb, 0x8f, 0xf1, 0xc8, 0xbd, 0x67, 0x68, 0xea, 0xc3, 0x3a, 0x41, 0xce];
        assert_eq!(apache_session_password(0x0100_0001_2345_6789), expected);
    }

    #[test]
    fn file_names_are_unpadded_lower_case_hex() {
        assert_eq!(file_name(SNAPSHOT_PREFIX, 0x1a), "snapshot.1a");
        assert_eq!(parse_file_name(LOG_PREFIX, "log.100000001"), Some(0x1_0000_0001));
        assert_eq!(parse_file_name(LOG_PREFIX, "log."), None);
        assert_eq!(parse_file_name(SNAPSHOT_PREFIX, "snapshot.1a.tmp"), None);
    }

    #[test]
    fn adler32_matches_the_rfc_1950_example() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
