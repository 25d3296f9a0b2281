//! Power loss: acknowledged writes survive `kill -9` plus the loss of everything the server did
//! not fsync, on the [`LazyFs`] FUSE filesystem (data reaches the "disk" only on fsync; new
//! names only on fsync of their directory).
//!
//! - `lazyfs_keeps_only_what_was_synced`: the filesystem itself, through ordinary system calls
//!   (and an `O_DIRECT` write): synced data and names survive a power loss, the rest is gone.
//! - `acknowledged_writes_survive_power_loss`: a real client (zookeeper-client) creates nodes
//!   and sets data as fast as the server acknowledges; at a seeded random moment the server is
//!   SIGKILLed and the power cut; after a restart on what the backing directory kept, every
//!   acknowledged create is there and the node's version is at least the last acknowledged one.
//!   In a random half of the rounds the cut comes during write-back: part of the unsynced
//!   writes reach the disk, the last one torn, so recovery meets a torn log tail.
//!   Several rounds on one data directory (log segments of 1 MiB roll over, a small
//!   `snapCount` writes snapshots). The seed is printed; `RINGKEEPER_TEST_SEED` replays it.
//!   The same with `writeMode=fdatasync` and `writeMode=direct` (O_DIRECT, lone writes inline).
//! - `force_sync_no_loses_acknowledged_writes`: the self-check: the same scenario with
//!   `forceSync=no` (and no snapshots) must lose acknowledged writes, which shows the test
//!   above can fail. It does: thousands of acknowledged creates go missing, or (after a torn
//!   write-back that reached a later segment but not an earlier one) the server refuses to
//!   start on a log corrupt before its last segment, which counts as a loss as well.
//! - `session_resumes_after_power_loss`: a session acknowledged before the power loss (with the
//!   log in its own `dataLogDir`) resumes after it with its id and password: the session
//!   secret in dataDir was made durable (file and directory entry).
//!
//! - `ensemble_acknowledged_writes_survive_power_loss_of_every_member`: the same writes through
//!   a 3-member ensemble; every member is killed and loses power at once (torn or not); after
//!   a restart of all three (election from the surviving logs and epoch files) every
//!   acknowledged write is there.
//!
//! Skipped, with a message, where `/dev/fuse` is absent or the tests do not run as root, and
//! with `RINGKEEPER_TEST_TARGET=apache`: Apache 3.8 creates log files without an fsync of their
//! directory and does not sync its start-up snapshot, so after a POSIX power loss it refuses
//! to start ("No snapshot found, but there are log entries"); it relies on ext4's journal.

mod common;

use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::disk::{start_writes, take_acked, Disk, Losses};
use common::*;
use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::ConnectResponse;
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::TestServer;
use zookeeper_client as zk;

/// Kill/power-loss rounds of the survival test.
const ROUNDS: usize = 4;
/// The power is cut this long (at most) after a round's writes start.
const CUT_DELAY_MAX_MS: u64 = 600;
/// The same for the ensemble (whose first writes wait for peers' fsyncs too).
const ENSEMBLE_CUT_DELAY_MAX_MS: u64 = 1500;
/// Settings that make the log roll over and snapshots happen within a round.
const SERVER_CONFIG: &str = "ringkeeper.log.segmentBytes=1048576\nsnapCount=200\n";
/// The self-check's: no fsync of the log, and no snapshot (a snapshot that outlives the log
/// tail it covers makes the server refuse to start, which hides which writes were lost).
const NO_SYNC_CONFIG: &str = "ringkeeper.log.segmentBytes=1048576\nforceSync=no\n";

/// Bound for an ensemble to connect to, elect and serve again.
const ENSEMBLE_WAIT: Duration = Duration::from_secs(60);
/// `CreateMode` flags of an ephemeral node.
const EPHEMERAL: i32 = 1;

fn write_file(path: &Path, bytes: &[u8]) -> std::fs::File {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(bytes).unwrap();
    file
}

