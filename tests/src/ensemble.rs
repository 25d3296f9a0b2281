//! Harness for ensembles of real server processes on 127.0.0.1: N voters (+ observers) from
//! one `zoo.cfg` (`server.N=127.0.0.1:peerPort:electionPort[:observer];clientPort`), each with
//! its own dataDir and `myid`, exactly as an Apache ensemble is laid out. The target is
//! ringkeeper, or Apache ZooKeeper's QuorumPeerMain with `RINGKEEPER_TEST_TARGET=apache`.
//!
//! Every process is killed when the [`Ensemble`] drops; its directories are removed unless
//! the test is failing or `RINGKEEPER_KEEP_ENSEMBLE=1` (then the path is printed). Waits are
//! bounded.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::four_letter::{settled_leader, Mode};
use crate::process::ServerChild;
use crate::proxy::ProxyMesh;
use crate::{
    apache_command_with, four_letter_at, free_port, ringkeeper_binary, server_line, Target,
    APACHE_QUORUM_MAIN,
};

/// ringkeeper's fast failover, set explicitly: without it an ensemble detects a silent peer
/// after tickTime x syncLimit (10 s here), as Apache does; Apache ignores the key.
const FAST_FAILOVER: &str = "ringkeeper.zab.peerTimeoutMs=800\n";

/// One member of an ensemble.
pub struct Member {
    pub id: u64,
    pub client_port: u16,
    /// The port it accepts peer (quorum) connections on (its own, never a proxy's).
    pub peer_port: u16,
    pub dir: PathBuf,
    process: ServerChild,
}

/// A running ensemble.
pub struct Ensemble {
    pub target: Target,
    /// What each member runs (all `target`, except in [`Ensemble::start_mixed`]).
    targets: Vec<Target>,
    pub members: Vec<Member>,
    /// With [`Ensemble::start_partitionable`]: the proxies between every two members.
    mesh: Option<ProxyMesh>,
    /// Every member's directory (config, dataDir, `server.log`); removed on drop unless the
    /// test is failing or `RINGKEEPER_KEEP_ENSEMBLE=1` (the path is printed then).
    root: Option<tempfile::TempDir>,
}

/// The members an [`Ensemble`] start sets up: `targets.len()` of them; the first `voters` vote,
/// the rest up to `started` observe, and those after `started` are spares (set up, not
/// started). `extra` lines go to every zoo.cfg; `proxied` puts test-controlled proxies between
/// members; `data_dirs` replaces the members' own dataDirs.
#[derive(Clone, Copy)]
struct Layout<'a> {
    targets: &'a [Target],
    voters: usize,
    started: usize,
    extra: &'a str,
    proxied: bool,
    data_dirs: Option<&'a [PathBuf]>,
}

