//! Ensembles of real server processes on 127.0.0.1 driven by a real client
//! (`zookeeper-client`): every member serves, writes go through any member, kill -9 of the
//! leader during pipelined writes loses no acknowledged write, a follower or a minority can
//! die, the whole ensemble can restart (with an executor per role: `per-role`), observers
//! serve without voting.
//!
//! `RINGKEEPER_TEST_TARGET=apache` runs the same tests against Apache ZooKeeper 3.8's
//! QuorumPeerMain. Failover times are printed, not asserted (figures live in bench/results).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::ConnectResponse;
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::four_letter::Mode;
use zookeeper_client as zk;

mod common;

/// Bound on every single client step.
const STEP: Duration = Duration::from_secs(20);

fn member_addr(ensemble: &Ensemble, i: usize) -> std::net::SocketAddr {
    ensemble.address(i).parse().unwrap()
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn connect(hosts: &str) -> zk::Client {
    within("connect", zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(hosts))
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// Runs blocking harness calls (process kills, restarts) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Every path of `paths` exists on member `i` (read there after a sync).
async fn assert_all_present(ensemble: &Ensemble, i: usize, paths: &BTreeSet<String>) {
    let client = connect(&ensemble.address(i)).await;
    within("sync", client.sync("/")).await.expect("sync");
    let mut missing = Vec::new();
    for p in paths {
        if within("exists", client.check_stat(p)).await.expect("exists").is_none() {
            missing.push(p.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "server {} lacks {} acknowledged writes: {:?}",
        i + 1,
        missing.len(),
        missing
    );
}

/// Waits until every member reports the same zxid (replication caught up).
fn wait_same_zxid(ensemble: &Ensemble, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let zxids: Vec<Option<i64>> = (0..ensemble.members.len()).map(|i| ensemble.zxid(i)).collect();
        if zxids.iter().all(|z| z.is_some() && *z == zxids[0]) {
            return;
        }
        assert!(Instant::now() < deadline, "members never agreed on a zxid: {zxids:x?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_serve_clients_on_every_member() {
    let ensemble = blocking(|| Ensemble::start(3, 0, ""));
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let modes: Vec<Option<Mode>> = (0..3).map(|i| ensemble.mode(i)).collect();
    assert_eq!(modes.iter().filter(|m| **m == Some(Mode::Leader)).count(), 1, "{modes:?}");
    assert_eq!(modes.iter().filter(|m| **m == Some(Mode::Follower)).count(), 2, "{modes:?}");
    assert!(ensemble.four_letter(leader, "mntr").contains("zk_server_state\tleader"));

    // A write through a follower is read back there at once, and everywhere after a sync.
    let via_follower = connect(&ensemble.address(follower)).await;
    within("create", via_follower.create("/app", b"v1", &open())).await.expect("create via follower");
    let (data, stat) = within("get", via_follower.get_data("/app")).await.expect("read own write");
    assert_eq!((data.as_slice(), stat.version), (&b"v1"[..], 0));
    for i in 0..3 {
        let c = connect(&ensemble.address(i)).await;
        within("sync", c.sync("/app")).await.expect("sync");
        assert_eq!(within("get", c.get_data("/app")).await.expect("get").0, b"v1", "server {}", i + 1);
    }

    // A watch set on one member fires for a change made through another.
    let watcher_client = connect(&ensemble.address(leader)).await;
    let (_, _, watch) = within("watch", watcher_client.get_and_watch_data("/app")).await.expect("watch");
    within("set", via_follower.set_data("/app", b"v2", None)).await.expect("set via follower");
    let event = within("event", watch.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDataChanged, "/app"));

    // An ephemeral made through a follower goes when its session closes.
    let owner = connect(&ensemble.address(follower)).await;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    within("create", owner.create("/app/e", b"", &ephemeral)).await.expect("ephemeral");
    assert!(
        within("exists", watcher_client.check_stat("/app/e")).await.unwrap().is_some() || {
            within("sync", watcher_client.sync("/app")).await.unwrap();
            within("exists", watcher_client.check_stat("/app/e")).await.unwrap().is_some()
        }
    );
    drop(owner);
    let deadline = Instant::now() + STEP;
    loop {
        within("sync", watcher_client.sync("/app")).await.unwrap();
        if within("exists", watcher_client.check_stat("/app/e")).await.unwrap().is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "ephemeral of a closed session still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocking(|| wait_same_zxid(&ensemble, STEP));
}

/// Pipelined writers through the whole connect string; returns the acknowledged paths.
fn start_writers(
    hosts: String,
    writers: usize,
    per_writer: usize,
    acked: Arc<Mutex<BTreeSet<String>>>,
    last_ack: Arc<Mutex<Instant>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let (hosts, acked, last_ack) = (hosts.clone(), acked.clone(), last_ack.clone());
            tokio::spawn(async move {
                let client = connect(&hosts).await;
                let deadline = Instant::now() + Duration::from_secs(30);
                for n in 0..per_writer {
                    if Instant::now() > deadline {
                        break;
                    }
                    let path = format!("/load/w{w}-{n}");
                    match tokio::time::timeout(STEP, client.create(&path, b"x", &open())).await {
                        Ok(Ok(_)) | Ok(Err(zk::Error::NodeExists)) => {
                            acked.lock().unwrap().insert(path);
                            *last_ack.lock().unwrap() = Instant::now();
                        }
                        // Not acknowledged (connection lost during failover): retried later
                        // under another name, its outcome unknown.
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_pipelined_writes_loses_no_acknowledged_write() {
    let mut ensemble = blocking(|| Ensemble::start(3, 0, ""));
    let setup = connect(&ensemble.connect_string()).await;
    within("mkdir", setup.create("/load", b"", &open())).await.expect("create /load");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let last_ack = Arc::new(Mutex::new(Instant::now()));
    let writers = start_writers(ensemble.connect_string(), 8, 150, acked.clone(), last_ack.clone());
    // Let the load run, then kill the leader with writes in flight.
    let deadline = Instant::now() + STEP;
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let leader = ensemble.wait_leader(STEP);
    let killed_at = Instant::now();
    let before = acked.lock().unwrap().len();
    blocking(|| ensemble.kill(leader));
    let new_leader = blocking(|| ensemble.wait_leader(Duration::from_secs(30)));
    let elected = killed_at.elapsed();
    for w in writers {
        within("writer", w).await.expect("writer task");
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().clone();
    eprintln!(
        "kill -9 of server {} with {before} writes acknowledged: server {} leads after {elected:?}; {} writes acknowledged in all",
        leader + 1,
        new_leader + 1,
        acked.len()
    );
    assert!(acked.len() > before, "no write was acknowledged after the failover");
    assert_ne!(new_leader, leader);
    // The killed leader comes back as a follower and holds every acknowledged write too.
    blocking(|| ensemble.restart(leader));
    for i in 0..3 {
        assert_all_present(&ensemble, i, &acked).await;
    }
    blocking(|| wait_same_zxid(&ensemble, STEP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_dies_then_the_whole_ensemble_restarts_with_every_write() {
    // Members with an executor (thread) per role; the other tests run the default layout.
    let mut ensemble = blocking(|| Ensemble::start(3, 0, "ringkeeper.executors=per-role\n"));
    let leader = ensemble.wait_leader(STEP);
    let follower = (leader + 1) % 3;
    // Connected to the leader: killing a follower does not cut this client off.
    let client = connect(&ensemble.address(leader)).await;
    within("mkdir", client.create("/d", b"", &open())).await.expect("create /d");
    let mut written = BTreeSet::new();
    for n in 0..50 {
        let path = format!("/d/a{n}");
        within("create", client.create(&path, b"x", &open())).await.expect("create");
        written.insert(path);
    }
    // One follower down: the other two are a quorum and keep accepting writes.
    blocking(|| ensemble.kill(follower));
    for n in 0..50 {
        let path = format!("/d/b{n}");
        within("create", client.create(&path, b"x", &open())).await.expect("create with a follower down");
        written.insert(path);
    }
    drop(client);
    // Everyone down, everyone back: the ensemble re-forms from its logs.
    blocking(|| {
        for i in 0..3 {
            ensemble.kill(i);
        }
        for i in 0..3 {
            ensemble.relaunch(i);
        }
        for i in 0..3 {
            ensemble.wait_serving(i, Duration::from_secs(60));
        }
    });
    for i in 0..3 {
        assert_all_present(&ensemble, i, &written).await;
    }
    blocking(|| wait_same_zxid(&ensemble, STEP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_lose_two_and_an_observer_serves_without_voting() {
    let mut ensemble = blocking(|| Ensemble::start(5, 1, ""));
    assert_eq!(ensemble.mode(5), Some(Mode::Observer));
    let leader = ensemble.wait_leader(STEP);
    let other = (0..5).find(|&i| i != leader).unwrap();
    // Writes through the observer.
    let via_observer = connect(&ensemble.address(5)).await;
    within("create", via_observer.create("/o", b"1", &open())).await.expect("create via observer");
    // Two voters down (the leader among them): three of five remain a quorum.
    blocking(|| {
        ensemble.kill(leader);
        ensemble.kill(other);
    });
    let new_leader = blocking(|| ensemble.wait_leader(Duration::from_secs(30)));
    assert!(new_leader != leader && new_leader != other && new_leader != 5);
    let client = connect(&ensemble.address(new_leader)).await;
    within("set", client.set_data("/o", b"2", None)).await.expect("write with two voters down");
    blocking(|| {
        ensemble.restart(leader);
        ensemble.restart(other);
        ensemble.wait_serving(5, STEP);
    });
    for i in 0..6 {
        let c = connect(&ensemble.address(i)).await;
        within("sync", c.sync("/o")).await.expect("sync");
        assert_eq!(within("get", c.get_data("/o")).await.expect("get").0, b"2", "server {}", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_stops_acknowledging_and_the_majority_moves_on() {
    if ringkeeper_tests::Target::from_env() == ringkeeper_tests::Target::Apache {
        eprintln!("skipped for Apache: its election connections bypass the test's proxies");
        return;
    }
    let mut ensemble = blocking(|| Ensemble::start_partitionable(3, ""));
    let leader = ensemble.wait_leader(STEP);
    let on_old_leader = connect(&ensemble.address(leader)).await;
    within("create", on_old_leader.create("/before", b"", &open())).await.expect("create before the cut");

    let old_epoch = ensemble.zxid(leader).expect("leader serving") >> 32;
    let cut_at = Instant::now();
    ensemble.isolate(leader);
    let new_leader = blocking(|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = (0..3).find(|&i| i != leader && ensemble.mode(i) == Some(Mode::Leader)) {
                break i;
            }
            assert!(Instant::now() < deadline, "the majority elected no leader");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    eprintln!("isolated leader {}: server {} leads after {:?}", leader + 1, new_leader + 1, cut_at.elapsed());
    let majority = connect(&ensemble.address(new_leader)).await;
    within("create", majority.create("/during", b"", &open())).await.expect("write through the majority");

    // The cut-off leader cannot reach a quorum: it never acknowledges this write. (The client
    // library may queue it and send it again once it reconnects after the heal; then a later
    // leader commits it, which the check below tells apart by the epoch of its czxid.)
    let stale =
        tokio::time::timeout(Duration::from_secs(3), on_old_leader.create("/lost", b"", &open())).await;
    assert!(!matches!(stale, Ok(Ok(_))), "an isolated leader acknowledged a write: {stale:?}");
    drop(on_old_leader);

    ensemble.heal(leader);
    blocking(|| {
        for i in 0..3 {
            ensemble.wait_serving(i, Duration::from_secs(60));
        }
        wait_same_zxid(&ensemble, Duration::from_secs(30));
    });
    for i in 0..3 {
        let c = connect(&ensemble.address(i)).await;
        within("sync", c.sync("/")).await.expect("sync");
        for path in ["/before", "/during"] {
            assert!(
                within("exists", c.check_stat(path)).await.expect("exists").is_some(),
                "server {}: {path}",
                i + 1
            );
        }
        if let Some(stat) = within("exists", c.check_stat("/lost")).await.expect("exists") {
            assert!(
                stat.czxid >> 32 > old_epoch,
                "server {}: /lost was committed in the isolated leader's epoch {old_epoch} (czxid {:#x})",
                i + 1,
                stat.czxid
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_too_far_behind_for_diff_is_sent_a_snapshot() {
    if ringkeeper_tests::Target::from_env() == ringkeeper_tests::Target::Apache {
        eprintln!("skipped for Apache: ringkeeper.zab.historyMax is ringkeeper's");
        return;
    }
    // The leader keeps only 10 txns for DIFF: a follower 60 txns behind needs SNAP.
    let mut ensemble = blocking(|| Ensemble::start(3, 0, "ringkeeper.zab.historyMax=10"));
    let leader = ensemble.wait_leader(STEP);
    let follower = (leader + 1) % 3;
    let client = connect(&ensemble.address(leader)).await;
    within("create", client.create("/s", b"", &open())).await.expect("create /s");
    blocking(|| ensemble.kill(follower));
    let mut written = BTreeSet::new();
    for n in 0..60 {
        let path = format!("/s/n{n}");
        within("create", client.create(&path, b"x", &open())).await.expect("create");
        written.insert(path);
    }
    blocking(|| ensemble.restart(follower));
    assert!(
        ensemble.log(follower).contains("installing the leader's snapshot"),
        "no SNAP:\n{}",
        ensemble.log(follower)
    );
    assert_all_present(&ensemble, follower, &written).await;
    // Writes after the SNAP reach it through the log as usual.
    within("create", client.create("/s/after", b"x", &open())).await.expect("create after SNAP");
    written.insert("/s/after".to_string());
    assert_all_present(&ensemble, follower, &written).await;
    blocking(|| wait_same_zxid(&ensemble, STEP));
}

/// Growth of the leader's RSS allowed while 100 MiB of 512 KiB values pass through it with
/// `historyBytesMax` at 8 MiB. Before the byte bound the history kept all of them (only
/// `historyMax`, 100,000 txns, limited it): over 100 MiB.
const LARGE_VALUES_LEADER_RSS_GROWTH_MAX: u64 = 48 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_keep_the_leaders_diff_history_bounded_in_bytes_and_a_follower_behind_it_gets_a_snapshot(
) {
    if ringkeeper_tests::Target::from_env() == ringkeeper_tests::Target::Apache {
        eprintln!("skipped for Apache: ringkeeper.zab.historyBytesMax is ringkeeper's");
        return;
    }
    const VALUE_BYTES: usize = 512 << 10;
    const WRITES: usize = 200;
    let mut ensemble = blocking(|| Ensemble::start(3, 0, "ringkeeper.zab.historyBytesMax=8388608"));
    let leader = ensemble.wait_leader(STEP);
    let follower = (leader + 1) % 3;
    let pid = ensemble.pid(leader).expect("the leader's process");
    let client = connect(&ensemble.address(leader)).await;
    within("create", client.create("/big", b"", &open())).await.expect("create /big");
    blocking(|| ensemble.kill(follower));
    let baseline = common::resident_bytes(pid);
    let mut peak = baseline;
    for n in 0..WRITES {
        let value = vec![n as u8; VALUE_BYTES];
        within("set", client.set_data("/big", &value, None)).await.expect("set /big");
        peak = peak.max(common::resident_bytes(pid));
    }
    let growth = peak.saturating_sub(baseline);
    common::assert_rss_growth_below(
        growth,
        LARGE_VALUES_LEADER_RSS_GROWTH_MAX,
        &format!("(the leader) for {WRITES} values of {VALUE_BYTES} B"),
    );
    // The follower is 200 txns behind and the leader kept about 16: it is sent a snapshot.
    blocking(|| ensemble.restart(follower));
    blocking(|| wait_same_zxid(&ensemble, STEP));
    assert!(
        ensemble.log(follower).contains("installing the leader's snapshot"),
        "no SNAP:\n{}",
        ensemble.log(follower)
    );
    let on_follower = connect(&ensemble.address(follower)).await;
    let (data, stat) = within("get", on_follower.get_data("/big")).await.expect("get /big on the follower");
    assert_eq!(data, vec![(WRITES - 1) as u8; VALUE_BYTES]);
    assert_eq!(stat.version, WRITES as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_leader_failover_a_dead_sessions_ephemeral_goes_and_its_watch_fires_once() {
    let mut ensemble = blocking(|| Ensemble::start(3, 0, ""));
    let leader = ensemble.wait_leader(STEP);
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    // A session that will die silently (its socket just goes away; no closeSession), with an
    // ephemeral, made through one follower.
    let mut doomed = blocking(|| common::RawSession::connect_to(member_addr(&ensemble, f2), 4_000));
    let created = blocking(|| doomed.code(OpCode::Create, &common::create_request("/doomed", 1)));
    assert_eq!(created, 0, "create the ephemeral");
    // A live session on the other follower watches it.
    let watcher = connect(&ensemble.address(f1)).await;
    within("sync", watcher.sync("/")).await.expect("sync");
    let (stat, watch) = within("watch", watcher.check_and_watch_stat("/doomed")).await.expect("watch");
    assert!(stat.is_some(), "the ephemeral is visible on the other follower");

    // The leader dies; the expiry of the dead session is now the new leader's job.
    blocking(|| ensemble.kill(leader));
    let new_leader = blocking(|| ensemble.wait_leader(Duration::from_secs(30)));
    drop(doomed);
    let event = within("deleted event", watch.changed()).await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDeleted, "/doomed"));
    within("sync", watcher.sync("/")).await.expect("sync");
    assert!(within("exists", watcher.check_stat("/doomed")).await.unwrap().is_none());
    eprintln!("dead session expired by the new leader (server {})", new_leader + 1);
    blocking(|| ensemble.restart(leader));
    blocking(|| wait_same_zxid(&ensemble, STEP));
    // Every member agrees the ephemeral is gone.
    for i in 0..3 {
        let c = connect(&ensemble.address(i)).await;
        within("sync", c.sync("/")).await.expect("sync");
        assert!(within("exists", c.check_stat("/doomed")).await.unwrap().is_none(), "server {}", i + 1);
    }
}

/// Session passwords are a keyed hash of a secret every member derives alike: a session made
/// on one member resumes on each other member with the password it was given, and a wrong
/// password is refused there.
#[test]
fn a_session_resumes_on_every_other_member_with_its_password() {
    let ensemble = Ensemble::start(3, 0, "");
    ensemble.wait_leader(STEP);
    let first = common::RawSession::connect_to(member_addr(&ensemble, 0), 10_000);
    let resume = first.resume_request();
    drop(first);
    for member in [1, 2] {
        let mut wrong = resume.clone();
        wrong.passwd[15] ^= 1;
        let (_, answer) = common::raw_handshake_to(member_addr(&ensemble, member), &wrong);
        if let common::Frame::Data(bytes) = answer {
            let refused = ConnectResponse::from_bytes(&bytes).expect("decode ConnectResponse");
            assert_eq!((refused.timeout_ms, refused.session_id), (0, 0), "member {member}: {refused:?}");
        }
        let mut again = common::RawSession::connect_with_to(member_addr(&ensemble, member), &resume);
        assert_eq!(again.session_id(), resume.session_id, "member {member}");
        assert_eq!(again.response.passwd, resume.passwd, "member {member} hands back the same password");
        assert_eq!(
            again.code(OpCode::Exists, &common::no_watch("/")),
            0,
            "member {member} serves the session"
        );
    }
}
