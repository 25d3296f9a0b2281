//! The production replica (`engine::replica::Node`) under the deterministic simulator
//! (tests/src/sim.rs), driven by clients speaking the wire protocol: many seeds per ensemble
//! shape, each a run with crashes, partitions, message loss, delay, reordering and
//! duplication, checked after every step and for convergence after healing.
//!
//! `RINGKEEPER_SIM_SEED=S` replays one seed (add `RINGKEEPER_SIM_TRACE=1` for every event);
//! `RINGKEEPER_SIM_SEEDS=N` runs N seeds per shape (default below) starting at
//! `RINGKEEPER_SIM_BASE` (default 0) — the README's long run uses a large N and a random base.

use ringkeeper_tests::sim::{self, SimOptions, SimStats};

fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(one) = std::env::var("RINGKEEPER_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![one];
    }
    let count =
        std::env::var("RINGKEEPER_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_count);
    let base: u64 = std::env::var("RINGKEEPER_SIM_BASE").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    (base..base + count).collect()
}

fn run_seeds(name: &str, opts: SimOptions, default_count: u64) -> SimStats {
    let mut total = SimStats::default();
    for seed in seeds(default_count) {
        match sim::run(seed, &opts) {
            Ok(s) => {
                total.events += s.events;
                total.committed += s.committed;
                total.acked_writes += s.acked_writes;
                total.reads += s.reads;
                total.elections += s.elections;
                total.crashes += s.crashes;
                total.partitions += s.partitions;
                total.snapshots_sent += s.snapshots_sent;
                total.truncations += s.truncations;
                total.reconfigs_sent += s.reconfigs_sent;
                total.reconfigs_done += s.reconfigs_done;
            }
            Err(failure) => panic!("{name}: {failure}"),
        }
    }
    eprintln!("{name}: {total:?}");
    total
}

#[test]
fn three_voters_survive_crashes_partitions_and_lossy_links() {
    let total = run_seeds("3 voters", SimOptions::default(), 1000);
    assert!(
        total.acked_writes > 0 && total.crashes > 0 && total.partitions > 0,
        "the runs exercised nothing"
    );
}

#[test]
fn five_voters_and_an_observer() {
    let opts = SimOptions { voters: 5, observers: 1, ..SimOptions::default() };
    let total = run_seeds("5 voters + 1 observer", opts, 300);
    assert!(total.acked_writes > 0);
}

#[test]
fn short_history_forces_snapshots_and_a_small_counter_forces_new_epochs() {
    let opts = SimOptions { history_max: 8, counter_limit: 40, ..SimOptions::default() };
    let total = run_seeds("snap + epoch roll-over", opts, 800);
    assert!(total.snapshots_sent > 0, "no SNAP sync happened: {total:?}");
}

#[test]
fn seven_voters() {
    let opts = SimOptions { voters: 7, ..SimOptions::default() };
    run_seeds("7 voters", opts, 100);
}

/// Voters removed and added back by reconfig while crashes and partitions cut members off:
/// a voter re-added while it was cut off learns that it votes again from its peers' election
/// notifications (they carry the configuration, and a looking server takes up a newer one, as
/// Apache's `FastLeaderElection`), so the configuration that counts on it elects a leader
/// again after healing (seeds 6 and 21 ended with no leader before). Seeds 0..200 of both
/// shapes passed when this was written; 100 each run here (~15 s), and the seeds that once
/// failed ([`RECONFIG_SEEDS_THAT_FAILED`]).
#[test]
fn voters_removed_and_added_by_reconfig_through_crashes_and_partitions() {
    let mut total = SimStats::default();
    for voters in [3, 5] {
        let opts = SimOptions { voters, reconfig: true, ..SimOptions::default() };
        let shape = run_seeds(&format!("{voters} voters, reconfig"), opts.clone(), 100);
        total.reconfigs_done += shape.reconfigs_done;
        total.crashes += shape.crashes;
        total.acked_writes += shape.acked_writes;
        for &(shape_voters, seed) in RECONFIG_SEEDS_THAT_FAILED {
            if shape_voters == voters {
                if let Err(failure) = sim::run(seed, &opts) {
                    panic!("{voters} voters, reconfig: {failure}");
                }
            }
        }
    }
    assert!(total.reconfigs_done > 0 && total.crashes > 0 && total.acked_writes > 0, "{total:?}");
}

/// (voters, seed) of reconfig runs that once broke an invariant. 1199: a reconfig proposed
/// and never committed, found in a restarted member's log, spread as the committed
/// configuration through election notifications (a member booted with its tree's
/// `/zookeeper/config` instead of its files', unlike Apache), so a learner counted a voter
/// out that the leader rightly counted in.
const RECONFIG_SEEDS_THAT_FAILED: &[(usize, u64)] = &[(5, 1199)];

#[test]
fn the_checker_catches_lost_commits_on_a_lying_disk_while_reconfiguring() {
    let opts = SimOptions { lying_disk: true, reconfig: true, ..SimOptions::default() };
    let caught = (0..50).find_map(|seed| sim::run(seed, &opts).err());
    let failure = caught.expect("a disk that forgets acknowledged writes must break an invariant");
    eprintln!("caught as expected: {}", failure.what);
}

#[test]
fn the_checker_catches_lost_commits_on_a_lying_disk() {
    let opts = SimOptions { lying_disk: true, ..SimOptions::default() };
    let caught = (0..50).find_map(|seed| sim::run(seed, &opts).err());
    let failure = caught.expect("a disk that forgets acknowledged writes must break an invariant");
    eprintln!("caught as expected: {}", failure.what);
}

#[test]
fn the_history_check_catches_a_stale_read() {
    let opts = SimOptions { stale_read_added: true, ..SimOptions::default() };
    let failure = sim::run(1, &opts).expect_err("a stale synced read must fail the history check");
    assert!(failure.what.starts_with("client history"), "{failure}");
    eprintln!("caught as expected: {}", failure.what.lines().next().unwrap_or_default());
}
