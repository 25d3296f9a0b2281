//! A ringkeeper member inside a running Apache ZooKeeper 3.8 ensemble
//! (`ringkeeper.quorum.protocol=apache`, issue #16), speaking Apache's election and learner
//! protocols with real Apache QuorumPeerMain processes:
//! - as an observer (member 4 of three Apache voters): writes made through Apache members
//!   reach it (its `srvr` zxid, and reads of a session on it), a write of a session on it
//!   goes through the Apache leader; `kill -9` of the Apache leader elects another Apache
//!   leader, and it follows that one;
//! - as a voting follower (member 3 of two Apache voters and itself): its ACKs count (with
//!   the other Apache member killed, the leader and ringkeeper commit writes alone) and so
//!   does its vote (with the leader killed, the restarted member and ringkeeper elect);
//! - serving clients as a follower: kazoo connected only to it writes (forwarded to the
//!   Apache leader as REQUESTs, answered by ringkeeper from the committed txns), its session
//!   outlives its timeout (PING touches), closing it removes its ephemeral everywhere, and
//!   every member's tree is the same through the client API.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringkeeper_engine::proto::codes::{ErrorCode, OpCode};
use ringkeeper_engine::proto::records::{CreateRequest, GetDataResponse, PathRequest};
use ringkeeper_tests::compat::python_script;
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

/// A session on member `i` (on the ringkeeper member: created through the Apache leader).
fn session_on(ensemble: &Ensemble, i: usize) -> RawSession {
    RawSession::connect_to(addr(ensemble, i), 30_000)
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
    let mut session = session_on(&ensemble, RINGKEEPER);
    assert_eq!(read(&mut session, "/mixed").as_deref(), Some(b"apache".as_slice()));
    assert_eq!(read(&mut session, "/mixed/child").as_deref(), Some(b"1".as_slice()));
    // A write of the observer's session goes through the Apache leader.
    let create =
        CreateRequest { path: "/rk-write".into(), data: Some(b"rk".to_vec()), acl: open_acl(), flags: 0 };
    assert_eq!(session.code(OpCode::Create, &create), 0);
    assert_eq!(session.code(OpCode::Create, &create), ErrorCode::NodeExists.code());
    assert_eq!(read(&mut session_on(&ensemble, leader), "/rk-write").as_deref(), Some(b"rk".as_slice()));
    drop(session);

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
    let mut session = session_on(&ensemble, RINGKEEPER);
    assert_eq!(read(&mut session, "/after-kill").as_deref(), Some(b"2".as_slice()));
    assert_eq!(read(&mut session, "/mixed/child").as_deref(), Some(b"1".as_slice()));
    assert!(ensemble.log(RINGKEEPER).contains("connected to Apache leader"), "{}", ensemble.log(RINGKEEPER));
}

/// The ringkeeper member's index in a three-voter ensemble it leads at start (the highest id).
const RINGKEEPER_VOTER: usize = 2;
/// The ringkeeper member's index in a three-voter ensemble an Apache member leads at start.
const RINGKEEPER_FIRST: usize = 0;

fn following(ensemble: &Ensemble, i: usize) -> bool {
    ensemble.mode(i) == Some(Mode::Follower)
}

