//! The file side of an ensemble member: what the engine's [`ringkeeper_engine::replica::Node`]
//! (processor + ZAB peer + hold gate + learner relay, run by the data role on the "ZAB core"
//! of DESIGN.md) needs from disk at start-up, and the files its effects write.
//!
//! In: zoo.cfg, dataDir and the log. Out: the peer's recovered state ([`prepare`]), epochs
//! and TRUNC/SNAP markers written durably, restarts from disk.
//!
//! - Start-up ([`prepare`]): reads `acceptedEpoch`/`currentEpoch` (Apache's files in dataDir),
//!   carries out a truncation left pending by a TRUNC (`truncate.after`), and gives the peer
//!   its recent history from the log.
//! - Leader and learner rules (proposals, the hold gate, the learner relay and its
//!   per-connection FIFO) are the node's: see [`ringkeeper_engine::replica`].
//! - A TRUNC (the log holds txns the new leader never had) is carried out by recording the
//!   zxid in `truncate.after`, then restarting this process from disk (`exec` of itself), as
//!   Apache reloads its database after a sync that rewinds it. A SNAP likewise: the marker
//!   `install.after-restart` first, then the leader's image as `snapshot.<zxid>` (with its epoch
//!   ends beside it), restart; the start-up then drops every other snapshot and the whole log
//!   (a crash before the image is complete leaves the old state intact).
//!
//! - Dynamic reconfig ([`adopt_membership`], [`ConfigFiles::record`]): a member starts with
//!   the configuration its files give (zoo.cfg's `server.N` lines or its `dynamicConfigFile`),
//!   as Apache does, not the one its recovered tree holds in `/zookeeper/config` (which may
//!   come from a reconfig logged but never committed); each configuration committed
//!   or learned ([`ConfigFiles::record`]) is written as Apache 3.8 writes it: `<zoo.cfg>.dynamic.<hex
//!   version>`, and zoo.cfg rewritten without its `server.N` lines, naming that file in
//!   `dynamicConfigFile` (the original kept as `zoo.cfg.bak`, [`back_up_static_config`]). The
//!   version the first leader gives a configuration no reconfig made (no txn, as Apache) is
//!   found again at start in the file zoo.cfg names (or, if zoo.cfg was replaced, in the file
//!   written for the same members).
//!
//! Invariants: no client sees a write before a quorum has it durably; a learner applies only
//! committed txns, in zxid order; a server that is not serving (looking, syncing) has no
//! client connections.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use ringkeeper_engine::request::Processor;
use ringkeeper_engine::txn::TxnBytes;
use ringkeeper_engine::zab::{epoch_of, Member, Membership, PeerConfig, Recovered, ServerId, SharedTxn};

use crate::config::{Config, PeerRole, QuorumProtocol};
use crate::data_files;
use crate::peer_net::PeerAddress;
use crate::recovery::{never_written, read_aligned, scan_segment, segment_paths};

/// Everything the data role needs to run as an ensemble member.
pub struct ReplicaSetup {
    pub peer_config: PeerConfig,
    pub recovered: Recovered,
    pub listen: SocketAddr,
    /// Every other member's peer address as written (host names are resolved by the peer
    /// links on each connection attempt, see [`crate::peer_net`]).
    pub peers: Vec<(ServerId, PeerAddress)>,
    pub data_dir: PathBuf,
    /// `reconfigEnabled`: peers not yet in the configuration may connect (a server joining).
    pub reconfig_enabled: bool,
    /// Where committed configurations are written.
    pub config_files: ConfigFiles,
    /// Set with `ringkeeper.quorum.protocol=apache`: the member speaks Apache's protocol.
    pub apache: Option<ApacheSetup>,
    /// `sslQuorum`: the mutual TLS of the peer links.
    pub quorum_tls: Option<std::sync::Arc<crate::quorum_tls::QuorumTls>>,
    /// `quorum.auth.enableSasl`: the credentials of the peer links.
    pub quorum_sasl: Option<std::sync::Arc<crate::config::QuorumSasl>>,
}

/// The members zoo.cfg (or its `dynamicConfigFile`) lists, at the config's version.
pub fn configured_membership(config: &Config) -> Membership {
    let members = config
        .servers
        .iter()
        .map(|s| {
            let member = Member {
                id: s.id,
                host: s.host.clone(),
                peer_port: s.peer_port,
                election_port: s.election_port,
                observer: s.role == PeerRole::Observer,
                client: s
                    .client_port
                    .map(|port| (s.client_address.clone().unwrap_or_else(|| "0.0.0.0".into()), port)),
            };
            (s.id, member)
        })
        .collect();
    Membership { members, version: config.config_version }
}

