//! `ringkeeper` binary: `ringkeeper` serves a single node with the embedded default
//! (127.0.0.1:2181, data under ./ringkeeper-data); `ringkeeper path/to/zoo.cfg` reads an
//! ordinary ZooKeeper config. Log tools: `ringkeeper log-dump SEGMENT` prints every record of a
//! segment readably; `ringkeeper log-verify SEGMENT|DIR` checks a segment or a whole log
//! directory without changing it (exit status non-zero when it cannot be trusted).
//! Snapshot tools: `ringkeeper snap-dump SNAPSHOT` prints a snapshot's header, sessions, ACL
//! lists and nodes; `ringkeeper snap-verify SNAPSHOT|DATADIR` validates one or all fully.

use anyhow::Context;
use ringkeeper_server::config::Config;
use ringkeeper_server::{recovery, snapshot_store};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [] => Config::embedded_default(),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("usage: ringkeeper [path/to/zoo.cfg]\n       ringkeeper log-dump SEGMENT\n       ringkeeper log-verify SEGMENT|LOGDIR\n       ringkeeper snap-dump SNAPSHOT\n       ringkeeper snap-verify SNAPSHOT|DATADIR\n\nWith no argument, serves a single node on 127.0.0.1:2181 with data under ./ringkeeper-data.");
            return Ok(());
        }
        [tool, path] if tool == "log-dump" => {
            return Ok(recovery::dump_segment(std::path::Path::new(path), &mut std::io::stdout().lock())?);
        }
        [tool, path] if tool == "snap-dump" => {
            return Ok(snapshot_store::dump_snapshot(
                std::path::Path::new(path),
                &mut std::io::stdout().lock(),
            )?);
        }
        [tool, path] if tool == "snap-verify" => {
            for line in snapshot_store::verify_snapshots(std::path::Path::new(path))? {
                println!("{line}");
            }
            return Ok(());
        }
        [tool, path] if tool == "log-verify" => {
            for line in recovery::verify_log(std::path::Path::new(path))? {
                println!("{line}");
            }
            return Ok(());
        }
        [path] => {
            let (config, warnings) =
                Config::load(std::path::Path::new(path)).with_context(|| format!("reading {path}"))?;
            for warning in warnings {
                log::warn!("{path}: {warning}");
            }
            config
        }
        _ => anyhow::bail!("usage: ringkeeper [path/to/zoo.cfg]"),
    };
    ringkeeper_server::runtime::run(config)
}
