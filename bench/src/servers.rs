//! The generic launcher: one [`EnsembleSpec`] (kind, members with their client/peer/election
//! ports, the zoo.cfg lines they share, a root directory) starts 1 or N server processes of
//! either kind on 127.0.0.1, each with its own directory (zoo.cfg, dataDir with `myid`, log).
//!
//! ringkeeper runs from its binary; Apache ZooKeeper 3.8 from the Debian package
//! (`ZooKeeperServerMain` for one server, `QuorumPeerMain` for an ensemble, with the full
//! JIT: no start-up shortcuts that would slow it). Both kinds get the same zoo.cfg text apart
//! from per-member paths and ports. A spec comes from free ports ([`EnsembleSpec::with_free_ports`])
//! or from a user's zoo.cfg with `server.N=host:peer:election;clientPort` lines
//! ([`EnsembleSpec::from_zoo_cfg`]).
//!
//! Ready means: every member opens a ZooKeeper session and, for an ensemble, `srvr` shows one
//! `Mode: leader` and only followers beside it. A member that answers `Mode: standalone` to
//! an ensemble config makes start fail with [`BenchError::NotSupported`] (never faked).
//! With [`Isolation::Equal`] each member runs in its own cgroup with the same CPU quota
//! ([`CpuLimit`]), joined right after it is spawned (and again after a restart).
//! An [`Ensemble`] kills its processes and removes its directories and cgroups when dropped,
//! so an error or a panic leaves nothing behind; on ctrl-c, [`clean_up_after_interrupt`] does
//! the same for every live ensemble.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cgroup::{remove_live_limits, CpuLimit, Isolation};
use crate::cpu::ServerProcess;
use crate::four_letter::{modes_of, settled_leader, Mode};
use crate::partition::Routes;
use crate::wire::Session;
use crate::BenchError;
use ringkeeper_tests::process::ServerChild;
use ringkeeper_tests::{apache_java_command, server_line, APACHE_QUORUM_MAIN, APACHE_STANDALONE_MAIN};

/// How long a server may take to open a session after start.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// JVM flags for Apache ZooKeeper: a fixed heap, the full JIT, warnings only in the log.
const APACHE_JVM: &[&str] = &["-Xms512m", "-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"];
/// zoo.cfg lines every generated spec uses (the user's own zoo.cfg replaces them).
/// ringkeeper's fast failover (`ringkeeper-tune`'s recommendation) is set explicitly: without
/// it a silent peer is detected after tickTime x syncLimit (10 s), as in Apache, which ignores
/// the key.
const DEFAULT_COMMON_CONFIG: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\nadmin.enableServer=false\n\
     forceSync=yes\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nringkeeper.zab.peerTimeoutMs=800\n";
/// Keys a member's own zoo.cfg sets itself; taken out of the shared lines.
const PER_MEMBER_KEYS: [&str; 3] = ["dataDir", "clientPort", "clientPortAddress"];

/// Processes and directories of every live [`Ensemble`], for [`clean_up_after_interrupt`].
static LIVE_PIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static LIVE_DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live<T: Ord>(set: &Mutex<BTreeSet<T>>, item: T, alive: bool) {
    let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
    if alive {
        set.insert(item);
    } else {
        set.remove(&item);
    }
}

