//! The one launcher of real server processes on 127.0.0.1 as an ensemble, for the tests and
//! the bench. An [`EnsemblePlan`] says what to start: each member's [`ServerKind`]
//! (ringkeeper, or Apache ZooKeeper 3.8 with the JVM profile of [`crate::command`]), its
//! [`Role`] (voter, observer, or spare: set up, not started), its ports and dataDir, the
//! zoo.cfg lines all members share, proxies between members, CPU isolation, where the
//! directories go and how much the servers log. Each member gets its own directory with a
//! `zoo.cfg` (`server.N=127.0.0.1:peerPort:electionPort[:observer];127.0.0.1:clientPort`
//! lines), a dataDir holding `myid` (written durably) and `server.log`, exactly as an Apache
//! ensemble is laid out; a plan of one member is a standalone server (no `server.N` lines,
//! Apache's standalone main class). ringkeeper members of a mixed ensemble speak Apache's
//! quorum protocol (`ringkeeper.quorum.protocol=apache`).
//!
//! Plans come from free ports ([`EnsemblePlan::of`], [`EnsemblePlan::new`]) or from a user's
//! zoo.cfg with `server.N=127.0.0.1:peer:election;clientPort` lines
//! ([`EnsemblePlan::from_zoo_cfg`]). Options: `proxied` puts test-controlled proxies
//! ([`crate::proxy::ProxyMesh`]) between every two members, so that [`Ensemble::isolate`],
//! [`Ensemble::partition`] and [`Ensemble::cut`] can partition them (Apache too);
//! [`Isolation::Equal`] runs each member in its own cgroup with the same CPU quota, joined
//! right after every spawn ([`crate::cgroup`]).
//!
//! A start returns once every started member serves (`srvr` reports a mode); a start on
//! free ports that finds a port taken starts again on new ones. Every process is killed when
//! the [`Ensemble`] drops, its cgroups are removed, and so are its directories unless the
//! thread is panicking or `RINGKEEPER_KEEP_ENSEMBLE=1` (then the path is printed). On ctrl-c,
//! where no destructor runs, [`clean_up_after_interrupt`] does the same for every live
//! ensemble of the process. Every wait is bounded.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cgroup::{remove_live_limits, CpuLimit, Isolation};
use crate::command::{LogLevel, ServerKind};
use crate::four_letter::{settled_leader, Mode};
use crate::process::ServerChild;
use crate::proxy::ProxyMesh;
use crate::{four_letter_at, free_port, own_lines, HarnessError, Target};

/// The zoo.cfg lines every member of a generated plan shares (a user's zoo.cfg replaces
/// them). ringkeeper's fast failover is set explicitly: without it an ensemble detects a
/// silent peer after tickTime x syncLimit (10 s here), as Apache does; Apache ignores the key.
pub const DEFAULT_COMMON_CONFIG: &str =
    "tickTime=2000\ninitLimit=10\nsyncLimit=5\nadmin.enableServer=false\n\
     4lw.commands.whitelist=*\nringkeeper.zab.peerTimeoutMs=800\n";
/// Keys a member's own zoo.cfg sets itself ([`own_lines`]); taken out of a user's zoo.cfg.
const PER_MEMBER_KEYS: [&str; 3] = ["dataDir", "clientPort", "clientPortAddress"];
/// How often a start on free ports is tried when a port turns out taken by a process outside
/// the port claims of [`free_port`] (seen a few times in CI).
const START_ATTEMPTS: usize = 3;
/// How long a started member may take to serve, unless the plan says otherwise.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Processes and directories of every live [`Ensemble`], for [`clean_up_after_interrupt`].
static LIVE_PIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static LIVE_DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn set_live<T: Ord>(set: &Mutex<BTreeSet<T>>, item: T, alive: bool) {
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

/// What a member does in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A participant: votes and may lead.
    Voter,
    /// An observer (`peerType=observer`, `:observer` in every `server.N` line).
    Observer,
    /// Set up but neither started nor listed in the others' zoo.cfg: its own zoo.cfg lists
    /// the others and itself, as a server joining by dynamic reconfig is configured. Started
    /// with [`Ensemble::start_member`].
    Spare,
}

/// A member's ports on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberPorts {
    pub client: u16,
    pub peer: u16,
    pub election: u16,
}

/// One member of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberPlan {
    /// Its `myid` and `server.N` number.
    pub id: u64,
    pub kind: ServerKind,
    pub role: Role,
    /// Its ports; `None`: free ports picked at start (and picked again if one is taken).
    pub ports: Option<MemberPorts>,
    /// Its dataDir instead of `data` in its own directory (e.g. on a [`crate::lazyfs::LazyFs`]
    /// mount).
    pub data_dir: Option<PathBuf>,
}

