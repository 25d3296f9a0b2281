//! Deterministic simulator of a ringkeeper ensemble: the engine's production replica
//! ([`Node`]: request processor, ZAB peer, hold gate, learner relay) for N voters
//! (+ observers) on a simulated network and disk, driven by one `u64` seed, with clients that
//! speak the ZooKeeper wire protocol (jute frames: connect or resume, create, setData, sync, getData).
//!
//! In: a seed and [`SimOptions`]. Out: `Ok(SimStats)` or a [`SimFailure`] naming the seed, the
//! simulated time, the broken invariant and the last events (replay with the same seed gives
//! the same run; `RINGKEEPER_SIM_TRACE=1` prints every event).
//!
//! The world: links are FIFO like TCP, but messages are delayed, sometimes reordered, lost or
//! duplicated; partitions cut groups apart
//! (sometimes with a connection reset, sometimes silently); servers crash (losing every
//! unsynced log write) and restart from their durable snapshot and log; each server's log is
//! made durable by group "fsyncs" after a random delay. A TRUNC or SNAP is carried out as the
//! server does: the disk is changed, then the server restarts from it. Each client owns one
//! key: it connects to a serving server (resuming its session), writes the key (create, then
//! setData) and reads it back (plain, or `sync` then read), one request at a time, through whichever server it is on
//! (a learner relays the write to its leader).
//!
//! Invariants checked after every step:
//! - at most one established leader per epoch;
//! - a committed zxid has one txn everywhere, and an established leader holds every
//!   committed txn (committed txns are never lost);
//! - a serving learner's state holds only committed txns;
//! - equal tree digests at equal zxids on every server;
//! - a client never reads its key older than its last acknowledged write, nor a value never
//!   written.
//!
//! At the end, the whole client history (every request, its reply or an unknown outcome) goes
//! through [`crate::linearizability`]: writes, creates and synced reads linearizable, plain
//! reads held to the session rules (never going back, own writes seen).
//!
//! After the faulty phase everything heals and the run must converge: one leader, every
//! server serving, equal applied zxids and digests, every committed txn everywhere.
//!
//! With [`SimOptions::reconfig`], dynamic reconfig runs through the faults: an admin session
//! (skipACL) sends `reconfig` requests to a serving server, removing a voter (the leader
//! too) or adding the one removed back; each server keeps the configuration files it wrote
//! (`zoo.cfg.dynamic.<version>`, durable) and starts, as the server does, with the newest of
//! zoo.cfg's, those files' and its tree's `/zookeeper/config`. Convergence then asks it of
//! the members of the final configuration (a removed server may have stopped taking part).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use crate::linearizability::{self, Call, Op, Return};
use ringkeeper_engine::conn::ClientConn;
use ringkeeper_engine::proto::{
    xid, Acl, ConnectRequest, ConnectResponse, CreateRequest, ErrorCode, GetDataResponse, Id, Jute,
    JuteReader, OpCode, PathRequest, PathWatchRequest, ReconfigRequest, ReplyHeader, RequestHeader,
    SetDataRequest, StatResponse,
};
use ringkeeper_engine::replica::gate::Limits;
use ringkeeper_engine::replica::{start_with_committed_configuration, Delivery, Effect, Input, Node};
use ringkeeper_engine::request::{framed, Jute2, Processor, ProcessorConfig};
use ringkeeper_engine::txn::{self, TxnBytes};
use ringkeeper_engine::zab::{
    counter_of, epoch_of, quorum_size, Membership, Msg, Peer, PeerConfig, Recovered, Relay, ServerId,
    ServerState, SharedTxn,
};

/// The shape of one simulated run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub voters: usize,
    pub observers: usize,
    /// Simulated milliseconds with faults.
    pub faulty_ms: i64,
    /// Simulated milliseconds after healing in which the ensemble must converge.
    pub calm_ms: i64,
    pub clients: usize,
    /// Zxid counter limit (small values exercise the epoch roll-over).
    pub counter_limit: u32,
    /// History kept for DIFF (small values force SNAP).
    pub history_max: usize,
    /// A disk that acknowledges fsyncs it never did: a crash loses the whole log. Only for
    /// proving the checker catches lost commits; never a valid run.
    pub lying_disk: bool,
    /// Adds one stale synced read of client 0's key to the client history before it is
    /// checked. Only for proving the history check can fail; never a valid run.
    pub stale_read_added: bool,
    /// `reconfigEnabled` and `skipACL`, with an admin reconfiguring the voters throughout.
    pub reconfig: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            voters: 3,
            observers: 0,
            faulty_ms: 2_500,
            calm_ms: 1_500,
            clients: 4,
            counter_limit: u32::MAX - 1,
            history_max: 100_000,
            lying_disk: false,
            stale_read_added: false,
            reconfig: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    pub events: u64,
    pub committed: usize,
    pub acked_writes: u64,
    pub reads: u64,
    pub elections: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_sent: u64,
    pub truncations: u64,
    /// Reconfigs sent, and those answered Ok.
    pub reconfigs_sent: u64,
    pub reconfigs_done: u64,
}