/// The version a leader gave the configuration the files list at version 0 (Apache's first
/// leader versions it with its epoch's first zxid, and rewrites zoo.cfg to name the dynamic
/// file; ringkeeper leaves zoo.cfg alone and finds the file it wrote for the same members,
/// `<dynamic base>.<hex version>`, at the next start). `configured` itself if there is none.
fn versioned_configuration(base: &Path, configured: Membership) -> Membership {
    if configured.version != 0 {
        return configured;
    }
    let (Some(dir), Some(prefix)) = (base.parent(), base.file_name().and_then(|n| n.to_str())) else {
        return configured;
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else { return configured };
    let newest = entries
        .flatten()
        .filter_map(|entry| {
            let version = dynamic_config_version(prefix, entry.file_name().to_str()?)?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let members = Membership::parse(&text).ok()?.members;
            (version > 0 && members == configured.members).then_some(version)
        })
        .max();
    match newest {
        Some(version) => Membership { version, ..configured },
        None => configured,
    }
}

/// Starts with the configuration the files give (zoo.cfg or its dynamic file: the newest
/// committed or learned, [`ringkeeper_engine::replica::start_with_committed_configuration`]),
/// puts it in `/zookeeper/config` and gives the peer its voters, observers, addresses and
/// configuration version.
pub fn adopt_membership(config: &Config, setup: &mut ReplicaSetup, processor: &mut Processor) {
    let membership = versioned_configuration(&setup.config_files.dynamic_base, configured_membership(config));
    ringkeeper_engine::replica::start_with_committed_configuration(
        processor,
        &mut setup.peer_config,
        &membership,
        crate::data_role::now_ms(),
    );
    let my_id = setup.peer_config.my_id;
    if !setup.reconfig_enabled {
        // Without reconfigEnabled no configuration is passed to peers or taken from them
        // (Apache's `processReconfig` does nothing then).
        setup.peer_config.members.clear();
    }
    setup.peers = membership
        .members
        .values()
        .filter(|m| m.id != my_id)
        .map(|m| (m.id, PeerAddress { host: m.host.clone(), port: m.peer_port }))
        .collect();
    if !membership.members.contains_key(&my_id) {
        log::warn!(
            "server {my_id} is not a member of configuration {:x}: not taking part",
            membership.version
        );
    }
}

/// The files a member's committed configurations go to, as Apache 3.8's
/// (`QuorumPeer.setQuorumVerifier` with `writeToDisk`).
#[derive(Debug, Clone)]
pub struct ConfigFiles {
    /// zoo.cfg (none when the configuration came from elsewhere).
    pub static_file: Option<PathBuf>,
    /// Configurations are written as `<this>.<hex version>`: `<zoo.cfg>.dynamic`.
    pub dynamic_base: PathBuf,
    pub my_id: ServerId,
}

impl ConfigFiles {
    /// Writes a committed configuration as Apache does, durably: the dynamic file
    /// `<zoo.cfg>.dynamic.<hex version>` (its `server.N` lines sorted, no version line), then
    /// zoo.cfg rewritten to name it ([`crate::config::static_config_text`]: the `server.N`
    /// lines, and `clientPort` if this member's line names its client address, leave it).
    /// Returns the dynamic file.
    pub fn record(&self, membership: &Membership) -> anyhow::Result<PathBuf> {
        let path = dynamic_config_path(&self.dynamic_base, membership.version);
        let text = membership.render();
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("version=")).collect();
        lines.sort_unstable();
        data_files::replace_path_durably(&path, lines.join("\n").as_bytes())?;
        if let Some(static_file) = &self.static_file {
            let dynamic = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            let current = std::fs::read_to_string(static_file)
                .with_context(|| format!("reading {}", static_file.display()))?;
            let erase_client_port = membership.members.get(&self.my_id).is_some_and(|m| m.client.is_some());
            let edited = crate::config::static_config_text(
                &current,
                &dynamic.display().to_string(),
                erase_client_port,
            );
            data_files::replace_path_durably(static_file, edited.as_bytes())?;
        }
        Ok(path)
    }
}