/// Everything needed to start an ensemble (one member: a standalone server).
#[derive(Debug, Clone, PartialEq)]
pub struct EnsemblePlan {
    pub members: Vec<MemberPlan>,
    /// zoo.cfg lines every member shares, first in its zoo.cfg (no `server.N`, `dataDir`,
    /// `clientPort`): [`DEFAULT_COMMON_CONFIG`], or a user's zoo.cfg.
    pub common_config: String,
    /// zoo.cfg lines every member gets last (they override the shared ones).
    pub extra_config: String,
    /// Proxies between every two members, for partitions.
    pub proxied: bool,
    /// How the members share the CPUs.
    pub isolation: Isolation,
    /// Where the ensemble's directory is made (default: the temporary directory).
    pub parent_dir: Option<PathBuf>,
    pub log_level: LogLevel,
    /// How long each started member may take to serve.
    pub start_timeout: Duration,
}

impl EnsemblePlan {
    /// One voter per kind (ids 1, 2, ...) on free ports, with [`DEFAULT_COMMON_CONFIG`],
    /// shared CPUs, default logging.
    pub fn new(kinds: impl IntoIterator<Item = ServerKind>) -> EnsemblePlan {
        let members = kinds
            .into_iter()
            .zip(1..)
            .map(|(kind, id)| MemberPlan { id, kind, role: Role::Voter, ports: None, data_dir: None })
            .collect();
        EnsemblePlan {
            members,
            common_config: DEFAULT_COMMON_CONFIG.into(),
            extra_config: String::new(),
            proxied: false,
            isolation: Isolation::Shared,
            parent_dir: None,
            log_level: LogLevel::Default,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }

    /// `members` voters of `kind` (see [`EnsemblePlan::new`]).
    pub fn of(kind: ServerKind, members: usize) -> EnsemblePlan {
        Self::new(vec![kind; members])
    }

    /// The first `voters` members vote, the next `observers` observe, the rest are spares.
    pub fn with_roles(mut self, voters: usize, observers: usize) -> EnsemblePlan {
        for (i, member) in self.members.iter_mut().enumerate() {
            member.role = if i < voters {
                Role::Voter
            } else if i < voters + observers {
                Role::Observer
            } else {
                Role::Spare
            };
        }
        self
    }

    /// Member `i`'s dataDir is `data_dirs[i]`.
    pub fn with_data_dirs(mut self, data_dirs: &[PathBuf]) -> EnsemblePlan {
        for (member, dir) in self.members.iter_mut().zip(data_dirs) {
            member.data_dir = Some(dir.clone());
        }
        self
    }

    /// From a user's zoo.cfg: `server.N=127.0.0.1:peer:election;clientPort` lines name the
    /// members, all of `kind` (a lone server without them uses `clientPort`); every other
    /// line is shared, except `dataDir`/`clientPort`/`clientPortAddress`, which each member
    /// gets its own of.
    pub fn from_zoo_cfg(kind: ServerKind, text: &str) -> Result<EnsemblePlan, HarnessError> {
        let mut ports = Vec::new();
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
                ports.push(parse_server_line(id, value)?);
            } else if key == "clientPort" {
                client_port = Some(value.parse::<u16>().map_err(|_| bad_server_line(line))?);
            } else if !PER_MEMBER_KEYS.contains(&key) {
                common.push_str(trimmed);
                common.push('\n');
            }
        }
        if ports.is_empty() {
            let client = client_port.ok_or_else(|| {
                HarnessError::Config("zoo.cfg names no server.N line and no clientPort".into())
            })?;
            ports.push((1, MemberPorts { client, peer: 0, election: 0 }));
        }
        ports.sort_by_key(|&(id, _)| id);
        let members = ports
            .into_iter()
            .map(|(id, ports)| MemberPlan {
                id,
                kind: kind.clone(),
                role: Role::Voter,
                ports: Some(ports),
                data_dir: None,
            })
            .collect();
        Ok(EnsemblePlan { members, common_config: common, ..Self::new([]) })
    }

    fn is_standalone(&self) -> bool {
        self.members.len() == 1
    }

    /// The zoo.cfg of member `me`, whose peers are on `ports` (by index) or reached through
    /// `mesh`, with its dataDir at `data_dir`.
    pub fn member_config(
        &self,
        me: usize,
        ports: &[MemberPorts],
        mesh: Option<&ProxyMesh>,
        data_dir: &Path,
    ) -> String {
        let member = &self.members[me];
        let mut cfg = self.common_config.clone();
        cfg += &own_lines(data_dir, ports[me].client);
        if member.role == Role::Observer {
            cfg += "peerType=observer\n";
        }
        let mixed = self.members.iter().any(|m| m.kind.target() != member.kind.target());
        if mixed && member.kind.target() == Target::Ringkeeper {
            cfg += APACHE_PROTOCOL;
        }
        if !self.is_standalone() {
            for (j, (other, own)) in self.members.iter().zip(ports).enumerate() {
                if other.role == Role::Spare && j != me {
                    continue;
                }
                let role = if other.role == Role::Observer { ":observer" } else { "" };
                let (peer, election) =
                    mesh.and_then(|mesh| mesh.route(me, j)).unwrap_or((own.peer, own.election));
                cfg += &server_line(other.id, peer, election, role, own.client);
            }
        }
        cfg + &self.extra_config + "\n"
    }
}

