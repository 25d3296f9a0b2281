//! Snapshots and restart: what a restarted server rebuilds from `snapshot.*` files plus the log.
//!
//! - `restart_uses_the_newest_snapshot_and_retention_keeps_the_newest_three`: with a small
//!   `snapCount` and 64 KiB segments, snapshots are taken under load; a `kill -9` restart
//!   rebuilds from the newest one plus the log after it with every node intact, the tools
//!   verify the files, and retention left at most `snapRetainCount` snapshots and no segment
//!   that only holds records older than the oldest of them.
//! - `sessions_and_ephemerals_survive_restart`: a live session resumes with its id and
//!   password after a restart and keeps its ephemeral; a session that expired before the kill
//!   has no ephemeral after it; a session whose client never comes back expires after restart.
//! - `damaged_snapshot_falls_back_to_the_log_or_refuses`: a flipped byte in the newest snapshot
//!   makes start-up use the log (named in a warning) when the log is complete, and refuse,
//!   naming the snapshot file and offset, when the log before it was purged.
//! - `quota_usage_survives_restarts_from_the_log_and_from_a_snapshot`: a quota's
//!   `zookeeper_stats` usage is the same after a restart replaying the log and after one from
//!   a snapshot (recounted) plus the log.
//!
//! The first and last read ringkeeper's own files and are skipped against Apache.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ringkeeper_engine::log as txlog;
use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::{CreateRequest, GetDataResponse, Stat};
use ringkeeper_engine::snapshot;
use ringkeeper_tests::{ringkeeper_binary, Target, TestServer};

/// Longest wait for a snapshot or an expiry the test arranged.
const WAIT_BOUND: Duration = Duration::from_secs(60);

/// Files in `dir` whose name parses with `parse`, sorted by the zxid in the name.
fn files_named(dir: &Path, parse: fn(&str) -> Option<i64>) -> Vec<(i64, PathBuf)> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            parse(path.file_name()?.to_str()?).map(|zxid| (zxid, path))
        })
        .collect();
    files.sort();
    files
}

fn snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    files_named(dir, snapshot::parse_snapshot_file_name)
}

fn segments(dir: &Path) -> Vec<(i64, PathBuf)> {
    files_named(dir, txlog::parse_segment_file_name)
}

/// Polls `done` every 50 ms until it holds; panics with `what` after [`WAIT_BOUND`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what} after {WAIT_BOUND:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates `/{prefix}{i}` for `i` in `range` with 100-byte values, pipelined; returns czxids.
fn create_many(session: &mut RawSession, prefix: &str, range: std::ops::Range<usize>) -> Vec<(String, i64)> {
    let mut created = Vec::new();
    for chunk in range.collect::<Vec<_>>().chunks(128) {
        let mut sent = Vec::new();
        for i in chunk {
            let path = format!("/{prefix}{i}");
            let request =
                CreateRequest { path: path.clone(), data: Some(vec![b'v'; 100]), acl: open_acl(), flags: 0 };
            sent.push((session.send(OpCode::Create, &request), path));
        }
        for (xid, path) in sent {
            let reply = session.reply_to(xid).expect("reply");
            assert_eq!(reply.header.err, 0, "create {path}");
            created.push((path, reply.header.zxid));
        }
    }
    created
}

fn stat(session: &mut RawSession, path: &str) -> Option<Stat> {
    let reply = session.call(OpCode::Exists, &no_watch(path));
    match reply.header.err {
        0 => Some(reply.decode::<Stat>()),
        -101 => None,
        e => panic!("exists {path}: error {e}"),
    }
}

