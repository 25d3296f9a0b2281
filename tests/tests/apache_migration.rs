//! Moving between Apache ZooKeeper 3.8 and ringkeeper through their files, with the real
//! Apache server (Debian's jar) and a real client (kazoo, `tests/compat/apache_migration.py`):
//!
//! - Apache serves a workload of every node kind with a small `snapCount` (several snapshots
//!   and log files), keeps a session with ephemerals open, and is killed with SIGKILL;
//!   `ringkeeper import-zk` turns its dataDir into ours; ringkeeper then serves the same tree,
//!   node by node: data, every Stat field, ACL, children, and the same last zxid, and the
//!   open session resumes (same id, its ephemerals); null data stays null, apart from empty.
//!   Then `ringkeeper export-zk` writes it back, Apache starts from that, serves it again and
//!   the session resumes there too.
//! - The same for a 3-member Apache ensemble moved member by member to a 3-member ringkeeper
//!   ensemble and back, compared on every member; the epoch files go with the data (Apache's
//!   `version-2/acceptedEpoch` and `currentEpoch` imported, ringkeeper's exported there), and
//!   Apache's next epoch is past every epoch ringkeeper accepted.
//! - Damaged Apache files are refused naming the file and byte offset; a damaged newest
//!   snapshot is skipped (with a warning naming it) when the logs cover it.
//! - ringkeeper refuses to start on a dataDir (or dataLogDir) holding only Apache's files, and `snap-verify` /
//!   `log-verify` on one fail, each naming the import command.
//!
//! Requirements (installed by `.ci/run`): Java and Debian's `zookeeper`, `python3` with kazoo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::{ringkeeper_binary, wait_exit, workspace_root, Target, TestServer};

/// Apache with snapshots every ~10-20 txns, and TTL nodes allowed.
const APACHE_CONFIG: &str = "snapCount=20\nextendedTypesEnabled=true\n";
/// ringkeeper serving imported data (TTL nodes allowed, as Apache's).
const RINGKEEPER_CONFIG: &str = "extendedTypesEnabled=true\n";
/// Bound on one script or tool run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn script() -> PathBuf {
    workspace_root().join("tests").join("compat").join("apache_migration.py")
}

fn python(hosts: &str, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(script())
        .arg(hosts)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    c
}

