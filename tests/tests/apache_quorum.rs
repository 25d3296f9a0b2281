//! A ringkeeper member inside a running Apache ZooKeeper 3.8 ensemble
//! (`ringkeeper.quorum.protocol=apache`, issue #16): three real Apache QuorumPeerMain
//! processes vote, member 4 is ringkeeper as an observer speaking Apache's election and
//! learner protocols. Writes made through Apache members reach the ringkeeper member (its
//! `srvr` zxid, and reads of a read-only session on it); `kill -9` of the Apache leader elects
//! another Apache leader, and the ringkeeper member follows it and keeps receiving writes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringkeeper_engine::proto::codes::{ErrorCode, OpCode};
use ringkeeper_engine::proto::records::{ConnectResponse, CreateRequest, GetDataResponse, PathRequest};
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::four_letter::Mode;
use ringkeeper_tests::Target;

/// The ringkeeper member's index.
const RINGKEEPER: usize = 3;
/// Bound on the ringkeeper member joining (election, sync) or following a new leader (Apache
/// needs syncLimit ticks to notice the dead leader, then an election).
const JOIN_WITHIN: Duration = Duration::from_secs(60);

/// Creates `path` with `data` through Apache member `i`; returns the zxid the member reached.
fn write_through(ensemble: &Ensemble, i: usize, path: &str, data: &[u8]) -> i64 {
    let mut writer = RawSession::connect_to(addr(ensemble, i), 30_000);
    let create = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl(), flags: 0 };
    assert_eq!(writer.code(OpCode::Create, &create), 0, "create {path} through member {}", i + 1);
    writer.call(OpCode::Sync, &PathRequest { path: "/".into() }).header.zxid
}

/// A read-only session on the ringkeeper member (the only kind it serves as an observer of
/// an Apache leader: a read-write client is refused, as Apache's read-only server does).
fn read_only_session(ensemble: &Ensemble) -> RawSession {
    let mut request = new_session_request(30_000);
    request.read_only = Some(false);
    let (_stream, answer) = raw_handshake_to(addr(ensemble, RINGKEEPER), &request);
    assert!(matches!(answer, Frame::Closed), "a read-write client must be refused: {answer:?}");
    request.read_only = Some(true);
    let (stream, answer) = raw_handshake_to(addr(ensemble, RINGKEEPER), &request);
    let Frame::Data(bytes) = answer else { panic!("read-only client refused") };
    let response = ConnectResponse::from_bytes(&bytes).unwrap();
    assert_eq!(response.read_only, Some(true));
    RawSession::from_handshake(stream, response)
}

fn read(session: &mut RawSession, path: &str) -> Option<Vec<u8>> {
    session.call(OpCode::GetData, &no_watch(path)).decode::<GetDataResponse>().data
}

fn observing(ensemble: &Ensemble) -> bool {
    ensemble.mode(RINGKEEPER) == Some(Mode::Observer)
}

#[test]
fn a_ringkeeper_observer_follows_apache_leaders_through_a_leader_kill() {
    let targets = [Target::Apache, Target::Apache, Target::Apache, Target::Ringkeeper];
    let mut ensemble = Ensemble::start_mixed(&targets, 3, "");
    let leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(leader < RINGKEEPER, "an Apache member leads");
    let started = Instant::now();
    poll_until(JOIN_WITHIN, "the ringkeeper member to observe", || observing(&ensemble));
    println!(
        "ringkeeper observing {:.1?} after the ensemble served (noisy: shared machine)",
        started.elapsed()
    );

    // Writes through an Apache follower and the leader reach the ringkeeper member.
    let follower = (0..RINGKEEPER).find(|&i| i != leader).unwrap();
    write_through(&ensemble, follower, "/mixed", b"apache");
    let zxid = write_through(&ensemble, leader, "/mixed/child", b"1");
    poll_until(Duration::from_secs(10), "the write at the ringkeeper member", || {
        ensemble.zxid(RINGKEEPER).is_some_and(|z| z >= zxid)
    });
    let mut session = read_only_session(&ensemble);
    assert_eq!(read(&mut session, "/mixed").as_deref(), Some(b"apache".as_slice()));
    assert_eq!(read(&mut session, "/mixed/child").as_deref(), Some(b"1".as_slice()));
    let create = CreateRequest { path: "/rk-write".into(), data: None, acl: open_acl(), flags: 0 };
    assert_eq!(session.code(OpCode::Create, &create), ErrorCode::NotReadOnly.code());

    // kill -9 of the Apache leader: the two others elect a leader, ringkeeper follows it.
    ensemble.kill(leader);
    let killed_at = Instant::now();
    let new_leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(new_leader != leader && new_leader < RINGKEEPER, "another Apache member leads");
    let survivor = (0..RINGKEEPER).find(|&i| i != leader && i != new_leader).unwrap();
    let zxid = write_through(&ensemble, survivor, "/after-kill", b"2");
    assert_eq!(zxid >> 32, ensemble.zxid(new_leader).unwrap() >> 32, "a write of the new epoch");
    poll_until(JOIN_WITHIN, "the ringkeeper member to follow the new leader", || {
        observing(&ensemble) && ensemble.zxid(RINGKEEPER).is_some_and(|z| z >= zxid)
    });
    println!("ringkeeper observing the new leader {:.1?} after the kill (noisy)", killed_at.elapsed());
    let mut session = read_only_session(&ensemble);
    assert_eq!(read(&mut session, "/after-kill").as_deref(), Some(b"2".as_slice()));
    assert_eq!(read(&mut session, "/mixed/child").as_deref(), Some(b"1".as_slice()));
    assert!(ensemble.log(RINGKEEPER).contains("connected to Apache leader"), "{}", ensemble.log(RINGKEEPER));
}