impl Ensemble {
    /// Starts `voters` participants and `observers` observers; `extra` lines go to every
    /// zoo.cfg. Returns once every member serves.
    pub fn start(voters: usize, observers: usize, extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), voters, observers, extra, false, None, 0)
    }

    /// Like [`Ensemble::start`] with `voters` participants, plus `spares` members that are
    /// set up but neither started nor listed in the others' zoo.cfg: each spare's zoo.cfg lists
    /// the voters and itself (as a server joining by dynamic reconfig is configured). Start
    /// one with [`Ensemble::start_member`]; its `server.N` line is [`Ensemble::server_line`].
    pub fn start_with_spares(voters: usize, spares: usize, extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), voters, 0, extra, false, None, spares)
    }

    /// Like [`Ensemble::start`] with `data_dirs.len()` voters whose dataDirs are `data_dirs`
    /// (e.g. on [`crate::lazyfs::LazyFs`] mounts; `myid` is written there durably).
    pub fn start_with_data_dirs(data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), data_dirs.len(), 0, extra, false, Some(data_dirs), 0)
    }

    /// Like [`Ensemble::start_with_data_dirs`] with `target` whatever `RINGKEEPER_TEST_TARGET`
    /// says (tests that move data between Apache and ringkeeper ensembles).
    pub fn start_as_with_data_dirs(target: Target, data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        Self::start_inner(target, data_dirs.len(), 0, extra, false, Some(data_dirs), 0)
    }

    /// A mixed ensemble: member `i` runs `targets[i]`, the first `voters` vote, the rest
    /// observe. ringkeeper members get `ringkeeper.quorum.protocol=apache` (they join the
    /// Apache members with Apache's protocol). Returns once every member serves.
    pub fn start_mixed(targets: &[Target], voters: usize, extra: &str) -> Ensemble {
        Self::start_inner_with(Layout {
            targets,
            voters,
            started: targets.len(),
            extra,
            proxied: false,
            data_dirs: None,
        })
    }

    /// Like [`Ensemble::start`], but every member reaches every other member's peer and
    /// election ports through proxies the test controls (each member's zoo.cfg names the
    /// proxies as its peers' addresses), so [`Ensemble::isolate`], [`Ensemble::partition`]
    /// and [`Ensemble::cut`] can partition it. Works for Apache too: its election initial
    /// message is rewritten to name the proxy leading back (see [`crate::proxy`]).
    pub fn start_partitionable(voters: usize, extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), voters, 0, extra, true, None, 0)
    }

    /// [`Ensemble::start_partitionable`] with `data_dirs.len()` voters whose dataDirs are
    /// `data_dirs` (as [`Ensemble::start_with_data_dirs`]).
    pub fn start_partitionable_with_data_dirs(data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), data_dirs.len(), 0, extra, true, Some(data_dirs), 0)
    }

    fn start_inner(
        target: Target,
        voters: usize,
        observers: usize,
        extra: &str,
        proxied: bool,
        data_dirs: Option<&[PathBuf]>,
        spares: usize,
    ) -> Ensemble {
        let started = voters + observers;
        let targets = vec![target; started + spares];
        Self::start_inner_with(Layout { targets: &targets, voters, started, extra, proxied, data_dirs })
    }

    /// Sets up the members `layout` describes and starts those it says to. A member that
    /// stops at start because one of its ports is taken (by a process outside the port claims
    /// of [`free_port`], seen a few times in CI) makes the whole start again on new ports.
    fn start_inner_with(layout: Layout) -> Ensemble {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            match Self::try_start(layout) {
                Ok(ensemble) => return ensemble,
                Err(failure) if attempt < ATTEMPTS && failure.contains("Address already in use") => {
                    eprintln!("a port was taken at start (attempt {attempt}), starting again on new ports:\n{failure}");
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// One attempt of [`Ensemble::start_inner_with`]: Err says which member did not serve and why.
    fn try_start(layout: Layout) -> Result<Ensemble, String> {
        let Layout { targets, voters, started, extra, proxied, data_dirs } = layout;
        let root = tempfile::tempdir().unwrap();
        let total = targets.len();
        let mixed = targets.iter().any(|t| *t != targets[0]);
        let ports: Vec<(u16, u16, u16)> =
            (0..total).map(|_| (free_port(), free_port(), free_port())).collect();
        let mesh =
            proxied.then(|| ProxyMesh::start(&ports.iter().map(|&(_, p, e)| (p, e)).collect::<Vec<_>>()));
        let servers_seen_by = |me: usize| {
            let mut servers = String::new();
            for (j, (client, peer, election)) in ports.iter().enumerate() {
                if j >= started && j != me {
                    continue;
                }
                let role = if (voters..started).contains(&j) { ":observer" } else { "" };
                let (peer, election) =
                    mesh.as_ref().and_then(|mesh| mesh.route(me, j)).unwrap_or((*peer, *election));
                servers.push_str(&server_line(j as u64 + 1, peer, election, role, *client));
            }
            servers
        };
        let mut members = Vec::new();
        for (i, &(client, peer_port, _)) in ports.iter().enumerate() {
            let servers = servers_seen_by(i);
            let id = i as u64 + 1;
            let dir = root.path().join(format!("s{id}"));
            let data_dir = data_dirs.map_or_else(|| dir.join("data"), |dirs| dirs[i].clone());
            std::fs::create_dir_all(&dir).unwrap();
            write_durably(&data_dir, "myid", format!("{id}\n").as_bytes());
            let observer = if (voters..started).contains(&i) { "peerType=observer\n" } else { "" };
            let protocol = if mixed && targets[i] == Target::Ringkeeper {
                "ringkeeper.quorum.protocol=apache\n"
            } else {
                ""
            };
            let cfg = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\n{FAST_FAILOVER}{observer}{protocol}{servers}{extra}\n",
                data_dir.display()
            );
            std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
            let process = ServerChild::new(dir.join("server.log"));
            members.push(Member { id, client_port: client, peer_port, dir, process });
        }
        let target = targets[0];
        let mut ensemble = Ensemble { target, targets: targets.to_vec(), members, mesh, root: Some(root) };
        for i in 0..started {
            ensemble.launch(i);
        }
        for i in 0..started {
            ensemble.try_wait_serving(i, Duration::from_secs(60))?;
        }
        Ok(ensemble)
    }

    /// Starts member `i` (a spare of [`Ensemble::start_with_spares`]) and waits until it serves.
    pub fn start_member(&mut self, i: usize) {
        self.launch(i);
        self.wait_serving(i, Duration::from_secs(60));
    }

    /// Member `i`'s `server.N=127.0.0.1:peer:election:participant;127.0.0.1:client` line: from
    /// its zoo.cfg, or once the server rewrote it (reconfigEnabled), from the dynamic file it
    /// names or the original kept as zoo.cfg.bak (a joiner's own line is in neither of the
    /// first two until the reconfig adding it commits).
    pub fn server_line(&self, i: usize) -> String {
        let m = &self.members[i];
        let mut config = std::fs::read_to_string(m.dir.join("zoo.cfg")).unwrap_or_default();
        let dynamic = config.lines().find_map(|l| l.strip_prefix("dynamicConfigFile=")).map(str::to_string);
        if let Some(dynamic) = dynamic {
            config.push('\n');
            config.push_str(&std::fs::read_to_string(dynamic.trim()).unwrap_or_default());
        }
        config.push('\n');
        config.push_str(&std::fs::read_to_string(m.dir.join("zoo.cfg.bak")).unwrap_or_default());
        let prefix = format!("server.{}=", m.id);
        let value = config
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in member {i}'s zoo.cfg"));
        let (server, client) = value.split_once(';').expect("the harness writes a client port");
        let server = server.trim_end_matches(":observer").trim_end_matches(":participant");
        format!("{prefix}{server}:participant;{client}")
    }

    /// Member `i`'s zoo.cfg (the server may rewrite it: reconfigEnabled).
    pub fn config_path(&self, i: usize) -> PathBuf {
        self.members[i].dir.join("zoo.cfg")
    }

    /// Client connect string naming members `indexes`.
    pub fn connect_string_of(&self, indexes: &[usize]) -> String {
        indexes
            .iter()
            .map(|&i| format!("127.0.0.1:{}", self.members[i].client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn launch(&mut self, i: usize) {
        let m = &mut self.members[i];
        let config = m.dir.join("zoo.cfg");
        let command = match self.targets[i] {
            Target::Ringkeeper => {
                let mut c = Command::new(ringkeeper_binary());
                c.arg(&config);
                c
            }
            Target::Apache => apache_command_with(APACHE_QUORUM_MAIN, &config, &m.dir),
        };
        m.process.spawn(command).expect("spawn server");
    }

    /// Client connect string naming every member.
    pub fn connect_string(&self) -> String {
        self.members.iter().map(|m| format!("127.0.0.1:{}", m.client_port)).collect::<Vec<_>>().join(",")
    }

    /// Connect string of one member.
    pub fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].client_port)
    }

    /// A four-letter word's answer from member `i` (empty if it does not answer).
    pub fn four_letter(&self, i: usize, word: &str) -> String {
        four_letter_at(SocketAddr::from(([127, 0, 0, 1], self.members[i].client_port)), word)
    }

    /// The role member `i` reports in `srvr`; `None` while it does not serve or answer.
    pub fn mode(&self, i: usize) -> Option<Mode> {
        Mode::parse_srvr(&self.four_letter(i, "srvr"))
    }

    /// The zxid member `i` reports in `srvr` (None when not serving).
    pub fn zxid(&self, i: usize) -> Option<i64> {
        let srvr = self.four_letter(i, "srvr");
        let hex = srvr.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
        i64::from_str_radix(hex.trim(), 16).ok()
    }

    /// Waits until member `i` serves (leader, follower or observer).
    pub fn wait_serving(&mut self, i: usize, limit: Duration) {
        if let Err(failure) = self.try_wait_serving(i, limit) {
            panic!("{failure}");
        }
    }

    /// [`Ensemble::wait_serving`] that says why it did not (exit or time-out, with the log).
    fn try_wait_serving(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.members[i].process.exit_status() {
                return Err(format!("server {} exited ({status}); log:\n{}", i + 1, self.log(i)));
            }
            if self.mode(i).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("server {} not serving within {limit:?}; log:\n{}", i + 1, self.log(i)))
    }

    /// The index of the member that reports `Mode: leader`, waiting up to `limit`.
    pub fn wait_leader(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(i) = (0..self.members.len())
                .find(|&i| self.is_running_quick(i) && self.mode(i) == Some(Mode::Leader))
            {
                return i;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no leader within {limit:?}");
    }

    /// Member `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].process.pid()
    }

    fn is_running_quick(&self, i: usize) -> bool {
        self.members[i].process.is_started()
    }

    pub fn log(&self, i: usize) -> String {
        self.members[i].process.log()
    }

    fn mesh(&self) -> &ProxyMesh {
        self.mesh.as_ref().expect("a partitionable ensemble")
    }

    /// Cuts member `i` off from every other member (silently: no connection reset).
    pub fn isolate(&self, i: usize) {
        self.mesh().isolate(i);
    }

    /// Undoes [`Ensemble::isolate`] (and every other cut).
    pub fn heal(&self, _i: usize) {
        self.heal_all();
    }

    /// Cuts every pair of members in different `groups`, both ways; members in no group
    /// keep their links.
    pub fn partition(&self, groups: &[&[usize]]) {
        self.mesh().partition(groups);
    }

    /// Cuts what member `from` sends to member `to` (one way: `to` still reaches `from`).
    pub fn cut(&self, from: usize, to: usize) {
        self.mesh().cut(from, to);
    }

    /// Restores every link (nothing to do without proxies).
    pub fn heal_all(&self) {
        if let Some(mesh) = &self.mesh {
            mesh.heal_all();
        }
    }

    /// Freezes member `i` (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn pause(&self, i: usize) {
        self.signal(i, "STOP");
    }

    /// Resumes a member frozen by [`Ensemble::pause`] (SIGCONT).
    pub fn resume(&self, i: usize) {
        self.signal(i, "CONT");
    }

    fn signal(&self, i: usize, signal: &str) {
        self.members[i].process.signal(signal).unwrap_or_else(|e| panic!("member {}: {e}", i + 1));
    }

    /// Waits until every running member serves under one leader (exactly one reports
    /// `leader`, every other one `follower` or `observer`: a resumed old leader still
    /// claiming to lead does not count); how long that took (`None`: not within `limit`).
    pub fn time_until_all_serve(&self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            let modes: Vec<Option<Mode>> =
                (0..self.members.len()).filter(|&i| self.is_running_quick(i)).map(|i| self.mode(i)).collect();
            if settled_leader(&modes).is_some() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kill -9` member `i`.
    pub fn kill(&mut self, i: usize) {
        self.members[i].process.kill();
    }

    /// Sends member `i` `signal` (`TERM`, `INT`) and waits up to `limit` for it to exit.
    pub fn stop_with_signal(
        &mut self,
        i: usize,
        signal: &str,
        limit: Duration,
    ) -> Option<std::process::ExitStatus> {
        self.members[i].process.stop_with_signal(signal, limit)
    }

    /// Waits up to `limit` for member `i` to exit on its own; its exit status, or `None` if
    /// it still runs (or is not running at all).
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<std::process::ExitStatus> {
        self.members[i].process.wait_exit(limit)
    }

    /// Starts member `i` again (same config and dataDir) and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i);
        self.wait_serving(i, Duration::from_secs(60));
    }

    /// Starts member `i` again without waiting (for restarting several at once).
    pub fn relaunch(&mut self, i: usize) {
        self.kill(i);
        self.launch(i);
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if std::env::var_os("RINGKEEPER_KEEP_ENSEMBLE").is_some() || std::thread::panicking() {
            if let Some(root) = self.root.take() {
                eprintln!("ensemble kept in {}", root.keep().display());
            }
        }
    }
}

/// Writes `dir/name` (creating `dir`) and fsyncs the file and the directory, so that it
/// survives a power loss of the filesystem it is on.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut file = std::fs::File::create(dir.join(name)).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}
