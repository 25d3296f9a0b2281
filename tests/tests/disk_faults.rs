//! Failing and full disks, injected through the [`LazyFs`] FUSE filesystem
//! ([`ringkeeper_tests::lazyfs::Faults`]): a member never acknowledges a write that is not
//! durable, stops loudly, and recovers every acknowledged write once the fault is gone.
//!
//! As Apache 3.8 (its `SyncRequestProcessor` exits the server when a txn log write or flush
//! throws), a failed log write or fsync stops the server: it logs one `FATAL` line naming the
//! file and the errno and exits with status 70. The writes it had not acknowledged fail
//! (connection loss), never succeed. Each test writes with several clients until the fault
//! stops the server, clears the fault (the space is freed), restarts on what the disk kept
//! and checks that every acknowledged create and the last acknowledged version are there, and
//! that no znode holds anything but the complete data its create wrote:
//!
//! - `lazyfs_injects_write_fsync_and_full_disk_faults`: the filesystem itself, through
//!   ordinary system calls: a failing write changes nothing, a failing fsync (also the one of
//!   an `O_DSYNC` write) makes nothing durable, a full disk refuses growth (write, truncate,
//!   `fallocate`) but not rewrites in place, and `statfs` shows the free space.
//! - `log_fsync_eio_stops_the_server_without_losing_an_acknowledged_write`: fsyncs of the
//!   log fail with EIO (with the default `writeMode=dsync` that is the sync of each `O_DSYNC`
//!   write); the power is cut before the restart, so a write acknowledged despite the failed
//!   sync would be gone.
//! - `log_fdatasync_eio_stops_the_server_without_losing_an_acknowledged_write`: the same
//!   with `writeMode=fdatasync` (write, then a separate fdatasync that fails).
//! - `log_write_enospc_stops_the_server_without_losing_an_acknowledged_write`: writes to the
//!   log fail with ENOSPC.
//! - `full_disk_stops_the_server_at_the_next_segment_and_it_recovers_once_space_is_freed`: the
//!   disk fills up (a capacity just above what is used): snapshots fail first (logged, the
//!   server goes on: the log holds every txn), then the log cannot preallocate its next
//!   segment and the server stops; restarted with space again (no power loss: the half-made
//!   segment is on disk as the failed roll left it), it recovers everything.
//! - `snapshot_enospc_keeps_serving_and_the_data_dir_recovers`: only snapshot writes fail
//!   (ENOSPC): each failure is logged, the unfinished temp file removed, the server keeps
//!   acknowledging writes; after kill -9 and a power loss the older snapshot plus the log
//!   recover every acknowledged write. (Apache exits on a failed snapshot instead; ringkeeper
//!   goes on because the log alone is enough to recover.)
//! - `follower_with_failing_disk_leaves_the_quorum_without_losing_committed_data`: in a
//!   3-member ensemble one follower's log fsyncs fail: it stops, the other two keep
//!   acknowledging writes; after a power loss of that follower and a restart without the
//!   fault, every member (read directly, after `sync`) holds every acknowledged write.
//! - `a_session_secret_that_cannot_be_made_durable_refuses_the_start`: the fsync of
//!   `session.secret`, then of dataDir, fails: the server refuses to start, naming the file or
//!   the directory fsync and the errno; once the disk works it starts, and its secret
//!   survives a power loss.
//! - `data_dir_fsync_eio_stops_the_server_at_the_next_segment_without_losing_an_acknowledged_write`:
//!   fsyncs of dataDir fail while writing: snapshots fail (logged), the next log segment
//!   cannot be made durable and the server stops (FATAL, exit 70); after a power loss every
//!   acknowledged write is there.
//! - `a_member_that_cannot_sync_its_epoch_stops_before_the_new_epoch_serves`: in a 3-member
//!   ensemble a follower's epoch files cannot be synced and the leader is killed: the new
//!   epoch needs that follower, which stops (FATAL naming `acceptedEpoch`, exit 71), and the
//!   survivor does not serve alone; restarted (after a power loss) without the fault, every
//!   member holds every acknowledged write.
//! - `a_follower_that_cannot_record_a_snap_stops_and_is_sent_it_again_once_the_disk_works`:
//!   a follower too far behind for DIFF cannot sync the SNAP marker (`install.after-restart`):
//!   it stops (exit 71); restarted without the fault it is sent the SNAP again.
//! - `an_old_leader_that_cannot_record_its_trunc_stops_and_rejoins_once_the_disk_works`: a
//!   leader is isolated, then asked to write: it logs a proposal no one else has (checked in
//!   its log segment, and absent on the new leader); on the heal it cannot sync the TRUNC marker (`truncate.after`): it stops (exit 71); restarted without
//!   the fault it cuts its log and every member holds every acknowledged write.
//!
//! Skipped, with a message, where FUSE cannot be mounted (no `/dev/fuse` or not root) and with
//! `RINGKEEPER_TEST_TARGET=apache` (see `power_loss.rs`). The moment the fault starts is
//! random; the seed is printed and `RINGKEEPER_TEST_SEED` replays it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::disk::{create_payload, start_writes, take_acked, Acked, Disk, Losses};
use common::*;
use ringkeeper_server::data_files::{
    ACCEPTED_EPOCH, CURRENT_EPOCH, INSTALL_MARKER, SEGMENT_PREFIX, SESSION_SECRET, SNAPSHOT_PREFIX,
    TRUNCATE_MARKER,
};
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::four_letter::Mode;
use ringkeeper_tests::lazyfs::{Fault, FaultOp, Faults};
use ringkeeper_tests::sim::Rng;
use ringkeeper_tests::TestServer;
use zookeeper_client as zk;

