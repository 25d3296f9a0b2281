//! `ringkeeper` binary: `ringkeeper` serves a single node with the embedded default
//! (127.0.0.1:2181, data under ./ringkeeper-data); `ringkeeper path/to/zoo.cfg` reads an
//! ordinary ZooKeeper config. Log tools: `ringkeeper log-dump SEGMENT` prints every record of a
//! segment readably; `ringkeeper log-verify SEGMENT|DIR` checks a segment or a whole log
//! directory without changing it (exit status non-zero when it cannot be trusted).
//! Snapshot tools: `ringkeeper snap-dump SNAPSHOT` prints a snapshot's header, sessions, ACL
//! lists and nodes; `ringkeeper snap-verify SNAPSHOT|DATADIR` validates one or all fully.
//! Migration: `ringkeeper import-zk --from APACHE_DATADIR [--from-log-dir DIR] --to DATADIR`
//! turns Apache ZooKeeper 3.8's snapshot and logs into a ringkeeper dataDir;
//! `ringkeeper export-zk --from DATADIR [--from-log-dir DIR] --to APACHE_DATADIR` writes the way
//! back (an Apache `version-2/snapshot.<zxid>` and the epoch files).
//! `--version` names the build (version, git commit, build date); `--help` lists all this.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ringkeeper_server::config::Config;
use ringkeeper_server::four_letter::{built_on, GIT_COMMIT, RINGKEEPER_VERSION, ZOOKEEPER_VERSION};
use ringkeeper_server::{apache_migration, logging, recovery, snapshot_store};

/// mimalloc instead of glibc malloc: small per-request buffers, freed across executors.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `--version` prints after the program name.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let commit = if GIT_COMMIT.is_empty() { String::new() } else { format!(", git {GIT_COMMIT}") };
    format!(
        "{RINGKEEPER_VERSION} (ZooKeeper {ZOOKEEPER_VERSION} compatible{commit}, built on {})",
        built_on()
    )
});

/// A ZooKeeper-3.8-compatible coordination service.
///
/// With no argument, serves a single node on 127.0.0.1:2181 with data under
/// ./ringkeeper-data. SIGTERM or SIGINT stops it cleanly (exit status 0). Logs go to stderr
/// as text, or as one JSON object per line with RINGKEEPER_LOG_FORMAT=json (structured fields
/// as keys); RUST_LOG filters them (default: info).
#[derive(Parser)]
#[command(name = "ringkeeper", version = VERSION.as_str(), args_conflicts_with_subcommands = true)]
struct Cli {
    /// An Apache ZooKeeper zoo.cfg (Java properties) to serve with.
    config: Option<PathBuf>,
    #[command(subcommand)]
    tool: Option<Tool>,
}

/// Offline tools for the files in dataDir / dataLogDir.
#[derive(Subcommand)]
enum Tool {
    /// Print every record of a log segment readably.
    LogDump { segment: PathBuf },
    /// Check a log segment or a whole log directory without changing it.
    LogVerify {
        #[arg(value_name = "SEGMENT|LOGDIR")]
        path: PathBuf,
    },
    /// Print a snapshot's header, sessions, ACL lists and nodes.
    SnapDump { snapshot: PathBuf },
    /// Validate one snapshot or every snapshot of a data directory.
    SnapVerify {
        #[arg(value_name = "SNAPSHOT|DATADIR")]
        path: PathBuf,
    },
    /// Import Apache ZooKeeper 3.8's dataDir (newest valid snapshot + the logs after it) into
    /// a new ringkeeper dataDir. Run it with Apache stopped.
    ImportZk {
        /// Apache's dataDir (the one holding version-2/), or version-2/ itself.
        #[arg(long, value_name = "APACHE_DATADIR")]
        from: PathBuf,
        /// Apache's dataLogDir, when its logs are not in the dataDir.
        #[arg(long, value_name = "DIR")]
        from_log_dir: Option<PathBuf>,
        /// The new ringkeeper dataDir (created; must hold no ringkeeper files).
        #[arg(long, value_name = "DATADIR")]
        to: PathBuf,
    },
    /// Export a stopped ringkeeper dataDir as an Apache ZooKeeper 3.8 dataDir.
    ExportZk {
        /// ringkeeper's dataDir.
        #[arg(long, value_name = "DATADIR")]
        from: PathBuf,
        /// ringkeeper's dataLogDir, when the log is not in the dataDir.
        #[arg(long, value_name = "DIR")]
        from_log_dir: Option<PathBuf>,
        /// The new Apache dataDir (version-2/ is created in it; must hold no Apache files).
        #[arg(long, value_name = "APACHE_DATADIR")]
        to: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    logging::init(logging::LogFormat::from_env());
    let cli = Cli::parse();
    let config = match (cli.tool, cli.config) {
        (Some(Tool::LogDump { segment }), _) => {
            return Ok(recovery::dump_segment(&segment, &mut std::io::stdout().lock())?);
        }
        (Some(Tool::SnapDump { snapshot }), _) => {
            return Ok(snapshot_store::dump_snapshot(&snapshot, &mut std::io::stdout().lock())?);
        }
        (Some(Tool::SnapVerify { path }), _) => {
            apache_migration::refuse_apache_path(&path)?;
            snapshot_store::verify_snapshots(&path)?.iter().for_each(|line| println!("{line}"));
            return Ok(());
        }
        (Some(Tool::LogVerify { path }), _) => {
            apache_migration::refuse_apache_path(&path)?;
            recovery::verify_log(&path)?.iter().for_each(|line| println!("{line}"));
            return Ok(());
        }
        (Some(Tool::ImportZk { from, from_log_dir, to }), _) => {
            let done = apache_migration::import(&from, from_log_dir.as_deref(), &to)?;
            println!(
                "imported {} and {} txns from {} log file(s): last zxid {:#x}, {} znodes, {} sessions -> {}",
                done.snapshot.display(),
                done.txns,
                done.logs,
                done.last_zxid,
                done.nodes,
                done.sessions,
                done.written.display()
            );
            return Ok(());
        }
        (Some(Tool::ExportZk { from, from_log_dir, to }), _) => {
            let log_dir = from_log_dir.unwrap_or_else(|| from.clone());
            let done = apache_migration::export(&from, &log_dir, &to)?;
            println!(
                "exported last zxid {:#x}, {} znodes, {} sessions -> {}",
                done.last_zxid,
                done.nodes,
                done.sessions,
                done.snapshot.display()
            );
            return Ok(());
        }
        (None, None) => Config::embedded_default(),
        (None, Some(path)) => load(&path)?,
    };
    log::info!("ringkeeper {}", VERSION.as_str());
    ringkeeper_server::stop::install().context("installing the SIGTERM/SIGINT handler")?;
    ringkeeper_server::runtime::run(config)
}

/// Reads `path`, logging every warning and, once, the Apache keys accepted but not acted on.
fn load(path: &Path) -> anyhow::Result<Config> {
    let shown = path.display();
    let (config, warnings) = Config::load(path).with_context(|| format!("reading {shown}"))?;
    for warning in warnings {
        tracing::warn!(config = %shown, "{warning}");
    }
    if !config.ignored_keys.is_empty() {
        let keys = config.ignored_keys.join(",");
        tracing::info!(config = %shown, ignored_keys = %keys, "Apache keys accepted but not acted on by ringkeeper");
    }
    Ok(config)
}