/// Kills (-9) every server process an [`Ensemble`] of this process started and removes
/// their directories and cgroups: for a ctrl-c handler, where no destructor runs.
pub fn clean_up_after_interrupt() {
    for pid in std::mem::take(&mut *LIVE_PIDS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
    for dir in std::mem::take(&mut *LIVE_DIRS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = std::fs::remove_dir_all(dir);
    }
    remove_live_limits();
}

/// Which server to start.
#[derive(Debug, Clone)]
pub enum ServerKind {
    Ringkeeper { binary: PathBuf },
    Apache { java: PathBuf },
}

impl ServerKind {
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Ringkeeper { .. } => "ringkeeper",
            ServerKind::Apache { .. } => "apache",
        }
    }

    fn command(&self, config: &Path, dir: &Path, ensemble: bool) -> Command {
        match self {
            ServerKind::Ringkeeper { binary } => {
                let mut c = Command::new(binary);
                c.env("RUST_LOG", "warn").arg(config);
                c
            }
            ServerKind::Apache { java } => {
                let main = if ensemble { APACHE_QUORUM_MAIN } else { APACHE_STANDALONE_MAIN };
                apache_java_command(java.as_os_str(), APACHE_JVM, main, config, dir)
            }
        }
    }

    fn check_installed(&self) -> Result<(), BenchError> {
        if let ServerKind::Ringkeeper { binary } = self {
            if !binary.is_file() {
                return Err(BenchError::Config(format!(
                    "no ringkeeper binary at {} (build it with `cargo build --release -p ringkeeper-server`, \
                     or pass --ringkeeper-bin)",
                    binary.display()
                )));
            }
        }
        Ok(())
    }
}

/// The default path of the release `ringkeeper` binary of this workspace.
pub fn default_ringkeeper_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("release").join("ringkeeper")
}

/// One member's id and ports (all on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpec {
    pub id: u32,
    pub client_port: u16,
    pub peer_port: u16,
    pub election_port: u16,
}

/// Everything needed to start an ensemble (1 member: a standalone server).
#[derive(Debug, Clone)]
pub struct EnsembleSpec {
    pub kind: ServerKind,
    pub members: Vec<MemberSpec>,
    /// zoo.cfg lines all members share (no server.N, dataDir, clientPort).
    pub common_config: String,
    /// Members' directories go under here.
    pub root: PathBuf,
    /// When set, the peer and election ports each member's zoo.cfg names for the others
    /// (proxies of a [`crate::partition::Partitioner`]); else every member's own ports.
    pub routes: Option<Routes>,
    /// How the members share the CPUs ([`Isolation::Shared`] unless set).
    pub isolation: Isolation,
}

fn free_port() -> Result<u16, BenchError> {
    Ok(ringkeeper_tests::free_port())
}

impl EnsembleSpec {
    /// `servers` members on free loopback ports with the default shared config.
    pub fn with_free_ports(
        kind: ServerKind,
        servers: usize,
        root: &Path,
    ) -> Result<EnsembleSpec, BenchError> {
        if !(1..=9).contains(&servers) {
            return Err(BenchError::Config(format!("{servers} servers: 1..=9 supported")));
        }
        let members = (1..=servers as u32)
            .map(|id| {
                Ok(MemberSpec {
                    id,
                    client_port: free_port()?,
                    peer_port: free_port()?,
                    election_port: free_port()?,
                })
            })
            .collect::<Result<_, BenchError>>()?;
        Ok(EnsembleSpec {
            kind,
            members,
            common_config: DEFAULT_COMMON_CONFIG.into(),
            root: root.into(),
            routes: None,
            isolation: Isolation::Shared,
        })
    }