/// Small log segments (rolls within a test) and frequent snapshots.
const SERVER_CONFIG: &str = "ringkeeper.log.segmentBytes=65536\nsnapCount=200\n";
/// The exit status of a server whose log could not be made durable (`log_role.rs`).
const EXIT_LOG_FAILURE: i32 = 70;
/// What a FATAL line about a log segment names.
const LOG_FILE: &str = "/log.";
/// What a FATAL line about a failed directory fsync names.
const DIRECTORY_FSYNC: &str = "fsync of the directory";
/// The exit status of a member that could not make its epochs or a TRUNC/SNAP marker
/// durable (`data_role.rs`).
const EXIT_REPLICA_FILE_FAILURE: i32 = 71;
/// Bound for a server to notice a fault and stop.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Bound for an ensemble to connect to, elect and serve again.
const ENSEMBLE_WAIT: Duration = Duration::from_secs(60);
/// The fault starts this long (at most) after the writes.
const FAULT_DELAY_MAX_MS: u64 = 500;

#[test]
fn lazyfs_injects_write_fsync_and_full_disk_faults() {
    if Disk::no_fuse() {
        return;
    }
    use std::io::Write;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let mut disk = Disk::mount_lazyfs();
    let errno = |result: std::io::Result<()>| result.err().and_then(|e| e.raw_os_error());
    let mut file = std::fs::File::create(disk.path("log.1")).unwrap();
    file.write_all(b"durable").unwrap();
    file.sync_all().unwrap();
    std::fs::File::open(disk.fs.path()).unwrap().sync_all().unwrap();

    disk.fs.set_faults(failing(FaultOp::Write, "log.", libc::EIO));
    assert_eq!(errno(file.write_all(b" more")), Some(libc::EIO));
    std::fs::write(disk.path("other"), b"other names are not affected").unwrap();
    disk.fs.set_faults(failing(FaultOp::Fsync, "log.", libc::EIO));
    file.write_all(b" unsynced").unwrap();
    assert_eq!(errno(file.sync_data()), Some(libc::EIO));
    let mut dsync =
        std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DSYNC).open(disk.path("log.1")).unwrap();
    assert_eq!(errno(dsync.write_all(b"!")), Some(libc::EIO), "an O_DSYNC write syncs, and that fails");
    assert!(disk.fs.faults_tripped() >= 2);

    let used = disk.fs.used_bytes();
    disk.fs.set_faults(Faults { failing: Vec::new(), capacity_bytes: Some(used + 10) });
    // SAFETY: statvfs writes into the struct it is given; the path is NUL-terminated.
    let free_bytes = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        let path = std::ffi::CString::new(disk.fs.path().as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(libc::statvfs(path.as_ptr(), &mut stat), 0);
        stat.f_bavail * stat.f_bsize
    };
    assert!(free_bytes < 8192, "statfs must show the disk (nearly) full: {free_bytes} bytes free");
    file.write_all_at(b"DURABLE", 0).unwrap();
    assert_eq!(errno(file.write_all_at(&[0; 64], used)), Some(libc::ENOSPC));
    assert_eq!(errno(file.set_len(used + 64)), Some(libc::ENOSPC));
    // SAFETY: fallocate on an open file descriptor with valid arguments.
    let allocated = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, 1 << 20) };
    assert_eq!(allocated, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ENOSPC));
    drop((file, dsync));

    disk.fs.set_faults(Faults::default());
    let mut entry = std::fs::File::create(disk.path("entry")).unwrap();
    entry.write_all(b"synced data, name never durable").unwrap();
    disk.fs.set_faults(failing(FaultOp::FsyncDir, "", libc::EIO));
    entry.sync_all().unwrap();
    let root = std::fs::File::open(disk.fs.path()).unwrap();
    assert_eq!(errno(root.sync_all()), Some(libc::EIO), "an fsync of the (root) directory fails");
    disk.fs.set_faults(failing(FaultOp::FsyncDir, "sub", libc::EIO));
    std::fs::create_dir(disk.path("subdir")).unwrap();
    assert_eq!(errno(std::fs::File::open(disk.path("subdir")).unwrap().sync_all()), Some(libc::EIO));
    drop((entry, root));

    disk.fs.set_faults(Faults::default());
    disk.fs.power_loss().expect("power loss");
    assert_eq!(std::fs::read(disk.path("log.1")).unwrap(), b"durable", "only the synced data survives");
    assert!(!disk.path("entry").exists(), "a failed directory fsync made a new name durable");
    assert!(disk.path("subdir").is_dir(), "directories are durable at once (this filesystem's rule)");
}

