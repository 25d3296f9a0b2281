//! Shared by the integration tests: the recorded probe files in `tests/fixtures/`.

#![allow(dead_code)]

use std::path::PathBuf;

use ringkeeper_tune::probe::Probe;

/// `tests/fixtures/<name>`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Loads `tests/fixtures/<name>` (panics naming the file when it does not parse).
pub fn fixture(name: &str) -> Probe {
    let path = fixture_path(name);
    Probe::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Every fixture file name.
pub fn all_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_path(""))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}