/// A broken invariant.
#[derive(Debug, Clone)]
pub struct SimFailure {
    pub seed: u64,
    pub at_ms: i64,
    pub what: String,
    pub trace: Vec<String>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} failed at {} ms: {}", self.seed, self.at_ms, self.what)?;
        writeln!(f, "replay: RINGKEEPER_SIM_SEED={} (RINGKEEPER_SIM_TRACE=1 prints every event)", self.seed)?;
        writeln!(f, "last events:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// SplitMix64: small, fast, and the same on every machine (also drives the generated
/// histories of the linearizability checker's self-test and the Jepsen-style test).
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// What travels on a peer link.
#[derive(Debug, Clone)]
enum Wire {
    Zab(Msg),
    Relay(Relay),
}

enum What {
    Deliver { from: ServerId, to: ServerId, to_incarnation: u32, wire: Wire },
    LinkDown { at: ServerId, peer: ServerId, incarnation: u32 },
    PeerTick(ServerId),
    Tick(ServerId),
    Fsync { node: ServerId, incarnation: u32 },
    ClientStep,
    Reconfig,
    Fault,
    Restart(ServerId),
    Heal,
}

/// A snapshot on a server's disk (installed from a leader's SNAP).
#[derive(Clone)]
struct StoredSnapshot {
    zxid: i64,
    image: Arc<Vec<u8>>,
    epoch_ends: Vec<i64>,
}

/// One server: its process (the node) and its disk.
struct Server {
    id: ServerId,
    alive: bool,
    incarnation: u32,
    node: Node,
    snapshot: Option<StoredSnapshot>,
    durable_log: Vec<(i64, SharedTxn)>,
    unsynced: Vec<(i64, SharedTxn)>,
    fsync_scheduled: bool,
    accepted_epoch: u32,
    current_epoch: u32,
    next_conn: u64,
    /// The configuration files written (durably) for each configuration that became active.
    config_files: Vec<Membership>,
}

impl Server {
    fn log(&self) -> impl Iterator<Item = &(i64, SharedTxn)> {
        self.durable_log.iter().chain(self.unsynced.iter())
    }
    fn durable_zxid(&self) -> i64 {
        self.durable_log.last().map(|(z, _)| *z).or(self.snapshot.as_ref().map(|s| s.zxid)).unwrap_or(0)
    }
    fn role(&self) -> ServerState {
        self.node.role().state
    }
    fn serving(&self) -> bool {
        self.alive && self.node.role().serving
    }
    fn applied(&self) -> i64 {
        self.node.processor().last_zxid()
    }
}

/// A request a client waits for (`op`: its entry in the client history).
#[derive(Debug, Clone, Copy)]
enum Pending {
    Write {
        xid: i32,
        value: u64,
        op: usize,
    },
    /// A read of client `owner`'s key.
    Read {
        xid: i32,
        op: usize,
        owner: usize,
    },
    /// The `sync` of a synced read (of any client's key).
    Sync {
        xid: i32,
        op: usize,
        owner: usize,
    },
    /// The `sync` was answered: the read follows.
    Synced {
        op: usize,
        owner: usize,
    },
}

/// A client's connection to one server's process.
#[derive(Debug, Clone, Copy)]
struct Link {
    server: ServerId,
    incarnation: u32,
    conn: ClientConn,
    /// Set once the ConnectResponse arrived.
    established: bool,
    since: i64,
}

struct Client {
    key: String,
    session: Option<(i64, Vec<u8>)>,
    link: Option<Link>,
    pending: Option<Pending>,
    created: bool,
    /// Values the key may hold: the last acknowledged one, then unknown outcomes after it.
    allowed: Vec<Option<u64>>,
    last_seen: i64,
    next_value: u64,
    next_xid: i32,
}

/// The reconfiguring admin's connection and the reconfig it waits for (its xid).
#[derive(Debug, Clone, Copy)]
struct Admin {
    link: Link,
    pending: Option<i32>,
    next_xid: i32,
}

struct Scheduled {
    at: i64,
    seq: u64,
    what: What,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap pops the earliest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct World {
    seed: u64,
    opts: SimOptions,
    rng: Rng,
    now: i64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    servers: Vec<Server>,
    /// Group number of each server while partitioned.
    partition: Option<Vec<u8>>,
    faults_on: bool,
    writes_on: bool,
    clients: Vec<Client>,
    admin: Option<Admin>,
    committed: BTreeMap<i64, u64>,
    digests: HashMap<i64, u64>,
    leaders: HashMap<u32, ServerId>,
    /// Servers whose last role change made them a serving leader.
    serving_leaders: BTreeSet<ServerId>,
    /// Latest delivery time scheduled per (from, to) link, to keep links FIFO.
    link_clock: HashMap<(ServerId, ServerId), i64>,
    stats: SimStats,
    trace: VecDeque<String>,
    print_trace: bool,
    /// Every client request, with its reply (none: outcome unknown), checked at the end.
    history: Vec<Op>,
    /// Orders history events: strictly increasing in simulated real time.
    clock: u64,
}

const PEER_TICK_MS: i64 = 5;
const TICK_MS: i64 = 50;
const TRACE_KEEP: usize = 400;
/// The session-password secret every member shares.
const SECRET: &[u8] = b"sim session secret";
/// A client gives up on a request (and its connection) after this long.
const CLIENT_TIMEOUT_MS: i64 = 400;

fn txn_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn peer_config(opts: &SimOptions, id: ServerId) -> PeerConfig {
    let voters = (1..=opts.voters as u64).collect();
    let observers = (opts.voters as u64 + 1..=(opts.voters + opts.observers) as u64).collect();
    let mut cfg = PeerConfig::new(id, voters, observers);
    cfg.heartbeat_ms = 20;
    cfg.peer_timeout_ms = 100;
    cfg.finalize_wait_ms = 20;
    cfg.election_retry_ms = 50;
    cfg.sync_timeout_ms = 600;
    cfg.counter_limit = opts.counter_limit;
    cfg.history_max = opts.history_max;
    cfg
}

/// The `server.N` line of server `id` (the simulated network needs no addresses).
fn server_line(id: ServerId, observer: bool) -> String {
    let role = if observer { "observer" } else { "participant" };
    format!("server.{id}=10.0.1.{id}:2888:3888:{role};0.0.0.0:2181")
}

/// The configuration zoo.cfg gives every server (version 0).
fn initial_membership(opts: &SimOptions) -> Membership {
    let lines: Vec<String> = (1..=(opts.voters + opts.observers) as u64)
        .map(|id| server_line(id, id > opts.voters as u64))
        .collect();
    Membership::parse(&lines.join("\n")).expect("the simulated configuration parses")
}

/// Per epoch, the last zxid of `log`.
fn epoch_ends<'a>(log: impl Iterator<Item = &'a (i64, SharedTxn)>) -> Vec<i64> {
    let mut ends: BTreeMap<u32, i64> = BTreeMap::new();
    for (z, _) in log {
        ends.insert(epoch_of(*z), *z);
    }
    ends.into_values().collect()
}

/// A request frame (payload after the length prefix).
fn request_frame(xid: i32, op: OpCode, body: &dyn Jute2) -> Vec<u8> {
    let frame = framed(|w| {
        RequestHeader { xid, op: op as i32 }.encode(w);
        body.encode_into(w);
    });
    frame[4..].to_vec()
}

fn value_of(data: &[u8]) -> Option<u64> {
    data.try_into().ok().map(u64::from_le_bytes)
}

/// The process of server `id` started from its disk: snapshot, then log replayed.
fn boot(opts: &SimOptions, id: ServerId, s: &DiskView<'_>, now: i64) -> Result<Node, String> {
    let cfg = ProcessorConfig {
        server_id: id as i64,
        reconfig_enabled: opts.reconfig,
        skip_acl: opts.reconfig,
        ..ProcessorConfig::default()
    };
    let mut processor = Processor::new(cfg, now, SECRET);
    let mut history_base = 0;
    let mut ends = Vec::new();
    if let Some(snap) = s.snapshot {
        let mut aligned = TxnBytes::with_capacity(snap.image.len());
        aligned.extend_from_slice(&snap.image);
        let (_, image) = ringkeeper_engine::snapshot::decode(&aligned)
            .map_err(|e| format!("server {id}: installed snapshot: {e}"))?;
        processor.tree = ringkeeper_engine::snapshot::restore(image, &mut processor.sessions, now)
            .map_err(|e| format!("server {id}: restoring snapshot: {e}"))?;
        history_base = snap.zxid;
        let first_logged = s.log.first().map(|(z, _)| epoch_of(*z)).unwrap_or(u32::MAX);
        ends = snap
            .epoch_ends
            .iter()
            .copied()
            .filter(|z| *z <= snap.zxid && epoch_of(*z) < first_logged)
            .collect();
    }
    for (_, t) in s.log {
        processor.replay(txn::access_trusted(t), now);
    }
    ends.extend(epoch_ends(s.log.iter()));
    let recovered = Recovered {
        accepted_epoch: s.epochs.0,
        current_epoch: s.epochs.1,
        history_base,
        history: s.log.to_vec(),
        epoch_ends: ends,
    };
    let durable = s.log.last().map(|(z, _)| *z).unwrap_or(history_base);
    let mut cfg = peer_config(opts, id);
    if opts.reconfig {
        // As `server/src/replica.rs::adopt_membership`: the configuration zoo.cfg names (the
        // newest dynamic file written, `ConfigFiles::record`; the initial one before any).
        let committed = s
            .config_files
            .iter()
            .max_by_key(|m| m.version)
            .cloned()
            .unwrap_or_else(|| initial_membership(opts));
        start_with_committed_configuration(&mut processor, &mut cfg, &committed, now);
        cfg.versions_initial_config = true;
    }
    let peer = Peer::new(cfg, recovered, now);
    Ok(Node::ensemble(processor, peer, durable, Limits::default()))
}

/// What a booting server reads from its disk.
struct DiskView<'a> {
    snapshot: Option<&'a StoredSnapshot>,
    log: &'a [(i64, SharedTxn)],
    epochs: (u32, u32),
    config_files: &'a [Membership],
}

