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
//! With `skipACL=yes` no super user is needed.
//!
//! The configuration no reconfig made: with reconfigEnabled the first leader gives it its
//! epoch's first zxid as version (`version=100000000`, mzxid the same, dataVersion and
//! aclVersion -1, no txn), kept through a new epoch and a restart of every member; without
//! reconfigEnabled it stays at version 0. Apache 3.8 does exactly this.
//!
//! Bulk reconfig under writes: kazoo's `reconfig(new_members=...)` replaces server 1 by
//! server 4, then zkCli's `reconfig -members` makes all four voters; every acknowledged
//! write is on every member.
//!
//! The files, as Apache 3.8 leaves them: once the first leader versioned the configuration,
//! every member's zoo.cfg has lost its `server.N` and `clientPort*` lines and names
//! `zoo.cfg.dynamic.100000000` (sorted `server.N` lines, no version) in `dynamicConfigFile`,
//! the original kept as `zoo.cfg.bak`; every member restarts from that zoo.cfg with the same
//! configuration and data; a reconfig moves zoo.cfg on to the new file, and a restart starts
//! from it.
//!
//! Apache's zkCli.sh (`reconfig`, `config`) while kazoo writes without pause: the leader is
//! removed (a new one is elected among the two left, writes go on), an observer is added
//! (it serves the committed data and says `peerType=1` in `conf`) and removed again; every
//! write the ensemble acknowledged is on every remaining member. The `conf` four-letter word
//! ends with the member's current configuration after `membership: `, as Apache's.
//!
//! A member's ports changed in place (an incremental reconfig naming its id with new peer
//! and election ports): the others dial it at the new ones, so restarted there it syncs and
//! serves.
//!
//! A joiner restarted before the reconfig adding it commits does not start ("My id 4 not in
//! the peer list", as Apache 3.8: it wrote the leader's configuration, which does not list it
//! yet); given its joining zoo.cfg again it joins.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringkeeper_tests::compat::kazoo_reconfig as kazoo;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::four_letter::Mode;
use ringkeeper_tests::{free_port, workspace_root, TestServer};

/// The super user's password (`super:test`) and its digest for zoo.cfg.
const SUPER_AUTH: &str = "super:test";
const SUPER_DIGEST: &str = "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n";

/// Bound on members converging on a new configuration (or a removed one stopping).
const SETTLE: Duration = Duration::from_secs(60);
/// Apache's command-line client.
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// The configuration member `i` holds: its `server.N` lines and its version.
fn config_of(ensemble: &Ensemble, i: usize) -> (Vec<String>, String) {
    parse_config(&kazoo(&ensemble.connect_string_of(&[i]), &["config"]))
}

/// The `server.N` lines (sorted: their order means nothing, and Apache's leader may hold
/// them in another order than its learners: observer first) and the version of `text`.
fn parse_config(text: &str) -> (Vec<String>, String) {
    let mut servers: Vec<String> =
        text.lines().filter(|l| l.starts_with("server.")).map(str::to_string).collect();
    servers.sort();
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
        let deadline = Instant::now() + SETTLE;
        loop {
            let held = config_of(ensemble, i);
            if &held == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {SETTLE:?} waiting for member {} to hold configuration {expected:?}; it holds {held:?}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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
    ensemble.wait_leader(SETTLE);
    for i in 0..3 {
        assert_eq!(
            config_version_and_stat(&ensemble, i),
            ["0", "0", "0", "-1", "-1"].map(String::from),
            "member {}: as Apache, only reconfigEnabled versions the configuration",
            i + 1
        );
    }
    drop(ensemble);

    let standalone = TestServer::start_with(&reconfig_extra());
    let hosts = standalone.connect_string();
    assert_eq!(reconfig(&hosts, SUPER_AUTH, "-", "1", "-", "-"), "error UnimplementedError");
}

#[test]
fn skip_acl_lets_a_client_without_the_super_user_reconfigure() {
    let ensemble = Ensemble::start(3, 0, "reconfigEnabled=true\nskipACL=yes\n");
    let hosts = ensemble.connect_string();
    let removed = reconfig(&hosts, "-", "-", "3", "-", "-");
    let removed = removed.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig with skipACL: {removed}"));
    assert_eq!(ids(&parse_config(removed).0), [1, 2]);
}

/// Runs zkCli.sh against `hosts` with `commands` (one per line) on its stdin; its stdout and
/// stderr together.
fn zkcli(hosts: &str, commands: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["-k", "5", "60", ZKCLI, "-server", hosts])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zkCli.sh (see .ci/run)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{commands}\nquit\n").as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.code() != Some(124), "zkCli.sh timed out:\n{text}");
    text
}