#[test]
fn a_ringkeeper_follower_votes_and_acks_in_an_apache_quorum() {
    let targets = [Target::Ringkeeper, Target::Apache, Target::Apache];
    let mut ensemble = Ensemble::start_mixed(&targets, 3, "");
    let leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(leader != RINGKEEPER_FIRST, "an Apache member leads (the highest id)");
    poll_until(JOIN_WITHIN, "the ringkeeper member to follow", || following(&ensemble, RINGKEEPER_FIRST));
    let zxid = write_through(&ensemble, leader, "/voted", b"0");
    poll_until(Duration::from_secs(10), "the write at the ringkeeper follower", || {
        ensemble.zxid(RINGKEEPER_FIRST).is_some_and(|z| z >= zxid)
    });

    // kill -9 of the other Apache member: the leader and ringkeeper are the quorum, so every
    // write below commits only on ringkeeper's ACKs (one per proposal, in order).
    let other = 3 - leader;
    ensemble.kill(other);
    let killed_at = Instant::now();
    let zxid = write_many_through(&ensemble, leader, "/acked", 50);
    println!("50 writes acked by leader + ringkeeper {:.1?} after the kill (noisy)", killed_at.elapsed());
    assert_eq!(ensemble.mode(leader), Some(Mode::Leader), "the Apache leader kept its quorum");
    poll_until(Duration::from_secs(10), "the writes at the ringkeeper follower", || {
        ensemble.zxid(RINGKEEPER_FIRST).is_some_and(|z| z >= zxid)
    });
    let mut session = session_on(&ensemble, RINGKEEPER_FIRST);
    assert_eq!(read(&mut session, "/acked/49").as_deref(), Some([49u8].as_slice()));
    drop(session);

    // The Apache member back, then kill -9 of the leader: the restarted member and ringkeeper
    // elect whichever holds more (ringkeeper, unless the restarted member synced first: then
    // ringkeeper leads an Apache follower, or follows it), and writes continue.
    ensemble.restart(other);
    ensemble.kill(leader);
    let killed_at = Instant::now();
    let new_leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(new_leader == other || new_leader == RINGKEEPER_FIRST, "a live member leads");
    let zxid = write_through(&ensemble, other, "/after-leader-kill", b"2");
    println!(
        "a write through member {} {:.1?} after the leader's kill, member {} leads (noisy)",
        other + 1,
        killed_at.elapsed(),
        new_leader + 1
    );
    poll_until(JOIN_WITHIN, "the ringkeeper member to serve the write", || {
        ensemble.zxid(RINGKEEPER_FIRST).is_some_and(|z| z >= zxid)
    });
    let mut session = session_on(&ensemble, RINGKEEPER_FIRST);
    assert_eq!(read(&mut session, "/after-leader-kill").as_deref(), Some(b"2".as_slice()));
    assert_eq!(read(&mut session, "/acked/0").as_deref(), Some([0u8].as_slice()));
}

#[test]
fn kazoo_through_a_ringkeeper_follower_writes_keeps_its_session_and_closes_it_everywhere() {
    // Also: a session moves here from an Apache member (REVALIDATE) and writes.
    let targets = [Target::Ringkeeper, Target::Apache, Target::Apache];
    let ensemble = Ensemble::start_mixed(&targets, 3, "");
    let leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(leader != RINGKEEPER_FIRST, "an Apache member leads (the highest id)");
    poll_until(JOIN_WITHIN, "the ringkeeper member to follow", || following(&ensemble, RINGKEEPER_FIRST));
    // A session of an Apache member with an ephemeral; its client goes away without closing
    // it (the script resumes it on the ringkeeper member).
    let mut apache_session = session_on(&ensemble, 3 - leader);
    let ephemeral = CreateRequest { path: "/moved-eph".into(), data: None, acl: open_acl(), flags: 1 };
    assert_eq!(apache_session.code(OpCode::Create, &ephemeral), 0);
    let moved_id = format!("{:#x}", apache_session.session_id());
    let moved_password: String = apache_session.response.passwd.iter().map(|b| format!("{b:02x}")).collect();
    drop(apache_session);
    let started = Instant::now();
    let apache_hosts = ensemble.connect_string_of(&[1, 2]);
    let args = [&ensemble.address(RINGKEEPER_FIRST), &apache_hosts, &moved_id, &moved_password];
    let out = python_script("kazoo_apache_quorum.py", &args.map(String::as_str)).unwrap_or_else(|out| {
        panic!("{out}\n===== ringkeeper member log =====\n{}", ensemble.log(RINGKEEPER_FIRST))
    });
    println!("{out}kazoo script {:.1?} (noisy: shared machine)", started.elapsed());
    let on_ringkeeper = ensemble.tree_through_client(RINGKEEPER_FIRST);
    assert!(on_ringkeeper.iter().any(|l| l.contains("\"/mixed-rk/tx\"")), "{on_ringkeeper:?}");
    for i in 1..=2 {
        assert_eq!(
            ensemble.tree_through_client(i),
            on_ringkeeper,
            "member {}'s tree vs the ringkeeper member's",
            i + 1
        );
    }
}