    /// From a zoo.cfg: `server.N=127.0.0.1:peer:election;clientPort` lines name the members
    /// (a lone server without them uses `clientPort`); every other line is shared, except
    /// `dataDir`/`clientPort`/`clientPortAddress`, which each member gets its own of.
    pub fn from_zoo_cfg(kind: ServerKind, text: &str, root: &Path) -> Result<EnsembleSpec, BenchError> {
        let mut members = Vec::new();
        let mut common = String::new();
        let mut client_port = None;
        for line in text.lines() {
            let trimmed = line.trim();
            let Some((key, value)) = trimmed.split_once('=') else {
                common.push_str(line);
                common.push('\n');
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(id) = key.strip_prefix("server.") {
                members.push(parse_server_line(id, value)?);
            } else if key == "clientPort" {
                client_port = Some(value.parse::<u16>().map_err(|_| bad_cfg(line))?);
            } else if !PER_MEMBER_KEYS.contains(&key) {
                common.push_str(trimmed);
                common.push('\n');
            }
        }
        if members.is_empty() {
            let client_port = client_port.ok_or_else(|| {
                BenchError::Config("zoo.cfg names no server.N line and no clientPort".into())
            })?;
            members.push(MemberSpec { id: 1, client_port, peer_port: 0, election_port: 0 });
        }
        members.sort_by_key(|m| m.id);
        Ok(EnsembleSpec {
            kind,
            members,
            common_config: common,
            root: root.into(),
            routes: None,
            isolation: Isolation::Shared,
        })
    }

    fn is_ensemble(&self) -> bool {
        self.members.len() > 1
    }

    /// The zoo.cfg of one member.
    pub fn member_config(&self, member: &MemberSpec, data_dir: &Path) -> String {
        let mut cfg = format!(
            "{}dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n",
            self.common_config,
            data_dir.display(),
            member.client_port
        );
        if self.is_ensemble() {
            let from = self.members.iter().position(|m| m == member).unwrap_or(0);
            for (to, m) in self.members.iter().enumerate() {
                let (peer_port, election_port) = match &self.routes {
                    Some(routes) => routes.ports[from][to],
                    None => (m.peer_port, m.election_port),
                };
                cfg += &server_line(m.id.into(), peer_port, election_port, "", m.client_port);
            }
        }
        cfg
    }
}

fn bad_cfg(line: &str) -> BenchError {
    BenchError::Config(format!(
        "zoo.cfg line {line:?}: expected server.N=127.0.0.1:peerPort:electionPort;clientPort"
    ))
}

/// `127.0.0.1:2888:3888;2181` (the client part may be `127.0.0.1:2181`).
fn parse_server_line(id: &str, value: &str) -> Result<MemberSpec, BenchError> {
    let line = format!("server.{id}={value}");
    let (quorum, client) = value.split_once(';').ok_or_else(|| {
        BenchError::Config(format!(
            "{line:?} has no ;clientPort: members on one machine need their own client ports"
        ))
    })?;
    let mut parts = quorum.split(':');
    let host = parts.next().unwrap_or_default();
    if host != "127.0.0.1" && host != "localhost" {
        return Err(BenchError::Config(format!("{line:?}: the harness runs members on 127.0.0.1 only")));
    }
    let port = |p: Option<&str>| p.and_then(|p| p.trim().parse::<u16>().ok()).ok_or_else(|| bad_cfg(&line));
    let peer_port = port(parts.next())?;
    let election_port = port(parts.next())?;
    let client_port = port(client.rsplit(':').next())?;
    Ok(MemberSpec { id: id.parse().map_err(|_| bad_cfg(&line))?, client_port, peer_port, election_port })
}

/// One started member.
pub struct Member {
    pub spec: MemberSpec,
    dir: PathBuf,
    process: ServerChild,
    /// The member's own cgroup under [`Isolation::Equal`]; declared after `process`, and
    /// dropped after [`Ensemble`]'s drop has killed the process, so it is empty by then.
    cpu_limit: Option<CpuLimit>,
}

impl Member {
    /// `127.0.0.1:clientPort`.
    pub fn client_address(&self) -> String {
        format!("127.0.0.1:{}", self.spec.client_port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// Started members of one spec.
pub struct Ensemble {
    pub kind: ServerKind,
    pub members: Vec<Member>,
    spec: EnsembleSpec,
    dir: tempfile::TempDir,
}

impl Ensemble {
    /// Writes each member's zoo.cfg and `myid`, starts them all and waits until ready.
    pub fn start(spec: EnsembleSpec) -> Result<Ensemble, BenchError> {
        spec.kind.check_installed()?;
        std::fs::create_dir_all(&spec.root)
            .map_err(BenchError::io_at(format!("creating {}", spec.root.display())))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("rk-bench-{}-", spec.kind.name()))
            .tempdir_in(&spec.root)
            .map_err(BenchError::io_at("creating a server directory"))?;
        let mut members = Vec::new();
        for member in &spec.members {
            let member_dir = dir.path().join(format!("server{}", member.id));
            let data = member_dir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{}\n", member.id))?;
            std::fs::write(member_dir.join("zoo.cfg"), spec.member_config(member, &data))?;
            let cpu_limit = match spec.isolation {
                Isolation::Shared => None,
                Isolation::Equal { cpus, period } => Some(CpuLimit::create(
                    &format!("{}-{}-server{}", spec.kind.name(), dir_suffix(dir.path()), member.id),
                    cpus,
                    period,
                )?),
            };
            let process = ServerChild::new(member_dir.join("server.log"));
            members.push(Member { spec: *member, dir: member_dir, process, cpu_limit });
        }
        live(&LIVE_DIRS, dir.path().to_path_buf(), true);
        let mut ensemble = Ensemble { kind: spec.kind.clone(), members, spec, dir };
        for index in 0..ensemble.members.len() {
            ensemble.launch(index)?;
        }
        ensemble.wait_ready(START_TIMEOUT)?;
        Ok(ensemble)
    }

    fn launch(&mut self, index: usize) -> Result<(), BenchError> {
        let ensemble = self.spec.is_ensemble();
        let member = &mut self.members[index];
        let command = self.kind.command(&member.dir.join("zoo.cfg"), &member.dir, ensemble);
        member.process.spawn(command).map_err(BenchError::io_at(format!("starting {}", self.kind.name())))?;
        let pid = member.process.pid().expect("a process just spawned");
        live(&LIVE_PIDS, pid, true);
        if let Some(limit) = &member.cpu_limit {
            limit.add(pid)?;
        }
        Ok(())
    }

    /// Every running member's process, named `server<id>`, in member order.
    pub fn server_processes(&self) -> Vec<ServerProcess> {
        self.members
            .iter()
            .filter_map(|m| {
                m.pid().map(|pid| ServerProcess {
                    name: format!("server{}", m.spec.id),
                    pid,
                    quota_stat: m.cpu_limit.as_ref().map(|limit| limit.dir().join("cpu.stat")),
                })
            })
            .collect()
    }

    /// How the members share the CPUs.
    pub fn isolation(&self) -> Isolation {
        self.spec.isolation
    }

    /// The connect string of all members.
    pub fn connect_string(&self) -> String {
        self.members.iter().map(Member::client_address).collect::<Vec<_>>().join(",")
    }

    /// Client addresses of all members, in member order.
    pub fn client_addresses(&self) -> Vec<String> {
        self.members.iter().map(Member::client_address).collect()
    }

    /// SIGKILL to member `index` (kill -9), reaped at once.
    pub fn kill(&mut self, index: usize) {
        let process = &mut self.members[index].process;
        if let Some(pid) = process.pid() {
            process.kill();
            live(&LIVE_PIDS, pid, false);
        }
    }

    /// SIGKILL to member `index` without waiting for it to be reaped (a large JVM takes
    /// tens of milliseconds to be torn down after it has stopped running); [`Ensemble::restart`]
    /// and drop reap it.
    pub fn send_kill(&mut self, index: usize) {
        self.members[index].process.send_kill();
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to member `index`'s process.
    pub fn signal(&mut self, index: usize, signal: &str) -> Result<(), BenchError> {
        self.members[index]
            .process
            .signal(signal)
            .map_err(|e| BenchError::Server(format!("member {index}: {e}")))
    }

    /// Starts a killed member again with its data.
    pub fn restart(&mut self, index: usize) -> Result<(), BenchError> {
        self.kill(index);
        self.launch(index)
    }

    /// Fails with the member's log if one has exited.
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        for index in 0..self.members.len() {
            if !self.members[index].process.is_running() {
                return Err(BenchError::Server(format!(
                    "{} server {} is not running; log:\n{}",
                    self.kind.name(),
                    self.members[index].spec.id,
                    self.log_tail(index)
                )));
            }
        }
        Ok(())
    }

    /// Waits until every member serves: a session opens on each and, for an ensemble, one
    /// leader and only followers. Returns the leader's index (0 for a lone server).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<usize, BenchError> {
        let deadline = Instant::now() + timeout;
        let addresses = self.client_addresses();
        let mut last = String::from("no answer yet");
        let mut suspect = 0;
        while Instant::now() < deadline {
            self.check_running()?;
            if !self.spec.is_ensemble() {
                if session_opens(&addresses[0]) {
                    return Ok(0);
                }
            } else {
                let modes = modes_of(&addresses);
                if let Some(index) = modes.iter().position(|m| *m == Some(Mode::Standalone)) {
                    return Err(BenchError::NotSupported(format!(
                        "{} server {} answered `Mode: standalone` to a {}-server zoo.cfg: this build does not run ensembles",
                        self.kind.name(),
                        self.members[index].spec.id,
                        self.members.len()
                    )));
                }
                if let Some(leader) = settled_leader(&modes) {
                    if addresses.iter().all(|a| session_opens(a)) {
                        return Ok(leader);
                    }
                }
                last = format!("modes {modes:?}");
                // The log worth showing is that of a member with no role.
                suspect = modes.iter().position(Option::is_none).unwrap_or(0);
            }
            std::thread::sleep(PROBE_EVERY);
        }
        Err(BenchError::Server(format!(
            "{} not ready within {timeout:?} ({last}); log of server {}:\n{}",
            self.kind.name(),
            self.members[suspect].spec.id,
            self.log_tail(suspect)
        )))
    }

    /// The last 4 KiB of member `index`'s log.
    pub fn log_tail(&self, index: usize) -> String {
        self.members[index].process.log_tail(4096)
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            // A frozen (SIGSTOP) process dies of SIGKILL as well.
            self.kill(index);
        }
        live(&LIVE_DIRS, self.dir.path().to_path_buf(), false);
    }
}

/// The random part of a temporary directory's name (`rk-bench-apache-XXXX` → `XXXX`), so
/// two ensembles of one kind in one process get distinct cgroup names.
fn dir_suffix(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.rsplit('-').next().unwrap_or_default().to_string()
}

/// Whether a ZooKeeper session opens on `address` (and is closed again).
fn session_opens(address: &str) -> bool {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return false;
    };
    runtime.block_on(async {
        match Session::connect(address, 10_000).await {
            Ok(session) => session.close().await.is_ok(),
            Err(_) => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apache() -> ServerKind {
        ServerKind::Apache { java: "java".into() }
    }

    #[test]
    fn zoo_cfg_with_server_lines_gives_members_and_shared_lines() {
        let cfg = "tickTime=2000\ndataDir=/x\nclientPort=2181\n# note\n\
                   server.2=127.0.0.1:2889:3889;2182\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2181\n";
        let spec = EnsembleSpec::from_zoo_cfg(apache(), cfg, Path::new("/r")).unwrap();
        assert_eq!(
            spec.members,
            vec![
                MemberSpec { id: 1, client_port: 2181, peer_port: 2888, election_port: 3888 },
                MemberSpec { id: 2, client_port: 2182, peer_port: 2889, election_port: 3889 },
            ]
        );
        assert_eq!(spec.common_config, "tickTime=2000\n# note\n");
        let member = spec.member_config(&spec.members[1], Path::new("/d"));
        assert!(member.contains("dataDir=/d\nclientPort=2182\n"), "{member}");
        assert!(member.contains(
            "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889;127.0.0.1:2182\n"
        ));
    }

    #[test]
    fn zoo_cfg_without_client_ports_or_off_loopback_is_refused() {
        for cfg in
            ["server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n", "server.1=10.0.0.1:1:2;5\n", "tickTime=1\n"]
        {
            assert!(EnsembleSpec::from_zoo_cfg(apache(), cfg, Path::new("/r")).is_err(), "{cfg}");
        }
        let lone = EnsembleSpec::from_zoo_cfg(apache(), "clientPort=7\n", Path::new("/r")).unwrap();
        assert!(!lone.member_config(&lone.members[0], Path::new("/d")).contains("server."));
    }
}