/// With reconfigEnabled, a member whose zoo.cfg still lists the servers itself (no
/// `dynamicConfigFile`) keeps a copy as `<zoo.cfg>.bak` before the file is ever rewritten
/// (Apache's `QuorumPeerConfig.backupOldConfig`, at every such start).
pub fn back_up_static_config(config: &Config) -> anyhow::Result<()> {
    let Some(static_file) = &config.config_file else { return Ok(()) };
    if !config.reconfig_enabled || config.dynamic_config_file.is_some() || config.servers.len() < 2 {
        return Ok(());
    }
    let text = std::fs::read(static_file).with_context(|| format!("reading {}", static_file.display()))?;
    let backup = PathBuf::from(format!("{}.bak", static_file.display()));
    data_files::replace_path_durably(&backup, &text)?;
    Ok(())
}

/// The file a configuration of `version` is written to and found again in at start:
/// `<base>.<hex version>` (Apache's naming).
fn dynamic_config_path(base: &Path, version: i64) -> PathBuf {
    PathBuf::from(format!("{}.{version:x}", base.display()))
}

/// The version in `file_name` if it is a [`dynamic_config_path`] of a base named `base_name`.
fn dynamic_config_version(base_name: &str, file_name: &str) -> Option<i64> {
    i64::from_str_radix(file_name.strip_prefix(base_name)?.strip_prefix('.')?, 16).ok()
}

/// The name dynamic config files are derived from: `<zoo.cfg>.dynamic`, whatever the
/// `dynamicConfigFile` is called (Apache's `makeDynamicConfigFilename`).
fn dynamic_config_base(config: &Config) -> PathBuf {
    match &config.config_file {
        Some(cfg) => PathBuf::from(format!("{}.dynamic", cfg.display())),
        None => config.data_dir.join("zoo.cfg.dynamic"),
    }
}

/// The addresses an Apache-protocol member needs ([`crate::apache_quorum`]).
#[derive(Debug, Clone)]
pub struct ApacheSetup {
    /// This server's election port.
    pub election_listen: SocketAddr,
    /// Every member, as zoo.cfg lists them ([`configured_membership`]).
    pub membership: Membership,
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}:{port}"))?
        .next()
        .ok_or_else(|| anyhow!("{host}:{port} resolves to no address"))
}

/// How often this server looks its own `server.N` name up again while it does not resolve.
const OWN_NAME_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// This server's own peer address, waiting until its name resolves: a Kubernetes StatefulSet
/// member may start before its own name is in DNS, and exiting would only crash-loop it. Says
/// so once, and once more when the name resolves. (SIGTERM still stops the wait.)
fn own_address(my_id: ServerId, host: &str, port: u16) -> SocketAddr {
    let mut failed = false;
    loop {
        match resolve(host, port) {
            Ok(addr) => {
                if failed {
                    log::info!("server.{my_id} (this server): {host}:{port} resolves to {addr} now");
                }
                return addr;
            }
            Err(e) if !failed => {
                failed = true;
                log::warn!(
                    "server.{my_id} (this server): cannot resolve its own address {host}:{port} ({e:#}); \
                     retrying every {OWN_NAME_RETRY:?} until it does (or set quorumListenOnAllIPs=true)"
                );
            }
            Err(_) => {}
        }
        std::thread::sleep(OWN_NAME_RETRY);
    }
}

/// An epoch file's number (0 if there is none), made durable before it is acted on.
fn read_epoch(dir: &Path, name: &str) -> anyhow::Result<u32> {
    match data_files::read_durably(dir, name)? {
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| anyhow!("{}: not an epoch number: {text:?}", dir.join(name).display())),
        None => Ok(0),
    }
}

/// Writes `acceptedEpoch` and/or `currentEpoch` durably (temp file, fsync, rename, dir
/// fsync), only the ones that differ from `before` (each fsync is on the election's path).
pub fn persist_epochs(dir: &Path, before: (u32, u32), accepted: u32, current: u32) -> std::io::Result<()> {
    let changed =
        [(data_files::ACCEPTED_EPOCH, before.0, accepted), (data_files::CURRENT_EPOCH, before.1, current)];
    for (name, _, value) in changed.iter().filter(|(_, old, new)| old != new) {
        data_files::replace_durably(dir, name, format!("{value}\n").as_bytes())?;
    }
    Ok(())
}

/// Records a TRUNC to carry out at the next start.
pub fn record_truncation(dir: &Path, zxid: i64) -> std::io::Result<()> {
    data_files::replace_durably(dir, data_files::TRUNCATE_MARKER, format!("{zxid:#x}\n").as_bytes())
}

