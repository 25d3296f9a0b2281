//! `apply` round trip on real files: backup first, owned lines replaced wherever they were,
//! everything else kept in place, idempotent, and refusals that leave the file untouched.

mod common;

use common::fixture;
use ringkeeper_tune::apply::{apply_file, backup_path, BLOCK_BEGIN, BLOCK_END};
use ringkeeper_tune::recommend::{recommend, RecommendOptions};
use ringkeeper_tune::TuneError;

const ORIGINAL: &str = "# production ensemble member\n\
tickTime=2000\n\
dataDir=/var/lib/zookeeper\n\
\n\
! a bang comment\n\
clientPort=2181\n\
ringkeeper.pin = true\n\
ringkeeper.network.cores: 0-3\n\
maxClientCnxns=100\n\
ringkeeper.log.batchDelayMicros 5000\n";

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn writes_backup_replaces_owned_lines_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, ORIGINAL);
    let rec = recommend(&fixture("2cpu-vm-virtio.json"), RecommendOptions::default());
    let applied = apply_file(&path, &rec, &[0, 1]).unwrap();
    assert!(applied.changed);
    assert_eq!(std::fs::read_to_string(backup_path(&path)).unwrap(), ORIGINAL);
    assert_eq!(applied.replaced_lines.len(), 3, "{:?}", applied.replaced_lines);
    assert!(applied.replaced_lines[0].starts_with("line 7: ringkeeper.pin = true"));

    let text = std::fs::read_to_string(&path).unwrap();
    // Every line that is not the tool's, in the original order, comments and blanks included.
    let kept: Vec<&str> = text.lines().take_while(|l| !l.starts_with(BLOCK_BEGIN)).collect();
    assert_eq!(
        kept,
        [
            "# production ensemble member",
            "tickTime=2000",
            "dataDir=/var/lib/zookeeper",
            "",
            "! a bang comment",
            "clientPort=2181",
            "maxClientCnxns=100",
            "",
        ]
    );
    assert!(text.ends_with(&format!("{BLOCK_END}\n")));
    // The server reads the result with the recommended values, and each key once.
    let (cfg, warnings) = ringkeeper_server::config::Config::parse(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.network_cores, rec.layout.network_cores);
    assert_eq!((cfg.data_core, cfg.log_core), (Some(rec.layout.data_core), Some(rec.layout.log_core)));
    assert_eq!(cfg.pin, rec.layout.pin);
    assert_eq!(cfg.log_batch_delay_micros.to_string(), rec.value("ringkeeper.log.batchDelayMicros").unwrap());
    assert_eq!(cfg.max_client_cnxns, 100);
    for line in rec.zoo_cfg_lines() {
        assert_eq!(text.lines().filter(|l| *l == line).count(), 1, "{line}");
    }
}

#[test]
fn applying_twice_changes_nothing_and_another_probe_replaces_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, ORIGINAL);
    let two_cpu = recommend(&fixture("2cpu-vm-virtio.json"), RecommendOptions::default());
    apply_file(&path, &two_cpu, &[0, 1]).unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    let again = apply_file(&path, &two_cpu, &[0, 1]).unwrap();
    assert!(!again.changed && again.replaced_lines.is_empty());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);

    // A different recommendation replaces the block instead of adding a second one.
    let one_cpu = recommend(&fixture("1cpu-hdd.json"), RecommendOptions::default());
    apply_file(&path, &one_cpu, &[0, 1]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(BLOCK_BEGIN).count(), 1);
    assert_eq!(text.lines().filter(|l| l.starts_with("ringkeeper.network.cores=")).count(), 1);
    assert!(text.contains("ringkeeper.log.batchDelayMicros=800\n"));
    assert_eq!(std::fs::read_to_string(backup_path(&path)).unwrap(), first);
}

#[test]
fn refuses_a_layout_naming_cpus_the_host_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, ORIGINAL);
    let big = recommend(&fixture("64cpu-smt-numa-nvme.json"), RecommendOptions::default());
    let err = apply_file(&path, &big, &[0, 1]).unwrap_err();
    assert!(matches!(err, TuneError::Refused { .. }));
    let message = err.to_string();
    assert!(
        message.contains("names CPU 17-26 which this host does not have (online CPUs: 0,1)"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL, "file untouched");
    assert!(!backup_path(&path).exists(), "no backup for a refused write");
}

#[test]
fn refuses_a_result_the_server_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "clientPort=2181\n"; // no dataDir: the server refuses to start
    let path = write_config(&dir, broken);
    let rec = recommend(&fixture("2cpu-vm-virtio.json"), RecommendOptions::default());
    let message = apply_file(&path, &rec, &[0, 1]).unwrap_err().to_string();
    assert!(message.ends_with("the server would not start with the result: dataDir is not set"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
}

#[test]
fn a_missing_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.cfg");
    let rec = recommend(&fixture("2cpu-vm-virtio.json"), RecommendOptions::default());
    let message = apply_file(&path, &rec, &[0, 1]).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{}: reading: ", path.display())), "{message}");
}
