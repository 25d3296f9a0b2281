//! Read-only mode (`readonlymode.enabled=true`) through a real partition: a follower of a
//! 3-member ringkeeper ensemble is cut off from its peers by the test's proxies
//! ([`Ensemble::start_partitionable`]). It must then serve clients that asked for read-only
//! (ConnectResponse readOnly=true, reads of the data it has, NotReadOnly for writes, `isro`
//! answering `ro`, `srvr` saying `Mode: read-only`) and refuse the others as Apache does
//! (connection closed without a ConnectResponse). kazoo (`KazooClient(read_only=True)`,
//! `tests/compat/kazoo_read_only.py`) checks the same from a real client, and once the
//! partition heals the member serves read-write again and the same kazoo client, moved off its
//! read-only connection, writes through it. Without the setting a cut-off member serves no one.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ringkeeper_engine::proto::codes::{ErrorCode, OpCode};
use ringkeeper_engine::proto::records::{ConnectResponse, CreateRequest, GetDataResponse, PathRequest};
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::four_letter::Mode;
use ringkeeper_tests::{wait_exit, workspace_root};

/// Bound on the member noticing the partition and starting read-only serving (its leader
/// times out after syncLimit ticks, then Apache's delay of max(2 s, tickTime)).
const READ_ONLY_WITHIN: Duration = Duration::from_secs(60);

fn read_only_request(read_only: bool) -> ringkeeper_engine::proto::records::ConnectRequest {
    let mut request = new_session_request(30_000);
    request.read_only = Some(read_only);
    request
}

/// A 3-member ensemble with read-only mode on, /ro-data written, and a follower cut off
/// once it holds that write; returns the ensemble and the follower's index.
fn partitioned_follower(extra: &str) -> (Ensemble, usize) {
    let ensemble = Ensemble::start_partitionable(3, extra);
    let leader = ensemble.wait_leader(STEP);
    let follower =
        (0..3).find(|&i| i != leader && ensemble.mode(i) == Some(Mode::Follower)).expect("a follower");
    let mut writer = RawSession::connect_to(addr(&ensemble, leader), 30_000);
    let create =
        CreateRequest { path: "/ro-data".into(), data: Some(b"before".to_vec()), acl: open_acl(), flags: 0 };
    assert_eq!(writer.code(OpCode::Create, &create), 0);
    let zxid = writer.call(OpCode::Sync, &PathRequest { path: "/".into() }).header.zxid;
    poll_until(STEP, "the follower to apply the write", || {
        ensemble.zxid(follower).is_some_and(|z| z >= zxid)
    });
    ensemble.isolate(follower);
    (ensemble, follower)
}

/// Member `i`, serving read-only: a client that did not ask for read-only is closed without
/// an answer (Apache's "Refusing session request for not-read-only client"); a read-only one
/// gets readOnly=true, reads /ro-data, and NotReadOnly for writes and sync. Returns that
/// read-only session.
fn check_read_only_member(ensemble: &Ensemble, i: usize) -> RawSession {
    let srvr = ensemble.four_letter(i, "srvr");
    assert!(srvr.contains("Mode: read-only"), "{srvr}");
    let (_stream, answer) = raw_handshake_to(addr(ensemble, i), &read_only_request(false));
    assert!(matches!(answer, Frame::Closed), "a read-write client must be refused: {answer:?}");
    let (stream, answer) = raw_handshake_to(addr(ensemble, i), &read_only_request(true));
    let Frame::Data(bytes) = answer else { panic!("read-only client refused") };
    let response = ConnectResponse::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e:?}: {bytes:02x?}"));
    assert!(response.session_id != 0 && response.timeout_ms > 0, "{response:?}");
    assert_eq!(response.read_only, Some(true));
    let mut session = RawSession::from_handshake(stream, response);
    let data = session.call(OpCode::GetData, &no_watch("/ro-data")).decode::<GetDataResponse>().data;
    assert_eq!(data.as_deref(), Some(b"before".as_slice()));
    let create = CreateRequest { path: "/ro-new".into(), data: None, acl: open_acl(), flags: 0 };
    assert_eq!(session.code(OpCode::Create, &create), ErrorCode::NotReadOnly.code());
    assert_eq!(session.code(OpCode::Sync, &PathRequest { path: "/".into() }), ErrorCode::NotReadOnly.code());
    session.ping();
    if ringkeeper_tests::Target::from_env() == ringkeeper_tests::Target::Ringkeeper {
        // The read-only session is a local one (Apache's count depends on its session tracker).
        let mntr = ensemble.four_letter(i, "mntr");
        assert!(mntr.contains("\nzk_local_sessions\t1\n"), "{mntr}");
    }
    session
}

