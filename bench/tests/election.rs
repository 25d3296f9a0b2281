//! The election harness against a 3-server ringkeeper ensemble it starts itself (real
//! processes on 127.0.0.1, one kill -9 trial, and one trial isolating the leader through the
//! harness's proxies). Until ringkeeper runs ensembles its members
//! answer `Mode: standalone`, and the harness must say "not supported" rather than measure
//! anything; once they do, the trial must see a new leader and a write acknowledged after
//! the kill. Nothing here asserts a duration.

use std::time::Duration;

use ringkeeper_bench::election::{run_election, ElectionConfig, Fault, Target};
use ringkeeper_bench::servers;
use ringkeeper_bench::BenchError;
use ringkeeper_tests::ringkeeper_binary;

#[test]
fn election_on_a_ringkeeper_ensemble_recovers_or_is_reported_not_supported() {
    one_trial_recovers(Fault::Kill);
}

#[test]
fn an_isolated_leader_is_replaced_and_the_harness_heals_the_partition() {
    one_trial_recovers(Fault::Partition);
}

/// One trial of `fault` on a fresh 3-member ringkeeper ensemble: a new leader, a write
/// acknowledged after the fault, and nothing left behind.
fn one_trial_recovers(fault: Fault) {
    let root = tempfile::tempdir().unwrap();
    let plan = servers::plan(servers::ringkeeper(ringkeeper_binary()), 3, root.path()).unwrap();
    let config = ElectionConfig {
        target: Target::Start(plan),
        fault,
        trials: 1,
        writers: 3,
        size_bytes: 10,
        before: Duration::from_secs(2),
        after: Duration::from_millis(200),
        recovery_timeout: Duration::from_secs(30),
        settle_timeout: Duration::from_secs(60),
        poll_every: Duration::from_millis(10),
        write_timeout: Duration::from_secs(2),
        session_timeout_ms: 4000,
    };
    match run_election(&config) {
        Err(BenchError::NotSupported(why)) => assert!(why.contains("Mode: standalone"), "{why}"),
        Ok(report) => {
            assert_eq!(report.trials_not_recovered, 0, "{}", report.table());
            assert_ne!(report.trials[0].new_leader, Some(report.trials[0].old_leader.clone()));
        }
        Err(e) => panic!("election harness failed: {e}"),
    }
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "the harness left {left:?} behind");
}