/// The configuration zkCli's `reconfig` printed after "Committed new configuration:".
fn committed_by_zkcli(output: &str) -> (Vec<String>, String) {
    let committed = output
        .split_once("Committed new configuration:")
        .unwrap_or_else(|| panic!("zkCli reconfig did not commit:\n{output}"))
        .1;
    let text: String =
        committed.lines().take_while(|l| !l.starts_with("[zk:")).collect::<Vec<_>>().join("\n");
    parse_config(&text)
}

/// The configuration member `i`'s `conf` four-letter word prints after `membership: `.
fn conf_membership(ensemble: &Ensemble, i: usize) -> (Vec<String>, String) {
    let conf = ensemble.four_letter(i, "conf");
    let membership = conf
        .split_once("membership: \n")
        .unwrap_or_else(|| panic!("member {}: no membership in conf:\n{conf}", i + 1))
        .1;
    parse_config(membership)
}

/// Sets spare `i` up to start as an observer (its own `server.N` line with `:observer`).
fn make_spare_an_observer(ensemble: &Ensemble, i: usize) {
    let path = ensemble.members[i].dir.join("zoo.cfg");
    let config = std::fs::read_to_string(&path).unwrap();
    let own = format!("server.{}=", ensemble.members[i].id);
    let config: String = config
        .lines()
        .map(|l| if l.starts_with(&own) { l.replacen(';', ":observer;", 1) } else { l.to_string() })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&path, config + "peerType=observer\n").unwrap();
}

/// A kazoo process creating `/writes/n-<i>` without pause until the stop file exists.
struct Writer {
    child: std::process::Child,
    output: std::path::PathBuf,
    stop: std::path::PathBuf,
}

