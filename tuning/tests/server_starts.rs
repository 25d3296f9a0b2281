//! End to end on this machine: `ringkeeper-tune probe` (tiny), `apply` into a zoo.cfg, then the
//! real ringkeeper server (tests/ harness) starts with the lines apply wrote and serves a
//! write and a read from a ZooKeeper client.

use std::process::Command;
use std::time::Duration;

use ringkeeper_tests::TestServer;
use ringkeeper_tune::apply::{BLOCK_BEGIN, BLOCK_END};
use zookeeper_client as zk;

const STEP: Duration = Duration::from_secs(20);

fn tune(args: &[&str]) -> String {
    let out =
        Command::new(env!("CARGO_BIN_EXE_ringkeeper-tune")).args(args).output().expect("run ringkeeper-tune");
    assert!(
        out.status.success(),
        "ringkeeper-tune {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_starts_with_the_applied_config_and_serves_writes() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.json");
    let data = dir.path().join("data");
    let (probe_s, data_s) = (probe.to_str().unwrap(), data.to_str().unwrap());
    tune(&[
        "probe",
        "--data-dir",
        data_s,
        "--out",
        probe_s,
        "--quiet",
        "--fsyncs",
        "10",
        "--batch-sizes",
        "4K,64K",
        "--writes-per-size",
        "3",
        "--round-trips",
        "300",
        "--seconds-per-series",
        "10",
        "--file-mib",
        "1",
    ]);
    let recommended = tune(&["recommend", "--probe", probe_s]);
    assert!(recommended.contains("ringkeeper.data.core="), "{recommended}");

    let config = dir.path().join("zoo.cfg");
    std::fs::write(&config, format!("tickTime=2000\ndataDir={data_s}\nclientPort=2181\n")).unwrap();
    tune(&["apply", "--probe", probe_s, config.to_str().unwrap()]);
    let applied = std::fs::read_to_string(&config).unwrap();
    let start = applied.find(BLOCK_BEGIN).expect("block written");
    let end = applied.find(BLOCK_END).expect("block closed") + BLOCK_END.len();
    let block = &applied[start..end];
    // Every recommended line is in the block apply wrote.
    for line in recommended.lines().filter(|l| l.starts_with("ringkeeper.")) {
        assert!(block.lines().any(|b| b == line), "{line} missing from\n{block}");
    }

    // The harness writes dataDir and clientPort for its own port; the tool's lines follow.
    let server = TestServer::start_with(block);
    let log = server.log();
    // The log is captured at info level (start-up lines are there), and no key was refused.
    assert!(log.contains("recovered from no snapshot and 0 txns"), "server log not captured:\n{log}");
    assert!(!log.contains("unknown key") && !log.contains("WARN"), "server warned:\n{log}");
    let cfg = std::fs::read_to_string(server.config_path()).unwrap();
    assert!(cfg.contains(block), "the server's zoo.cfg carries the applied block");

    let client = tokio::time::timeout(STEP, zk::Client::connector().connect(&server.connect_string()))
        .await
        .expect("connect in time")
        .expect("connect");
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    tokio::time::timeout(STEP, client.create("/tuned", b"by ringkeeper-tune", &options))
        .await
        .expect("create in time")
        .expect("create");
    let (value, stat) =
        tokio::time::timeout(STEP, client.get_data("/tuned")).await.expect("get in time").expect("get");
    assert_eq!(value, b"by ringkeeper-tune");
    assert_eq!(stat.version, 0);
}