fn sync_dir(dir: &Path) {
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

#[test]
fn lazyfs_keeps_only_what_was_synced() {
    if Disk::no_fuse() {
        return;
    }
    let mut disk = Disk::mount_lazyfs();
    let root = disk.fs.path().to_path_buf();
    std::fs::create_dir(disk.path("sub")).unwrap();

    // Synced data under a synced name, then more data never synced.
    let mut kept = write_file(&disk.path("kept"), b"synced");
    kept.sync_data().unwrap();
    sync_dir(&root);
    kept.write_all(b" and lost").unwrap();
    drop(kept);
    // Name synced, data never synced: an empty file remains.
    drop(write_file(&disk.path("sub/empty"), b"never synced"));
    sync_dir(&disk.path("sub"));
    // Data synced, name never synced.
    write_file(&disk.path("sub/unnamed"), b"x").sync_all().unwrap();
    // The durable-replace recipe: temp file, fsync, rename, directory fsync.
    write_file(&disk.path("replaced"), b"old").sync_all().unwrap();
    sync_dir(&root);
    write_file(&disk.path("replaced.tmp"), b"new").sync_all().unwrap();
    std::fs::rename(disk.path("replaced.tmp"), disk.path("replaced")).unwrap();
    sync_dir(&root);
    // O_DIRECT (as glommio's DmaFile opens log segments): an aligned write, synced.
    let mut direct = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(disk.path("direct"))
        .expect("O_DIRECT open on the FUSE mount");
    let aligned = AlignedBlock::filled(7);
    direct.write_all(aligned.bytes()).unwrap();
    direct.sync_data().unwrap();
    sync_dir(&root);
    direct.rewind().unwrap();
    direct.write_all(AlignedBlock::filled(9).bytes()).unwrap();
    drop(direct);
    // Truncated and extended again before the fsync: the synced file holds zeros there.
    let regrown = write_file(&disk.path("regrown"), b"abcdef");
    regrown.sync_all().unwrap();
    regrown.set_len(2).unwrap();
    regrown.set_len(4).unwrap();
    regrown.sync_all().unwrap();
    drop(regrown);
    // A rename without the directory fsync is undone.
    write_file(&disk.path("moved"), b"m").sync_all().unwrap();
    sync_dir(&root);
    // (the last fsync of the root directory)
    std::fs::rename(disk.path("moved"), disk.path("moved.away")).unwrap();
    assert_eq!(std::fs::read(disk.path("kept")).unwrap(), b"synced and lost", "before the power loss");

    disk.fs.power_loss().expect("power loss (unmount and mount again)");

    assert_eq!(std::fs::read(disk.path("kept")).unwrap(), b"synced");
    assert!(!disk.path("sub/unnamed").exists(), "a name never made durable survived");
    assert_eq!(std::fs::read(disk.path("sub/empty")).unwrap(), b"");
    assert_eq!(std::fs::read(disk.path("regrown")).unwrap(), b"ab\0\0");
    assert_eq!(std::fs::read(disk.path("replaced")).unwrap(), b"new");
    assert!(!disk.path("replaced.tmp").exists());
    assert_eq!(std::fs::read(disk.path("moved")).unwrap(), b"m");
    assert!(!disk.path("moved.away").exists());
    let mut direct = Vec::new();
    std::fs::File::open(disk.path("direct")).unwrap().read_to_end(&mut direct).unwrap();
    assert_eq!(direct, AlignedBlock::filled(7).bytes());
    // The server maps snapshots into memory.
    let mapped = std::fs::File::open(disk.path("kept")).unwrap();
    // SAFETY: nothing writes the file while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&mapped) }.expect("mmap on the FUSE mount");
    assert_eq!(&map[..], b"synced");
}

/// One 4 KiB block at a 4 KiB-aligned address, for O_DIRECT.
#[repr(C, align(4096))]
struct AlignedBlock([u8; 4096]);

impl AlignedBlock {
    fn filled(byte: u8) -> Box<AlignedBlock> {
        Box::new(AlignedBlock([byte; 4096]))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Rounds of writes, kill -9 plus power loss at a random moment, restart, check.
async fn run_power_loss_rounds(config: &str, rounds: usize) -> Losses {
    run_power_loss_rounds_checking_log(config, rounds, |_| {}).await
}

/// [`run_power_loss_rounds`], with `check_log` called on the server's log after every start.
async fn run_power_loss_rounds_checking_log(config: &str, rounds: usize, check_log: impl Fn(&str)) -> Losses {
    let mut rng = seeded_rng();
    let Some(mut disk) = Disk::mount() else { return Losses::default() };
    let mut server = TestServer::start_with_data_dir(config, &disk.path("data"));
    let mut losses = Losses::default();
    for round in 0..rounds {
        let round_path = format!("/round{round}");
        let client = connect(&server).await;
        mk(&client, &round_path, b"").await;
        let (writes, acked) = start_writes(&client, &round_path);
        let delay = Duration::from_millis(50 + rng.below(CUT_DELAY_MAX_MS));
        tokio::time::sleep(delay).await;
        server.kill();
        let torn = rng.below(2) == 1;
        disk.cut_power(torn, &mut rng);
        within("writers to stop", writes).await.unwrap();
        drop(client);
        let acked = take_acked(&acked, &format!("round {round}: cut"), delay, torn);
        if let Err(error) = server.try_restart() {
            let cause = error.lines().rfind(|line| line.starts_with("Error:")).unwrap_or(&error).to_string();
            losses.refused_start = Some(cause);
            break;
        }
        let restart_log = server.log();
        check_log(&restart_log);
        if let Some(cut) = restart_log.lines().find(|line| line.contains("torn record at offset")) {
            println!("round {round}: recovery {}", &cut[cut.find("torn").unwrap_or(0)..]);
        }
        let client = connect(&server).await;
        losses.check(&client, &round_path, acked).await;
    }
    losses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_loss() {
    let started = Instant::now();
    let losses = run_power_loss_rounds(SERVER_CONFIG, ROUNDS).await;
    println!("{} acknowledged writes checked in {:?}", losses.acknowledged, started.elapsed());
    assert!(!losses.any(), "acknowledged writes lost after power loss: {losses:?}");
}

/// The same with the log written through the page cache and synced by fdatasync (the default,
/// `dsync`, is covered above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_loss_with_fdatasync_write_mode() {
    let config = format!("{SERVER_CONFIG}ringkeeper.log.writeMode=fdatasync\n");
    let losses = run_power_loss_rounds(&config, ROUNDS).await;
    assert!(!losses.any(), "acknowledged writes lost after power loss (writeMode=fdatasync): {losses:?}");
}

/// The same with the log written by O_DIRECT, then fdatasync (group commits through io_uring,
/// a lone writer's record by a blocking write from an aligned buffer); the log must show that
/// the segments really were opened O_DIRECT (LazyFS takes O_DIRECT) and not the fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_loss_with_direct_write_mode() {
    let config = format!("{SERVER_CONFIG}ringkeeper.log.writeMode=direct\n");
    let losses = run_power_loss_rounds_checking_log(&config, ROUNDS, |log| {
        assert!(!log.contains("cannot open with O_DIRECT"), "the log fell back from O_DIRECT:\n{log}");
    })
    .await;
    assert!(!losses.any(), "acknowledged writes lost after power loss (writeMode=direct): {losses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_sync_no_loses_acknowledged_writes() {
    if Disk::unavailable() {
        return;
    }
    let losses = run_power_loss_rounds(NO_SYNC_CONFIG, 2).await;
    println!(
        "forceSync=no lost {} of {} acknowledged creates; set versions behind: {:?}; refused start: {:?}",
        losses.missing_creates.len(),
        losses.acknowledged,
        losses.older_versions,
        losses.refused_start
    );
    assert!(
        losses.any(),
        "forceSync=no lost no acknowledged write: the power-loss test could not tell fsync from none"
    );
}

#[test]
fn session_resumes_after_power_loss() {
    let Some(mut disk) = Disk::mount() else { return };
    // The log apart from dataDir: the log's directory fsyncs then make nothing of dataDir
    // durable, and the session secret must be made durable on its own.
    let config = format!("dataLogDir={}\n", disk.path("log").display());
    let mut server = TestServer::start_with_data_dir(&config, &disk.path("data"));
    let mut session = RawSession::connect(&server, 30_000);
    assert_eq!(session.code(OpCode::Create, &create_request("/owned", EPHEMERAL)), 0, "acknowledged create");
    let resume = session.resume_request();
    drop(session);
    server.kill();
    disk.fs.power_loss().expect("power loss (unmount and mount again)");
    server.restart();

    let (_stream, answer) = raw_handshake(&server, &resume);
    let Frame::Data(bytes) = answer else {
        panic!("the server closed the resumed connection without an answer")
    };
    let response = ConnectResponse::from_bytes(&bytes).expect("decode ConnectResponse");
    assert_eq!(
        response.session_id, resume.session_id,
        "a session acknowledged before the power loss is refused after it (was the session secret durable?): {response:?}"
    );
    assert_eq!(response.passwd, resume.passwd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_acknowledged_writes_survive_power_loss_of_every_member() {
    let mut rng = seeded_rng();
    let Some((mut disks, mut ensemble)) = Disk::ensemble(3, "") else { return };
    let connect_string = ensemble.connect_string();
    let connect_ensemble = || {
        within_for(
            ENSEMBLE_WAIT,
            "connect to the ensemble",
            zk::Client::connector().with_connection_timeout(ENSEMBLE_WAIT).connect(&connect_string),
        )
    };
    let client = connect_ensemble().await.expect("connect to the ensemble");
    mk(&client, "/round", b"").await;
    let (writes, acked) = start_writes(&client, "/round");
    let delay = Duration::from_millis(200 + rng.below(ENSEMBLE_CUT_DELAY_MAX_MS));
    tokio::time::sleep(delay).await;
    for member in 0..disks.len() {
        ensemble.kill(member);
    }
    let torn = rng.below(2) == 1;
    for disk in &mut disks {
        disk.cut_power(torn, &mut rng);
    }
    within_for(ENSEMBLE_WAIT, "writers to stop", writes).await.unwrap();
    drop(client);
    let acked = take_acked(&acked, "cut every member", delay, torn);
    for member in 0..disks.len() {
        ensemble.relaunch(member);
    }
    for member in 0..disks.len() {
        ensemble.wait_serving(member, ENSEMBLE_WAIT);
    }
    let client = connect_ensemble().await.expect("connect to the ensemble after the power loss");
    let mut losses = Losses::default();
    losses.check(&client, "/round", acked).await;
    assert!(!losses.any(), "acknowledged writes lost after every member lost power: {losses:?}");
}