impl Writer {
    fn start(hosts: &str, dir: &std::path::Path) -> Writer {
        let (output, stop) = (dir.join("writer.out"), dir.join("writer.stop"));
        let child = Command::new("python3")
            .arg(workspace_root().join("tests/compat/kazoo_reconfig.py"))
            .args([hosts, "writer", "/writes", stop.to_str().unwrap()])
            .current_dir(workspace_root().join("tests/compat"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("run python3 (see .ci/run for kazoo)");
        Writer { child, output, stop }
    }

    /// The writes acknowledged so far.
    fn acked(&self) -> BTreeSet<String> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines().filter_map(|l| l.strip_prefix("acked ")).map(|i| format!("n-{i}")).collect()
    }

    /// Waits until `more` writes beyond `since` are acknowledged.
    fn wait_acked(&self, since: usize, more: usize, what: &str) {
        poll_until(SETTLE, &format!("{more} acknowledged writes {what}"), || {
            self.acked().len() >= since + more
        });
    }

    /// Stops the writer; every write it had acknowledged.
    fn stop(mut self) -> BTreeSet<String> {
        std::fs::write(&self.stop, b"").unwrap();
        let status = self.child.wait().unwrap();
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        assert!(status.success() && text.ends_with("OK\n"), "the writer failed ({status}):\n{text}");
        self.acked()
    }
}

#[test]
fn zkcli_removes_the_leader_and_adds_and_removes_an_observer_under_writes_losing_none() {
    let mut ensemble = Ensemble::start_with_spares(3, 1, &reconfig_extra());
    make_spare_an_observer(&ensemble, 3);
    let work = tempfile::tempdir().unwrap();
    let leader = ensemble.wait_leader(SETTLE);
    let stay: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let initial = config_of(&ensemble, stay[0]);
    for i in 0..3 {
        assert_eq!(conf_membership(&ensemble, i), initial, "member {}: conf shows the configuration", i + 1);
    }
    let shown = zkcli(&ensemble.address(stay[0]), "config");
    assert!(shown.contains(&initial.0.join("\n")), "zkCli config shows the configuration:\n{shown}");
    assert_eq!(kazoo(&ensemble.connect_string_of(&[0, 1, 2]), &["write", "/writes", "-"]), "ok");
    let writer = Writer::start(&ensemble.connect_string_of(&[0, 1, 2]), work.path());
    writer.wait_acked(0, 20, "before any reconfig");

    // The leader leaves: the two others elect a leader between them and writes go on.
    let auth = format!("addauth digest {SUPER_AUTH}");
    let leader_id = ensemble.members[leader].id;
    let out = zkcli(&ensemble.address(stay[0]), &format!("{auth}\nreconfig -remove {leader_id}"));
    let two = if !out.contains("Committed new configuration:")
        && out.contains("KeeperErrorCode = ConnectionLoss")
    {
        // Apache's follower may drop its clients as the leader it follows leaves, before the
        // answer reaches zkCli (seen under load): the outcome is unknown to the client, so it
        // is read back once the configuration moved on.
        poll_until(SETTLE, "the configuration after removing the leader", || {
            config_of(&ensemble, stay[0]).1 != initial.1
        });
        config_of(&ensemble, stay[0])
    } else {
        committed_by_zkcli(&out)
    };
    assert_eq!(ids(&two.0), stay.iter().map(|&i| ensemble.members[i].id).collect::<Vec<_>>(), "{out}");
    wait_config(&ensemble, &stay, &two);
    poll_until(SETTLE, "a new leader among the members left", || {
        stay.iter().any(|&i| ensemble.mode(i) == Some(Mode::Leader))
    });
    let acked = writer.acked().len();
    writer.wait_acked(acked, 20, "after the leader left");
    ensemble.kill(leader);
    for &i in &stay {
        assert_eq!(conf_membership(&ensemble, i), two, "member {}: conf follows the reconfig", i + 1);
    }

    // An observer joins, serves what is committed, and leaves again.
    ensemble.start_member(3);
    let observer_line = ensemble.server_line(3).replace(":participant;", ":observer;");
    let out = zkcli(&ensemble.address(stay[1]), &format!("{auth}\nreconfig -add {observer_line}"));
    let with_observer = committed_by_zkcli(&out);
    assert!(with_observer.0.contains(&observer_line), "{out}");
    let observed: Vec<usize> = stay.iter().copied().chain([3]).collect();
    wait_config(&ensemble, &observed, &with_observer);
    assert_eq!(ensemble.mode(3), Some(Mode::Observer));
    assert!(ensemble.four_letter(3, "conf").contains("\npeerType=1\n"), "the observer's conf says so");
    write_and_agree(&ensemble, 3, &observed, "/via-observer", "observed");
    let acked = writer.acked().len();
    writer.wait_acked(acked, 20, "with an observer");
    let out =
        zkcli(&ensemble.address(stay[0]), &format!("{auth}\nreconfig -remove {}", ensemble.members[3].id));
    let without_observer = committed_by_zkcli(&out);
    assert_eq!(without_observer.0, two.0, "{out}");
    wait_config(&ensemble, &stay, &without_observer);

    let acked = writer.stop();
    for &i in &stay {
        let present: BTreeSet<String> =
            kazoo(&ensemble.address(i), &["children", "/writes"]).lines().map(str::to_string).collect();
        let lost: Vec<&String> = acked.difference(&present).collect();
        assert!(lost.is_empty(), "member {}: acknowledged writes lost: {lost:?}", i + 1);
    }
}

/// The `key=` line of kazoo's `config` output (the Stat of `/zookeeper/config`).
fn config_field(output: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    output
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}:\n{output}"))
        .into()
}

/// Member `i`'s configuration version and the Stat fields Apache sets on `/zookeeper/config`
/// when a configuration is versioned without a txn (`initConfigInZKDatabase`).
fn config_version_and_stat(ensemble: &Ensemble, i: usize) -> [String; 5] {
    let out = kazoo(&ensemble.connect_string_of(&[i]), &["config"]);
    ["version", "mzxid", "czxid", "dataVersion", "aclVersion"].map(|key| config_field(&out, key))
}