fn run_tool(args: &[&str]) -> (bool, String) {
    let output = Command::new(ringkeeper_binary()).args(args).output().expect("run ringkeeper tool");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn restart_uses_the_newest_snapshot_and_retention_keeps_the_newest_three() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let mut server = TestServer::start_with(
        "snapCount=300\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\nringkeeper.log.segmentBytes=65536",
    );
    let dir = server.data_dir();
    let mut session = RawSession::connect(&server, 30_000);
    let created = create_many(&mut session, "n", 0..3000);
    wait_until("3 snapshots", || snapshots(&dir).len() >= 3);
    server.kill();

    let snaps = snapshots(&dir);
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "64 KiB segments roll under this load: {segs:?}");
    // A purge runs after every snapshot write: at most one written since the last purge.
    assert!(snaps.len() <= 4, "retention keeps the newest 3: {snaps:?}");
    let (oldest_kept, _) = snaps[snaps.len().saturating_sub(3)];
    for pair in segs.windows(2) {
        assert!(
            pair[1].0 > oldest_kept + 1 || snaps.len() > 3,
            "segment {} only holds records before snapshot {oldest_kept:#x} and was kept",
            pair[0].1.display()
        );
    }
    let (ok, text) = run_tool(&["snap-verify", dir.to_str().unwrap()]);
    assert!(ok, "snap-verify:\n{text}");
    let (ok, text) = run_tool(&["log-verify", dir.to_str().unwrap()]);
    assert!(ok, "log-verify after retention:\n{text}");
    let (ok, text) = run_tool(&["snap-dump", snaps.last().unwrap().1.to_str().unwrap()]);
    assert!(ok && text.contains("/n0  czxid"), "snap-dump lists nodes:\n{text}");

    let newest = snaps.last().unwrap().1.clone();
    server.restart();
    assert!(
        server.log().contains(&format!("recovered from {}", newest.display())),
        "restart uses the newest snapshot:\n{}",
        server.log()
    );
    let mut session = RawSession::connect(&server, 30_000);
    for (path, czxid) in &created {
        let stat = stat(&mut session, path).unwrap_or_else(|| panic!("{path} missing after restart"));
        assert_eq!(stat.czxid, *czxid, "{path}");
        assert_eq!(stat.data_length, 100, "{path}");
    }
    let root = stat(&mut session, "/").unwrap();
    assert_eq!(root.num_children as usize, created.len() + 1, "the nodes and /zookeeper");
    let reply = session.call(OpCode::Create, &create_request("/after", 0));
    assert!(reply.header.zxid > created.last().unwrap().1, "zxids continue");
}

#[test]
fn sessions_and_ephemerals_survive_restart() {
    let mut server = TestServer::start_with("4lw.commands.whitelist=*\nminSessionTimeout=4000");
    let mut kept = RawSession::connect(&server, 30_000);
    assert_eq!(kept.code(OpCode::Create, &create_request("/kept", 1)), 0);
    let mut expired = RawSession::connect(&server, 4000);
    assert_eq!(expired.code(OpCode::Create, &create_request("/expired", 1)), 0);
    let mut abandoned = RawSession::connect(&server, 4000);
    assert_eq!(abandoned.code(OpCode::Create, &create_request("/abandoned", 1)), 0);
    drop(expired);
    // Keep the other two alive while the dropped one expires.
    wait_until("the dropped session to expire", || {
        kept.ping();
        abandoned.ping();
        stat(&mut kept, "/expired").is_none()
    });
    if server.target == Target::Ringkeeper {
        assert!(server.four_letter("snap").contains("Snapshot requested"));
        wait_until("a snapshot", || !snapshots(&server.data_dir()).is_empty());
    }
    let resume = kept.resume_request();
    let abandoned_id = abandoned.session_id();
    drop(abandoned);
    server.restart();

    let mut resumed = RawSession::connect_with(&server, &resume);
    assert_eq!(resumed.session_id(), resume.session_id, "same session after restart");
    let node = stat(&mut resumed, "/kept").expect("the live session's ephemeral survives restart");
    assert_eq!(node.ephemeral_owner, resume.session_id);
    assert!(stat(&mut resumed, "/expired").is_none(), "an expired session's ephemeral stays gone");
    let node = stat(&mut resumed, "/abandoned").expect("a session within its timeout is restored");
    assert_eq!(node.ephemeral_owner, abandoned_id);
    wait_until("the abandoned session to expire after restart", || {
        resumed.ping();
        stat(&mut resumed, "/abandoned").is_none()
    });
    assert!(stat(&mut resumed, "/kept").is_some());
}