type Check = Result<(), String>;

impl World {
    fn new(seed: u64, opts: SimOptions) -> World {
        let n = opts.voters + opts.observers;
        let servers = (1..=n as u64)
            .map(|id| {
                let disk = DiskView { snapshot: None, log: &[], epochs: (0, 0), config_files: &[] };
                Server {
                    id,
                    alive: true,
                    incarnation: 0,
                    node: boot(&opts, id, &disk, 0).expect("an empty disk boots"),
                    snapshot: None,
                    durable_log: Vec::new(),
                    unsynced: Vec::new(),
                    fsync_scheduled: false,
                    accepted_epoch: 0,
                    current_epoch: 0,
                    next_conn: 1,
                    config_files: Vec::new(),
                }
            })
            .collect();
        let clients = (0..opts.clients)
            .map(|i| Client {
                key: format!("/c{i}"),
                session: None,
                link: None,
                pending: None,
                created: false,
                allowed: vec![None],
                last_seen: 0,
                next_value: 1,
                next_xid: 1,
            })
            .collect();
        World {
            seed,
            rng: Rng(seed),
            opts,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            servers,
            partition: None,
            faults_on: true,
            writes_on: true,
            clients,
            admin: None,
            committed: BTreeMap::new(),
            digests: HashMap::new(),
            leaders: HashMap::new(),
            serving_leaders: BTreeSet::new(),
            link_clock: HashMap::new(),
            stats: SimStats::default(),
            trace: VecDeque::new(),
            print_trace: std::env::var("RINGKEEPER_SIM_TRACE").is_ok_and(|v| v == "1"),
            history: Vec::new(),
            clock: 0,
        }
    }