#[test]
fn the_first_leader_versions_the_configuration_with_its_epochs_first_zxid() {
    let mut ensemble = Ensemble::start(3, 0, &reconfig_extra());
    let leader = ensemble.wait_leader(SETTLE);
    let epoch_start = ensemble.zxid(leader).expect("the leader's zxid") & !0xffff_ffff;
    assert!(epoch_start > 0, "an established epoch");
    let version = format!("{epoch_start:x}");
    // As Apache 3.8: `version=<epoch>00000000` with no txn for it: mzxid is that version,
    // czxid 0, dataVersion and aclVersion -1.
    let expected = [version.clone(), version.clone(), "0".into(), "-1".into(), "-1".into()];
    for i in 0..3 {
        poll_until(SETTLE, &format!("member {} to hold version {version}", i + 1), || {
            config_version_and_stat(&ensemble, i)[0] == version
        });
        assert_eq!(config_version_and_stat(&ensemble, i), expected, "member {}", i + 1);
    }
    let (servers, _) = config_of(&ensemble, 0);
    let hosts = ensemble.connect_string();
    assert_eq!(reconfig(&hosts, SUPER_AUTH, "-", "-", &servers.join(","), "0"), "error BadVersionError");
    write_and_agree(&ensemble, leader, &[0, 1, 2], "/first", "1");

    // A later leader (a new epoch) keeps the version, and so does a restart of every member.
    ensemble.kill(leader);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    poll_until(SETTLE, "a new leader", || others.iter().any(|&i| ensemble.mode(i) == Some(Mode::Leader)));
    ensemble.restart(leader);
    for i in 0..3 {
        assert_eq!(config_version_and_stat(&ensemble, i), expected, "member {} after a new epoch", i + 1);
    }
    for i in 0..3 {
        ensemble.relaunch(i);
    }
    for i in 0..3 {
        ensemble.wait_serving(i, SETTLE);
    }
    ensemble.wait_leader(SETTLE);
    for i in 0..3 {
        assert_eq!(config_version_and_stat(&ensemble, i), expected, "member {} after a full restart", i + 1);
    }
    // The version a reconfig needs is that one.
    let removed = reconfig(&hosts, SUPER_AUTH, "-", "3", "-", &version);
    assert!(removed.starts_with("ok\n"), "reconfig from version {version}: {removed}");
}

#[test]
fn bulk_new_members_with_kazoo_and_zkcli_under_writes_losing_none() {
    let mut ensemble = Ensemble::start_with_spares(3, 1, &reconfig_extra());
    let work = tempfile::tempdir().unwrap();
    ensemble.wait_leader(SETTLE);
    let (servers, version) = config_of(&ensemble, 1);
    assert_eq!(ids(&servers), [1, 2, 3], "{servers:?}");
    let spare = ensemble.server_line(3);
    ensemble.start_member(3);
    let all = ensemble.connect_string_of(&[0, 1, 2, 3]);
    assert_eq!(kazoo(&all, &["write", "/writes", "-"]), "ok");
    let writer = Writer::start(&all, work.path());
    writer.wait_acked(0, 20, "before any reconfig");

    // kazoo: the whole membership replaced at once, server 1 out and server 4 in.
    let replaced: Vec<String> = servers[1..].iter().cloned().chain([spare.clone()]).collect();
    let out = reconfig(&all, SUPER_AUTH, "-", "-", &replaced.join(","), &version);
    let out = out.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig new_members: {out}"));
    let two_three_four = parse_config(out);
    assert_eq!(ids(&two_three_four.0), [2, 3, 4], "{out}");
    wait_config(&ensemble, &[0, 1, 2, 3], &two_three_four);
    let acked = writer.acked().len();
    writer.wait_acked(acked, 20, "after new_members replaced server 1");

    // zkCli: `reconfig -members` takes server 1 back, four voters.
    let auth = format!("addauth digest {SUPER_AUTH}");
    let four: Vec<String> =
        [servers[0].clone()].into_iter().chain(two_three_four.0.iter().cloned()).collect();
    let out = zkcli(&ensemble.address(1), &format!("{auth}\nreconfig -members {}", four.join(",")));
    let back = committed_by_zkcli(&out);
    assert_eq!(ids(&back.0), [1, 2, 3, 4], "{out}");
    wait_config(&ensemble, &[0, 1, 2, 3], &back);
    let acked = writer.acked().len();
    writer.wait_acked(acked, 20, "after zkCli -members made four voters");

    let acked = writer.stop();
    assert!(acked.len() >= 60, "writes went on: {}", acked.len());
    for i in 0..4 {
        let present: BTreeSet<String> =
            kazoo(&ensemble.address(i), &["children", "/writes"]).lines().map(str::to_string).collect();
        let lost: Vec<&String> = acked.difference(&present).collect();
        assert!(lost.is_empty(), "member {}: acknowledged writes lost: {lost:?}", i + 1);
    }
}