/// Carries out a TRUNC recorded by [`record_truncation`]: every log record after the zxid is
/// cut (and snapshots that may hold them removed), then the marker goes.
fn carry_out_truncation(data_dir: &Path, log_dir: &Path) -> anyhow::Result<()> {
    let marker = data_dir.join(data_files::TRUNCATE_MARKER);
    let Ok(text) = std::fs::read_to_string(&marker) else { return Ok(()) };
    let zxid = i64::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .map_err(|_| anyhow!("{}: not a zxid: {text:?}", marker.display()))?;
    log::warn!("cutting the transaction log after zxid {zxid:#x} (the leader never had the txns after it)");
    crate::log_sync::truncate_after(data_dir, log_dir, zxid)?;
    data_files::remove_durably(data_dir, data_files::TRUNCATE_MARKER)?;
    Ok(())
}

/// Records a SNAP from the leader (validated image of the whole state at its zxid) to be
/// installed at the next start.
pub fn record_installation(dir: &Path, image: &[u8], epoch_ends: &[i64]) -> anyhow::Result<i64> {
    let mut aligned = TxnBytes::with_capacity(image.len());
    aligned.extend_from_slice(image);
    let (header, _) =
        ringkeeper_engine::snapshot::decode(&aligned).map_err(|e| anyhow!("the leader's snapshot: {e}"))?;
    let name = data_files::snapshot_file_name(header.zxid);
    data_files::replace_durably(dir, data_files::INSTALL_MARKER, format!("{name}\n").as_bytes())?;
    let ends: String = epoch_ends.iter().map(|z| format!("{z:#x}\n")).collect();
    data_files::replace_durably(dir, &data_files::epoch_ends_name(&name), ends.as_bytes())?;
    data_files::replace_durably(dir, &name, image)?;
    Ok(header.zxid)
}

/// Carries out a recorded SNAP: keeps only the installed snapshot, removes every log segment.
fn carry_out_installation(data_dir: &Path, log_dir: &Path) -> anyhow::Result<()> {
    let marker = data_dir.join(data_files::INSTALL_MARKER);
    let Ok(text) = std::fs::read_to_string(&marker) else { return Ok(()) };
    let name = text.trim().to_string();
    let installed = data_dir.join(&name);
    if crate::snapshot_store::MappedSnapshot::open(&installed).is_ok() {
        log::warn!("installing {name} from the leader: other snapshots and the whole log go");
        for (_, path) in crate::snapshot_store::snapshot_paths(data_dir)? {
            if path != installed {
                crate::snapshot_store::remove_snapshot(&path)?;
            }
        }
        for (_, path) in segment_paths(log_dir)? {
            std::fs::remove_file(&path)?;
        }
        data_files::sync_dir(log_dir)?;
    } else {
        log::warn!(
            "{}: the snapshot it names is incomplete (crash while receiving it); keeping the old state",
            marker.display()
        );
    }
    data_files::remove_durably(data_dir, data_files::INSTALL_MARKER)?;
    Ok(())
}

