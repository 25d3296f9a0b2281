//! The process's log output, through `tracing`: plain text lines on stderr by default, one
//! JSON object per line with `RINGKEEPER_LOG_FORMAT=json` (for log shippers), filtered by
//! `RUST_LOG` (default `info`). Events carry structured fields (a session's `session_id`,
//! `timeout_ms`, `client`); in JSON they are keys of the line's object beside `timestamp`,
//! `level`, `target` and `message`, in text they follow the message as `name=value`.
//! Records of the `log` macros (most of the tree, and the crates below us) come in through
//! the `tracing-log` bridge the subscriber installs, so both kinds land in one stream.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The environment variable choosing the format: `json`, or anything else for text.
pub const FORMAT_VARIABLE: &str = "RINGKEEPER_LOG_FORMAT";

/// The two line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// What `RINGKEEPER_LOG_FORMAT` asks for (`json`, any case; otherwise text).
    pub fn from_env() -> LogFormat {
        match std::env::var(FORMAT_VARIABLE) {
            Ok(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Installs the process-wide subscriber (and the `log` bridge). Call once, first thing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    if let Err(e) = installed {
        eprintln!("ringkeeper: logging not installed: {e}");
    }
}