#[test]
fn damaged_snapshot_falls_back_to_the_log_or_refuses() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let mut server = TestServer::start_with("4lw.commands.whitelist=*\nringkeeper.log.segmentBytes=65536");
    let dir = server.data_dir();
    let mut session = RawSession::connect(&server, 30_000);
    let created = create_many(&mut session, "d", 0..1500);
    assert!(server.four_letter("snap").contains("Snapshot requested"));
    wait_until("a snapshot", || !snapshots(&dir).is_empty());
    server.kill();
    let (_, snapshot_path) = snapshots(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&snapshot_path).unwrap();
    let flipped = bytes.len() - 100;
    bytes[flipped] ^= 0x01;
    std::fs::write(&snapshot_path, &bytes).unwrap();
    let expected = format!("{}: offset {}", snapshot_path.display(), snapshot::SNAPSHOT_HEADER_BYTES);

    // Without the first segment (as after a purge) nothing can rebuild the tree: refuse.
    let first_segment = segments(&dir)[0].1.clone();
    let moved = dir.join("moved-away");
    std::fs::rename(&first_segment, &moved).unwrap();
    let text = refused_start(&server);
    assert!(text.contains(&expected) && text.contains("checksum"), "expected {expected:?} in:\n{text}");
    std::fs::rename(&moved, &first_segment).unwrap();

    // The whole log is there: start from it, saying which snapshot was skipped and why.
    server.restart();
    let log = server.log();
    assert!(log.contains(&expected) && log.contains("checksum"), "expected {expected:?} in:\n{log}");
    assert!(log.contains("recovered from no snapshot"), "{log}");
    let mut session = RawSession::connect(&server, 30_000);
    for (path, czxid) in [&created[0], created.last().unwrap()] {
        assert_eq!(stat(&mut session, path).map(|s| s.czxid), Some(*czxid), "{path}");
    }
}

/// Data of `path` (which must exist).
fn data_of(session: &mut RawSession, path: &str) -> String {
    let reply = session.call(OpCode::GetData, &no_watch(path));
    assert_eq!(reply.header.err, 0, "getData {path}");
    String::from_utf8(reply.decode::<GetDataResponse>().data.unwrap_or_default()).unwrap()
}

#[test]
fn quota_usage_survives_restarts_from_the_log_and_from_a_snapshot() {
    let mut server = TestServer::start_with("4lw.commands.whitelist=*");
    let mut session = RawSession::connect(&server, 30_000);
    let create = |session: &mut RawSession, path: &str, data: &[u8]| {
        let request =
            CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl(), flags: 0 };
        assert_eq!(session.code(OpCode::Create, &request), 0, "create {path}");
    };
    // What zkCli's `setquota -n 10 /app` creates, then one node under the quota.
    create(&mut session, "/app", b"ab");
    create(&mut session, "/zookeeper/quota/app", b"");
    create(&mut session, "/zookeeper/quota/app/zookeeper_limits", b"count=10,bytes=-1");
    create(&mut session, "/zookeeper/quota/app/zookeeper_stats", b"count=0,bytes=0");
    create(&mut session, "/app/c1", b"xyz");
    let stats = "/zookeeper/quota/app/zookeeper_stats";
    assert_eq!(data_of(&mut session, stats), "count=2,bytes=5");

    // The log replayed: every txn moves the stats again as it did live.
    server.restart();
    let mut session = RawSession::connect(&server, 30_000);
    assert_eq!(data_of(&mut session, stats), "count=2,bytes=5", "after a restart from the log");

    // From a snapshot (recounted) plus the log after it.
    if server.target == Target::Ringkeeper {
        assert!(server.four_letter("snap").contains("Snapshot requested"));
        wait_until("a snapshot", || !snapshots(&server.data_dir()).is_empty());
    }
    create(&mut session, "/app/c2", b"");
    server.restart();
    let mut session = RawSession::connect(&server, 30_000);
    assert_eq!(data_of(&mut session, stats), "count=3,bytes=5", "after a restart from a snapshot");
}
