//! The tool's error type: every variant names the file, key or core it is about.

use std::path::PathBuf;

/// Why a probe, recommendation, apply or check could not be done.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A file or directory could not be read or written.
    #[error("{}: {what}: {cause}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`reading`, `creating the measurement file`, ...).
        what: String,
        /// The underlying error (in the message, so not chained as a source too).
        cause: std::io::Error,
    },
    /// A probe file that does not parse or lacks what is needed.
    #[error("probe file {}: {reason}", path.display())]
    BadProbe {
        /// The probe file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A measurement that could not run (executor start-up, thread pinning, ...).
    #[error("measurement failed: {0}")]
    Measure(String),
    /// `apply` refused to write a config (the reason names the key or core).
    #[error("refusing to write {}: {reason}", path.display())]
    Refused {
        /// The zoo.cfg that was not written.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl TuneError {
    /// An [`TuneError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, what: impl Into<String>, source: std::io::Error) -> TuneError {
        TuneError::Io { path: path.into(), what: what.into(), cause: source }
    }
}