/// The files a member's configuration lives in, as Apache 3.8 leaves them once the first
/// leader versioned it: zoo.cfg without its `server.N` lines (nor `clientPort*`: the member's
/// line names its client address) naming `zoo.cfg.dynamic.<hex version>` in
/// `dynamicConfigFile`, that file holding the sorted `server.N` lines and no version, the
/// original as `zoo.cfg.bak`. Returns the dynamic file's lines.
fn check_config_files(ensemble: &Ensemble, i: usize, version: &str) -> Vec<String> {
    let cfg_path = ensemble.config_path(i);
    let dynamic = std::fs::canonicalize(cfg_path.with_file_name(format!("zoo.cfg.dynamic.{version}")))
        .unwrap_or_else(|e| panic!("member {}: no zoo.cfg.dynamic.{version}: {e}", i + 1));
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let who = format!("member {}: zoo.cfg\n{cfg}", i + 1);
    assert!(cfg.ends_with(&format!("dynamicConfigFile={}\n", dynamic.display())), "{who}");
    assert!(!cfg.lines().any(|l| l.starts_with("server.") || l.starts_with("clientPort")), "{who}");
    assert!(cfg.contains("reconfigEnabled=true\n") && cfg.contains("tickTime=2000\n"), "{who}");
    let backup = std::fs::read_to_string(cfg_path.with_file_name("zoo.cfg.bak")).unwrap();
    assert!(backup.contains("clientPortAddress=127.0.0.1\n") && backup.contains("server.1="), "{backup}");
    let text = std::fs::read_to_string(&dynamic).unwrap();
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "member {}: sorted lines, no trailing newline: {text:?}", i + 1);
    assert!(lines.iter().all(|l| l.starts_with("server.")), "no version line: {text:?}");
    lines
}

#[test]
fn zoo_cfg_is_rewritten_to_a_dynamic_config_file_and_the_ensemble_starts_from_it() {
    let mut ensemble = Ensemble::start(3, 0, &reconfig_extra());
    let version = "100000000";
    let first = (config_of(&ensemble, 0).0, version.to_string());
    wait_config(&ensemble, &[0, 1, 2], &first);
    for i in 0..3 {
        let mut lines = check_config_files(&ensemble, i, version);
        lines.sort();
        let mut expected = first.0.clone();
        expected.sort();
        assert_eq!(lines, expected, "member {}: the dynamic file holds /zookeeper/config's members", i + 1);
    }
    write_and_agree(&ensemble, 0, &[0, 1, 2], "/before-restart", "kept");

    // Every member restarts from zoo.cfg naming the dynamic file: same members and version.
    for i in 0..3 {
        ensemble.relaunch(i);
    }
    for i in 0..3 {
        ensemble.wait_serving(i, SETTLE);
    }
    ensemble.wait_leader(SETTLE);
    wait_config(&ensemble, &[0, 1, 2], &first);
    for i in 0..3 {
        assert_eq!(kazoo(&ensemble.connect_string_of(&[i]), &["read", "/before-restart"]), "kept");
    }

    // A reconfig moves zoo.cfg on to the new file; a restart starts from it. A follower
    // leaves, asked of the leader (removing the leader, or the member the client is on, ends
    // the client's connection before the answer).
    let leader = ensemble.wait_leader(SETTLE);
    let leaving = (0..3).rev().find(|&i| i != leader).expect("two followers");
    let stay: Vec<usize> = (0..3).filter(|&i| i != leaving).collect();
    let leaving_id = (leaving + 1).to_string();
    let removed =
        reconfig(&ensemble.connect_string_of(&[leader]), SUPER_AUTH, "-", &leaving_id, "-", version);
    let removed =
        removed.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig removing a follower: {removed}"));
    let two = parse_config(removed);
    assert_eq!(ids(&two.0), stay.iter().map(|&i| i as u64 + 1).collect::<Vec<_>>());
    wait_config(&ensemble, &stay, &two);
    for &i in &stay {
        check_config_files(&ensemble, i, &two.1);
    }
    ensemble.kill(leaving);
    for &i in &stay {
        ensemble.relaunch(i);
    }
    for &i in &stay {
        ensemble.wait_serving(i, SETTLE);
    }
    wait_config(&ensemble, &stay, &two);
    write_and_agree(&ensemble, stay[1], &stay, "/after-restart", "two voters");
}