/// A zoo.cfg `server.N` line for a member on 127.0.0.1: `role` is `""` or `":observer"`.
fn server_line(id: u64, peer_port: u16, election_port: u16, role: &str, client_port: u16) -> String {
    format!("server.{id}=127.0.0.1:{peer_port}:{election_port}{role};127.0.0.1:{client_port}\n")
}

fn bad_server_line(line: &str) -> HarnessError {
    HarnessError::Config(format!(
        "zoo.cfg line {line:?}: expected server.N=127.0.0.1:peerPort:electionPort;clientPort"
    ))
}

/// `127.0.0.1:2888:3888;2181` (the client part may be `127.0.0.1:2181`) of `server.{id}`.
fn parse_server_line(id: &str, value: &str) -> Result<(u64, MemberPorts), HarnessError> {
    let line = format!("server.{id}={value}");
    let (quorum, client) = value.split_once(';').ok_or_else(|| {
        HarnessError::Config(format!(
            "{line:?} has no ;clientPort: members on one machine need their own client ports"
        ))
    })?;
    let mut parts = quorum.split(':');
    let host = parts.next().unwrap_or_default();
    if host != "127.0.0.1" && host != "localhost" {
        return Err(HarnessError::Config(format!("{line:?}: the harness runs members on 127.0.0.1 only")));
    }
    let port =
        |p: Option<&str>| p.and_then(|p| p.trim().parse::<u16>().ok()).ok_or_else(|| bad_server_line(&line));
    let peer = port(parts.next())?;
    let election = port(parts.next())?;
    let client = port(client.rsplit(':').next())?;
    let id = id.parse().map_err(|_| bad_server_line(&line))?;
    Ok((id, MemberPorts { client, peer, election }))
}

/// The zoo.cfg line of a ringkeeper member that joins Apache members (issue #16).
const APACHE_PROTOCOL: &str = "ringkeeper.quorum.protocol=apache\n";

/// One member of an ensemble.
pub struct Member {
    pub id: u64,
    pub kind: ServerKind,
    pub client_port: u16,
    /// The port it accepts peer (quorum) connections on (its own, never a proxy's).
    pub peer_port: u16,
    /// Its directory (zoo.cfg, `server.log`, and `data` unless the plan put it elsewhere).
    pub dir: PathBuf,
    process: ServerChild,
    /// Its own cgroup under [`Isolation::Equal`]; declared after `process`, so dropped once
    /// the process is dead.
    cpu_limit: Option<CpuLimit>,
}

