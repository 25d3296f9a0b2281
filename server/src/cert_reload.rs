//! Certificate reload: TLS settings rebuilt when their key or trust store files change, so a
//! renewed certificate is served to new connections without a restart (Apache ZooKeeper
//! 3.8's `X509Util.enableCertFileReloading` with `client.certReload` for the client ports
//! and `sslQuorumReloadCertFiles` for the peer links).
//!
//! In: the files to watch and a function that builds the TLS settings from them. Out: a
//! [`Reloadable`] whose [`Reloadable::current`] is the settings of the last good load.
//! Connections already open keep the settings they were made with.
//!
//! A thread of its own looks at the files' modification times and sizes every
//! [`POLL_INTERVAL`] (Apache watches the directories with the JDK's WatchService; the
//! outcome is the same, a little later). A change triggers a rebuild; a rebuild that fails
//! (a file written halfway, a key that does not fit its new certificate) is logged and the
//! previous settings stay in use; it is tried again on the next look, so a file that is
//! finished a moment later is picked up.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the watched files are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// TLS settings that are replaced when their files change (cheap to clone: shared).
pub struct Reloadable<T> {
    current: Arc<RwLock<T>>,
}

impl<T> Clone for Reloadable<T> {
    fn clone(&self) -> Self {
        Reloadable { current: self.current.clone() }
    }
}

impl<T: Clone + Send + Sync + 'static> Reloadable<T> {
    /// Settings that never change.
    pub fn fixed(value: T) -> Reloadable<T> {
        Reloadable { current: Arc::new(RwLock::new(value)) }
    }

    /// `initial` (built from `files` as they are now), rebuilt by `build` whenever one of
    /// `files` changes; `what` names the settings in log lines.
    pub fn watching(
        initial: T,
        what: &'static str,
        files: Vec<PathBuf>,
        build: impl Fn() -> anyhow::Result<T> + Send + 'static,
    ) -> std::io::Result<Reloadable<T>> {
        let reloadable = Reloadable::fixed(initial);
        let current = Arc::downgrade(&reloadable.current);
        let mut loaded = stamps(&files);
        std::thread::Builder::new().name("ringkeeper-cert-reload".into()).spawn(move || {
            let mut failed: Option<Vec<Option<(SystemTime, u64)>>> = None;
            loop {
                std::thread::sleep(POLL_INTERVAL);
                let Some(current) = current.upgrade() else { return };
                let now = stamps(&files);
                if now == loaded || failed.as_ref() == Some(&now) {
                    continue;
                }
                match build() {
                    Ok(value) => {
                        *current.write().unwrap_or_else(|e| e.into_inner()) = value;
                        log::info!("{what}: reloaded the changed key and trust stores; new connections use them");
                        loaded = now;
                        failed = None;
                    }
                    Err(e) => {
                        log::warn!("{what}: the changed stores cannot be loaded ({e:#}); still serving the previous ones");
                        failed = Some(now);
                    }
                }
            }
        })?;
        Ok(reloadable)
    }

    /// The settings of the last good load.
    pub fn current(&self) -> T {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Modification time and size of each file (`None` for one that cannot be read now).
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_for(reloadable: &Reloadable<String>, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while reloadable.current() != expected {
            assert!(Instant::now() < deadline, "still {:?}, not {expected:?}", reloadable.current());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_bad_one_keeps_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store");
        std::fs::write(&file, "one").unwrap();
        let watched = file.clone();
        let build = move || {
            let text = std::fs::read_to_string(&watched)?;
            // As a key or trust store parser: an empty file is one caught between the
            // truncate and the write of `fs::write` (the test failed once under load when
            // this builder took it for content).
            anyhow::ensure!(!text.is_empty(), "a truncated store");
            anyhow::ensure!(!text.starts_with("bad"), "a bad store");
            Ok(text)
        };
        let reloadable = Reloadable::watching(build().unwrap(), "test", vec![file.clone()], build).unwrap();
        assert_eq!(reloadable.current(), "one");
        std::fs::write(&file, "two!").unwrap();
        wait_for(&reloadable, "two!");
        for bad in ["bad store", ""] {
            std::fs::write(&file, bad).unwrap();
            std::thread::sleep(POLL_INTERVAL * 3);
            assert_eq!(reloadable.current(), "two!", "after {bad:?}");
        }
        std::fs::write(&file, "three").unwrap();
        wait_for(&reloadable, "three");
    }
}