fn failing(op: FaultOp, name_prefix: &str, errno: i32) -> Faults {
    Faults { failing: vec![Fault { op, name_prefix: name_prefix.into(), errno }], capacity_bytes: None }
}

/// Waits for the server to stop on its own after a disk fault; checks its exit status and
/// the log line naming what failed (`what_failed`: a `log.` segment, the directory fsync)
/// and `errno_text`.
fn expect_stop_naming(server: &mut TestServer, what_failed: &str, errno_text: &str) {
    let Some(status) = server.wait_exit(STOP_WAIT) else {
        panic!("the server kept running after its log failed; log:\n{}", server.log())
    };
    let log = server.log();
    assert_eq!(status.code(), Some(EXIT_LOG_FAILURE), "exit status after a log failure; log:\n{log}");
    let line =
        log.lines().find(|line| line.contains("FATAL")).unwrap_or_else(|| panic!("no FATAL line:\n{log}"));
    println!("the server stopped: {line}");
    assert!(
        line.contains(&server.data_dir().display().to_string()) && line.contains(what_failed),
        "the FATAL line must name the data dir and {what_failed:?}: {line}"
    );
    assert!(line.contains(errno_text), "the FATAL line must name the error ({errno_text}): {line}");
}

/// Writes until `faults` (injected at a seeded moment) stop the server, then clears them,
/// cuts the power if `cut_power`, restarts and checks every acknowledged write.
async fn log_fault_stops_server(
    config: &str,
    faults: Faults,
    what_failed: &str,
    errno_text: &str,
    cut_power: bool,
) {
    let mut rng = seeded_rng();
    let Some(mut disk) = Disk::mount() else { return };
    let mut server = TestServer::start_with_data_dir(config, &disk.path("data"));
    let client = connect(&server).await;
    mk(&client, "/round", b"").await;
    let (writes, acked) = start_writes(&client, "/round");
    let delay = Duration::from_millis(100 + rng.below(FAULT_DELAY_MAX_MS));
    tokio::time::sleep(delay).await;
    disk.fs.set_faults(faults);
    expect_stop_naming(&mut server, what_failed, errno_text);
    within_for(STOP_WAIT, "writers to stop", writes).await.unwrap();
    drop(client);
    assert!(disk.fs.faults_tripped() > 0, "the injected fault never tripped");
    let acked = take_acked(&acked, "disk fault", delay, false);
    disk.fs.set_faults(Faults::default());
    if cut_power {
        disk.cut_power(false, &mut rng);
    }
    restart_and_check(&mut server, acked).await;
}