    /// The next history timestamp.
    fn stamp(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn at(&mut self, delay: i64, what: What) {
        self.seq += 1;
        self.queue.push(Scheduled { at: self.now + delay.max(0), seq: self.seq, what });
    }

    fn note(&mut self, line: String) {
        let line = format!("{:>6} {line}", self.now);
        if self.print_trace {
            eprintln!("{line}");
        }
        if self.trace.len() == TRACE_KEEP {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn server(&mut self, id: ServerId) -> &mut Server {
        &mut self.servers[(id - 1) as usize]
    }

    fn fail(&self, what: String) -> SimFailure {
        SimFailure { seed: self.seed, at_ms: self.now, what, trace: self.trace.iter().cloned().collect() }
    }

    fn run(mut self) -> Result<SimStats, SimFailure> {
        let ids: Vec<ServerId> = self.servers.iter().map(|s| s.id).collect();
        for id in ids {
            self.start(id).map_err(|e| self.fail(e))?;
        }
        self.at(1, What::ClientStep);
        if self.opts.reconfig {
            let first = self.rng.range(200, 500);
            self.at(first, What::Reconfig);
        }
        let first_fault = self.rng.range(100, 600);
        self.at(first_fault, What::Fault);
        let end_faults = self.opts.faulty_ms;
        let end = end_faults + self.opts.calm_ms;
        while let Some(ev) = self.queue.pop() {
            if ev.at > end {
                break;
            }
            self.now = ev.at;
            if self.faults_on && self.now >= end_faults {
                self.calm_down();
            }
            if self.writes_on && self.now >= end - self.opts.calm_ms / 3 {
                self.writes_on = false;
            }
            self.stats.events += 1;
            self.handle(ev.what).map_err(|e| self.fail(e))?;
        }
        self.converged().map_err(|e| self.fail(e))?;
        let stale;
        let history = if self.opts.stale_read_added {
            stale = linearizability::with_stale_read(&self.history, "/c0", 0)
                .ok_or_else(|| self.fail("client 0 never overwrote an acknowledged value".into()))?;
            &stale
        } else {
            &self.history
        };
        linearizability::check_linearizable(history)
            .map_err(|v| self.fail(format!("client history: {v}")))?;
        self.stats.committed = self.committed.len();
        Ok(self.stats)
    }

    /// Starts server `id`'s process (already booted) and its timers.
    fn start(&mut self, id: ServerId) -> Check {
        let now = self.now;
        let mut out = Vec::new();
        self.server(id).node.start(now, &mut out);
        let first = self.rng.range(1, PEER_TICK_MS);
        self.at(first, What::PeerTick(id));
        let first = self.rng.range(1, TICK_MS);
        self.at(first, What::Tick(id));
        self.carry_out(id, out)
    }

    /// End of the faulty phase: heal, restart everything, stop injecting faults.
    fn calm_down(&mut self) {
        self.faults_on = false;
        self.note("calm: heal all, restart all, no more faults".into());
        self.partition = None;
        let dead: Vec<ServerId> = self.servers.iter().filter(|s| !s.alive).map(|s| s.id).collect();
        for id in dead {
            self.at(0, What::Restart(id));
        }
    }

    fn handle(&mut self, what: What) -> Check {
        match what {
            What::PeerTick(id) => {
                if self.server(id).alive {
                    self.step(id, Input::PeerTick)?;
                    self.at(PEER_TICK_MS, What::PeerTick(id));
                }
            }
            What::Tick(id) => {
                if self.server(id).alive {
                    self.step(id, Input::Tick)?;
                    self.at(TICK_MS, What::Tick(id));
                }
            }
            What::Deliver { from, to, to_incarnation, wire } => {
                let s = self.server(to);
                if !s.alive || s.incarnation != to_incarnation || self.cut(from, to) {
                    return Ok(());
                }
                match wire {
                    Wire::Zab(msg) => {
                        self.note(format!("{from}->{to} {}", short(&msg)));
                        self.step(to, Input::PeerMessage { from, msg })?;
                    }
                    Wire::Relay(relay) => {
                        self.note(format!("{from}->{to} {}", short_relay(&relay)));
                        self.step(to, Input::RelayMessage { from, relay })?;
                    }
                }
            }
            What::LinkDown { at, peer, incarnation } => {
                let s = self.server(at);
                if s.alive && s.incarnation == incarnation {
                    self.note(format!("{at}: link to {peer} down"));
                    self.step(at, Input::LinkDown { peer })?;
                }
            }
            What::Fsync { node, incarnation } => self.fsync(node, incarnation)?,
            What::ClientStep => {
                self.client_step()?;
                let next = self.rng.range(1, 3);
                self.at(next, What::ClientStep);
            }
            What::Reconfig => {
                if self.faults_on {
                    self.admin_step()?;
                    let next = self.rng.range(20, 200);
                    self.at(next, What::Reconfig);
                }
            }
            What::Fault => {
                if self.faults_on {
                    self.inject_fault();
                    let next = self.rng.range(100, 700);
                    self.at(next, What::Fault);
                }
            }
            What::Restart(id) => self.restart(id)?,
            What::Heal => {
                if self.partition.take().is_some() {
                    self.note("partition healed".into());
                }
            }
        }
        Ok(())
    }

    fn cut(&self, a: ServerId, b: ServerId) -> bool {
        self.partition.as_ref().is_some_and(|g| g[(a - 1) as usize] != g[(b - 1) as usize])
    }

    fn inject_fault(&mut self) {
        let n = self.servers.len() as u64;
        match self.rng.below(3) {
            0 => {
                let id = 1 + self.rng.below(n);
                let alive = self.servers.iter().filter(|x| x.alive).count();
                // Crash a server, the leader more often than not; keep at least one alive.
                let leader =
                    self.servers.iter().find(|x| x.alive && x.role() == ServerState::Leading).map(|x| x.id);
                let id = match leader {
                    Some(l) if self.rng.chance(0.6) => l,
                    _ => id,
                };
                if self.server(id).alive && alive > 1 {
                    self.crash(id);
                    let back = self.rng.range(50, 800);
                    self.at(back, What::Restart(id));
                }
            }
            1 if self.partition.is_none() => {
                let groups: Vec<u8> = (0..n).map(|_| self.rng.below(2) as u8).collect();
                self.stats.partitions += 1;
                self.note(format!("partition {groups:?}"));
                let reset = self.rng.chance(0.5);
                self.partition = Some(groups);
                if reset {
                    self.reset_cut_links();
                }
                let heal = self.rng.range(100, 900);
                self.at(heal, What::Heal);
            }
            _ => {} // a quiet period
        }
    }

    /// A proxy that closes connections across the cut: both sides see the link go down.
    fn reset_cut_links(&mut self) {
        let ids: Vec<(ServerId, u32)> = self.servers.iter().map(|s| (s.id, s.incarnation)).collect();
        for &(a, inc) in &ids {
            for &(b, _) in &ids {
                if a != b && self.cut(a, b) {
                    let d = self.rng.range(0, 3);
                    self.at(d, What::LinkDown { at: a, peer: b, incarnation: inc });
                }
            }
        }
    }

    /// The process of `id` ends: its unsynced writes are lost (a restart from disk moves
    /// them to the durable log first); with `reset_links`, peers see their links go down.
    fn stop(&mut self, id: ServerId, reset_links: bool) {
        self.serving_leaders.remove(&id);
        let s = self.server(id);
        s.alive = false;
        s.incarnation += 1;
        s.unsynced.clear();
        s.fsync_scheduled = false;
        if reset_links {
            // The kernel resets the stopped server's connections.
            let others: Vec<(ServerId, u32)> =
                self.servers.iter().filter(|x| x.id != id).map(|x| (x.id, x.incarnation)).collect();
            for (other, inc) in others {
                let d = self.rng.range(0, 2);
                self.at(d, What::LinkDown { at: other, peer: id, incarnation: inc });
            }
        }
    }

    fn crash(&mut self, id: ServerId) {
        self.stats.crashes += 1;
        self.note(format!("crash {id}"));
        let reset = self.rng.chance(0.7);
        if self.opts.lying_disk {
            let s = self.server(id);
            s.durable_log.clear();
            s.snapshot = None;
            s.accepted_epoch = 0;
            s.current_epoch = 0;
        }
        self.stop(id, reset);
    }

    fn restart(&mut self, id: ServerId) -> Check {
        if self.server(id).alive {
            return Ok(());
        }
        self.note(format!("restart {id}"));
        let now = self.now;
        let opts = self.opts.clone();
        let s = self.server(id);
        let disk = DiskView {
            snapshot: s.snapshot.as_ref(),
            log: &s.durable_log,
            epochs: (s.accepted_epoch, s.current_epoch),
            config_files: &s.config_files,
        };
        s.node = boot(&opts, id, &disk, now)?;
        s.alive = true;
        self.check_state(id)?;
        self.start(id)
    }

    fn step(&mut self, id: ServerId, input: Input) -> Check {
        let mut out = Vec::new();
        let now = self.now;
        self.server(id).node.step(now, input, &mut out);
        self.carry_out(id, out)
    }

    /// Sends on the link `from` -> `to`. ZAB messages are sometimes lost, duplicated or
    /// overtaken (the protocol must survive a reconnecting transport); relayed client traffic
    /// is only ever lost (it rides the same TCP connection, which never duplicates or reorders,
    /// and a lost link loses what was in flight).
    fn send(&mut self, from: ServerId, to: ServerId, wire: Wire) {
        if self.faults_on && self.rng.chance(0.005) {
            return; // lost
        }
        let zab = matches!(wire, Wire::Zab(_));
        let copies = if zab && self.faults_on && self.rng.chance(0.005) { 2 } else { 1 };
        for _ in 0..copies {
            // Links are FIFO (TCP) except for an injected reordering: a message overtaken by
            // later ones.
            let mut delay = self.rng.range(0, 2);
            let reordered = zab && self.faults_on && self.rng.chance(0.01);
            if reordered {
                delay += self.rng.range(5, 40);
            }
            let link = self.link_clock.entry((from, to)).or_insert(0);
            let mut at = self.now + delay;
            if !reordered {
                at = at.max(*link);
                *link = at;
            }
            let to_incarnation = self.server(to).incarnation;
            self.at(at - self.now, What::Deliver { from, to, to_incarnation, wire: wire.clone() });
        }
    }

    fn schedule_fsync(&mut self, id: ServerId) {
        let s = self.server(id);
        if s.fsync_scheduled {
            return;
        }
        s.fsync_scheduled = true;
        let inc = s.incarnation;
        let d = self.rng.range(1, 4);
        self.at(d, What::Fsync { node: id, incarnation: inc });
    }

    fn fsync(&mut self, id: ServerId, incarnation: u32) -> Check {
        let s = self.server(id);
        if !s.alive || s.incarnation != incarnation {
            return Ok(());
        }
        s.fsync_scheduled = false;
        let unsynced = std::mem::take(&mut s.unsynced);
        s.durable_log.extend(unsynced);
        let z = s.durable_zxid();
        self.step(id, Input::Durable { zxid: z })
    }

    /// The server restarts its own process from its disk (after a TRUNC or SNAP): what the
    /// log role wrote survives (no power loss), peers see the links reset.
    fn restart_from_disk(&mut self, id: ServerId) -> Check {
        let s = self.server(id);
        let unsynced = std::mem::take(&mut s.unsynced);
        s.durable_log.extend(unsynced);
        self.stop(id, true);
        self.restart(id)
    }

    fn carry_out(&mut self, id: ServerId, effects: Vec<Effect>) -> Check {
        for effect in effects {
            if !self.server(id).alive {
                break; // restarted from disk: the rest belonged to the old process
            }
            match effect {
                Effect::PeerSend { to, msg } => {
                    if let Msg::Snapshot { .. } = msg {
                        self.stats.snapshots_sent += 1;
                    }
                    self.send(id, to, Wire::Zab(msg))
                }
                Effect::RelaySend { to, relay } => self.send(id, to, Wire::Relay(relay)),
                Effect::Append { zxid, txn } => {
                    let s = self.server(id);
                    if s.log().last().is_some_and(|(z, _)| *z >= zxid) {
                        return Err(format!("server {id}: append {zxid:#x} not after its log tail"));
                    }
                    s.unsynced.push((zxid, txn));
                    self.schedule_fsync(id);
                }
                Effect::Deliver { core: _, batch } => {
                    for delivery in batch {
                        self.client_receives(id, delivery)?;
                    }
                }
                Effect::Truncate { zxid } => {
                    self.note(format!("{id}: truncate after {zxid:#x}, restart"));
                    self.stats.truncations += 1;
                    let s = self.server(id);
                    if s.snapshot.as_ref().is_some_and(|snap| snap.zxid > zxid) {
                        // The snapshot holds txns past the cut (a SNAP of a leader's uncommitted
                        // tail): it goes with the whole log after it, as the server does.
                        s.snapshot = None;
                        s.durable_log.clear();
                        s.unsynced.clear();
                    }
                    s.durable_log.retain(|(z, _)| *z <= zxid);
                    s.unsynced.retain(|(z, _)| *z <= zxid);
                    self.restart_from_disk(id)?;
                    break;
                }
                Effect::InstallSnapshot { zxid, image, epoch_ends } => {
                    self.note(format!("{id}: install snapshot {zxid:#x}, restart"));
                    let s = self.server(id);
                    s.snapshot = Some(StoredSnapshot { zxid, image, epoch_ends });
                    s.durable_log.clear();
                    s.unsynced.clear();
                    self.restart_from_disk(id)?;
                    break;
                }
                Effect::PersistEpochs { accepted, current } => {
                    let s = self.server(id);
                    s.accepted_epoch = accepted;
                    s.current_epoch = current;
                }
                Effect::RoleChanged(view) => {
                    self.note(format!(
                        "{id}: role {:?} leader {:?} epoch {} serving {}",
                        view.state, view.leader, view.epoch, view.serving
                    ));
                    if view.state == ServerState::Looking {
                        self.stats.elections += 1;
                    }
                    if view.state == ServerState::Leading && view.serving {
                        self.serving_leaders.insert(id);
                        self.leader_established(id, view.epoch)?;
                    } else {
                        self.serving_leaders.remove(&id);
                    }
                }
                // The simulated servers run without read-only mode.
                Effect::ReadOnly(on) => self.note(format!("{id}: read-only {on}")),
                // Commits are checked from the servers' state after the step (`record_commits`),
                // and here for a leader that steps down in the step that committed.
                Effect::Committed { zxid } => {
                    if self.serving_leaders.contains(&id) {
                        self.record_commits_to(id, zxid)?;
                    }
                }
                Effect::ConfigChanged(membership) => {
                    self.note(format!(
                        "{id}: configuration {:x} {:?}",
                        membership.version,
                        membership.voters()
                    ));
                    self.server(id).config_files.push(membership);
                }
            }
        }
        if self.server(id).alive {
            self.record_commits(id)?;
            self.check_state(id)?;
        }
        Ok(())
    }

    /// Digest agreement at the server's applied zxid; a serving learner holds only committed
    /// txns: committed by a leader, or (a follower told `CommitOnceDurable` commits before its
    /// leader hears its ack) held durably by a quorum of its voters, which commits them.
    fn check_state(&mut self, id: ServerId) -> Check {
        let s = self.server(id);
        let zxid = s.applied();
        if counter_of(zxid) == 0 {
            return Ok(()); // an epoch's start: no txn of its own
        }
        let learner = matches!(s.role(), ServerState::Following | ServerState::Observing) && s.serving();
        let digest = self.server(id).node.processor().tree.digest();
        if learner && !self.committed.contains_key(&zxid) {
            self.record_quorum_durable(id, zxid)?;
        }
        match self.digests.insert(zxid, digest) {
            Some(d) if d != digest => {
                Err(format!("server {id}: tree digest at zxid {zxid:#x} differs from another server's"))
            }
            _ => Ok(()),
        }
    }

    /// Learner `id` applied up to `zxid` before its leader committed it: every txn of its log
    /// up to there not committed yet must be held durably (same txn) by a quorum of the
    /// voters `id` knows; it is recorded as committed (so every later leader must hold it).
    fn record_quorum_durable(&mut self, id: ServerId, zxid: i64) -> Check {
        let voters = self.server(id).node.peer().map(|p| p.config().voters.clone()).unwrap_or_default();
        self.record_log_prefix(id, zxid, |sim, z, h| {
            let holders = sim
                .servers
                .iter()
                .filter(|x| voters.contains(&x.id))
                .filter(|x| {
                    x.snapshot.as_ref().is_some_and(|snap| snap.zxid >= z)
                        || x.durable_log.iter().any(|(dz, t)| *dz == z && txn_hash(t) == h)
                })
                .count();
            if holders < quorum_size(voters.len()) {
                return Err(format!(
                    "serving learner {id} holds {z:#x}, never committed (durable on {holders} of voters {voters:?})"
                ));
            }
            Ok(())
        })
    }

    fn leader_established(&mut self, id: ServerId, epoch: u32) -> Check {
        if let Some(other) = self.leaders.insert(epoch, id) {
            if other != id {
                return Err(format!("two leaders in epoch {epoch}: {other} and {id}"));
            }
        }
        self.holds_every_commit(id)
    }

    /// Every committed txn is in `id`'s log (or under its installed snapshot).
    fn holds_every_commit(&mut self, id: ServerId) -> Check {
        let s = self.server(id);
        let covered = s.snapshot.as_ref().map(|snap| snap.zxid).unwrap_or(0);
        let log: HashMap<i64, u64> = s.log().map(|(z, t)| (*z, txn_hash(t))).collect();
        for (z, h) in self.committed.range(covered + 1..) {
            if log.get(z) != Some(h) {
                return Err(format!("server {id} lacks committed txn {z:#x} (lost commit)"));
            }
        }
        Ok(())
    }

    /// A leader's commit point: every txn of its log up to there is committed.
    fn record_commits(&mut self, id: ServerId) -> Check {
        let s = self.server(id);
        if s.role() != ServerState::Leading {
            return Ok(());
        }
        let Some(zxid) = s.node.peer().map(Peer::committed) else { return Ok(()) };
        self.record_commits_to(id, zxid)
    }

    /// Every txn of `id`'s log up to `zxid` is committed (`id` leads, or led until this step:
    /// a leader a reconfig removed commits it, then steps down).
    fn record_commits_to(&mut self, id: ServerId, zxid: i64) -> Check {
        self.record_log_prefix(id, zxid, |_, _, _| Ok(()))
    }

    /// Records as committed every txn of server `id`'s log up to `zxid` not recorded yet,
    /// newest first, each once `admit` accepts it (zxid and txn hash); stops at the first one
    /// recorded already, which must be the same txn.
    fn record_log_prefix(
        &mut self,
        id: ServerId,
        zxid: i64,
        admit: impl Fn(&Self, i64, u64) -> Check,
    ) -> Check {
        let s = self.server(id);
        let entries: Vec<(i64, u64)> =
            s.log().filter(|(z, _)| *z <= zxid).map(|(z, t)| (*z, txn_hash(t))).collect();
        for (z, h) in entries.into_iter().rev() {
            match self.committed.get(&z) {
                Some(old) if *old != h => {
                    return Err(format!("zxid {z:#x} committed with two different txns"))
                }
                Some(_) => break,
                None => {}
            }
            admit(self, z, h)?;
            self.committed.insert(z, h);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- clients

    /// One client does its next thing: connect, give up on a stuck request, or send one.
    fn client_step(&mut self) -> Check {
        if self.clients.is_empty() {
            return Ok(());
        }
        let ci = self.rng.below(self.clients.len() as u64) as usize;
        // A connection to a process that is gone is lost.
        if let Some(link) = self.clients[ci].link {
            let s = &self.servers[(link.server - 1) as usize];
            if !s.alive || s.incarnation != link.incarnation {
                self.client_lost(ci);
            }
        }
        let Some(link) = self.clients[ci].link else { return self.client_connect(ci) };
        if self.now - link.since > CLIENT_TIMEOUT_MS {
            // Stuck (a partitioned leader, a lost message): drop the connection.
            self.note(format!("client {ci} gives up on server {}", link.server));
            self.client_lost(ci);
            return self.step(link.server, Input::Disconnected { conn: link.conn });
        }
        if !link.established {
            return Ok(());
        }
        match self.clients[ci].pending {
            Some(Pending::Synced { op, owner }) => {
                // The read after an answered sync.
                let path = self.clients[owner].key.clone();
                let c = &mut self.clients[ci];
                let xid = c.next_xid;
                c.next_xid += 1;
                c.pending = Some(Pending::Read { xid, op, owner });
                let body = PathWatchRequest { path, watch: false };
                let frame = request_frame(xid, OpCode::GetData, &body);
                return self.step(link.server, Input::Request { conn: link.conn, frame });
            }
            Some(_) => return Ok(()),
            None => {}
        }
        let write = self.writes_on && self.rng.chance(0.5);
        let synced = !write && self.rng.chance(0.5);
        // A synced read is of any client's key (linearizable across clients); a plain read
        // is of the client's own key.
        let owner = if synced { self.rng.below(self.clients.len() as u64) as usize } else { ci };
        let key = self.clients[owner].key.clone();
        let at = self.stamp();
        let op = self.history.len();
        let c = &mut self.clients[ci];
        let xid = c.next_xid;
        c.next_xid += 1;
        let (frame, call) = if write {
            let value = c.next_value;
            c.next_value += 1;
            c.pending = Some(Pending::Write { xid, value, op });
            let data = value.to_le_bytes().to_vec();
            if c.created {
                let body = SetDataRequest { path: c.key.clone(), data: Some(data.clone()), version: -1 };
                (request_frame(xid, OpCode::SetData, &body), Call::write(&data))
            } else {
                let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
                let body = CreateRequest { path: c.key.clone(), data: Some(data.clone()), acl, flags: 0 };
                (request_frame(xid, OpCode::Create, &body), Call::create(&data))
            }
        } else if synced {
            c.pending = Some(Pending::Sync { xid, op, owner });
            (request_frame(xid, OpCode::Sync, &PathRequest { path: key.clone() }), Call::synced_read())
        } else {
            c.pending = Some(Pending::Read { xid, op, owner });
            let body = PathWatchRequest { path: key.clone(), watch: false };
            (request_frame(xid, OpCode::GetData, &body), Call::read())
        };
        self.history.push(Op::invoke(ci as u64, &key, at, call));
        let c = &mut self.clients[ci];
        if let Some(l) = &mut c.link {
            l.since = self.now;
        }
        self.step(link.server, Input::Request { conn: link.conn, frame })
    }

    /// Connects client `ci` to a random serving server, resuming its session if it has one.
    fn client_connect(&mut self, ci: usize) -> Check {
        let Some(link) = self.new_link() else { return Ok(()) };
        let c = &mut self.clients[ci];
        c.link = Some(link);
        let (session, last_seen) = (c.session.clone(), c.last_seen);
        self.connect(link, format!("10.0.0.{ci}"), session, last_seen)
    }

    /// A new connection to a random serving server (none while no server serves).
    fn new_link(&mut self) -> Option<Link> {
        let serving: Vec<ServerId> = self.servers.iter().filter(|s| s.serving()).map(|s| s.id).collect();
        if serving.is_empty() {
            return None;
        }
        let id = serving[self.rng.below(serving.len() as u64) as usize];
        let now = self.now;
        let s = self.server(id);
        let conn = ClientConn { core: 0, local: s.next_conn };
        s.next_conn += 1;
        Some(Link { server: id, incarnation: s.incarnation, conn, established: false, since: now })
    }

    /// Sends the ConnectRequest of `link` from `ip`: a new session, or the resumption of one.
    fn connect(&mut self, link: Link, ip: String, session: Option<(i64, Vec<u8>)>, last_seen: i64) -> Check {
        let (session_id, passwd) = session.unwrap_or((0, vec![0; 16]));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_seen,
            timeout_ms: 30_000,
            session_id,
            passwd,
            read_only: Some(false),
        };
        let conn = link.conn;
        self.step(
            link.server,
            Input::Connect { conn, client_ip: ip.clone(), remote: ip, authenticated: Vec::new(), request },
        )
    }

    /// The client's connection is gone: a write in flight has an unknown outcome.
    fn client_lost(&mut self, ci: usize) {
        let c = &mut self.clients[ci];
        c.link = None;
        if let Some(Pending::Write { value, .. }) = c.pending.take() {
            c.allowed.push(Some(value));
        }
    }

    fn client_of(&self, server: ServerId, conn: ClientConn) -> Option<usize> {
        let incarnation = self.servers[(server - 1) as usize].incarnation;
        self.clients.iter().position(|c| {
            c.link.is_some_and(|l| l.server == server && l.conn == conn && l.incarnation == incarnation)
        })
    }

    /// A frame or a close reaches a client.
    fn client_receives(&mut self, server: ServerId, delivery: Delivery) -> Check {
        let conn = match &delivery {
            Delivery::Send { conn, .. } | Delivery::Close { conn } => *conn,
        };
        let Some(ci) = self.client_of(server, conn) else { return self.admin_receives(server, delivery) };
        let frame = match delivery {
            Delivery::Close { .. } => {
                self.client_lost(ci);
                return Ok(());
            }
            Delivery::Send { frame, .. } => frame,
        };
        let link = self.clients[ci].link.expect("linked");
        if !link.established {
            let resp =
                ConnectResponse::from_bytes(&frame[4..]).map_err(|e| format!("connect response: {e}"))?;
            let c = &mut self.clients[ci];
            if resp.session_id == 0 {
                c.session = None; // expired: the next connection asks for a new one
            } else {
                c.session = Some((resp.session_id, resp.passwd));
                if let Some(l) = &mut c.link {
                    l.established = true;
                    l.since = self.now;
                }
            }
            return Ok(());
        }
        let mut r = JuteReader::new(&frame[4..]);
        let header = ReplyHeader::decode(&mut r).map_err(|e| format!("reply header: {e}"))?;
        if header.xid == xid::NOTIFICATION {
            return Ok(());
        }
        let at = self.stamp();
        let c = &mut self.clients[ci];
        let err = ErrorCode::from_i32(header.err);
        match c.pending.take() {
            Some(Pending::Write { xid, value, op }) if xid == header.xid => {
                let result = match err {
                    Some(ErrorCode::Ok) => {
                        c.allowed = vec![Some(value)];
                        self.stats.acked_writes += 1;
                        if c.created {
                            let body =
                                StatResponse::decode(&mut r).map_err(|e| format!("setData reply: {e}"))?;
                            Return::Written { version: body.stat.version }
                        } else {
                            Return::Created
                        }
                    }
                    // An earlier create of unknown outcome made it.
                    Some(ErrorCode::NodeExists) => Return::NodeExists,
                    other => return Err(format!("client {ci}: write answered {other:?}")),
                };
                c.created = true;
                c.last_seen = c.last_seen.max(header.zxid);
                answer(&mut self.history, op, at, result);
            }
            Some(Pending::Sync { xid, op, owner }) if xid == header.xid => match err {
                Some(ErrorCode::Ok) => c.pending = Some(Pending::Synced { op, owner }),
                other => return Err(format!("client {ci}: sync answered {other:?}")),
            },
            Some(Pending::Read { xid, op, owner }) if xid == header.xid => {
                let (value, result) = match err {
                    Some(ErrorCode::Ok) => {
                        let body =
                            GetDataResponse::decode(&mut r).map_err(|e| format!("getData reply: {e}"))?;
                        // The model never writes null data.
                        let data = body.data.unwrap_or_default();
                        let value = value_of(&data);
                        (value, Return::Value { data, version: body.stat.version })
                    }
                    Some(ErrorCode::NoNode) => (None, Return::NoNode),
                    other => return Err(format!("client {ci}: read answered {other:?}")),
                };
                answer(&mut self.history, op, at, result);
                c.last_seen = c.last_seen.max(header.zxid);
                self.stats.reads += 1;
                if owner == ci {
                    if !c.allowed.contains(&value) {
                        return Err(format!(
                            "client {ci} read {value:?} from server {server} at {:#x}, expected one of {:?} \
                             (last seen {:#x}): its write went back",
                            header.zxid, c.allowed, c.last_seen
                        ));
                    }
                    // What was read is the latest the client may see from now on.
                    let at = c.allowed.iter().position(|v| *v == value).expect("checked");
                    c.allowed.drain(..at);
                }
            }
            other => {
                return Err(format!("client {ci}: reply xid {} while waiting for {other:?}", header.xid));
            }
        }
        if let Some(l) = &mut c.link {
            l.since = self.now;
        }
        let line = format!("client {ci}: reply {} {:?} at {:#x} from {server}", header.xid, err, header.zxid);
        self.note(line);
        Ok(())
    }

    // ---------------------------------------------------------------- the admin

    /// The admin's next step: connect to a serving server, give up on a stuck reconfig, or
    /// send one (skipACL, from any config version): while every server votes, remove one
    /// (the leader too), else add the removed one back; incrementally or, half the time, as
    /// the whole new membership (`newMembers`).
    fn admin_step(&mut self) -> Check {
        if let Some(admin) = self.admin {
            let s = &self.servers[(admin.link.server - 1) as usize];
            let gone = !s.alive || s.incarnation != admin.link.incarnation;
            if gone || self.now - admin.link.since > CLIENT_TIMEOUT_MS {
                self.note(format!("admin gives up on server {}", admin.link.server));
                self.admin = None;
                if !gone {
                    self.step(admin.link.server, Input::Disconnected { conn: admin.link.conn })?;
                }
                return Ok(());
            }
        }
        let Some(mut admin) = self.admin else { return self.admin_connect() };
        if !admin.link.established || admin.pending.is_some() {
            return Ok(());
        }
        let server = admin.link.server;
        let current = self.server(server).node.processor().config_node_membership().unwrap_or_default();
        let voters = current.voters();
        let everyone = initial_membership(&self.opts).voters();
        let missing = everyone.iter().copied().find(|id| !voters.contains(id));
        let next: Vec<ServerId> = match missing {
            Some(id) => voters.iter().copied().chain([id]).collect(),
            None => {
                let leaving = voters[self.rng.below(voters.len() as u64) as usize];
                voters.iter().copied().filter(|id| *id != leaving).collect()
            }
        };
        let request = if self.rng.chance(0.5) {
            let lines: Vec<String> = next.iter().map(|id| server_line(*id, false)).collect();
            ReconfigRequest { new_members: Some(lines.join(",")), cur_config_id: -1, ..Default::default() }
        } else if let Some(id) = missing {
            ReconfigRequest {
                joining_servers: Some(server_line(id, false)),
                cur_config_id: -1,
                ..Default::default()
            }
        } else {
            let leaving = voters.iter().find(|id| !next.contains(id)).expect("one leaves");
            ReconfigRequest {
                leaving_servers: Some(leaving.to_string()),
                cur_config_id: -1,
                ..Default::default()
            }
        };
        let xid = admin.next_xid;
        admin.next_xid += 1;
        admin.pending = Some(xid);
        admin.link.since = self.now;
        self.admin = Some(admin);
        self.stats.reconfigs_sent += 1;
        self.note(format!("admin: reconfig {xid} to voters {next:?} via {server}"));
        let frame = request_frame(xid, OpCode::Reconfig, &request);
        self.step(server, Input::Request { conn: admin.link.conn, frame })
    }

    /// Opens the admin's session on a random serving server.
    fn admin_connect(&mut self) -> Check {
        let Some(link) = self.new_link() else { return Ok(()) };
        self.admin = Some(Admin { link, pending: None, next_xid: 1 });
        self.connect(link, "10.0.0.250".into(), None, 0)
    }

    /// A frame or a close for a connection no client owns: the admin's, or a stale one.
    /// A reconfig may be refused only as a busy or changing ensemble refuses it.
    fn admin_receives(&mut self, server: ServerId, delivery: Delivery) -> Check {
        let incarnation = self.servers[(server - 1) as usize].incarnation;
        let Some(mut admin) = self.admin else { return Ok(()) };
        let (conn, frame) = match delivery {
            Delivery::Send { conn, frame } => (conn, Some(frame)),
            Delivery::Close { conn } => (conn, None),
        };
        let link = admin.link;
        if link.server != server || link.conn != conn || link.incarnation != incarnation {
            return Ok(());
        }
        let Some(frame) = frame else {
            self.admin = None;
            return Ok(());
        };
        if !link.established {
            let resp = ConnectResponse::from_bytes(&frame[4..])
                .map_err(|e| format!("admin connect response: {e}"))?;
            admin.link.established = resp.session_id != 0;
            admin.link.since = self.now;
            self.admin = admin.link.established.then_some(admin);
            return Ok(());
        }
        let mut r = JuteReader::new(&frame[4..]);
        let header = ReplyHeader::decode(&mut r).map_err(|e| format!("admin reply header: {e}"))?;
        if admin.pending != Some(header.xid) {
            return Ok(());
        }
        admin.pending = None;
        admin.link.since = self.now;
        self.admin = Some(admin);
        let err = ErrorCode::from_i32(header.err);
        self.note(format!("admin: reconfig {} answered {err:?} at {:#x}", header.xid, header.zxid));
        match err {
            Some(ErrorCode::Ok) => self.stats.reconfigs_done += 1,
            // Another in flight, the new voters not synced (crashed, cut off), a stale view
            // of the configuration (the admin's server is behind).
            Some(ErrorCode::ReconfigInProgress | ErrorCode::NewConfigNoQuorum | ErrorCode::BadArguments) => {}
            other => return Err(format!("reconfig {} answered {other:?}", header.xid)),
        }
        Ok(())
    }

    fn converged(&mut self) -> Check {
        let leaders: Vec<ServerId> = self
            .servers
            .iter()
            .filter(|s| s.role() == ServerState::Leading && s.serving())
            .map(|s| s.id)
            .collect();
        if leaders.len() != 1 {
            return Err(format!("after healing: {} serving leaders {leaders:?}", leaders.len()));
        }
        let leader = leaders[0];
        let target = self.server(leader).applied();
        let mut ids: Vec<ServerId> = self.servers.iter().map(|s| s.id).collect();
        if self.opts.reconfig {
            // The final configuration's members; a removed server may have stopped.
            let members = self.server(leader).node.processor().config_node_membership().unwrap_or_default();
            ids.retain(|id| members.members.contains_key(id));
        }
        for id in ids {
            let s = self.server(id);
            if !s.alive || !s.serving() || s.applied() != target {
                return Err(format!(
                    "after healing: server {id} alive {} serving {} applied {:#x}, leader {leader} at {target:#x}",
                    s.alive,
                    s.serving(),
                    s.applied()
                ));
            }
            self.holds_every_commit(id)?;
        }
        Ok(())
    }
}

/// History entry `op` got its reply at `at`.
fn answer(history: &mut [Op], op: usize, at: u64, result: Return) {
    let invoked = std::mem::replace(&mut history[op], Op::invoke(0, "", 0, Call::read()));
    history[op] = invoked.returned(at, result);
}

fn short(msg: &Msg) -> String {
    match msg {
        Msg::Proposal { epoch, zxid, .. } => format!("Proposal e{epoch} {zxid:#x}"),
        Msg::Snapshot { epoch, zxid, .. } => format!("Snapshot e{epoch} {zxid:#x}"),
        other => format!("{other:?}"),
    }
}

fn short_relay(relay: &Relay) -> String {
    match relay {
        Relay::Forward { token, session_id, .. } => format!("Forward {token} session {session_id:#x}"),
        Relay::CreateSession { token, .. } => format!("CreateSession {token}"),
        Relay::Reply { token, zxid, .. } => format!("Reply {token} at {zxid:#x}"),
        other => format!("{other:?}"),
    }
}

/// Runs one seed.
pub fn run(seed: u64, opts: &SimOptions) -> Result<SimStats, SimFailure> {
    World::new(seed, opts.clone()).run()
}