/// Every znode the server at `hosts` serves, as one JSON line each, sorted by path.
fn dump(hosts: &str) -> Vec<String> {
    let out = python(hosts, &["dump"]).output().expect("run apache_migration.py dump (python3 with kazoo)");
    assert!(out.status.success(), "dump of {hosts} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

fn assert_same_tree(expected: &[String], actual: &[String], what: &str) {
    for (e, a) in expected.iter().zip(actual) {
        assert_eq!(e, a, "{what}: first differing znode");
    }
    assert_eq!(expected.len(), actual.len(), "{what}: node count differs");
}

/// The `Zxid:` line of `srvr` (the server's last zxid).
fn last_zxid(server: &TestServer) -> String {
    let srvr = server.four_letter("srvr");
    srvr.lines()
        .find(|l| l.starts_with("Zxid:"))
        .unwrap_or_else(|| panic!("no Zxid in srvr: {srvr}"))
        .to_string()
}

/// Runs `ringkeeper ARGS...` to completion.
fn ringkeeper(args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(ringkeeper_binary()).args(args).env("RUST_BACKTRACE", "0").output().unwrap();
    eprintln!(
        "ringkeeper {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn import(from: &Path, to: &Path) -> Output {
    ringkeeper(&["import-zk".as_ref(), "--from".as_ref(), from.as_os_str(), "--to".as_ref(), to.as_os_str()])
}

fn export(from: &Path, to: &Path) -> Output {
    ringkeeper(&["export-zk".as_ref(), "--from".as_ref(), from.as_os_str(), "--to".as_ref(), to.as_os_str()])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Apache's files of one kind in `dir/version-2`, oldest first.
fn apache_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("version-2"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.to_owned();
            Some((u64::from_str_radix(name.strip_prefix(prefix)?, 16).ok()?, path))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Apache after the workload, killed with SIGKILL while the workload's session (with its
/// ephemerals) is still open: the server (for its dataDir), its tree and its last zxid.
struct KilledApache {
    server: TestServer,
    tree: Vec<String>,
    zxid: String,
    /// The workload's open session: id and password (hex), as Apache issued them.
    session: (String, String),
}

/// Runs the workload against `hosts` until it reports ready (its session then stays open
/// until the returned process is killed); `dir` holds its ready file and output.
fn start_workload(hosts: &str, dir: &Path) -> (Child, (String, String)) {
    let ready = dir.join("workload.ready");
    let output = dir.join("workload.out");
    let log = std::fs::File::create(&output).unwrap();
    let mut workload = python(hosts, &["workload", ready.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run apache_migration.py workload (python3 with kazoo)");
    let started = Instant::now();
    while !ready.exists() {
        if let Ok(Some(status)) = workload.try_wait() {
            panic!(
                "workload exited with {status}:\n{}",
                std::fs::read_to_string(&output).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < RUN_LIMIT, "workload did not finish within {RUN_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&ready).unwrap();
    let (id, password) = text.trim().split_once(' ').expect("ready file: session id and password");
    (workload, (id.to_string(), password.to_string()))
}

/// Reconnects to the workload's session through `hosts` and checks that it is the same
/// session, still owning its ephemeral (then drops the connection without closing it).
fn assert_session_resumes(hosts: &str, session: &(String, String), what: &str) {
    let mut child = python(hosts, &["resume", &session.0, &session.1])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run apache_migration.py resume");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let reader = std::thread::spawn(move || {
        std::io::BufRead::read_line(&mut stdout, &mut line).ok();
        line
    });
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = reader.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).ok();
    assert!(line.starts_with("resumed"), "{what}: the session did not resume: {line:?}\n{err}");
}

fn stop_workload(mut workload: Child) {
    let _ = workload.kill();
    let _ = workload.wait();
}

/// Checks what the workload leaves in an Apache dataDir and tree.
fn assert_workload_shape(data: &Path, tree: &[String]) {
    let (snapshots, logs) = (apache_files(data, "snapshot."), apache_files(data, "log."));
    assert!(
        snapshots.len() >= 3 && logs.len() >= 3,
        "the workload should roll snapshots and logs: {snapshots:?} {logs:?}"
    );
    assert!(tree.iter().any(|l| l.contains("\"path\": \"/app/live\"")), "the live ephemeral is in the tree");
    for path in ["/null", "/late-null", "/multi/null"] {
        let line = format!("\"path\": \"{path}\"");
        assert!(
            tree.iter().any(|l| l.contains(&line) && l.contains("\"data\": null")),
            "{path} holds null data"
        );
    }
    assert!(
        tree.iter().any(|l| l.contains("\"path\": \"/empty\"") && l.contains("\"data\": \"\"")),
        "/empty holds empty data, not null"
    );
}

fn apache_after_workload() -> KilledApache {
    let mut server = TestServer::start_as(Target::Apache, APACHE_CONFIG, None);
    let (workload, session) = start_workload(&server.connect_string(), server.dir.path());
    let tree = dump(&server.connect_string());
    let zxid = last_zxid(&server);
    server.kill();
    stop_workload(workload);
    assert_workload_shape(&server.data_dir(), &tree);
    KilledApache { server, tree, zxid, session }
}

#[test]
fn apache_data_moves_to_ringkeeper_and_back_node_by_node_and_stat_by_stat() {
    let apache = apache_after_workload();
    let work = tempfile::tempdir().unwrap();

    // Apache -> ringkeeper, with Apache's logs in a dataLogDir of their own (`--from-log-dir`).
    let (snap_dir, log_dir) = (work.path().join("apache-data"), work.path().join("apache-logs"));
    for dir in [&snap_dir, &log_dir] {
        std::fs::create_dir_all(dir.join("version-2")).unwrap();
    }
    let data = apache.server.data_dir();
    for (prefix, dir) in [("snapshot.", &snap_dir), ("log.", &log_dir)] {
        for file in apache_files(&data, prefix) {
            std::fs::copy(&file, dir.join("version-2").join(file.file_name().unwrap())).unwrap();
        }
    }
    let ours = work.path().join("ringkeeper-data");
    let out = ringkeeper(&[
        "import-zk".as_ref(),
        "--from".as_ref(),
        snap_dir.as_os_str(),
        "--from-log-dir".as_ref(),
        log_dir.as_os_str(),
        "--to".as_ref(),
        ours.as_os_str(),
    ]);
    assert!(out.status.success(), "import failed: {}", stderr(&out));
    let mut rk = TestServer::start_as(Target::Ringkeeper, RINGKEEPER_CONFIG, Some(ours.clone()));
    assert_eq!(last_zxid(&rk), apache.zxid, "ringkeeper resumes at Apache's last zxid");
    assert_same_tree(&apache.tree, &dump(&rk.connect_string()), "ringkeeper after import-zk vs Apache");
    assert_session_resumes(&rk.connect_string(), &apache.session, "Apache's open session on ringkeeper");
    assert_eq!(rk.stop_with_signal("TERM", Duration::from_secs(20)).map(|s| s.success()), Some(true));

    // ringkeeper -> Apache.
    let back = work.path().join("apache-again");
    let out = ringkeeper(&[
        "export-zk".as_ref(),
        "--from".as_ref(),
        ours.as_os_str(),
        "--to".as_ref(),
        back.as_os_str(),
    ]);
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    assert_eq!(apache_files(&back, "snapshot.").len(), 1);
    let again = TestServer::start_as(Target::Apache, APACHE_CONFIG, Some(back));
    assert_same_tree(
        &apache.tree,
        &dump(&again.connect_string()),
        "Apache after export-zk vs the original Apache",
    );
    assert_session_resumes(&again.connect_string(), &apache.session, "Apache's open session, back on Apache");
}

/// Flips one byte of `path` at `offset`.
fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_apache_files_are_refused_naming_file_and_offset() {
    let apache = apache_after_workload();
    let data = apache.server.data_dir();
    let work = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let dir = work.path().join(name);
        let status = Command::new("cp").arg("-a").arg(&data).arg(&dir).status().unwrap();
        assert!(status.success());
        dir
    };

    // A flipped byte inside the first record of the newest log: its Adler32 fails.
    let dir = copy("bad-log");
    let newest_log = apache_files(&dir, "log.").pop().unwrap();
    flip(&newest_log, 16 + 12 + 4);
    let out = import(&dir, &work.path().join("from-bad-log"));
    assert!(!out.status.success(), "a damaged log must be refused");
    let expected = format!("{}: offset 16: record checksum (Adler32) mismatch", newest_log.display());
    assert!(stderr(&out).contains(&expected), "expected {expected:?} in:\n{}", stderr(&out));

    // A damaged newest snapshot is skipped, named, when the logs hold everything after an
    // older one; the import still yields Apache's tree.
    let dir = copy("bad-newest-snapshot");
    let snapshots = apache_files(&dir, "snapshot.");
    let newest = snapshots.last().unwrap().clone();
    flip(&newest, std::fs::metadata(&newest).unwrap().len() / 2);
    let ours = work.path().join("from-bad-newest-snapshot");
    let out = import(&dir, &ours);
    assert!(out.status.success(), "an older snapshot and the logs stand in: {}", stderr(&out));
    let skipped = format!("skipping Apache snapshot {}: offset ", newest.display());
    assert!(stderr(&out).contains(&skipped), "expected {skipped:?} in:\n{}", stderr(&out));
    let rk = TestServer::start_as(Target::Ringkeeper, RINGKEEPER_CONFIG, Some(ours));
    assert_same_tree(&apache.tree, &dump(&rk.connect_string()), "import over a damaged newest snapshot");
    drop(rk);

    // Every snapshot damaged: refused, naming the newest one and where its check failed.
    let dir = copy("bad-snapshots");
    let snapshots = apache_files(&dir, "snapshot.");
    for snapshot in &snapshots {
        flip(snapshot, 0);
    }
    let out = import(&dir, &work.path().join("from-bad-snapshots"));
    assert!(!out.status.success(), "damaged snapshots must be refused");
    let expected = format!("{}: offset 0: bad magic", snapshots.last().unwrap().display());
    assert!(stderr(&out).contains(&expected), "expected {expected:?} in:\n{}", stderr(&out));

    // A log file missing between the snapshot used and the end: the gap is named.
    let dir = copy("missing-log");
    let logs = apache_files(&dir, "log.");
    std::fs::remove_file(&logs[logs.len() - 2]).unwrap();
    for snapshot in apache_files(&dir, "snapshot.").iter().rev().take(3) {
        std::fs::remove_file(snapshot).unwrap();
    }
    let out = import(&dir, &work.path().join("from-missing-log"));
    assert!(!out.status.success(), "a gap in the logs must be refused");
    assert!(stderr(&out).contains("the txns between them are missing"), "{}", stderr(&out));
}

#[test]
fn ringkeeper_refuses_apache_files_at_start_and_in_its_verify_tools() {
    // Apache writes snapshot.0 and log files on its first start and first writes.
    let mut apache = TestServer::start_as(Target::Apache, APACHE_CONFIG, None);
    apache.kill();
    let data = apache.data_dir();
    assert!(!apache_files(&data, "snapshot.").is_empty(), "Apache wrote no snapshot.0");

    for data_dir in [data.clone(), data.join("version-2")] {
        let cfg = apache.dir.path().join("ringkeeper.cfg");
        std::fs::write(
            &cfg,
            format!("dataDir={}\nclientPort=1\nclientPortAddress=127.0.0.1\n", data_dir.display()),
        )
        .unwrap();
        let mut child = Command::new(ringkeeper_binary())
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(30));
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.is_some_and(|s| !s.success()), "ringkeeper must not start on Apache's files: {err}");
        assert!(err.contains("ringkeeper import-zk --from"), "the refusal names the import command: {err}");
        assert!(!data_dir.join("session.secret").exists(), "nothing written beside Apache's files");
    }
    let snapshot = apache_files(&data, "snapshot.").remove(0);
    // Apache's files in the dataLogDir only: refused the same way.
    let empty = apache.dir.path().join("fresh-data");
    let cfg = apache.dir.path().join("ringkeeper-logdir.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\ndataLogDir={}\nclientPort=1\nclientPortAddress=127.0.0.1\n",
            empty.display(),
            data.display()
        ),
    )
    .unwrap();
    let out = ringkeeper(&[cfg.as_os_str()]);
    assert!(
        !out.status.success() && stderr(&out).contains("ringkeeper import-zk --from"),
        "{}",
        stderr(&out)
    );

    for (tool, path) in [("snap-verify", &data), ("log-verify", &data), ("snap-verify", &snapshot)] {
        let out = ringkeeper(&[tool.as_ref(), path.as_os_str()]);
        assert!(!out.status.success(), "{tool} {path:?} must fail");
        assert!(stderr(&out).contains("import-zk"), "{tool} names the import command: {}", stderr(&out));
    }
}

/// A member's tree without `/zookeeper/config`: each Apache member writes that node itself at
/// start (from its own dynamic config, with its own mtime), so Apache's members differ there
/// among themselves; reconfig is not part of this move.
fn replicated_tree(hosts: &str) -> Vec<String> {
    dump(hosts).into_iter().filter(|line| !line.contains("\"path\": \"/zookeeper/config\"")).collect()
}

#[test]
fn apache_ensemble_moves_to_a_ringkeeper_ensemble_and_back() {
    let work = tempfile::tempdir().unwrap();
    let dirs =
        |name: &str| -> Vec<PathBuf> { (1..=3).map(|i| work.path().join(format!("{name}-{i}"))).collect() };
    let apache_dirs = dirs("apache");
    let mut apache = Ensemble::start_as_with_data_dirs(Target::Apache, &apache_dirs, APACHE_CONFIG);
    let (workload, session) = start_workload(&apache.connect_string(), work.path());
    let tree = replicated_tree(&apache.address(0));
    for i in 1..3 {
        assert_same_tree(&tree, &replicated_tree(&apache.address(i)), &format!("Apache member {}", i + 1));
    }
    for i in 0..3 {
        apache.kill(i);
    }
    stop_workload(workload);
    assert_workload_shape(&apache_dirs[0], &tree);
    // Apache keeps its epoch files beside its snapshots, in version-2/.
    let apache_epochs: Vec<[u32; 2]> =
        apache_dirs.iter().map(|dir| epoch_files(&dir.join("version-2"), "Apache's version-2/")).collect();

    // Each member's own files, imported: a member that missed the last commits catches up
    // from the new leader as usual.
    let ours = dirs("ringkeeper");
    for (from, to) in apache_dirs.iter().zip(&ours) {
        let out = import(from, to);
        assert!(out.status.success(), "import of {from:?} failed: {}", stderr(&out));
    }
    for (i, dir) in ours.iter().enumerate() {
        assert_eq!(epoch_files(dir, "the import"), apache_epochs[i], "member {}: the imported epochs", i + 1);
    }
    let mut rk = Ensemble::start_as_with_data_dirs(Target::Ringkeeper, &ours, RINGKEEPER_CONFIG);
    for i in 0..3 {
        assert_same_tree(
            &tree,
            &replicated_tree(&rk.address(i)),
            &format!("ringkeeper member {} after import", i + 1),
        );
    }
    for i in 0..3 {
        assert_session_resumes(
            &rk.address(i),
            &session,
            &format!("Apache's open session on ringkeeper member {}", i + 1),
        );
    }
    for i in 0..3 {
        assert_eq!(rk.stop_with_signal(i, "TERM", Duration::from_secs(20)).map(|s| s.success()), Some(true));
    }

    let ours_epochs: Vec<[u32; 2]> =
        ours.iter().map(|dir| epoch_files(dir, "ringkeeper's dataDir")).collect();
    let back = dirs("apache-again");
    for (i, (from, to)) in ours.iter().zip(&back).enumerate() {
        let out = export(from, to);
        assert!(out.status.success(), "export of {from:?} failed: {}", stderr(&out));
        let exported = epoch_files(&to.join("version-2"), "the export's version-2/");
        assert_eq!(exported, ours_epochs[i], "member {}: the exported epochs", i + 1);
    }
    let again = Ensemble::start_as_with_data_dirs(Target::Apache, &back, APACHE_CONFIG);
    for i in 0..3 {
        assert_same_tree(
            &tree,
            &replicated_tree(&again.address(i)),
            &format!("Apache member {} after export", i + 1),
        );
    }
    // Apache read the exported epochs: its new epoch is past the epochs ringkeeper accepted
    // (without them it would start from the epoch of the snapshot's last zxid, which
    // ringkeeper's elections moved past without writing).
    let out = python(&again.connect_string(), &["create", "/after-export"]).output().expect("run create");
    assert!(out.status.success(), "create failed: {}", String::from_utf8_lossy(&out.stderr));
    let czxid = String::from_utf8(out.stdout).unwrap();
    let czxid = i64::from_str_radix(czxid.trim().trim_start_matches("0x"), 16).expect("a hex czxid");
    // (A quorum's largest accepted epoch + 1; each member accepted at least the smallest.)
    let accepted = ours_epochs.iter().map(|[accepted, _]| *accepted).min().unwrap();
    assert!(
        (czxid >> 32) as u32 > accepted,
        "Apache wrote {czxid:#x} in an epoch not past ringkeeper's accepted epoch {accepted}"
    );
}

/// The `acceptedEpoch` and `currentEpoch` files in `dir`, read as Apache writes them (a
/// decimal number, maybe a newline).
fn epoch_files(dir: &Path, what: &str) -> [u32; 2] {
    ["acceptedEpoch", "currentEpoch"].map(|name| {
        let path = dir.join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
        text.trim().parse().unwrap_or_else(|e| panic!("{what}: {}: {text:?}: {e}", path.display()))
    })
}
