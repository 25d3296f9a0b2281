//! Writes a recommendation into a zoo.cfg.
//!
//! In: the zoo.cfg text, a [`Recommendation`] and the CPUs this host has. Out: the new text,
//! written as `PATH.bak` (the old file, first) then `PATH` (via a temporary file, fsync and
//! rename). The tool owns the [`OWNED_KEYS`] lines and its marked block
//! (`# ringkeeper-tune: begin` .. `# ringkeeper-tune: end`): those are removed wherever they
//! are and the new block goes at the end; every other line, comment and blank line stays as
//! it was. Applying the same recommendation twice gives the same file (idempotent).
//! Refused: a layout naming a CPU the host lacks, or a result the server would not parse
//! (checked with the server's own `Config::parse`).

use std::path::{Path, PathBuf};

use ringkeeper_server::config::Config;
use ringkeeper_server::data_files;

use crate::probe::topology::format_cpu_list;
use crate::recommend::{Recommendation, OWNED_KEYS};
use crate::TuneError;

/// First line of the block the tool writes.
pub const BLOCK_BEGIN: &str = "# ringkeeper-tune: begin";
/// Last line of the block the tool writes.
pub const BLOCK_END: &str = "# ringkeeper-tune: end";

/// What `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub backup: PathBuf,
    /// Owned lines found outside the tool's block and replaced (as written, with line numbers).
    pub replaced_lines: Vec<String>,
    /// False when the file already had exactly these lines.
    pub changed: bool,
}

/// The key of a properties line (`key=value`, `key: value`, `key value`), `None` for
/// comments and blank lines.
fn line_key(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
        return None;
    }
    let end = trimmed.find(|c: char| c == '=' || c == ':' || c.is_whitespace()).unwrap_or(trimmed.len());
    Some(&trimmed[..end])
}

/// The new zoo.cfg text and the owned lines that were replaced outside the block.
pub fn apply_to_text(original: &str, recommendation: &Recommendation) -> (String, Vec<String>) {
    let mut kept: Vec<&str> = Vec::new();
    let mut replaced = Vec::new();
    let mut in_block = false;
    for (index, line) in original.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with(BLOCK_BEGIN) {
            in_block = true;
            continue;
        }
        if in_block {
            in_block = trimmed != BLOCK_END;
            continue;
        }
        if line_key(line).is_some_and(|k| OWNED_KEYS.contains(&k)) {
            replaced.push(format!("line {}: {line}", index + 1));
            continue;
        }
        kept.push(line);
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    let mut text = String::new();
    for line in kept {
        text.push_str(line);
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "{BLOCK_BEGIN} (from {}; rewritten by `ringkeeper-tune apply`)\n",
        recommendation.source
    ));
    for line in recommendation.zoo_cfg_lines() {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(BLOCK_END);
    text.push('\n');
    (text, replaced)
}

/// Refuses a layout naming CPUs `host_cpus` lacks.
pub fn check_layout_fits(
    path: &Path,
    recommendation: &Recommendation,
    host_cpus: &[usize],
) -> Result<(), TuneError> {
    let missing: Vec<usize> =
        recommendation.layout.cores_named().into_iter().filter(|c| !host_cpus.contains(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(TuneError::Refused {
        path: path.to_path_buf(),
        reason: format!(
            "the layout names CPU {} which this host does not have (online CPUs: {}); probe this host and recommend again",
            format_cpu_list(&missing),
            format_cpu_list(host_cpus)
        ),
    })
}

/// `PATH.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bak");
    PathBuf::from(name)
}

fn write_durably(path: &Path, text: &str) -> Result<(), TuneError> {
    data_files::replace_path_durably(path, text.as_bytes()).map_err(|e| TuneError::io(path, "writing", e))
}

/// Writes `recommendation` into the zoo.cfg at `path` (backup first).
pub fn apply_file(
    path: &Path,
    recommendation: &Recommendation,
    host_cpus: &[usize],
) -> Result<Applied, TuneError> {
    let original = std::fs::read_to_string(path).map_err(|e| TuneError::io(path, "reading", e))?;
    check_layout_fits(path, recommendation, host_cpus)?;
    let (text, replaced_lines) = apply_to_text(&original, recommendation);
    Config::parse(&text).map_err(|e| TuneError::Refused {
        path: path.to_path_buf(),
        reason: format!("the server would not start with the result: {e}"),
    })?;
    let backup = backup_path(path);
    write_durably(&backup, &original)?;
    let changed = text != original;
    if changed {
        write_durably(path, &text)?;
    }
    Ok(Applied { backup, replaced_lines, changed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_properties_lines() {
        assert_eq!(line_key("ringkeeper.pin=true"), Some("ringkeeper.pin"));
        assert_eq!(line_key("  ringkeeper.pin : true"), Some("ringkeeper.pin"));
        assert_eq!(line_key("ringkeeper.pin true"), Some("ringkeeper.pin"));
        assert_eq!(line_key("# ringkeeper.pin=true"), None);
        assert_eq!(line_key("! x"), None);
        assert_eq!(line_key("   "), None);
    }
}