/// The epoch ends stored beside the newest snapshot, if it was installed from a leader.
fn snapshot_epoch_ends(data_dir: &Path) -> anyhow::Result<(i64, Vec<i64>)> {
    let Some((zxid, path)) = crate::snapshot_store::snapshot_paths(data_dir)?.into_iter().last() else {
        return Ok((0, Vec::new()));
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ends_path = data_dir.join(data_files::epoch_ends_name(&name));
    let ends = std::fs::read_to_string(&ends_path)
        .map(|text| {
            text.lines()
                .filter_map(|l| i64::from_str_radix(l.trim().trim_start_matches("0x"), 16).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok((zxid, ends))
}

/// What the log tells the peer: its most recent txns, the zxid they follow, and per epoch
/// the last zxid.
struct LoggedHistory {
    txns: Vec<(i64, SharedTxn)>,
    base: i64,
    epoch_ends: Vec<i64>,
}

/// Per epoch, the last zxid of the log, and its most recent txns (for DIFF).
fn read_history(log_dir: &Path, bounds: &PeerConfig) -> anyhow::Result<LoggedHistory> {
    let mut history: VecDeque<(i64, SharedTxn)> = VecDeque::new();
    let mut history_bytes = 0;
    let mut base = 0;
    let mut ends: Vec<i64> = Vec::new();
    let segments = segment_paths(log_dir)?;
    let count = segments.len();
    for (index, (_, path)) in segments.into_iter().enumerate() {
        let bytes = read_aligned(&path)?;
        if index + 1 == count && never_written(&bytes) {
            // Left by a crash right after the segment was created; recovery removes it.
            continue;
        }
        let scanned = scan_segment(&path, &bytes, |record| {
            match ends.last_mut() {
                Some(last) if epoch_of(*last) == epoch_of(record.zxid) => *last = record.zxid,
                _ => ends.push(record.zxid),
            }
            let mut txn = TxnBytes::new();
            txn.extend_from_slice(record.payload);
            history_bytes += txn.len();
            history.push_back((record.zxid, Arc::new(txn)));
            while bounds.history_over(history.len(), history_bytes) {
                let Some((z, oldest)) = history.pop_front() else { break };
                history_bytes -= oldest.len();
                base = z;
            }
        })?;
        if index == 0 && history.len() as u64 == scanned.records {
            // Older segments were purged (a snapshot covers them): the history starts after
            // the last zxid of the segment before this one, not at 0.
            base = scanned.header.prev_zxid;
        }
    }
    Ok(LoggedHistory { txns: history.into(), base, epoch_ends: ends })
}

/// The ensemble setup for `config`, or None for a standalone server. Carries out a pending
/// truncation first (before the log is replayed).
pub fn prepare(config: &Config) -> anyhow::Result<Option<ReplicaSetup>> {
    if config.servers.len() < 2 {
        return Ok(None);
    }
    let my_id = config.my_id.ok_or_else(|| anyhow!("an ensemble member needs dataDir/myid"))?;
    back_up_static_config(config)?;
    carry_out_truncation(&config.data_dir, config.log_dir())?;
    carry_out_installation(&config.data_dir, config.log_dir())?;
    let me =
        config.servers.iter().find(|s| s.id == my_id).ok_or_else(|| anyhow!("myid {my_id} is not listed"))?;
    let listen = if config.quorum_listen_on_all_ips {
        log::info!("quorumListenOnAllIPs=true: listening for peers on every address, port {}", me.peer_port);
        SocketAddr::from(([0, 0, 0, 0], me.peer_port))
    } else {
        own_address(my_id, &me.host, me.peer_port)
    };
    let mut peers = Vec::new();
    for s in config.servers.iter().filter(|s| s.id != my_id) {
        peers.push((s.id, PeerAddress { host: s.host.clone(), port: s.peer_port }));
    }
    let voters = config.servers.iter().filter(|s| s.role == PeerRole::Participant).map(|s| s.id).collect();
    let observers = config.servers.iter().filter(|s| s.role == PeerRole::Observer).map(|s| s.id).collect();
    let mut peer_config = PeerConfig::new(my_id, voters, observers);
    peer_config.heartbeat_ms = config.zab_heartbeat_ms as i64;
    peer_config.peer_timeout_ms = config.zab_peer_timeout_ms as i64;
    peer_config.finalize_wait_ms = config.zab_finalize_wait_ms as i64;
    peer_config.election_retry_ms = config.zab_election_retry_ms as i64;
    peer_config.sync_timeout_ms = config.init_limit as i64 * config.tick_time_ms as i64;
    peer_config.history_max = config.zab_history_max;
    peer_config.history_bytes_max = config.zab_history_bytes_max;
    peer_config.versions_initial_config =
        config.reconfig_enabled && config.quorum_protocol == QuorumProtocol::Ringkeeper;
    let LoggedHistory { txns: history, base: mut history_base, mut epoch_ends } =
        read_history(config.log_dir(), &peer_config)?;
    let (snapshot_zxid, snapshot_ends) = snapshot_epoch_ends(&config.data_dir)?;
    if history.is_empty() {
        // Only a snapshot: the state starts there.
        history_base = history_base.max(snapshot_zxid);
    }
    if !snapshot_ends.is_empty() {
        // An installed snapshot knows the epochs before its log; the log's own ends follow.
        let first_logged = epoch_ends.first().copied().unwrap_or(i64::MAX);
        let mut ends: Vec<i64> = snapshot_ends
            .into_iter()
            .filter(|z| *z <= snapshot_zxid && epoch_of(*z) < epoch_of(first_logged))
            .collect();
        ends.append(&mut epoch_ends);
        epoch_ends = ends;
    } else if history.is_empty() && snapshot_zxid > 0 {
        epoch_ends = vec![snapshot_zxid];
    }
    let recovered = Recovered {
        accepted_epoch: read_epoch(&config.data_dir, data_files::ACCEPTED_EPOCH)?,
        current_epoch: read_epoch(&config.data_dir, data_files::CURRENT_EPOCH)?,
        history_base,
        history,
        epoch_ends,
    };
    let apache = match config.quorum_protocol {
        QuorumProtocol::Ringkeeper => None,
        QuorumProtocol::Apache => {
            // It follows (or observes) Apache leaders, and as a voter may lead Apache
            // learners (`engine/src/apache/quorum/learner_handler.rs`).
            peer_config.apache_learners = true;
            // Apache's leader pings every tickTime / 2 and drops a learner silent for
            // syncLimit ticks; the same bound tells this member its leader is gone.
            peer_config.peer_timeout_ms = config.tick_time_ms as i64 * config.sync_limit.max(1) as i64;
            Some(ApacheSetup {
                election_listen: resolve(&me.host, me.election_port)?,
                membership: configured_membership(config),
            })
        }
    };
    Ok(Some(ReplicaSetup {
        peer_config,
        recovered,
        listen,
        peers,
        data_dir: config.data_dir.clone(),
        reconfig_enabled: config.reconfig_enabled,
        config_files: ConfigFiles {
            static_file: config.config_file.clone(),
            dynamic_base: dynamic_config_base(config),
            my_id,
        },
        apache,
        quorum_tls: crate::quorum_tls::QuorumTls::from_config(config)?,
        quorum_sasl: config.quorum_sasl.clone().map(std::sync::Arc::new),
    }))
}

/// The session-password secret every member of an ensemble shares (a session created
/// through one server is resumed on another): [`ringkeeper_engine::session::ensemble_secret`]
/// of the member ids and the bytes of `ringkeeper.session.secretFile` (none when unset).
pub fn shared_session_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    let shared = match &config.session_secret_file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("ringkeeper.session.secretFile: cannot read {}", path.display()))?,
        None => Vec::new(),
    };
    // With reconfig the members change (a joining server lists more than the others): the
    // secret must not depend on them.
    let ids: Vec<u64> =
        if config.reconfig_enabled { Vec::new() } else { config.servers.iter().map(|s| s.id).collect() };
    Ok(ringkeeper_engine::session::ensemble_secret(&ids, &shared))
}

/// Restarts this process from disk (same program, same arguments): used after recording a
/// TRUNC. Never returns.
pub fn restart_from_disk(why: &str) -> ! {
    use std::os::unix::process::CommandExt;
    log::warn!("restarting from disk: {why}");
    // Nothing of this incarnation may survive the exec: an inherited listener would keep
    // taking connections (and peer traffic) that nobody reads.
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
        for fd in fds.into_iter().filter(|fd| *fd > 2) {
            // SAFETY: fcntl on a descriptor number only changes its close-on-exec flag.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
    log::error!("FATAL: could not restart ({err}); exiting");
    std::process::exit(71)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringkeeper_engine::log as txlog;
    use ringkeeper_engine::txn::{self, Txn, TxnBody, TxnOp};

    #[test]
    fn a_last_segment_left_unwritten_by_a_crash_adds_nothing_to_the_history() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let mut segment =
            txlog::encode_segment_header(&txlog::SegmentHeader { first_zxid: 1, prev_zxid: 0 }).to_vec();
        for zxid in 1..=3 {
            let txn = txn::encode(&Txn {
                session_id: 1,
                cxid: 1,
                zxid,
                time_ms: 0,
                body: TxnBody::Op(TxnOp::SetData { path: "/".into(), data: Vec::new(), version: 0 }),
            });
            txlog::append_record(&mut segment, zxid, &txn);
        }
        std::fs::write(dir.join(txlog::segment_file_name(1)), segment).unwrap();
        // Killed between renaming the zero-filled spare into place and writing its header.
        std::fs::write(dir.join(txlog::segment_file_name(0x1_0000_0001)), vec![0u8; 8192]).unwrap();
        let bounds = PeerConfig { history_max: 10, ..PeerConfig::new(1, vec![1], Vec::new()) };
        let history = read_history(dir, &bounds).unwrap();
        assert_eq!(history.txns.iter().map(|(zxid, _)| *zxid).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(history.epoch_ends, [3]);
        // Bounded in bytes: the newest txn stays, the history starts after the last one dropped.
        let one_byte = PeerConfig { history_bytes_max: 1, ..bounds };
        let history = read_history(dir, &one_byte).unwrap();
        assert_eq!(history.txns.iter().map(|(zxid, _)| *zxid).collect::<Vec<_>>(), [3]);
        assert_eq!(history.base, 2);
        assert_eq!(history.epoch_ends, [3]);
    }
}
