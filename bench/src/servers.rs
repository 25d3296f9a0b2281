//! The bench's use of the harness's one ensemble launcher ([`ringkeeper_tests::ensemble`],
//! which writes the zoo.cfg files and `myid`s, builds the command lines, starts, stops and
//! isolates the members): plans with the bench's settings, and readiness as a measurement
//! needs it.
//!
//! The bench's settings: members under `--data-root`, servers logging warnings only, Apache
//! with the full JIT ([`apache`]), the generated zoo.cfg with `forceSync=yes` and no
//! per-client connection limit (a user's zoo.cfg, [`plan_from_zoo_cfg`], is taken as it is),
//! up to 120 s to start. Both kinds get the same zoo.cfg text apart from per-member paths and
//! ports.
//!
//! Ready means: every member opens a ZooKeeper session and, for an ensemble, `srvr` shows one
//! `Mode: leader` and only followers beside it. A member that answers `Mode: standalone` to
//! an ensemble config makes start fail with [`BenchError::NotSupported`] (never faked).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringkeeper_tests::command::{ApacheJvm, LogLevel, ServerKind};
use ringkeeper_tests::ensemble::{EnsemblePlan, DEFAULT_COMMON_CONFIG};
use ringkeeper_tests::HarnessError;

use crate::cpu::ServerProcess;
use crate::four_letter::{modes_of, settled_leader, Mode};
use crate::wire::Session;
use crate::BenchError;

pub use ringkeeper_tests::ensemble::{clean_up_after_interrupt, Ensemble};

/// How long a server may take to open a session after start.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// zoo.cfg lines a generated bench plan adds to the harness's defaults.
const BENCH_CONFIG: &str = "forceSync=yes\nmaxClientCnxns=0\n";

impl From<HarnessError> for BenchError {
    fn from(error: HarnessError) -> BenchError {
        match error {
            HarnessError::Config(why) => BenchError::Config(why),
            HarnessError::NotSupported(why) => BenchError::NotSupported(why),
            HarnessError::Failed(why) => BenchError::Server(why),
        }
    }
}

/// ringkeeper from `binary`.
pub fn ringkeeper(binary: PathBuf) -> ServerKind {
    ServerKind::Ringkeeper { binary }
}

/// Apache ZooKeeper run by `java` with the full JIT.
pub fn apache(java: PathBuf) -> ServerKind {
    ServerKind::Apache { java, jvm: ApacheJvm::FullJit }
}

/// The default path of the release `ringkeeper` binary of this workspace.
pub fn default_ringkeeper_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("release").join("ringkeeper")
}

/// `servers` members of `kind` on free loopback ports, under `root`, with the bench's zoo.cfg.
pub fn plan(kind: ServerKind, servers: usize, root: &Path) -> Result<EnsemblePlan, BenchError> {
    if !(1..=9).contains(&servers) {
        return Err(BenchError::Config(format!("{servers} servers: 1..=9 supported")));
    }
    let plan = EnsemblePlan::of(kind, servers);
    Ok(EnsemblePlan {
        common_config: format!("{DEFAULT_COMMON_CONFIG}{BENCH_CONFIG}"),
        ..with_bench_settings(plan, root)
    })
}

/// The members and shared lines of a user's zoo.cfg ([`EnsemblePlan::from_zoo_cfg`]), under `root`.
pub fn plan_from_zoo_cfg(kind: ServerKind, text: &str, root: &Path) -> Result<EnsemblePlan, BenchError> {
    Ok(with_bench_settings(EnsemblePlan::from_zoo_cfg(kind, text)?, root))
}

fn with_bench_settings(plan: EnsemblePlan, root: &Path) -> EnsemblePlan {
    EnsemblePlan {
        parent_dir: Some(root.to_path_buf()),
        log_level: LogLevel::Warnings,
        start_timeout: START_TIMEOUT,
        ..plan
    }
}

/// Starts `plan` and waits until it is ready to be measured ([`wait_ready`]).
pub fn start(plan: &EnsemblePlan) -> Result<Ensemble, BenchError> {
    let mut ensemble = Ensemble::try_start_plan(plan)?;
    wait_ready(&mut ensemble, START_TIMEOUT)?;
    Ok(ensemble)
}

/// Every running member's process, named `server<id>`, in member order.
pub fn server_processes(ensemble: &Ensemble) -> Vec<ServerProcess> {
    ensemble
        .members
        .iter()
        .filter_map(|m| {
            m.pid().map(|pid| ServerProcess {
                name: format!("server{}", m.id),
                pid,
                quota_stat: m.cpu_stat(),
            })
        })
        .collect()
}

/// Waits until every member serves: a session opens on each and, for an ensemble, one
/// leader and only followers. Returns the leader's index (0 for a lone server).
pub fn wait_ready(ensemble: &mut Ensemble, timeout: Duration) -> Result<usize, BenchError> {
    let deadline = Instant::now() + timeout;
    let addresses = ensemble.client_addresses();
    let name = ensemble.target.name();
    let mut last = String::from("no answer yet");
    let mut suspect = 0;
    while Instant::now() < deadline {
        ensemble.check_running()?;
        if addresses.len() == 1 {
            if session_opens(&addresses[0]) {
                return Ok(0);
            }
        } else {
            let modes = modes_of(&addresses);
            if let Some(index) = modes.iter().position(|m| *m == Some(Mode::Standalone)) {
                return Err(BenchError::NotSupported(format!(
                    "{name} server {} answered `Mode: standalone` to a {}-server zoo.cfg: this build does not run ensembles",
                    ensemble.members[index].id,
                    addresses.len()
                )));
            }
            if let Some(leader) = settled_leader(&modes) {
                if addresses.iter().all(|a| session_opens(a)) {
                    return Ok(leader);
                }
            }
            last = format!("modes {modes:?}");
            // The log worth showing is that of a member with no role.
            suspect = modes.iter().position(Option::is_none).unwrap_or(0);
        }
        std::thread::sleep(PROBE_EVERY);
    }
    Err(BenchError::Server(format!(
        "{name} not ready within {timeout:?} ({last}); log of server {}:\n{}",
        ensemble.members[suspect].id,
        ensemble.log_tail(suspect)
    )))
}

/// Whether a ZooKeeper session opens on `address` (and is closed again).
fn session_opens(address: &str) -> bool {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return false;
    };
    runtime.block_on(async {
        match Session::connect(address, 10_000).await {
            Ok(session) => session.close().await.is_ok(),
            Err(_) => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_plans_carry_the_bench_settings_and_a_users_zoo_cfg_is_taken_as_it_is() {
        let root = Path::new("/r");
        let generated = plan(apache("java".into()), 3, root).unwrap();
        assert!(generated.common_config.ends_with(BENCH_CONFIG), "{}", generated.common_config);
        assert_eq!((generated.parent_dir.as_deref(), generated.log_level), (Some(root), LogLevel::Warnings));
        assert!(plan(apache("java".into()), 10, root).is_err());
        let user = plan_from_zoo_cfg(apache("java".into()), "tickTime=500\nclientPort=7\n", root).unwrap();
        assert_eq!(user.common_config, "tickTime=500\n");
        assert_eq!(user.start_timeout, START_TIMEOUT);
    }
}
