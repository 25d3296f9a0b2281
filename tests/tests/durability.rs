//! Durability: an acknowledged write survives `kill -9`, and the log's damage is handled as
//! the format promises.
//!
//! - `acknowledged_writes_survive_kill_9`: a raw client pipelines creates and setData calls,
//!   the server is SIGKILLed at a random moment, restarted; every acknowledged create is there
//!   with its czxid, the node's setData history is at least the acknowledged one (exact Stat
//!   when nothing later survived), and new zxids continue after every acknowledged one. Many
//!   rounds on one data directory; the seed is printed (`RINGKEEPER_TEST_SEED` replays it).
//! - `acknowledged_writes_survive_kill_9_with_an_executor_per_role`: the same with
//!   `ringkeeper.executors=per-role` (roles on threads of their own, shared channels) and two
//!   network executors accepting on the one client-port socket.
//! - `acknowledged_writes_survive_kill_9_with_snapshots_and_segment_rollover`: the same with a
//!   small `snapCount` (fuzzy snapshots under load), retention on, and 64 KiB segments.
//! - `torn_tail_is_cut_and_reported`: the last segment cut mid-record starts with a warning
//!   naming the file and offset, keeps every earlier record, and appends cleanly after it.
//! - `corrupt_middle_refuses_to_start`: a flipped byte in an early record stops start-up with a
//!   non-zero exit and a message naming the file and offset.
//!
//! The last two read ringkeeper's own segment format and are skipped against Apache.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use ringkeeper_engine::log::{self as txlog, SegmentScanner};
use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::{SetDataRequest, Stat};
use ringkeeper_engine::proto::Jute;
use ringkeeper_engine::txn::TxnBytes;
use ringkeeper_tests::{Target, TestServer};

/// Kill/restart rounds in one run.
const ROUNDS: usize = 10;
/// Most writes one round sends (a bound only: the kill comes first).
const WRITES_PER_ROUND_MAX: usize = 1_000_000;
/// Latest kill after a round's writes start.
const KILL_DELAY_MAX_MS: u64 = 400;
/// Bound for the whole kill -9 test.
const TEST_BOUND: Duration = Duration::from_secs(240);
/// Requests in flight while verifying.
const VERIFY_WINDOW: usize = 256;

/// Reads one reply (skipping notifications); `None` once the server is gone.
fn read_reply(stream: &mut TcpStream) -> Option<Reply> {
    loop {
        let reply = read_reply_frame(stream)?;
        if reply.header.xid != -1 {
            return Some(reply);
        }
    }
}

/// What the server acknowledged in one round.
#[derive(Default)]
struct Acked {
    /// Created child paths and their zxids (= czxid).
    creates: Vec<(String, i64)>,
    /// The last acknowledged setData on the round's node: (version, mzxid).
    last_set: Option<(i32, i64)>,
    max_zxid: i64,
}

/// Even writes of a round create a child, odd ones set the round node.
fn is_create(i: usize) -> bool {
    i & 1 == 0
}

/// The write with index `i` of a round.
fn write_request(round_path: &str, i: usize) -> Vec<u8> {
    let xid = i as i32 + 1;
    if is_create(i) {
        let create = create_request(&format!("{round_path}/c{i:06}"), 0);
        request_payload(xid, OpCode::Create as i32, &create.to_bytes())
    } else {
        let set = SetDataRequest {
            path: round_path.into(),
            data: Some((i as u64).to_be_bytes().to_vec()),
            version: -1,
        };
        request_payload(xid, OpCode::SetData as i32, &set.to_bytes())
    }
}

/// Pipelines writes until the server dies, `kill_after` into the round; returns the acks.
fn pipeline_until_killed(server: &mut TestServer, round_path: &str, kill_after: Duration) -> Acked {
    let mut session = RawSession::connect(server, 30_000);
    assert_eq!(session.code(OpCode::Create, &create_request(round_path, 0)), 0, "create {round_path}");
    let mut writer = session.stream.try_clone().unwrap();
    let mut reader = session.stream.try_clone().unwrap();
    let path = round_path.to_string();
    let writer = std::thread::spawn(move || {
        for i in 0..WRITES_PER_ROUND_MAX {
            if write_frame(&mut writer, &write_request(&path, i)).is_err() {
                break;
            }
        }
    });
    let path = round_path.to_string();
    let reader = std::thread::spawn(move || {
        let mut acked = Acked::default();
        while let Some(Reply { header, body }) = read_reply(&mut reader) {
            let i = (header.xid - 1) as usize;
            assert_eq!(header.err, 0, "write {i} failed: {header:?}");
            acked.max_zxid = acked.max_zxid.max(header.zxid);
            if is_create(i) {
                acked.creates.push((format!("{path}/c{i:06}"), header.zxid));
            } else {
                let stat = Stat::from_bytes(&body).expect("decode SetData Stat");
                assert_eq!(stat.mzxid, header.zxid, "setData reply zxid is its mzxid");
                acked.last_set = Some((stat.version, stat.mzxid));
            }
        }
        acked
    });
    std::thread::sleep(kill_after);
    server.kill();
    writer.join().unwrap();
    reader.join().unwrap()
}

