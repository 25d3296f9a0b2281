//! A ringkeeper member inside a running Apache ZooKeeper 3.8 ensemble
//! (`ringkeeper.quorum.protocol=apache`, issue #16), speaking Apache's election and learner
//! protocols with real Apache QuorumPeerMain processes:
//! - as an observer (member 4 of three Apache voters): writes made through Apache members
//!   reach it (its `srvr` zxid, and reads of a read-only session on it); `kill -9` of the
//!   Apache leader elects another Apache leader, and it follows that one;
//! - as a voting follower (member 3 of two Apache voters and itself): its ACKs count (with
//!   the other Apache member killed, the leader and ringkeeper commit writes alone) and so
//!   does its vote (with the leader killed, the restarted member and ringkeeper elect).

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

/// Creates `count` nodes under `parent` through member `i` in one session (pipelined, so
/// the leader proposes several before the ringkeeper follower's cumulative ack arrives);
/// returns the zxid the member reached.
fn write_many_through(ensemble: &Ensemble, i: usize, parent: &str, count: usize) -> i64 {
    write_through(ensemble, i, parent, b"");
    let mut writer = RawSession::connect_to(addr(ensemble, i), 30_000);
    let xids: Vec<i32> = (0..count)
        .map(|n| {
            let path = format!("{parent}/{n}");
            writer.send(
                OpCode::Create,
                &CreateRequest { path, data: Some(vec![n as u8]), acl: open_acl(), flags: 0 },
            )
        })
        .collect();
    for xid in xids {
        let answer = writer.reply_to(xid).expect("a reply");
        assert_eq!(answer.header.err, 0, "a create under {parent} through member {}", i + 1);
    }
    writer.call(OpCode::Sync, &PathRequest { path: "/".into() }).header.zxid
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

/// The ringkeeper member's index in the three-voter ensemble.
const RINGKEEPER_VOTER: usize = 2;

fn following(ensemble: &Ensemble) -> bool {
    ensemble.mode(RINGKEEPER_VOTER) == Some(Mode::Follower)
}

fn read_only_session_on(ensemble: &Ensemble, i: usize) -> RawSession {
    let mut request = new_session_request(30_000);
    request.read_only = Some(true);
    let (stream, answer) = raw_handshake_to(addr(ensemble, i), &request);
    let Frame::Data(bytes) = answer else { panic!("read-only client refused") };
    RawSession::from_handshake(stream, ConnectResponse::from_bytes(&bytes).unwrap())
}

#[test]
fn a_ringkeeper_follower_votes_and_acks_in_an_apache_quorum() {
    let targets = [Target::Apache, Target::Apache, Target::Ringkeeper];
    let mut ensemble = Ensemble::start_mixed(&targets, 3, "");
    let leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(leader < RINGKEEPER_VOTER, "an Apache member leads");
    poll_until(JOIN_WITHIN, "the ringkeeper member to follow", || following(&ensemble));
    let zxid = write_through(&ensemble, leader, "/voted", b"0");
    poll_until(Duration::from_secs(10), "the write at the ringkeeper follower", || {
        ensemble.zxid(RINGKEEPER_VOTER).is_some_and(|z| z >= zxid)
    });

    // kill -9 of the other Apache member: the leader and ringkeeper are the quorum, so every
    // write below commits only on ringkeeper's ACKs (one per proposal, in order).
    let other = 1 - leader;
    ensemble.kill(other);
    let killed_at = Instant::now();
    let zxid = write_many_through(&ensemble, leader, "/acked", 50);
    println!("50 writes acked by leader + ringkeeper {:.1?} after the kill (noisy)", killed_at.elapsed());
    assert_eq!(ensemble.mode(leader), Some(Mode::Leader), "the Apache leader kept its quorum");
    poll_until(Duration::from_secs(10), "the writes at the ringkeeper follower", || {
        ensemble.zxid(RINGKEEPER_VOTER).is_some_and(|z| z >= zxid)
    });
    let mut session = read_only_session_on(&ensemble, RINGKEEPER_VOTER);
    assert_eq!(read(&mut session, "/acked/49").as_deref(), Some([49u8].as_slice()));
    drop(session);

    // The Apache member back, then kill -9 of the leader: the restarted member and ringkeeper
    // elect the Apache member (ringkeeper never leads), and writes continue.
    ensemble.restart(other);
    ensemble.kill(leader);
    let killed_at = Instant::now();
    let new_leader = ensemble.wait_leader(JOIN_WITHIN);
    assert_eq!(new_leader, other, "the only Apache member left leads");
    let zxid = write_through(&ensemble, new_leader, "/after-leader-kill", b"2");
    println!("a write through the new leader {:.1?} after the leader's kill (noisy)", killed_at.elapsed());
    poll_until(JOIN_WITHIN, "the ringkeeper member to follow the new leader", || {
        following(&ensemble) && ensemble.zxid(RINGKEEPER_VOTER).is_some_and(|z| z >= zxid)
    });
    let mut session = read_only_session_on(&ensemble, RINGKEEPER_VOTER);
    assert_eq!(read(&mut session, "/after-leader-kill").as_deref(), Some(b"2".as_slice()));
    assert_eq!(read(&mut session, "/acked/0").as_deref(), Some([0u8].as_slice()));
}
