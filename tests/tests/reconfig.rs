//! Dynamic reconfig (`reconfigEnabled=true`) with real clients against real ensembles, as
//! Apache ZooKeeper 3.8 does it (`RINGKEEPER_TEST_TARGET=apache` runs the same steps against
//! Apache's QuorumPeerMain).
//!
//! kazoo (`tests/compat/kazoo_reconfig.py`): a 3-member ensemble reads its configuration from
//! `/zookeeper/config`; a reconfig without the super user is NoAuth, one from a stale
//! configuration BadVersion, one whose new voters are not connected NewConfigNoQuorum; a 4th
//! server started with the 4-member configuration joins once the reconfig adding it commits;
//! then server 1 is removed; writes go on through the others, and every member reports the
//! same configuration and the same data. That the membership really changed: with servers 1
//! and 2 killed, servers 3 and 4 still make a quorum (2 of the 3 voters 2, 3, 4; under the
//! old 4-member configuration they would not). Apache's removed server keeps following as a
//! non-voting follower until it is shut down; so does ringkeeper's.
//! Without reconfigEnabled the request is ReconfigDisabled; standalone it is Unimplemented.

use std::time::{Duration, Instant};

use ringkeeper_tests::compat::kazoo_reconfig as kazoo;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::TestServer;

/// The super user's password (`super:test`) and its digest for zoo.cfg.
const SUPER_AUTH: &str = "super:test";
const SUPER_DIGEST: &str = "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n";

/// Bound on members converging on a new configuration (or a removed one stopping).
const SETTLE: Duration = Duration::from_secs(60);

/// The configuration member `i` holds: its `server.N` lines and its version.
fn config_of(ensemble: &Ensemble, i: usize) -> (Vec<String>, String) {
    parse_config(&kazoo(&ensemble.connect_string_of(&[i]), &["config"]))
}

fn parse_config(text: &str) -> (Vec<String>, String) {
    let servers = text.lines().filter(|l| l.starts_with("server.")).map(str::to_string).collect();
    let version = text.lines().find_map(|l| l.strip_prefix("version=")).expect("a version line").to_string();
    (servers, version)
}

fn ids(servers: &[String]) -> Vec<u64> {
    servers.iter().map(|l| l["server.".len()..l.find('=').unwrap()].parse().unwrap()).collect()
}

fn reconfig(hosts: &str, auth: &str, joining: &str, leaving: &str, new_members: &str, from: &str) -> String {
    kazoo(hosts, &["reconfig", auth, joining, leaving, new_members, from])
}

fn poll_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every member in `members` reports configuration `expected` (polled: learners apply the
/// reconfig when its commit reaches them).
fn wait_config(ensemble: &Ensemble, members: &[usize], expected: &(Vec<String>, String)) {
    for &i in members {
        poll_until(SETTLE, &format!("member {} to hold configuration {}", i + 1, expected.1), || {
            &config_of(ensemble, i) == expected
        });
    }
}

/// Writes `path` through member `via` and reads it back from every member of `members`.
fn write_and_agree(ensemble: &Ensemble, via: usize, members: &[usize], path: &str, value: &str) {
    assert_eq!(kazoo(&ensemble.connect_string_of(&[via]), &["write", path, value]), "ok");
    for &i in members {
        assert_eq!(kazoo(&ensemble.connect_string_of(&[i]), &["read", path]), value, "member {}", i + 1);
    }
}

fn reconfig_extra() -> String {
    format!("reconfigEnabled=true\n{SUPER_DIGEST}")
}

#[test]
fn kazoo_grows_an_ensemble_to_four_and_removes_a_member() {
    let mut ensemble = Ensemble::start_with_spares(3, 1, &reconfig_extra());
    let first_three = ensemble.connect_string_of(&[0, 1, 2]);
    let (servers, version) = config_of(&ensemble, 0);
    assert_eq!(ids(&servers), [1, 2, 3], "{servers:?}");
    for line in &servers {
        assert!(line.contains(":participant;"), "Apache's form host:peer:election:role;client: {line}");
    }
    let joining = ensemble.server_line(3);

    // Refusals, as Apache: no super user, a stale configuration, new voters not connected.
    assert_eq!(reconfig(&first_three, "-", &joining, "-", "-", &version), "error NoAuthError");
    let stale = format!("{:x}", i64::from_str_radix(&version, 16).unwrap() + 1);
    assert_eq!(reconfig(&first_three, SUPER_AUTH, &joining, "-", "-", &stale), "error BadVersionError");
    let absent: Vec<String> = (5..=6)
        .map(|id| {
            let p = || ringkeeper_tests::free_port();
            format!("server.{id}=127.0.0.1:{}:{}:participant;127.0.0.1:{}", p(), p(), p())
        })
        .collect();
    assert_eq!(
        reconfig(&first_three, SUPER_AUTH, "-", "-", &absent.join(","), &version),
        "error NewConfigNoQuorumError"
    );
    assert_eq!(config_of(&ensemble, 0), (servers.clone(), version.clone()), "refusals change nothing");

    // Server 4 starts with the 4-member configuration and joins once the reconfig commits.
    ensemble.start_member(3);
    let added = reconfig(&first_three, SUPER_AUTH, &joining, "-", "-", &version);
    let added = added.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig adding server 4: {added}"));
    let four = parse_config(added);
    assert_eq!(ids(&four.0), [1, 2, 3, 4], "{added}");
    assert_ne!(four.1, version, "a reconfig makes a new version");
    wait_config(&ensemble, &[0, 1, 2, 3], &four);
    write_and_agree(&ensemble, 3, &[0, 1, 2, 3], "/after-add", "four");

    // Server 1 leaves; the others go on, and it no longer counts: 3 and 4 are a quorum.
    let removed = reconfig(&ensemble.connect_string_of(&[1, 2, 3]), SUPER_AUTH, "-", "1", "-", &four.1);
    let removed =
        removed.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig removing server 1: {removed}"));
    let three = parse_config(removed);
    assert_eq!(ids(&three.0), [2, 3, 4], "{removed}");
    wait_config(&ensemble, &[0, 1, 2, 3], &three);
    write_and_agree(&ensemble, 1, &[0, 1, 2, 3], "/after-remove", "three");
    ensemble.kill(0);
    ensemble.kill(1);
    ensemble.wait_leader(SETTLE);
    write_and_agree(&ensemble, 3, &[2, 3], "/after-remove", "two of three voters");
}

#[test]
fn reconfig_is_disabled_without_reconfig_enabled_and_unimplemented_standalone() {
    let ensemble = Ensemble::start(3, 0, SUPER_DIGEST);
    let hosts = ensemble.connect_string();
    let (servers, _) = config_of(&ensemble, 0);
    assert_eq!(ids(&servers), [1, 2, 3], "the configuration is readable either way");
    assert_eq!(reconfig(&hosts, SUPER_AUTH, "-", "3", "-", "-"), "error ReconfigDisabledError");
    drop(ensemble);

    let standalone = TestServer::start_with(&reconfig_extra());
    let hosts = standalone.connect_string();
    assert_eq!(reconfig(&hosts, SUPER_AUTH, "-", "1", "-", "-"), "error UnimplementedError");
}