#[test]
fn a_cut_off_member_serves_read_only_clients_and_returns_to_read_write() {
    let (ensemble, ro) = partitioned_follower("readonlymode.enabled=true");
    let cut_at = Instant::now();
    poll_until(READ_ONLY_WITHIN, "isro to answer ro", || ensemble.four_letter(ro, "isro") == "ro");
    println!("read-only {:.1?} after the partition (noisy: shared machine)", cut_at.elapsed());
    let mut session = check_read_only_member(&ensemble, ro);

    // kazoo, read-only through the partition, then read-write once it heals.
    let out_path = ensemble.members[ro].dir.join("kazoo_read_only.out");
    let mut script = Command::new("python3")
        .arg(workspace_root().join("tests/compat/kazoo_read_only.py"))
        .arg(ensemble.address(ro))
        .arg("before")
        .current_dir(workspace_root().join("tests/compat"))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("run python3 (see .ci/run for kazoo)");
    let output = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let read_only_checked = Instant::now() + Duration::from_secs(60);
    while !output().contains("read-only checks passed") {
        if Instant::now() > read_only_checked || script.try_wait().unwrap().is_some() {
            let _ = script.kill();
            panic!("kazoo read-only phase failed:\n{}\n{}", output(), ensemble.log(ro));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    ensemble.heal(ro);
    let healed_at = Instant::now();
    poll_until(READ_ONLY_WITHIN, "isro to answer rw", || ensemble.four_letter(ro, "isro") == "rw");
    println!("read-write {:.1?} after the heal (noisy: shared machine)", healed_at.elapsed());
    // The member closed its read-only connections when it rejoined.
    let mut rest = Vec::new();
    let _ = session.stream.read_to_end(&mut rest);

    let status = wait_exit(&mut script, Duration::from_secs(120));
    if status.is_none() {
        let _ = Command::new("bash").args(["-c", &format!("kill -KILL -- -{}", script.id())]).status();
    }
    assert!(
        status.is_some_and(|s| s.success()) && output().trim_end().ends_with("OK"),
        "kazoo after the heal ({status:?}):\n{}\n===== member log =====\n{}",
        output(),
        ensemble.log(ro)
    );
    let mut reader = RawSession::connect_to(addr(&ensemble, ro), 30_000);
    let after = reader.call(OpCode::GetData, &no_watch("/ro-after")).decode::<GetDataResponse>().data;
    assert_eq!(after.as_deref(), Some(b"rw".as_slice()));
}

#[test]
fn without_the_setting_a_cut_off_member_serves_no_one() {
    let (ensemble, cut) = partitioned_follower("");
    poll_until(READ_ONLY_WITHIN, "the member to stop serving", || ensemble.mode(cut).is_none());
    // Well past the read-only delay: still nobody is served, read-only or not.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(ensemble.four_letter(cut, "isro"), "null", "Apache's answer while not serving");
    let (_stream, answer) = raw_handshake_to(addr(&ensemble, cut), &read_only_request(true));
    assert!(matches!(answer, Frame::Closed), "{answer:?}");
}

/// The same checks with the quorum lost by stopping two of three members (no proxies), so
/// that `RINGKEEPER_TEST_TARGET=apache` runs them against Apache's QuorumPeerMain as well.
/// `localSessionsEnabled=true` is for Apache: without it Apache 3.8 cannot open a new session
/// while read-only (its ReadOnlyRequestProcessor answers the createSession NotReadOnly);
/// ringkeeper opens local sessions then either way.
#[test]
fn the_last_member_standing_serves_read_only_until_the_others_return() {
    let mut ensemble = Ensemble::start(3, 0, "readonlymode.enabled=true\nlocalSessionsEnabled=true");
    let leader = ensemble.wait_leader(STEP);
    let mut writer = RawSession::connect_to(addr(&ensemble, leader), 30_000);
    let create =
        CreateRequest { path: "/ro-data".into(), data: Some(b"before".to_vec()), acl: open_acl(), flags: 0 };
    assert_eq!(writer.code(OpCode::Create, &create), 0);
    let zxid = writer.call(OpCode::Sync, &PathRequest { path: "/".into() }).header.zxid;
    let survivor = (0..3).find(|&i| i != leader).unwrap();
    poll_until(STEP, "the survivor to apply the write", || {
        ensemble.zxid(survivor).is_some_and(|z| z >= zxid)
    });
    drop(writer);
    let stopped: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    for &i in &stopped {
        ensemble.kill(i);
    }
    poll_until(READ_ONLY_WITHIN, "isro to answer ro", || ensemble.four_letter(survivor, "isro") == "ro");
    let mut session = check_read_only_member(&ensemble, survivor);
    for &i in &stopped {
        ensemble.relaunch(i);
    }
    poll_until(READ_ONLY_WITHIN, "isro to answer rw", || ensemble.four_letter(survivor, "isro") == "rw");
    let mut rest = Vec::new();
    let _ = session.stream.read_to_end(&mut rest);
    let mut rw = RawSession::connect_to(addr(&ensemble, survivor), 30_000);
    assert_eq!(rw.response.read_only, Some(false));
    let create = CreateRequest { path: "/rw-again".into(), data: None, acl: open_acl(), flags: 0 };
    assert_eq!(rw.code(OpCode::Create, &create), 0);
}
