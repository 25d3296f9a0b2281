//! Wake-up coalescing (`ringkeeper.coalesceMicros`, `server/src/coalesce.rs`) on a real
//! 3-member ensemble written to by kazoo: a lone writer never naps; a session keeping 32
//! writes in flight through a follower makes the members nap (`mntr`
//! `zk_ringkeeper_coalesce_naps`) and every write is still applied once, in order; an idle
//! ensemble stops napping.
//!
//! ringkeeper only: with `RINGKEEPER_TEST_TARGET=apache` the test says it is skipped.

use std::time::Duration;

use ringkeeper_tests::compat::python_script;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::Target;

/// Naps of every member, from `mntr`.
fn naps(ensemble: &Ensemble) -> Vec<u64> {
    (0..3)
        .map(|i| {
            let mntr = ensemble.four_letter(i, "mntr");
            mntr.lines()
                .find_map(|l| l.strip_prefix("zk_ringkeeper_coalesce_naps")?.trim().parse().ok())
                .unwrap_or_else(|| panic!("member {i}: no zk_ringkeeper_coalesce_naps in mntr:\n{mntr}"))
        })
        .collect()
}

fn kazoo(script: &str, args: &[&str]) {
    let out = python_script(script, args).unwrap_or_else(|out| panic!("{script} {args:?} failed:\n{out}"));
    assert!(out.trim_end().ends_with("OK"), "{script} {args:?}:\n{out}");
}

#[test]
fn members_nap_only_while_many_writes_are_in_flight_and_apply_every_write() {
    if Target::from_env() != Target::Ringkeeper {
        eprintln!("coalesce: skipped against Apache (ringkeeper.coalesceMicros is ringkeeper's own)");
        return;
    }
    let ensemble = Ensemble::start(3, 0, "ringkeeper.coalesceMicros=2000\n");
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    let follower = ensemble.address((leader + 1) % 3);

    kazoo("kazoo_sequential_writes.py", &[&follower, "50"]);
    assert_eq!(naps(&ensemble), vec![0, 0, 0], "a lone writer (one write in flight) napped");

    kazoo("kazoo_concurrent_writes.py", &[&follower, "1000", "32"]);
    // The client has its replies; followers may still be applying the last commits (and
    // napping while 8 or more are in flight): a second to settle, then a second of idleness.
    std::thread::sleep(Duration::from_secs(1));
    let after_load = naps(&ensemble);
    assert!(after_load[leader] > 0, "the leader never napped with 32 writes in flight: {after_load:?}");

    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(naps(&ensemble), after_load, "an idle ensemble kept napping");
}