/// Exists replies for `paths`, pipelined in windows: `None` for a missing node.
fn stats_of(session: &mut RawSession, paths: &[&str]) -> Vec<Option<Stat>> {
    let mut stats = Vec::with_capacity(paths.len());
    for window in paths.chunks(VERIFY_WINDOW) {
        for path in window {
            let xid = session.send(OpCode::Exists, &no_watch(path));
            assert!(xid > 0);
        }
        for path in window {
            let reply = read_reply(&mut session.stream).expect("server closed during verification");
            stats.push(match reply.header.err {
                0 => Some(reply.decode::<Stat>()),
                -101 => None,
                e => panic!("exists {path}: error {e}"),
            });
        }
    }
    stats
}

/// Every acknowledged write of `acked` is present with the Stat it was acknowledged with.
fn assert_durable(session: &mut RawSession, round_path: &str, acked: &Acked) {
    let paths: Vec<&str> = acked.creates.iter().map(|(p, _)| p.as_str()).collect();
    for ((path, zxid), stat) in acked.creates.iter().zip(stats_of(session, &paths)) {
        let stat = stat.unwrap_or_else(|| {
            panic!("acknowledged create {path} (zxid {zxid:#x}) is missing after kill -9")
        });
        assert_eq!(stat.czxid, *zxid, "{path}: czxid");
    }
    let node = stats_of(session, &[round_path]).pop().unwrap().expect("round node exists");
    if let Some((version, mzxid)) = acked.last_set {
        assert!(node.version >= version, "{round_path}: version {} < acknowledged {version}", node.version);
        if node.version == version {
            assert_eq!(node.mzxid, mzxid, "{round_path}: mzxid of the last acknowledged setData");
        } else {
            assert!(
                node.mzxid > mzxid,
                "{round_path}: a later setData survived, so mzxid {} > {mzxid}",
                node.mzxid
            );
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    drop(kill_9_rounds(""));
}

/// The same with the network, data and log roles each on an executor (thread) of its own,
/// linked by shared channels (the default runs them on one executor here).
#[test]
fn acknowledged_writes_survive_kill_9_with_an_executor_per_role() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let server = kill_9_rounds("ringkeeper.executors=per-role\nringkeeper.network.cores=0,1");
    assert!(server.log().contains("executor layout: per-role"), "{}", server.log());
    let network_threads = std::fs::read_dir(format!("/proc/{}/task", server.pid().expect("running")))
        .unwrap()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap_or_default();
            comm.starts_with("rk-net-1")
        })
        .count();
    assert!(network_threads > 0, "a second network executor runs");
}

/// The same with snapshots taken all the time (fuzzy, under load), retention removing old
/// snapshots and segments, and 64 KiB segments rolling over many times per round.
#[test]
fn acknowledged_writes_survive_kill_9_with_snapshots_and_segment_rollover() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let server = kill_9_rounds(
        "snapCount=400\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\nringkeeper.log.segmentBytes=65536",
    );
    let log = server.log();
    assert!(
        log.contains("recovered from ") && log.contains("/snapshot."),
        "the last start used a snapshot:\n{log}"
    );
}