/// Restarts `server` and asserts that it lost none of `acked` (writes on `/round`).
async fn restart_and_check(server: &mut TestServer, acked: Acked) {
    if let Err(error) = server.try_restart() {
        panic!("the server does not start on what the disk fault left: {error}");
    }
    let client = connect(server).await;
    let mut losses = Losses::default();
    losses.check(&client, "/round", acked).await;
    assert!(!losses.any(), "acknowledged writes lost or damaged after a disk fault: {losses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_fsync_eio_stops_the_server_without_losing_an_acknowledged_write() {
    let faults = failing(FaultOp::Fsync, SEGMENT_PREFIX, libc::EIO);
    log_fault_stops_server(SERVER_CONFIG, faults, LOG_FILE, "Input/output error", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_fdatasync_eio_stops_the_server_without_losing_an_acknowledged_write() {
    let config = format!("{SERVER_CONFIG}ringkeeper.log.writeMode=fdatasync\n");
    let faults = failing(FaultOp::Fsync, SEGMENT_PREFIX, libc::EIO);
    log_fault_stops_server(&config, faults, LOG_FILE, "Input/output error", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_write_enospc_stops_the_server_without_losing_an_acknowledged_write() {
    let faults = failing(FaultOp::Write, SEGMENT_PREFIX, libc::ENOSPC);
    log_fault_stops_server(SERVER_CONFIG, faults, LOG_FILE, "No space left on device", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_stops_the_server_at_the_next_segment_and_it_recovers_once_space_is_freed() {
    // Room for a little more than one segment beside the spare: the first roll may take the
    // zero-filled spare, a later one cannot preallocate.
    disk_fills_up_while_writing(SERVER_CONFIG, 3 * 65536).await;
}

/// Writes while the disk has only `headroom_bytes` more than the running server uses, until
/// the server stops; then frees the space and restarts it without a power loss (the server
/// stopped, the machine did not).
async fn disk_fills_up_while_writing(config: &str, headroom_bytes: u64) {
    let Some(disk) = Disk::mount() else { return };
    let mut server = TestServer::start_with_data_dir(config, &disk.path("data"));
    let client = connect(&server).await;
    mk(&client, "/round", b"").await;
    let capacity_bytes = Some(disk.fs.used_bytes() + headroom_bytes);
    let (writes, acked) = start_writes(&client, "/round");
    disk.fs.set_faults(Faults { failing: Vec::new(), capacity_bytes });
    expect_stop_naming(&mut server, LOG_FILE, "No space left on device");
    within_for(STOP_WAIT, "writers to stop", writes).await.unwrap();
    drop(client);
    let acked = take_acked(&acked, "disk full", Duration::ZERO, false);
    let snapshot_failures = server.log().lines().filter(|l| l.contains("writing a snapshot")).count();
    println!("{snapshot_failures} snapshot(s) failed for lack of space before the log did");
    disk.fs.set_faults(Faults::default());
    restart_and_check(&mut server, acked).await;
}

/// The snapshot files (`snapshot.<zxid>`, temp files too) in `dir`.
fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(SNAPSHOT_PREFIX)));
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_enospc_keeps_serving_and_the_data_dir_recovers() {
    let mut rng = seeded_rng();
    let Some(mut disk) = Disk::mount() else { return };
    let data_dir = disk.path("data");
    let mut server = TestServer::start_with_data_dir(SERVER_CONFIG, &data_dir);
    let client = connect(&server).await;
    mk(&client, "/round", b"").await;
    let (writes, acked) = start_writes(&client, "/round");
    eventually("a first snapshot", STEP, || async { !snapshot_files(&data_dir).is_empty() }).await;
    disk.fs.set_faults(failing(FaultOp::Write, SNAPSHOT_PREFIX, libc::ENOSPC));
    let failed = |line: &str| line.contains("writing a snapshot") && line.contains("No space left on device");
    eventually("a snapshot to fail", STEP, || async { server.log().lines().any(failed) }).await;
    let acked_at_failure = acked.lock().unwrap().creates.len();
    eventually("more writes acknowledged after the failed snapshot", STEP, || async {
        acked.lock().unwrap().creates.len() > acked_at_failure + 100
    })
    .await;
    assert!(server.is_running(), "a failed snapshot stopped the server; log:\n{}", server.log());
    let line = server.log().lines().find(|l| failed(l)).unwrap_or_default().to_string();
    println!("logged: {line}");
    assert!(line.contains(&data_dir.display().to_string()), "the error must name the directory: {line}");
    let leftovers: Vec<_> =
        snapshot_files(&data_dir).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect();
    // A temp file of a snapshot being written right now may exist; none older.
    assert!(leftovers.len() <= 1, "unfinished snapshot files left behind: {leftovers:?}");
    server.kill();
    let torn = rng.below(2) == 1;
    disk.cut_power(torn, &mut rng);
    within_for(STOP_WAIT, "writers to stop", writes).await.unwrap();
    drop(client);
    let acked = take_acked(&acked, "kill -9 and power loss with snapshots failing", Duration::ZERO, torn);
    disk.fs.set_faults(Faults::default());
    restart_and_check(&mut server, acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_with_failing_disk_leaves_the_quorum_without_losing_committed_data() {
    let mut rng = seeded_rng();
    let Some((mut disks, mut ensemble)) = Disk::ensemble(3, "ringkeeper.log.segmentBytes=65536\n") else {
        return;
    };
    let leader = ensemble.wait_leader(ENSEMBLE_WAIT);
    let follower = (leader + 1) % 3;
    // The writers talk to the leader, which must keep acknowledging with one follower.
    let client = within_for(
        ENSEMBLE_WAIT,
        "connect to the leader",
        zk::Client::connector().with_connection_timeout(ENSEMBLE_WAIT).connect(&ensemble.address(leader)),
    )
    .await
    .expect("connect to the leader");
    mk(&client, "/round", b"").await;
    let (writes, acked) = start_writes(&client, "/round");
    tokio::time::sleep(Duration::from_millis(100 + rng.below(FAULT_DELAY_MAX_MS))).await;
    disks[follower].fs.set_faults(failing(FaultOp::Fsync, SEGMENT_PREFIX, libc::EIO));
    let Some(status) = ensemble.wait_exit(follower, STOP_WAIT) else {
        panic!("the follower kept running after its log failed; log:\n{}", ensemble.log(follower))
    };
    let log = ensemble.log(follower);
    assert_eq!(status.code(), Some(EXIT_LOG_FAILURE), "follower's exit status; log:\n{log}");
    let line = log.lines().find(|l| l.contains("FATAL")).unwrap_or_default();
    println!("the follower stopped: {line}");
    assert!(line.contains("/log.") && line.contains("Input/output error"), "{line}");
    let acked_at_stop = acked.lock().unwrap().creates.len();
    eventually("the two others to keep acknowledging writes", STEP, || async {
        acked.lock().unwrap().creates.len() > acked_at_stop + 100
    })
    .await;
    assert!(!writes.is_finished(), "a write failed on the leader while a quorum was up");
    acked.lock().unwrap().stop = true;
    within("writers to stop", writes).await.unwrap();
    drop(client);
    let acked = take_acked(&acked, "one follower's disk failed", Duration::ZERO, false);
    disks[follower].fs.set_faults(Faults::default());
    disks[follower].cut_power(false, &mut rng);
    ensemble.restart(follower);
    for member in 0..3 {
        let client = within_for(
            ENSEMBLE_WAIT,
            "connect to a member",
            zk::Client::connector().with_connection_timeout(ENSEMBLE_WAIT).connect(&ensemble.address(member)),
        )
        .await
        .expect("connect to a member");
        within("sync", client.sync("/round")).await.unwrap();
        let mut losses = Losses::default();
        losses.check(&client, "/round", acked.clone()).await;
        assert!(!losses.any(), "member {} lost acknowledged writes: {losses:?}", member + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_secret_that_cannot_be_made_durable_refuses_the_start() {
    let Some(mut disk) = Disk::mount() else { return };
    let mut server = TestServer::start_with_data_dir(SERVER_CONFIG, &disk.path("data"));
    server.kill();
    let secret = server.data_dir().join(SESSION_SECRET);
    // The file's fsync, then the directory's (without which the new name is not durable).
    for (faults, what_failed) in [
        (failing(FaultOp::Fsync, SESSION_SECRET, libc::EIO), SESSION_SECRET),
        (failing(FaultOp::FsyncDir, "data", libc::EIO), DIRECTORY_FSYNC),
    ] {
        // Gone: written at the first start, or (second round) never renamed into place.
        let _ = std::fs::remove_file(&secret);
        disk.fs.set_faults(faults);
        let output = refused_start(&server);
        let line = output.lines().find(|l| l.contains("Input/output error")).unwrap_or_default();
        println!("refused to start: {line}");
        assert!(line.contains(what_failed), "the error must name {what_failed:?}:\n{output}");
        assert!(disk.fs.faults_tripped() > 0, "the injected fault never tripped");
        disk.fs.set_faults(Faults::default());
    }
    server.restart();
    let written = std::fs::read(&secret).expect("a session secret once the disk works");
    server.kill();
    disk.cut_power(false, &mut seeded_rng());
    assert_eq!(std::fs::read(&secret).ok(), Some(written), "the session secret did not survive a power loss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_fsync_eio_stops_the_server_at_the_next_segment_without_losing_an_acknowledged_write() {
    // The log's directory is synced when a segment starts (its new name must be durable
    // before anything in it is acknowledged); snapshots fail on it first, logged.
    let faults = failing(FaultOp::FsyncDir, "data", libc::EIO);
    log_fault_stops_server(SERVER_CONFIG, faults, DIRECTORY_FSYNC, "Input/output error", true).await;
}

/// Connects to member `i` (waiting for it to serve).
async fn connect_member(ensemble: &Ensemble, i: usize) -> zk::Client {
    within_for(
        ENSEMBLE_WAIT,
        "connect to a member",
        zk::Client::connector().with_connection_timeout(ENSEMBLE_WAIT).connect(&ensemble.address(i)),
    )
    .await
    .expect("connect to a member")
}

/// Waits for member `i` to stop on a file it could not make durable: exit status
/// [`EXIT_REPLICA_FILE_FAILURE`] and a FATAL line naming `file` and EIO.
fn expect_member_stop_naming(ensemble: &mut Ensemble, i: usize, file: &str) {
    let Some(status) = ensemble.wait_exit(i, STOP_WAIT) else {
        panic!("member {} kept running although {file} could not be synced; log:\n{}", i + 1, ensemble.log(i))
    };
    let log = ensemble.log(i);
    assert_eq!(status.code(), Some(EXIT_REPLICA_FILE_FAILURE), "member {}'s exit status; log:\n{log}", i + 1);
    let line = log.lines().find(|l| l.contains("FATAL")).unwrap_or_else(|| panic!("no FATAL line:\n{log}"));
    println!("member {} stopped: {line}", i + 1);
    assert!(
        line.contains(file) && line.contains("Input/output error"),
        "the FATAL line must name {file}: {line}"
    );
}

/// After a sync, every member holds every write of `acked` on `/round`.
async fn assert_every_member_holds(ensemble: &Ensemble, acked: &Acked) {
    for member in 0..3 {
        let client = connect_member(ensemble, member).await;
        within("sync", client.sync("/round")).await.unwrap();
        let mut losses = Losses::default();
        losses.check(&client, "/round", acked.clone()).await;
        assert!(!losses.any(), "member {} lost acknowledged writes: {losses:?}", member + 1);
    }
}

/// Writes on `/round` through member `i` for a moment; what was acknowledged.
async fn write_for_a_moment(ensemble: &Ensemble, i: usize, rng: &mut Rng) -> Acked {
    let client = connect_member(ensemble, i).await;
    mk(&client, "/round", b"").await;
    let (writes, acked) = start_writes(&client, "/round");
    let delay = Duration::from_millis(100 + rng.below(FAULT_DELAY_MAX_MS));
    tokio::time::sleep(delay).await;
    acked.lock().unwrap().stop = true;
    within("writers to stop", writes).await.unwrap();
    take_acked(&acked, "writes stopped", delay, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_cannot_sync_its_epoch_stops_before_the_new_epoch_serves() {
    let mut rng = seeded_rng();
    let Some((mut disks, mut ensemble)) = Disk::ensemble(3, "") else { return };
    let leader = ensemble.wait_leader(ENSEMBLE_WAIT);
    let (faulty, survivor) = ((leader + 1) % 3, (leader + 2) % 3);
    let acked = write_for_a_moment(&ensemble, leader, &mut rng).await;
    let epoch_faults = [ACCEPTED_EPOCH, CURRENT_EPOCH].map(|name| Fault {
        op: FaultOp::Fsync,
        name_prefix: name.into(),
        errno: libc::EIO,
    });
    disks[faulty].fs.set_faults(Faults { failing: epoch_faults.to_vec(), capacity_bytes: None });
    // A new epoch needs the faulty member's vote: it must write acceptedEpoch first.
    ensemble.kill(leader);
    expect_member_stop_naming(&mut ensemble, faulty, ACCEPTED_EPOCH);
    let mode = ensemble.mode(survivor);
    assert!(
        !matches!(mode, Some(Mode::Leader | Mode::Follower)),
        "the survivor serves without a quorum: {mode:?}"
    );
    disks[faulty].fs.set_faults(Faults::default());
    disks[faulty].cut_power(false, &mut rng);
    ensemble.relaunch(faulty);
    ensemble.relaunch(leader);
    for member in 0..3 {
        ensemble.wait_serving(member, ENSEMBLE_WAIT);
    }
    assert_every_member_holds(&ensemble, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_cannot_record_a_snap_stops_and_is_sent_it_again_once_the_disk_works() {
    let mut rng = seeded_rng();
    // The leader keeps only 10 txns for DIFF: a follower that missed more is sent a SNAP.
    let Some((mut disks, mut ensemble)) = Disk::ensemble(3, "ringkeeper.zab.historyMax=10\n") else { return };
    let leader = ensemble.wait_leader(ENSEMBLE_WAIT);
    let follower = (leader + 1) % 3;
    ensemble.kill(follower);
    // More than the leader's 10 txns of history: the follower cannot be sent a DIFF.
    let client = connect_member(&ensemble, leader).await;
    mk(&client, "/round", b"").await;
    let mut acked = Acked::default();
    for n in 0..30 {
        let path = format!("/round/c{n:06}");
        let payload = create_payload(&path);
        within("create", client.create(&path, &payload, &open(zk::CreateMode::Persistent))).await.unwrap();
        acked.creates.push(path);
    }
    drop(client);
    disks[follower].fs.set_faults(failing(FaultOp::Fsync, INSTALL_MARKER, libc::EIO));
    ensemble.relaunch(follower);
    expect_member_stop_naming(&mut ensemble, follower, INSTALL_MARKER);
    disks[follower].fs.set_faults(Faults::default());
    disks[follower].cut_power(false, &mut rng);
    ensemble.restart(follower);
    let log = ensemble.log(follower);
    assert!(
        log.contains("from the leader: other snapshots and the whole log go"),
        "no SNAP after the restart:\n{log}"
    );
    assert_every_member_holds(&ensemble, &acked).await;
}

/// Whether a log segment in `data_dir` holds `bytes` (a LazyFs mount reads back what was
/// written, synced or not).
fn logged(data_dir: &Path, bytes: &[u8]) -> bool {
    std::fs::read_dir(data_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(SEGMENT_PREFIX))
        .any(|entry| std::fs::read(entry.path()).is_ok_and(|c| c.windows(bytes.len()).any(|w| w == bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_leader_that_cannot_record_its_trunc_stops_and_rejoins_once_the_disk_works() {
    let mut rng = seeded_rng();
    let Some((mut disks, mut ensemble)) = Disk::partitionable_ensemble(3, "") else { return };
    let leader = ensemble.wait_leader(ENSEMBLE_WAIT);
    let acked = write_for_a_moment(&ensemble, leader, &mut rng).await;
    // Cut off first, then asked to write: the old leader logs a proposal that no other member
    // ever sees, so on its return the new leader must tell it to cut it (a TRUNC).
    let client = connect_member(&ensemble, leader).await;
    ensemble.isolate(leader);
    const ORPHAN: &str = "/round/orphan";
    let orphan_write = tokio::spawn(async move {
        let create = client.create(ORPHAN, b"", &open(zk::CreateMode::Persistent));
        tokio::time::timeout(STOP_WAIT, create).await
    });
    let leader_data = disks[leader].path("data");
    poll_until(STOP_WAIT, "the isolated leader to log its last proposal", || {
        logged(&leader_data, ORPHAN.as_bytes())
    });
    poll_until(ENSEMBLE_WAIT, "the majority to elect a new leader", || {
        (0..3).any(|i| i != leader && ensemble.mode(i) == Some(Mode::Leader))
    });
    let new_leader = (0..3).find(|&i| i != leader && ensemble.mode(i) == Some(Mode::Leader)).unwrap();
    let majority = connect_member(&ensemble, new_leader).await;
    within("sync", majority.sync("/round")).await.unwrap();
    assert_eq!(
        stat_of(&majority, ORPHAN).await,
        None,
        "the majority has the isolated leader's last proposal"
    );
    disks[leader].fs.set_faults(failing(FaultOp::Fsync, TRUNCATE_MARKER, libc::EIO));
    ensemble.heal(leader);
    expect_member_stop_naming(&mut ensemble, leader, TRUNCATE_MARKER);
    if orphan_write.is_finished() {
        let answer = orphan_write.await.unwrap();
        assert!(!matches!(answer, Ok(Ok(_))), "the isolated leader acknowledged a write: {answer:?}");
    } else {
        orphan_write.abort();
    }
    disks[leader].fs.set_faults(Faults::default());
    disks[leader].cut_power(false, &mut rng);
    ensemble.restart(leader);
    let log = ensemble.log(leader);
    assert!(log.contains("cutting the transaction log after zxid"), "no TRUNC after the restart:\n{log}");
    assert!(!logged(&leader_data, ORPHAN.as_bytes()), "the old leader's log still holds the cut proposal");
    assert_every_member_holds(&ensemble, &acked).await;
}