impl Member {
    /// `127.0.0.1:clientPort`.
    pub fn client_address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The `cpu.stat` of its own cgroup under [`Isolation::Equal`] (how long the quota held it).
    pub fn cpu_stat(&self) -> Option<PathBuf> {
        self.cpu_limit.as_ref().map(|limit| limit.dir().join("cpu.stat"))
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// A running ensemble.
pub struct Ensemble {
    /// What the first member runs (all members but in a mixed ensemble).
    pub target: Target,
    pub members: Vec<Member>,
    /// With a proxied plan: the proxies between every two members.
    mesh: Option<ProxyMesh>,
    standalone: bool,
    log_level: LogLevel,
    isolation: Isolation,
    /// Every member's directory; removed on drop unless the thread is panicking or
    /// `RINGKEEPER_KEEP_ENSEMBLE=1` (the path is printed then).
    root: Option<tempfile::TempDir>,
}

impl Ensemble {
    /// Starts `voters` participants and `observers` observers of `RINGKEEPER_TEST_TARGET`;
    /// `extra` lines go to every zoo.cfg. Returns once every member serves.
    pub fn start(voters: usize, observers: usize, extra: &str) -> Ensemble {
        let plan =
            EnsemblePlan::of(Target::from_env().kind(), voters + observers).with_roles(voters, observers);
        Self::start_plan(EnsemblePlan { extra_config: extra.into(), ..plan })
    }

    /// Like [`Ensemble::start`] with `voters` participants, plus `spares` members that are
    /// set up but not started ([`Role::Spare`]). Start one with [`Ensemble::start_member`];
    /// its `server.N` line is [`Ensemble::server_line`].
    pub fn start_with_spares(voters: usize, spares: usize, extra: &str) -> Ensemble {
        let plan = EnsemblePlan::of(Target::from_env().kind(), voters + spares).with_roles(voters, 0);
        Self::start_plan(EnsemblePlan { extra_config: extra.into(), ..plan })
    }

    /// Like [`Ensemble::start`] with `data_dirs.len()` voters whose dataDirs are `data_dirs`
    /// (e.g. on [`crate::lazyfs::LazyFs`] mounts; `myid` is written there durably).
    pub fn start_with_data_dirs(data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        Self::start_as_with_data_dirs(Target::from_env(), data_dirs, extra)
    }

    /// Like [`Ensemble::start_with_data_dirs`] with `target` whatever `RINGKEEPER_TEST_TARGET`
    /// says (tests that move data between Apache and ringkeeper ensembles).
    pub fn start_as_with_data_dirs(target: Target, data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        let plan = EnsemblePlan::of(target.kind(), data_dirs.len()).with_data_dirs(data_dirs);
        Self::start_plan(EnsemblePlan { extra_config: extra.into(), ..plan })
    }

    /// A mixed ensemble: member `i` runs `targets[i]`, the first `voters` vote, the rest
    /// observe. Returns once every member serves.
    pub fn start_mixed(targets: &[Target], voters: usize, extra: &str) -> Ensemble {
        let plan = EnsemblePlan::new(targets.iter().map(|t| t.kind())).with_roles(voters, targets.len());
        Self::start_plan(EnsemblePlan { extra_config: extra.into(), ..plan })
    }

    /// Like [`Ensemble::start`], but every member reaches every other member's peer and
    /// election ports through proxies the test controls, so [`Ensemble::isolate`],
    /// [`Ensemble::partition`] and [`Ensemble::cut`] can partition it. Works for Apache too:
    /// its election initial message is rewritten to name the proxy leading back (see
    /// [`crate::proxy`]).
    pub fn start_partitionable(voters: usize, extra: &str) -> Ensemble {
        Self::start_partitionable_as(&vec![Target::from_env(); voters], extra)
    }

    /// [`Ensemble::start_partitionable`] with one voter per target, of that target's kind
    /// (a ringkeeper member among Apache members speaks Apache's quorum protocol).
    pub fn start_partitionable_as(targets: &[Target], extra: &str) -> Ensemble {
        let plan = EnsemblePlan::new(targets.iter().map(|t| t.kind()));
        Self::start_plan(EnsemblePlan { extra_config: extra.into(), proxied: true, ..plan })
    }

    /// [`Ensemble::start_partitionable`] with `data_dirs.len()` voters whose dataDirs are
    /// `data_dirs` (as [`Ensemble::start_with_data_dirs`]).
    pub fn start_partitionable_with_data_dirs(data_dirs: &[PathBuf], extra: &str) -> Ensemble {
        let plan = EnsemblePlan::of(Target::from_env().kind(), data_dirs.len()).with_data_dirs(data_dirs);
        Self::start_plan(EnsemblePlan { extra_config: extra.into(), proxied: true, ..plan })
    }

    /// [`Ensemble::try_start_plan`] that panics with the reason it did not start.
    pub fn start_plan(plan: EnsemblePlan) -> Ensemble {
        Self::try_start_plan(&plan).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets up the members of `plan` and starts all but the spares; returns once each serves.
    /// A start on free ports that finds a port taken starts again on new ports.
    pub fn try_start_plan(plan: &EnsemblePlan) -> Result<Ensemble, HarnessError> {
        let free_ports = plan.members.iter().all(|m| m.ports.is_none());
        for attempt in 1.. {
            match Self::try_start_once(plan) {
                Err(HarnessError::Failed(failure))
                    if free_ports
                        && attempt < START_ATTEMPTS
                        && failure.contains("Address already in use") =>
                {
                    eprintln!("a port was taken at start (attempt {attempt}), starting again on new ports:\n{failure}");
                }
                outcome => return outcome,
            }
        }
        unreachable!("the last attempt returns")
    }

    /// One attempt of [`Ensemble::try_start_plan`].
    fn try_start_once(plan: &EnsemblePlan) -> Result<Ensemble, HarnessError> {
        let first =
            plan.members.first().ok_or_else(|| HarnessError::Config("a plan without members".into()))?;
        for member in &plan.members {
            member.kind.check_installed().map_err(HarnessError::Config)?;
        }
        let target = first.kind.target();
        let prefix = format!("rk-harness-{}-", target.name());
        let mut dir = tempfile::Builder::new();
        dir.prefix(&prefix);
        let root = match &plan.parent_dir {
            Some(parent) => std::fs::create_dir_all(parent)
                .and_then(|()| dir.tempdir_in(parent))
                .map_err(HarnessError::io_at(format!("creating a directory in {}", parent.display())))?,
            None => dir.tempdir().map_err(HarnessError::io_at("creating the ensemble's directory"))?,
        };
        let ports: Vec<MemberPorts> = plan
            .members
            .iter()
            .map(|m| {
                m.ports.unwrap_or_else(|| MemberPorts {
                    client: free_port(),
                    peer: free_port(),
                    election: free_port(),
                })
            })
            .collect();
        let mesh = plan
            .proxied
            .then(|| ProxyMesh::start(&ports.iter().map(|p| (p.peer, p.election)).collect::<Vec<_>>()));
        let mut members = Vec::new();
        for (i, member) in plan.members.iter().enumerate() {
            let (dir, data_dir) = lay_out_member(root.path(), member.id, member.data_dir.as_deref())?;
            let config = plan.member_config(i, &ports, mesh.as_ref(), &data_dir);
            std::fs::write(dir.join("zoo.cfg"), config).map_err(HarnessError::io_at("writing zoo.cfg"))?;
            let cpu_limit = match plan.isolation {
                Isolation::Shared => None,
                Isolation::Equal { cpus, period } => Some(CpuLimit::create(
                    &format!("{}-{}-server{}", member.kind.name(), random_suffix(root.path()), member.id),
                    cpus,
                    period,
                )?),
            };
            members.push(Member {
                id: member.id,
                kind: member.kind.clone(),
                client_port: ports[i].client,
                peer_port: ports[i].peer,
                process: ServerChild::new(dir.join("server.log")),
                dir,
                cpu_limit,
            });
        }
        set_live(&LIVE_DIRS, root.path().to_path_buf(), true);
        let mut ensemble = Ensemble {
            target,
            members,
            mesh,
            standalone: plan.is_standalone(),
            log_level: plan.log_level,
            isolation: plan.isolation,
            root: Some(root),
        };
        let started: Vec<usize> =
            (0..plan.members.len()).filter(|&i| plan.members[i].role != Role::Spare).collect();
        for &i in &started {
            ensemble.try_launch(i)?;
        }
        for &i in &started {
            ensemble.try_wait_serving(i, plan.start_timeout)?;
        }
        Ok(ensemble)
    }

    /// Starts member `i` (a spare of [`Ensemble::start_with_spares`]) and waits until it serves.
    pub fn start_member(&mut self, i: usize) {
        self.launch(i);
        self.wait_serving(i, DEFAULT_START_TIMEOUT);
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
        indexes.iter().map(|&i| self.members[i].client_address()).collect::<Vec<_>>().join(",")
    }

    /// Kills member `i` if it runs, then starts it with its zoo.cfg (read again: a test may
    /// have changed it) and joins it to its cgroup.
    pub fn try_launch(&mut self, i: usize) -> Result<(), HarnessError> {
        self.kill(i);
        let m = &mut self.members[i];
        let command = m.kind.command(&m.dir.join("zoo.cfg"), &m.dir, self.standalone, self.log_level);
        m.process.spawn(command).map_err(HarnessError::io_at(format!(
            "starting {} server {}",
            m.kind.name(),
            m.id
        )))?;
        let pid = m.process.pid().expect("a process just spawned");
        set_live(&LIVE_PIDS, pid, true);
        if let Some(limit) = &m.cpu_limit {
            limit.add(pid)?;
        }
        Ok(())
    }

    fn launch(&mut self, i: usize) {
        self.try_launch(i).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Client connect string naming every member.
    pub fn connect_string(&self) -> String {
        self.client_addresses().join(",")
    }

    /// Every member's `127.0.0.1:clientPort`, in member order.
    pub fn client_addresses(&self) -> Vec<String> {
        self.members.iter().map(Member::client_address).collect()
    }

    /// Connect string of one member.
    pub fn address(&self, i: usize) -> String {
        self.members[i].client_address()
    }

    /// How the members share the CPUs.
    pub fn isolation(&self) -> Isolation {
        self.isolation
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
    fn try_wait_serving(&mut self, i: usize, limit: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + limit;
        let name = |m: &Member| format!("{} server {}", m.kind.name(), m.id);
        while Instant::now() < deadline {
            if let Some(status) = self.members[i].process.exit_status() {
                let m = &self.members[i];
                return Err(HarnessError::Failed(format!(
                    "{} exited ({status}); log:\n{}",
                    name(m),
                    self.log(i)
                )));
            }
            if self.mode(i).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let m = &self.members[i];
        Err(HarnessError::Failed(format!("{} not serving within {limit:?}; log:\n{}", name(m), self.log(i))))
    }

    /// Fails with the member's log if a member started (and not killed) here has exited.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        for i in 0..self.members.len() {
            if self.members[i].process.exit_status().is_some() {
                let m = &self.members[i];
                return Err(HarnessError::Failed(format!(
                    "{} server {} is not running; log:\n{}",
                    m.kind.name(),
                    m.id,
                    self.log_tail(i)
                )));
            }
        }
        Ok(())
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
        self.members[i].pid()
    }

    fn is_running_quick(&self, i: usize) -> bool {
        self.members[i].process.is_started()
    }

    /// Member `i`'s whole log.
    pub fn log(&self, i: usize) -> String {
        self.members[i].process.log()
    }

    /// The last 4 KiB of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        self.members[i].process.log_tail(4096)
    }

    fn mesh(&self) -> &ProxyMesh {
        self.mesh.as_ref().expect("a partitionable ensemble")
    }

    /// Whether the members reach each other through proxies (a proxied plan).
    pub fn is_partitionable(&self) -> bool {
        self.mesh.is_some()
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

    /// Restores every link (nothing to do without proxies); held connections carry on.
    pub fn heal_all(&self) {
        if let Some(mesh) = &self.mesh {
            mesh.heal_all();
        }
    }

    /// Restores every link and closes the connections held while cut, so the members
    /// reconnect afresh (nothing to do without proxies).
    pub fn heal_and_reconnect(&self) {
        if let Some(mesh) = &self.mesh {
            mesh.heal_and_reconnect();
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
        self.try_signal(i, signal).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends member `i` `signal` (a name for kill(1): `STOP`, `CONT`, ...).
    pub fn try_signal(&self, i: usize, signal: &str) -> Result<(), HarnessError> {
        self.members[i]
            .process
            .signal(signal)
            .map_err(|e| HarnessError::Failed(format!("member {}: {e}", i + 1)))
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

    /// `kill -9` member `i`, reaped at once.
    pub fn kill(&mut self, i: usize) {
        let process = &mut self.members[i].process;
        if let Some(pid) = process.pid() {
            process.kill();
            set_live(&LIVE_PIDS, pid, false);
        }
    }

    /// SIGKILL to member `i` without waiting for it to be reaped (a large JVM takes tens of
    /// milliseconds to be torn down after it has stopped running); a later kill, launch or
    /// drop reaps it.
    pub fn send_kill(&mut self, i: usize) {
        self.members[i].process.send_kill();
    }

    /// Sends member `i` `signal` (`TERM`, `INT`) and waits up to `limit` for it to exit.
    pub fn stop_with_signal(&mut self, i: usize, signal: &str, limit: Duration) -> Option<ExitStatus> {
        self.members[i].process.stop_with_signal(signal, limit)
    }

    /// Waits up to `limit` for member `i` to exit on its own; its exit status, or `None` if
    /// it still runs (or is not running at all).
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<ExitStatus> {
        self.members[i].process.wait_exit(limit)
    }

    /// Starts member `i` again (same config and dataDir) and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.launch(i);
        self.wait_serving(i, DEFAULT_START_TIMEOUT);
    }

    /// Every znode member `i` serves, one JSON line each (`tests/compat/apache_migration.py
    /// dump`: kazoo, after a sync), but `/zookeeper/config`: each Apache server stamps that
    /// node's mtime with the moment it loaded its own config, so it differs between members.
    pub fn tree_through_client(&self, i: usize) -> Vec<String> {
        let out = crate::compat::python_script("apache_migration.py", &[&self.address(i), "dump"])
            .unwrap_or_else(|out| panic!("dump of member {}: {out}", i + 1));
        out.lines().filter(|l| !l.contains("\"path\": \"/zookeeper/config\"")).map(str::to_owned).collect()
    }

    /// Member `i`'s dataDir (its zoo.cfg's `dataDir`).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        let config = std::fs::read_to_string(self.members[i].dir.join("zoo.cfg")).unwrap();
        let dir =
            config.lines().find_map(|l| l.strip_prefix("dataDir=")).expect("the harness writes a dataDir");
        PathBuf::from(dir)
    }

    /// One step of a rolling replacement: stops member `i` as an operator would (SIGTERM, then
    /// SIGKILL after 30 s), lets `move_data` convert its dataDir for the new server (an
    /// import, an export, or nothing), and starts `target` on the same myid, dataDir and
    /// zoo.cfg; a ringkeeper member among Apache members (or among ringkeeper members still
    /// on Apache's protocol) gets `ringkeeper.quorum.protocol=apache` in it, an Apache member
    /// loses the key. Does not wait for it to serve.
    pub fn replace(&mut self, i: usize, target: Target, move_data: impl FnOnce(&Path)) {
        if self.members[i].process.stop_with_signal("TERM", Duration::from_secs(30)).is_none() {
            self.kill(i);
        }
        move_data(&self.data_dir(i));
        self.members[i].kind = target.kind();
        let apache_peers =
            self.members.iter().enumerate().any(|(j, m)| {
                j != i && (m.kind.target() == Target::Apache || self.speaks_apache_protocol(j))
            });
        self.write_protocol_key(i, target == Target::Ringkeeper && apache_peers);
        self.launch(i);
    }

    /// Whether ringkeeper member `i`'s zoo.cfg has `ringkeeper.quorum.protocol=apache`.
    pub fn speaks_apache_protocol(&self, i: usize) -> bool {
        let config = std::fs::read_to_string(self.members[i].dir.join("zoo.cfg")).unwrap_or_default();
        config.lines().any(|l| l == APACHE_PROTOCOL.trim_end())
    }

    /// Adds (`on`) or removes `ringkeeper.quorum.protocol=apache` in member `i`'s zoo.cfg.
    fn write_protocol_key(&self, i: usize, on: bool) {
        let config_path = self.members[i].dir.join("zoo.cfg");
        let config = std::fs::read_to_string(&config_path).unwrap();
        let mut lines: Vec<&str> = config.lines().filter(|l| *l != APACHE_PROTOCOL.trim_end()).collect();
        if on {
            lines.push(APACHE_PROTOCOL.trim_end());
        }
        std::fs::write(&config_path, lines.join("\n") + "\n").unwrap();
    }

    /// The protocol switch of an all-ringkeeper ensemble, one member at a time: stops
    /// ringkeeper member `i` (SIGTERM), puts `ringkeeper.quorum.protocol=apache` in its zoo.cfg
    /// (`apache_protocol`) or takes it out (ringkeeper's own protocol), and starts it again.
    /// Does not wait for it to serve.
    pub fn restart_on_protocol(&mut self, i: usize, apache_protocol: bool) {
        assert_eq!(self.members[i].kind.target(), Target::Ringkeeper, "member {} runs ringkeeper", i + 1);
        if self.members[i].process.stop_with_signal("TERM", Duration::from_secs(30)).is_none() {
            self.kill(i);
        }
        self.write_protocol_key(i, apache_protocol);
        self.launch(i);
    }

    /// Starts member `i` again without waiting (for restarting several at once).
    pub fn relaunch(&mut self, i: usize) {
        self.launch(i);
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            // A frozen (SIGSTOP) process dies of SIGKILL as well.
            self.kill(i);
        }
        if let Some(root) = self.root.take() {
            set_live(&LIVE_DIRS, root.path().to_path_buf(), false);
            if std::env::var_os("RINGKEEPER_KEEP_ENSEMBLE").is_some() || std::thread::panicking() {
                eprintln!("ensemble kept in {}", root.keep().display());
            }
        }
    }
}

/// The random part of a temporary directory's name (`rk-harness-apache-XXXX` → `XXXX`), so
/// two ensembles of one kind in one process get distinct cgroup names.
fn random_suffix(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.rsplit('-').next().unwrap_or_default().to_string()
}

/// Lays out member `id` as an Apache ensemble member is: its own directory `server<id>` under
/// `root` (for its zoo.cfg and log), its dataDir (`data` in that directory unless `data_dir`
/// is given) with `myid` written durably. Returns (directory, dataDir). The one owner of this
/// layout: the launcher's members, and tests that write a member's zoo.cfg by hand.
pub fn lay_out_member(
    root: &Path,
    id: u64,
    data_dir: Option<&Path>,
) -> Result<(PathBuf, PathBuf), HarnessError> {
    let dir = root.join(format!("server{id}"));
    let data_dir = data_dir.map_or_else(|| dir.join("data"), Path::to_path_buf);
    std::fs::create_dir_all(&dir).map_err(HarnessError::io_at(format!("creating {}", dir.display())))?;
    write_durably(&data_dir, "myid", format!("{id}\n").as_bytes())
        .map_err(HarnessError::io_at(format!("writing myid in {}", data_dir.display())))?;
    Ok((dir, data_dir))
}

/// Writes `dir/name` (creating `dir`) and fsyncs the file and the directory, so that it
/// survives a power loss of the filesystem it is on.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::File::create(dir.join(name))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ApacheJvm;

    fn apache() -> ServerKind {
        ServerKind::Apache { java: "java".into(), jvm: ApacheJvm::FullJit }
    }

    fn ports_of(plan: &EnsemblePlan) -> Vec<MemberPorts> {
        plan.members.iter().map(|m| m.ports.unwrap()).collect()
    }

    #[test]
    fn zoo_cfg_with_server_lines_gives_members_and_shared_lines() {
        let cfg = "tickTime=2000\ndataDir=/x\nclientPort=2181\n# note\n\
                   server.2=127.0.0.1:2889:3889;2182\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2181\n";
        let plan = EnsemblePlan::from_zoo_cfg(apache(), cfg).unwrap();
        assert_eq!(
            ports_of(&plan),
            vec![
                MemberPorts { client: 2181, peer: 2888, election: 3888 },
                MemberPorts { client: 2182, peer: 2889, election: 3889 },
            ]
        );
        assert_eq!(plan.members.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2]);
        assert!(plan.members.iter().all(|m| m.kind == apache() && m.role == Role::Voter));
        assert_eq!(plan.common_config, "tickTime=2000\n# note\n");
        let member = plan.member_config(1, &ports_of(&plan), None, Path::new("/d"));
        assert!(member.starts_with("tickTime=2000\n# note\ndataDir=/d\nclientPort=2182\n"), "{member}");
        assert!(member.contains(
            "server.1=127.0.0.1:2888:3888;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889;127.0.0.1:2182\n"
        ));
    }

    #[test]
    fn zoo_cfg_without_client_ports_or_off_loopback_is_refused() {
        for cfg in
            ["server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n", "server.1=10.0.0.1:1:2;5\n", "tickTime=1\n"]
        {
            assert!(EnsemblePlan::from_zoo_cfg(apache(), cfg).is_err(), "{cfg}");
        }
        let lone = EnsemblePlan::from_zoo_cfg(apache(), "clientPort=7\n").unwrap();
        assert!(!lone.member_config(0, &ports_of(&lone), None, Path::new("/d")).contains("server."));
    }

    #[test]
    fn observers_spares_and_mixed_members_get_their_lines() {
        let ringkeeper = ServerKind::Ringkeeper { binary: "/rk".into() };
        let mut plan =
            EnsemblePlan::new([apache(), ringkeeper.clone(), apache(), ringkeeper]).with_roles(2, 1);
        plan.extra_config = "x=1".into();
        let ports: Vec<MemberPorts> =
            (0..4).map(|i| MemberPorts { client: 10 + i, peer: 20 + i, election: 30 + i }).collect();
        let config = |me| plan.member_config(me, &ports, None, Path::new("/d"));
        let voter = config(0);
        assert!(voter.starts_with(DEFAULT_COMMON_CONFIG) && voter.ends_with("x=1\n"), "{voter}");
        assert!(!voter.contains("protocol") && !voter.contains("server.4"), "{voter}");
        assert!(voter.contains("server.3=127.0.0.1:22:32:observer;127.0.0.1:12\n"), "{voter}");
        assert!(config(1).contains("ringkeeper.quorum.protocol=apache\n"));
        assert!(config(2).contains("peerType=observer\n"));
        let spare = config(3);
        assert!(
            spare.contains("server.4=127.0.0.1:23:33;127.0.0.1:13\n") && spare.contains("server.1="),
            "{spare}"
        );
    }
}