/// [`ROUNDS`] kill -9 rounds on one data directory, the server configured with `extra_config`;
/// returns the server as the last round left it.
fn kill_9_rounds(extra_config: &str) -> TestServer {
    let started = Instant::now();
    let mut rng = seeded_rng();
    let mut server = TestServer::start_with(extra_config);
    let mut history: Vec<(String, Acked)> = Vec::new();
    for round in 0..ROUNDS {
        let round_path = format!("/round{round}");
        let kill_after = Duration::from_millis(rng.below(KILL_DELAY_MAX_MS + 1));
        let acked = pipeline_until_killed(&mut server, &round_path, kill_after);
        println!("round {round}: killed after {kill_after:?}; {} creates acknowledged, last setData {:?}, max zxid {:#x}", acked.creates.len(), acked.last_set, acked.max_zxid);
        server.restart();
        let mut session = RawSession::connect(&server, 30_000);
        assert_durable(&mut session, &round_path, &acked);
        // New zxids continue after everything acknowledged (and everything recovered).
        let node = stats_of(&mut session, &[&round_path]).pop().unwrap().unwrap();
        let reply = session.call(OpCode::Create, &create_request(&format!("{round_path}/after"), 0));
        assert_eq!(reply.header.err, 0);
        let floor = acked.max_zxid.max(node.mzxid).max(node.pzxid);
        assert!(
            reply.header.zxid > floor,
            "round {round}: new zxid {:#x} must follow {floor:#x}",
            reply.header.zxid
        );
        history.push((round_path, acked));
        assert!(started.elapsed() < TEST_BOUND, "kill -9 test exceeded {TEST_BOUND:?}");
    }
    // Earlier rounds survived every later kill and recovery too.
    let mut session = RawSession::connect(&server, 30_000);
    for (round_path, acked) in &history {
        assert_durable(&mut session, round_path, acked);
    }
    server
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).and_then(txlog::parse_segment_file_name).is_some())
        .collect();
    paths.sort();
    paths
}

/// Offsets and zxids of the records in a segment file.
fn records_of(path: &Path) -> Vec<(u64, i64)> {
    let raw = std::fs::read(path).unwrap();
    let mut bytes = TxnBytes::with_capacity(raw.len());
    bytes.extend_from_slice(&raw);
    SegmentScanner::new(&bytes).unwrap().map(|r| r.map(|r| (r.offset, r.zxid)).unwrap()).collect()
}

/// A server with `/n0../n{count-1}` created and acknowledged, then killed; the segment path.
fn killed_server_with_nodes(count: usize) -> (TestServer, PathBuf) {
    let mut server = TestServer::start();
    let mut session = RawSession::connect(&server, 30_000);
    for i in 0..count {
        assert_eq!(session.code(OpCode::Create, &create_request(&format!("/n{i}"), 0)), 0);
    }
    server.kill();
    let segments = segments(&server.data_dir());
    assert_eq!(segments.len(), 1, "one segment: {segments:?}");
    let segment = segments[0].clone();
    (server, segment)
}

fn exists(session: &mut RawSession, path: &str) -> bool {
    stats_of(session, &[path]).pop().unwrap().is_some()
}

#[test]
fn torn_tail_is_cut_and_reported() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let (mut server, segment) = killed_server_with_nodes(10);
    let records = records_of(&segment);
    let (last_offset, last_zxid) = *records.last().unwrap();
    // A crash mid-write: the file ends inside the last record.
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(last_offset + 40).unwrap();
    server.restart();
    let log = server.log();
    let warning = format!("{}: torn record at offset {last_offset}", segment.display());
    assert!(log.contains(&warning), "expected {warning:?} in the server log:\n{log}");
    let mut session = RawSession::connect(&server, 30_000);
    assert!(exists(&mut session, "/n8"), "records before the torn one are kept");
    assert!(!exists(&mut session, "/n9"), "the torn record is cut off");
    let reply = session.call(OpCode::Create, &create_request("/after_torn", 0));
    assert_eq!(reply.header.err, 0);
    assert!(reply.header.zxid >= last_zxid, "zxids continue after the last kept record");
    // Appending after the repaired tail leaves a clean log.
    server.restart();
    assert!(!server.log().contains("torn record"), "second start is clean:\n{}", server.log());
    let mut session = RawSession::connect(&server, 30_000);
    assert!(exists(&mut session, "/after_torn") && exists(&mut session, "/n8"));
}

#[test]
fn corrupt_middle_refuses_to_start() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let (server, segment) = killed_server_with_nodes(10);
    let records = records_of(&segment);
    let (offset, _) = records[2];
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offset as usize + txlog::RECORD_HEADER_BYTES + 5] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();

    let text = refused_start(&server);
    let expected = format!("{}: offset {offset}", segment.display());
    assert!(text.contains(&expected), "expected {expected:?} in:\n{text}");
}
