//! Per-hop latency of sampled writes (`mntr` lines `zk_ringkeeper_hop_<hop>_us_{p50,p99,count}`),
//! checked on real `ringkeeper` processes written to by a real client (kazoo, one
//! `setData` at a time: `tests/compat/kazoo_sequential_writes.py`): a standalone server, and a
//! 3-member ensemble with one writer on the leader and one on a follower. Each member must
//! report every hop of its path with samples, none of the other paths' hops, and medians in
//! path order (each hop is timed from the same network-in, on the same samples). `srst`
//! starts the figures over.
//!
//! ringkeeper only: with `RINGKEEPER_TEST_TARGET=apache` the tests say they are skipped.

use std::collections::BTreeMap;
use std::process::Command;

use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::{workspace_root, Target, TestServer};

/// Writes per writer: 10 sampled at the server's 1 request in 64 per connection.
const WRITES: usize = 640;
/// Fewest samples a hop of the writer's path must show (some samples are kazoo's pings,
/// which are reads and not traced).
const SAMPLES_MIN: u64 = 5;

const STANDALONE_PATH: [&str; 6] =
    ["data_in", "log_append", "durable", "commit", "reply_out", "reply_written"];
const LEADER_PATH: [&str; 8] =
    ["data_in", "proposal_sent", "log_append", "durable", "ack_in", "commit", "reply_out", "reply_written"];
const FOLLOWER_PATH: [&str; 9] = [
    "data_in",
    "relay_out",
    "reply_in",
    "proposal_in",
    "log_append",
    "durable",
    "commit",
    "reply_out",
    "reply_written",
];
const EVERY_HOP: [&str; 11] = [
    "data_in",
    "relay_out",
    "reply_in",
    "proposal_sent",
    "proposal_in",
    "log_append",
    "durable",
    "ack_in",
    "commit",
    "reply_out",
    "reply_written",
];

fn ringkeeper_only(test: &str) -> bool {
    if Target::from_env() == Target::Ringkeeper {
        return true;
    }
    eprintln!("{test}: skipped against Apache (per-hop latency is ringkeeper's own)");
    false
}

/// One kazoo session sets one znode WRITES times against `hosts`; panics unless it finished.
fn write_sequentially(hosts: &str) {
    let compat = workspace_root().join("tests").join("compat");
    let out = Command::new("python3")
        .arg(compat.join("kazoo_sequential_writes.py"))
        .args([hosts, &WRITES.to_string()])
        .current_dir(&compat)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (kazoo, see .ci/run): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.trim_end().ends_with("OK"), "kazoo writer against {hosts}:\n{text}");
}

/// Per hop: (p50 µs, p99 µs, count), from `mntr` text.
fn hop_figures(mntr: &str) -> BTreeMap<String, (u64, u64, u64)> {
    let mut hops: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (key, value) in mntr.lines().filter_map(|l| l.split_once('\t')) {
        let Some(rest) = key.strip_prefix("zk_ringkeeper_hop_") else { continue };
        let (hop, figure) = rest.rsplit_once("_us_").unwrap_or_else(|| panic!("malformed line {key}"));
        let value: u64 = value.parse().unwrap_or_else(|_| panic!("{key}: {value} is not a number"));
        let entry = hops.entry(hop.to_owned()).or_default();
        match figure {
            "p50" => entry.0 = value,
            "p99" => entry.1 = value,
            "count" => entry.2 = value,
            other => panic!("unknown figure {other} in {key}"),
        }
    }
    hops
}

/// Checks that `mntr` of `member` shows exactly the hops of `path` with samples, and the
/// medians of `ordered` (earlier, later) pairs in path order.
fn check_path(member: &str, mntr: &str, path: &[&str], ordered: &[(&str, &str)]) {
    let hops = hop_figures(mntr);
    eprintln!("{member}: {hops:?}");
    for hop in EVERY_HOP {
        match hops.get(hop) {
            Some(&(p50, p99, count)) if path.contains(&hop) => {
                assert!(count >= SAMPLES_MIN, "{member}: {hop} has {count} samples\n{mntr}");
                assert!(p50 <= p99, "{member}: {hop} p50 {p50} > p99 {p99}");
            }
            None if path.contains(&hop) => panic!("{member}: no {hop} line\n{mntr}"),
            Some(_) => panic!("{member}: {hop} is not on its path {path:?}\n{mntr}"),
            None => {}
        }
    }
    for (earlier, later) in ordered {
        let (a, b) = (hops[*earlier].0, hops[*later].0);
        assert!(a <= b, "{member}: p50 of {earlier} ({a} µs) > p50 of {later} ({b} µs)\n{mntr}");
    }
}

/// Consecutive pairs of `hops`.
fn chain<'a>(hops: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    hops.windows(2).map(|w| (w[0], w[1])).collect()
}

#[test]
fn standalone_reports_every_hop_of_a_write_in_path_order() {
    if !ringkeeper_only("standalone_reports_every_hop_of_a_write_in_path_order") {
        return;
    }
    let server = TestServer::start_with("4lw.commands.whitelist=*");
    write_sequentially(&server.connect_string());
    check_path("standalone", &server.four_letter("mntr"), &STANDALONE_PATH, &chain(&STANDALONE_PATH));
    // srst starts the figures over.
    assert!(server.four_letter("srst").contains("reset"));
    let after = server.four_letter("mntr");
    assert!(hop_figures(&after).is_empty(), "hop lines after srst:\n{after}");
}

#[test]
fn ensemble_reports_the_leader_and_follower_paths_of_a_write() {
    if !ringkeeper_only("ensemble_reports_the_leader_and_follower_paths_of_a_write") {
        return;
    }
    let ensemble = Ensemble::start(3, 0, "");
    let leader = ensemble.wait_leader(std::time::Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    write_sequentially(&ensemble.address(leader));
    write_sequentially(&ensemble.address(follower));

    let mut leader_order =
        chain(&["data_in", "proposal_sent", "ack_in", "commit", "reply_out", "reply_written"]);
    leader_order.extend(chain(&["data_in", "log_append", "durable"]));
    check_path("leader", &ensemble.four_letter(leader, "mntr"), &LEADER_PATH, &leader_order);

    // A learner may apply a commit before its own copy is durable (the quorum was the
    // others): durable and commit are not ordered.
    let mut follower_order = chain(&FOLLOWER_PATH[..6]);
    follower_order.extend(chain(&["proposal_in", "commit", "reply_out", "reply_written"]));
    check_path("follower", &ensemble.four_letter(follower, "mntr"), &FOLLOWER_PATH, &follower_order);

    // The third member served no client: no samples.
    let idle = (leader + 2) % 3;
    let text = ensemble.four_letter(idle, "mntr");
    assert!(hop_figures(&text).is_empty(), "member without clients reports hops:\n{text}");
}
