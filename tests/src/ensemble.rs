//! Harness for ensembles of real server processes on 127.0.0.1: N voters (+ observers) from
//! one `zoo.cfg` (`server.N=127.0.0.1:peerPort:electionPort[:observer];clientPort`), each with
//! its own dataDir and `myid`, exactly as an Apache ensemble is laid out. The target is
//! ringkeeper, or Apache ZooKeeper's QuorumPeerMain with `RINGKEEPER_TEST_TARGET=apache`.
//!
//! Every process is killed when the [`Ensemble`] drops. Waits are bounded.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::Proxy;
use crate::{apache_command_with, four_letter_at, free_port, ringkeeper_binary, Target};

/// One member of an ensemble.
pub struct Member {
    pub id: u64,
    pub client_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

/// A running ensemble.
pub struct Ensemble {
    pub target: Target,
    pub members: Vec<Member>,
    /// With [`Ensemble::start_partitionable`]: `proxies[i][j]` carries i's peer traffic to j.
    proxies: Vec<Vec<Option<Proxy>>>,
    _root: tempfile::TempDir,
}

/// What `srvr` says about a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    /// Not serving (electing, syncing) or not answering.
    Down,
}

impl Ensemble {
    /// Starts `voters` participants and `observers` observers; `extra` lines go to every
    /// zoo.cfg. Returns once every member serves.
    pub fn start(voters: usize, observers: usize, extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), voters, observers, extra, false, None)
    }

    /// Like [`Ensemble::start`] with `data_dirs.len()` voters whose dataDirs are `data_dirs`
    /// (e.g. on [`crate::lazyfs::LazyFs`] mounts; `myid` is written there durably).
    pub fn start_with_data_dirs(data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), data_dirs.len(), 0, extra, false, Some(data_dirs))
    }

    /// Like [`Ensemble::start_with_data_dirs`] with `target` whatever `RINGKEEPER_TEST_TARGET`
    /// says (tests that move data between Apache and ringkeeper ensembles).
    pub fn start_as_with_data_dirs(target: Target, data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        Self::start_inner(target, data_dirs.len(), 0, extra, false, Some(data_dirs))
    }

    /// Like [`Ensemble::start`], but every member reaches every other through a proxy the
    /// test controls (each member's zoo.cfg names the proxies as its peers' addresses), so
    /// [`Ensemble::isolate`] can cut a member off. ringkeeper only: Apache's election
    /// connections announce their own address and bypass the proxies.
    pub fn start_partitionable(voters: usize, extra: &str) -> Ensemble {
        Self::start_inner(Target::from_env(), voters, 0, extra, true, None)
    }

    fn start_inner(
        target: Target,
        voters: usize,
        observers: usize,
        extra: &str,
        proxied: bool,
        data_dirs: Option<&[PathBuf]>,
    ) -> Ensemble {
        let root = tempfile::tempdir().unwrap();
        let total = voters + observers;
        let ports: Vec<(u16, u16, u16)> =
            (0..total).map(|_| (free_port(), free_port(), free_port())).collect();
        let proxies: Vec<Vec<Option<Proxy>>> = (0..total)
            .map(|i| {
                (0..total)
                    .map(|j| {
                        (proxied && i != j)
                            .then(|| Proxy::start(SocketAddr::from(([127, 0, 0, 1], ports[j].1))))
                    })
                    .collect()
            })
            .collect();
        let servers_seen_by = |me: usize| {
            let mut servers = String::new();
            for (j, (client, peer, election)) in ports.iter().enumerate() {
                let role = if j >= voters { ":observer" } else { "" };
                let peer = proxies[me][j].as_ref().map_or(*peer, |p| p.port);
                servers.push_str(&format!(
                    "server.{}=127.0.0.1:{peer}:{election}{role};127.0.0.1:{client}\n",
                    j + 1
                ));
            }
            servers
        };
        let mut members = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let servers = servers_seen_by(i);
            let id = i as u64 + 1;
            let dir = root.path().join(format!("s{id}"));
            let data_dir = data_dirs.map_or_else(|| dir.join("data"), |dirs| dirs[i].clone());
            std::fs::create_dir_all(&dir).unwrap();
            write_durably(&data_dir, "myid", format!("{id}\n").as_bytes());
            let observer = if i >= voters { "peerType=observer\n" } else { "" };
            let cfg = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\n{observer}{servers}{extra}\n",
                data_dir.display()
            );
            std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
            members.push(Member { id, client_port: *client, dir, child: None });
        }
        let mut ensemble = Ensemble { target, members, proxies, _root: root };
        for i in 0..total {
            ensemble.launch(i);
        }
        for i in 0..total {
            ensemble.wait_serving(i, Duration::from_secs(60));
        }
        ensemble
    }

    fn launch(&mut self, i: usize) {
        let m = &mut self.members[i];
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(m.dir.join("server.log")).unwrap();
        let config = m.dir.join("zoo.cfg");
        let mut command = match self.target {
            Target::Ringkeeper => {
                let mut c = Command::new(ringkeeper_binary());
                c.arg(&config);
                c
            }
            Target::Apache => {
                apache_command_with("org.apache.zookeeper.server.quorum.QuorumPeerMain", &config, &m.dir)
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        m.child = Some(child);
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

    pub fn mode(&self, i: usize) -> Mode {
        let srvr = self.four_letter(i, "srvr");
        match srvr.lines().find_map(|l| l.strip_prefix("Mode: ")) {
            Some("leader") => Mode::Leader,
            Some("follower") => Mode::Follower,
            Some("observer") => Mode::Observer,
            _ => Mode::Down,
        }
    }

    /// The zxid member `i` reports in `srvr` (None when not serving).
    pub fn zxid(&self, i: usize) -> Option<i64> {
        let srvr = self.four_letter(i, "srvr");
        let hex = srvr.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
        i64::from_str_radix(hex.trim(), 16).ok()
    }

    /// Waits until member `i` serves (leader, follower or observer).
    pub fn wait_serving(&mut self, i: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.members[i].child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("server {} exited ({status}); log:\n{}", i + 1, self.log(i));
            }
            if self.mode(i) != Mode::Down {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server {} not serving within {limit:?}; log:\n{}", i + 1, self.log(i));
    }

    /// The index of the member that reports `Mode: leader`, waiting up to `limit`.
    pub fn wait_leader(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(i) =
                (0..self.members.len()).find(|&i| self.is_running_quick(i) && self.mode(i) == Mode::Leader)
            {
                return i;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no leader within {limit:?}");
    }

    fn is_running_quick(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.members[i].dir.join("server.log")).unwrap_or_default()
    }

    /// Cuts member `i` off from every other member (silently: no connection reset).
    pub fn isolate(&self, i: usize) {
        self.set_cut(i, true);
    }

    /// Undoes [`Ensemble::isolate`].
    pub fn heal(&self, i: usize) {
        self.set_cut(i, false);
    }

    fn set_cut(&self, i: usize, blocked: bool) {
        for j in 0..self.members.len() {
            for (a, b) in [(i, j), (j, i)] {
                if let Some(p) = &self.proxies[a][b] {
                    p.set_blocked(blocked);
                }
            }
        }
    }

    /// `kill -9` member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends member `i` `signal` (`TERM`, `INT`) and waits up to `limit` for it to exit.
    pub fn stop_with_signal(
        &mut self,
        i: usize,
        signal: &str,
        limit: Duration,
    ) -> Option<std::process::ExitStatus> {
        crate::stop_with_signal(&mut self.members[i].child, signal, limit)
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