#[test]
fn a_ringkeeper_leader_serves_two_apache_followers_and_follows_one_after_its_kill() {
    // Member 3 (the highest id, all logs empty) wins Apache's election: ringkeeper leads two
    // Apache followers (LEADERINFO, ACKEPOCH, DIFF, NEWLEADER, UPTODATE, PROPOSAL/ACK/COMMIT,
    // PING), and their clients' sessions and writes go through it (REQUEST).
    let targets = [Target::Apache, Target::Apache, Target::Ringkeeper];
    let mut ensemble = Ensemble::start_mixed(&targets, 3, "");
    let leader = ensemble.wait_leader(JOIN_WITHIN);
    assert_eq!(leader, RINGKEEPER_VOTER, "ringkeeper leads");
    poll_until(JOIN_WITHIN, "both Apache members to follow", || {
        (0..RINGKEEPER_VOTER).all(|i| ensemble.mode(i) == Some(Mode::Follower))
    });
    write_through(&ensemble, RINGKEEPER_VOTER, "/led", b"rk");
    for i in 0..RINGKEEPER_VOTER {
        write_through(&ensemble, i, &format!("/led/via-{}", i + 1), b"apache");
    }
    let zxid = write_many_through(&ensemble, 0, "/led/many", 30);
    for i in 0..=RINGKEEPER_VOTER {
        poll_until(Duration::from_secs(10), "every member to apply the writes", || {
            ensemble.zxid(i).is_some_and(|z| z >= zxid)
        });
        let mut session = session_on(&ensemble, i);
        assert_eq!(read(&mut session, "/led").as_deref(), Some(b"rk".as_slice()), "member {}", i + 1);
        assert_eq!(read(&mut session, "/led/via-1").as_deref(), Some(b"apache".as_slice()));
        assert_eq!(read(&mut session, "/led/via-2").as_deref(), Some(b"apache".as_slice()));
        assert_eq!(read(&mut session, "/led/many/29").as_deref(), Some([29u8].as_slice()));
    }
    // An ephemeral of a session on an Apache follower, and a refused write (NodeExists comes
    // back as an error txn the follower answers from).
    let mut apache_session = session_on(&ensemble, 0);
    let ephemeral = CreateRequest { path: "/led/eph".into(), data: None, acl: open_acl(), flags: 1 };
    assert_eq!(apache_session.code(OpCode::Create, &ephemeral), 0);
    assert_eq!(apache_session.code(OpCode::Create, &ephemeral), ErrorCode::NodeExists.code());
    // create2: the follower's reply carries the Stat its apply of the txn gives (the txn goes
    // to it as create2, or Apache's follower fails to answer).
    let create2 =
        CreateRequest { path: "/led/create2".into(), data: Some(b"c2".to_vec()), acl: open_acl(), flags: 0 };
    assert_eq!(apache_session.code(OpCode::Create2, &create2), 0);
    let on_leader = ensemble.tree_through_client(RINGKEEPER_VOTER);
    for i in 0..RINGKEEPER_VOTER {
        assert_eq!(ensemble.tree_through_client(i), on_leader, "member {}'s tree vs the leader's", i + 1);
    }

    // kill -9 of the ringkeeper leader: the Apache members elect one of themselves; the
    // session on an Apache member lives on; ringkeeper restarted follows the new leader.
    ensemble.kill(RINGKEEPER_VOTER);
    let killed_at = Instant::now();
    let new_leader = ensemble.wait_leader(JOIN_WITHIN);
    assert!(new_leader < RINGKEEPER_VOTER, "an Apache member leads");
    let zxid = write_through(&ensemble, new_leader, "/led/after-kill", b"2");
    println!(
        "a write through the new Apache leader {:.1?} after ringkeeper's kill (noisy)",
        killed_at.elapsed()
    );
    // Apache's follower drops its clients when its leader goes; the session itself (created
    // by ringkeeper's leader for the Apache follower) lives on: its ephemeral is still there.
    drop(apache_session);
    let mut reader = session_on(&ensemble, new_leader);
    assert_eq!(read(&mut reader, "/led/after-kill").as_deref(), Some(b"2".as_slice()));
    assert!(reader.call(OpCode::Exists, &no_watch("/led/eph")).header.err == 0, "the ephemeral lives on");
    ensemble.restart(RINGKEEPER_VOTER);
    poll_until(JOIN_WITHIN, "ringkeeper to follow the Apache leader", || {
        following(&ensemble, RINGKEEPER_VOTER) && ensemble.zxid(RINGKEEPER_VOTER).is_some_and(|z| z >= zxid)
    });
    let on_leader = ensemble.tree_through_client(new_leader);
    for i in 0..=RINGKEEPER_VOTER {
        assert_eq!(ensemble.tree_through_client(i), on_leader, "member {}'s tree vs the leader's", i + 1);
    }
}