/// A member given new ports by a reconfig (its `server.N` line changed in place, same id) is
/// reached at them: the others dial the new peer port from then on, so once it restarts
/// there (its zoo.cfg naming the new configuration) it syncs, serves and votes.
#[test]
fn a_member_given_new_ports_by_reconfig_is_reached_at_them() {
    let mut ensemble = Ensemble::start(3, 0, &reconfig_extra());
    let first = (config_of(&ensemble, 0).0, "100000000".to_string());
    wait_config(&ensemble, &[0, 1, 2], &first);
    let leader = ensemble.wait_leader(SETTLE);
    let moving = (0..3).rev().find(|&i| i != leader).expect("two followers");
    let stay: Vec<usize> = (0..3).filter(|&i| i != moving).collect();
    let old_line = ensemble.server_line(moving);
    let (server, rest) = old_line.split_once('=').expect("server.N=...");
    let client = rest.split_once(';').expect("a client address").1;
    let moved_to = format!("{server}=127.0.0.1:{}:{}:participant", free_port(), free_port());
    ensemble.kill(moving);
    let out = reconfig(
        &ensemble.connect_string_of(&[leader]),
        SUPER_AUTH,
        &format!("{moved_to};{client}"),
        "-",
        "-",
        &first.1,
    );
    let moved = parse_config(out.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig moving: {out}")));
    assert!(moved.0.iter().any(|l| l.starts_with(&moved_to)), "{moved:?}");
    wait_config(&ensemble, &stay, &moved);

    // The moved member starts at its new ports, from a dynamic file holding the new
    // configuration (as an operator gives it one).
    let cfg_path = ensemble.config_path(moving);
    let dynamic = cfg_path.with_file_name(format!("zoo.cfg.dynamic.{}", moved.1));
    std::fs::write(&dynamic, moved.0.join("\n")).unwrap();
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let mut cfg: String = cfg
        .lines()
        .filter(|l| !l.starts_with("dynamicConfigFile=") && !l.starts_with("server."))
        .map(|l| format!("{l}\n"))
        .collect();
    cfg.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    std::fs::write(&cfg_path, cfg).unwrap();
    ensemble.relaunch(moving);
    ensemble.wait_serving(moving, SETTLE);
    wait_config(&ensemble, &[0, 1, 2], &moved);
    write_and_agree(&ensemble, stay[0], &[0, 1, 2], "/after-move", "reached at its new ports");
}

/// A joiner restarted before the reconfig adding it commits does not start, as Apache 3.8's
/// (`QuorumPeer.start`: "My id 4 not in the peer list"): at its sync it took up the leader's
/// configuration, which does not list it yet, and wrote it to its files. Given its joining
/// configuration again (the zoo.cfg.bak kept at its first start) it joins, and the reconfig
/// adds it.
#[test]
fn a_joiner_restarted_before_its_reconfig_commits_does_not_start_as_apache() {
    let mut ensemble = Ensemble::start_with_spares(3, 1, &reconfig_extra());
    let current = config_of(&ensemble, 0);
    ensemble.start_member(3);
    let joining = ensemble.server_line(3);
    wait_config(&ensemble, &[3], &current);
    ensemble.kill(3);
    ensemble.relaunch(3);
    let status = ensemble.wait_exit(3, SETTLE).expect("a server its configuration does not list stops");
    assert!(!status.success(), "{status}");
    let log = ensemble.log(3);
    assert!(log.contains("My id 4 not in the peer list"), "{log}");

    let cfg_path = ensemble.config_path(3);
    std::fs::copy(cfg_path.with_file_name("zoo.cfg.bak"), &cfg_path).unwrap();
    ensemble.restart(3);
    let added = reconfig(&ensemble.connect_string_of(&[0, 1, 2]), SUPER_AUTH, &joining, "-", "-", &current.1);
    let four =
        parse_config(added.strip_prefix("ok\n").unwrap_or_else(|| panic!("reconfig adding 4: {added}")));
    assert_eq!(ids(&four.0), [1, 2, 3, 4]);
    wait_config(&ensemble, &[0, 1, 2, 3], &four);
    write_and_agree(&ensemble, 3, &[0, 1, 2, 3], "/joined", "after a restart");
}
