//! Deterministic simulator of a ringkeeper ensemble: the engine's real [`Peer`] and
//! [`txn::apply`] code for N voters (+ observers) on a simulated network and disk, driven by
//! one `u64` seed.
//!
//! In: a seed and [`SimOptions`]. Out: `Ok(SimStats)` or a [`SimFailure`] naming the seed, the
//! simulated time, the broken invariant and the last events (replay with the same seed gives
//! the same run; `RINGKEEPER_SIM_TRACE=1` prints every event).
//!
//! The world: links are FIFO like TCP, but messages are delayed, sometimes reordered, lost or
//! duplicated; partitions cut groups apart
//! (sometimes with a connection reset, sometimes silently); servers crash (losing every
//! unsynced log write) and restart from their durable log; each server's log is made durable
//! by group "fsyncs" after a random delay. Clients write their own key through whichever
//! server leads and read it back from any serving server that has seen their last zxid.
//!
//! Invariants checked after every step:
//! - at most one established leader per epoch;
//! - a committed zxid has one txn everywhere, and an established leader holds every
//!   committed txn (committed txns are never lost);
//! - a learner applies only committed txns, identical to the committed ones;
//! - equal tree digests at equal zxids on every server;
//! - a client never reads its key older than its last acknowledged write.
//!
//! After the faulty phase everything heals and the run must converge: one leader, every
//! server serving, equal applied zxids and digests, every committed txn everywhere.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use ringkeeper_engine::tree::DataTree;
use ringkeeper_engine::txn::{self, Txn, TxnAcl, TxnBody, TxnBytes, TxnOp};
use ringkeeper_engine::zab::{
    epoch_of, Action, Event, Msg, Peer, PeerConfig, Recovered, ServerId, ServerState, SharedTxn,
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

enum What {
    Deliver { from: ServerId, to: ServerId, to_incarnation: u32, msg: Msg },
    LinkDown { at: ServerId, peer: ServerId, incarnation: u32 },
    Tick(ServerId),
    Fsync { node: ServerId, incarnation: u32 },
    ClientWrite,
    ClientRead,
    Fault,
    Restart(ServerId),
    Heal,
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

struct Node {
    id: ServerId,
    alive: bool,
    incarnation: u32,
    peer: Peer,
    durable_log: Vec<(i64, SharedTxn)>,
    unsynced: Vec<(i64, SharedTxn)>,
    /// A received snapshot image (its entries) waiting for its fsync.
    pending_install: Option<Vec<(i64, SharedTxn)>>,
    fsync_scheduled: bool,
    accepted_epoch: u32,
    current_epoch: u32,
    tree: DataTree,
    applied: i64,
    role: ServerState,
    serving: bool,
}

impl Node {
    fn log(&self) -> impl Iterator<Item = &(i64, SharedTxn)> {
        self.durable_log.iter().chain(self.unsynced.iter())
    }
    fn durable_zxid(&self) -> i64 {
        self.durable_log.last().map(|(z, _)| *z).unwrap_or(0)
    }
}

struct Client {
    key: String,
    /// Values the key may hold: the last acknowledged one, then unknown outcomes after it.
    allowed: Vec<Option<u64>>,
    last_seen: i64,
    pending: Option<PendingWrite>,
    next_value: u64,
}

struct PendingWrite {
    zxid: i64,
    value: u64,
    leader: ServerId,
    incarnation: u32,
    /// The leader's epoch when it proposed: only that leadership acknowledges the write.
    epoch: u32,
}

struct World {
    seed: u64,
    opts: SimOptions,
    rng: Rng,
    now: i64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    nodes: Vec<Node>,
    /// Group number of each server while partitioned.
    partition: Option<Vec<u8>>,
    faults_on: bool,
    writes_on: bool,
    clients: Vec<Client>,
    committed: BTreeMap<i64, u64>,
    digests: HashMap<i64, u64>,
    leaders: HashMap<u32, ServerId>,
    /// Latest delivery time scheduled per (from, to) link, to keep links FIFO.
    link_clock: HashMap<(ServerId, ServerId), i64>,
    stats: SimStats,
    trace: VecDeque<String>,
    print_trace: bool,
}

const TICK_MS: i64 = 5;
const TRACE_KEEP: usize = 400;

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

/// Per epoch, the last zxid of `log`.
fn epoch_ends<'a>(log: impl Iterator<Item = &'a (i64, SharedTxn)>) -> Vec<i64> {
    let mut ends: BTreeMap<u32, i64> = BTreeMap::new();
    for (z, _) in log {
        ends.insert(epoch_of(*z), *z);
    }
    ends.into_values().collect()
}

fn encode_image(entries: &[(i64, SharedTxn)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (z, t) in entries {
        out.extend_from_slice(&z.to_le_bytes());
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t);
    }
    out
}

fn decode_image(mut b: &[u8]) -> Vec<(i64, SharedTxn)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let z = i64::from_le_bytes(b[..8].try_into().expect("8"));
        let n = u32::from_le_bytes(b[8..12].try_into().expect("4")) as usize;
        let mut t = TxnBytes::new();
        t.extend_from_slice(&b[12..12 + n]);
        out.push((z, Arc::new(t)));
        b = &b[12 + n..];
    }
    out
}

type Check = Result<(), String>;

impl World {
    fn new(seed: u64, opts: SimOptions) -> World {
        let n = opts.voters + opts.observers;
        let nodes = (1..=n as u64)
            .map(|id| Node {
                id,
                alive: true,
                incarnation: 0,
                peer: Peer::new(peer_config(&opts, id), Recovered::default(), 0),
                durable_log: Vec::new(),
                unsynced: Vec::new(),
                pending_install: None,
                fsync_scheduled: false,
                accepted_epoch: 0,
                current_epoch: 0,
                tree: DataTree::new(),
                applied: 0,
                role: ServerState::Looking,
                serving: false,
            })
            .collect();
        let clients = (0..opts.clients)
            .map(|i| Client {
                key: format!("/c{i}"),
                allowed: vec![None],
                last_seen: 0,
                pending: None,
                next_value: 1,
            })
            .collect();
        World {
            seed,
            rng: Rng(seed),
            opts,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            partition: None,
            faults_on: true,
            writes_on: true,
            clients,
            committed: BTreeMap::new(),
            digests: HashMap::new(),
            leaders: HashMap::new(),
            link_clock: HashMap::new(),
            stats: SimStats::default(),
            trace: VecDeque::new(),
            print_trace: std::env::var("RINGKEEPER_SIM_TRACE").is_ok_and(|v| v == "1"),
        }
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

    fn node(&mut self, id: ServerId) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn fail(&self, what: String) -> SimFailure {
        SimFailure { seed: self.seed, at_ms: self.now, what, trace: self.trace.iter().cloned().collect() }
    }

    fn run(mut self) -> Result<SimStats, SimFailure> {
        let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            let mut out = Vec::new();
            self.node(id).peer.start(&mut out);
            self.carry_out(id, out).map_err(|e| self.fail(e))?;
            let first_tick = self.rng.range(1, TICK_MS);
            self.at(first_tick, What::Tick(id));
        }
        self.at(1, What::ClientWrite);
        self.at(2, What::ClientRead);
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
        self.stats.committed = self.committed.len();
        Ok(self.stats)
    }

    /// End of the faulty phase: heal, restart everything, stop injecting faults.
    fn calm_down(&mut self) {
        self.faults_on = false;
        self.note("calm: heal all, restart all, no more faults".into());
        self.partition = None;
        let dead: Vec<ServerId> = self.nodes.iter().filter(|n| !n.alive).map(|n| n.id).collect();
        for id in dead {
            self.at(0, What::Restart(id));
        }
    }

    fn handle(&mut self, what: What) -> Check {
        match what {
            What::Tick(id) => {
                if self.node(id).alive {
                    self.step(id, Event::Tick)?;
                }
                self.at(TICK_MS, What::Tick(id));
            }
            What::Deliver { from, to, to_incarnation, msg } => {
                let n = self.node(to);
                if !n.alive || n.incarnation != to_incarnation || self.cut(from, to) {
                    return Ok(());
                }
                self.note(format!("{from}->{to} {}", short(&msg)));
                self.step(to, Event::Message { from, msg })?;
            }
            What::LinkDown { at, peer, incarnation } => {
                let n = self.node(at);
                if n.alive && n.incarnation == incarnation {
                    self.note(format!("{at}: link to {peer} down"));
                    self.step(at, Event::LinkDown { peer })?;
                }
            }
            What::Fsync { node, incarnation } => self.fsync(node, incarnation)?,
            What::ClientWrite => {
                if self.writes_on {
                    self.client_write()?;
                }
                let next = self.rng.range(1, 4);
                self.at(next, What::ClientWrite);
            }
            What::ClientRead => {
                self.client_read()?;
                let next = self.rng.range(1, 6);
                self.at(next, What::ClientRead);
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
        let n = self.nodes.len() as u64;
        match self.rng.below(3) {
            0 => {
                let id = 1 + self.rng.below(n);
                let alive = self.nodes.iter().filter(|x| x.alive).count();
                // Crash a server, the leader more often than not; keep at least one alive.
                let leader =
                    self.nodes.iter().find(|x| x.alive && x.role == ServerState::Leading).map(|x| x.id);
                let id = match leader {
                    Some(l) if self.rng.chance(0.6) => l,
                    _ => id,
                };
                if self.node(id).alive && alive > 1 {
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
        let ids: Vec<(ServerId, u32)> = self.nodes.iter().map(|n| (n.id, n.incarnation)).collect();
        for &(a, inc) in &ids {
            for &(b, _) in &ids {
                if a != b && self.cut(a, b) {
                    let d = self.rng.range(0, 3);
                    self.at(d, What::LinkDown { at: a, peer: b, incarnation: inc });
                }
            }
        }
    }

    fn crash(&mut self, id: ServerId) {
        self.stats.crashes += 1;
        self.note(format!("crash {id}"));
        let reset = self.rng.chance(0.7);
        let lying = self.opts.lying_disk;
        let n = self.node(id);
        n.alive = false;
        n.incarnation += 1;
        n.unsynced.clear();
        n.pending_install = None;
        n.fsync_scheduled = false;
        if lying {
            n.durable_log.clear();
            n.accepted_epoch = 0;
            n.current_epoch = 0;
        }
        n.role = ServerState::Looking;
        n.serving = false;
        if reset {
            // The kernel resets the crashed server's connections.
            let others: Vec<(ServerId, u32)> =
                self.nodes.iter().filter(|x| x.id != id).map(|x| (x.id, x.incarnation)).collect();
            for (other, inc) in others {
                let d = self.rng.range(0, 2);
                self.at(d, What::LinkDown { at: other, peer: id, incarnation: inc });
            }
        }
    }

    fn restart(&mut self, id: ServerId) -> Check {
        if self.node(id).alive {
            return Ok(());
        }
        self.note(format!("restart {id}"));
        let cfg = peer_config(&self.opts, id);
        let now = self.now;
        let n = self.node(id);
        let recovered = Recovered {
            accepted_epoch: n.accepted_epoch,
            current_epoch: n.current_epoch,
            history_base: 0,
            history: n.durable_log.clone(),
            epoch_ends: epoch_ends(n.durable_log.iter()),
        };
        n.peer = Peer::new(cfg, recovered, now);
        n.alive = true;
        n.role = ServerState::Looking;
        n.serving = false;
        self.rebuild_tree(id)?;
        let mut out = Vec::new();
        self.node(id).peer.start(&mut out);
        self.carry_out(id, out)
    }

    /// State = the whole log replayed (restart, truncation, snapshot install).
    fn rebuild_tree(&mut self, id: ServerId) -> Check {
        let log: Vec<(i64, SharedTxn)> = self.node(id).log().cloned().collect();
        let n = self.node(id);
        n.tree = DataTree::new();
        n.applied = 0;
        for (z, t) in log {
            self.apply(id, z, &t)?;
        }
        Ok(())
    }

    fn apply(&mut self, id: ServerId, zxid: i64, t: &SharedTxn) -> Check {
        let n = self.node(id);
        txn::apply(&mut n.tree, txn::access_trusted(t));
        n.applied = zxid;
        let digest = n.tree.digest();
        match self.digests.insert(zxid, digest) {
            Some(d) if d != digest => {
                Err(format!("server {id}: tree digest at zxid {zxid:#x} differs from another server's"))
            }
            _ => Ok(()),
        }
    }

    fn step(&mut self, id: ServerId, event: Event) -> Check {
        let mut out = Vec::new();
        let now = self.now;
        self.node(id).peer.step(now, event, &mut out);
        self.carry_out(id, out)
    }

    fn send(&mut self, from: ServerId, to: ServerId, msg: Msg) {
        if self.faults_on && self.rng.chance(0.005) {
            return; // lost
        }
        let copies = if self.faults_on && self.rng.chance(0.005) { 2 } else { 1 };
        for _ in 0..copies {
            // Links are FIFO (TCP) except for an injected reordering: a message overtaken by
            // later ones.
            let mut delay = self.rng.range(0, 2);
            let reordered = self.faults_on && self.rng.chance(0.01);
            if reordered {
                delay += self.rng.range(5, 40);
            }
            let link = self.link_clock.entry((from, to)).or_insert(0);
            let mut at = self.now + delay;
            if !reordered {
                at = at.max(*link);
                *link = at;
            }
            let to_incarnation = self.node(to).incarnation;
            self.at(at - self.now, What::Deliver { from, to, to_incarnation, msg: msg.clone() });
        }
    }

    fn schedule_fsync(&mut self, id: ServerId) {
        let n = self.node(id);
        if n.fsync_scheduled {
            return;
        }
        n.fsync_scheduled = true;
        let inc = n.incarnation;
        let d = self.rng.range(1, 4);
        self.at(d, What::Fsync { node: id, incarnation: inc });
    }

    fn fsync(&mut self, id: ServerId, incarnation: u32) -> Check {
        let n = self.node(id);
        if !n.alive || n.incarnation != incarnation {
            return Ok(());
        }
        n.fsync_scheduled = false;
        if let Some(image) = n.pending_install.take() {
            n.durable_log = image;
        }
        let unsynced = std::mem::take(&mut n.unsynced);
        n.durable_log.extend(unsynced);
        let z = n.durable_zxid();
        self.step(id, Event::Durable { zxid: z })
    }

    fn carry_out(&mut self, id: ServerId, actions: Vec<Action>) -> Check {
        for action in actions {
            match action {
                Action::Send { to, msg } => self.send(id, to, msg),
                Action::Append { zxid, txn } => {
                    let n = self.node(id);
                    if n.log().last().is_some_and(|(z, _)| *z >= zxid) {
                        return Err(format!("server {id}: append {zxid:#x} not after its log tail"));
                    }
                    n.unsynced.push((zxid, txn));
                    self.schedule_fsync(id);
                }
                Action::Apply { zxid, txn } => {
                    match self.committed.get(&zxid) {
                        Some(&h) if h == txn_hash(&txn) => {}
                        Some(_) => {
                            return Err(format!("server {id} applies {zxid:#x}, not the committed txn"))
                        }
                        None => return Err(format!("server {id} applies {zxid:#x} before it is committed")),
                    }
                    if zxid <= self.node(id).applied {
                        return Err(format!("server {id} applies {zxid:#x} out of order"));
                    }
                    self.apply(id, zxid, &txn)?;
                }
                Action::Committed { zxid } => self.committed_by(id, zxid)?,
                Action::Truncate { zxid } => {
                    self.note(format!("{id}: truncate after {zxid:#x}"));
                    self.stats.truncations += 1;
                    let n = self.node(id);
                    n.durable_log.retain(|(z, _)| *z <= zxid);
                    n.unsynced.retain(|(z, _)| *z <= zxid);
                    self.rebuild_tree(id)?;
                }
                Action::InstallSnapshot { zxid, image } => {
                    let entries = decode_image(&image);
                    let zs: Vec<String> = entries.iter().map(|(z, _)| format!("{z:x}")).collect();
                    self.note(format!("{id}: install snapshot {zxid:#x}: {}", zs.join(",")));
                    if entries.last().map(|(z, _)| *z).unwrap_or(0) != zxid {
                        return Err(format!("server {id}: snapshot image does not end at {zxid:#x}"));
                    }
                    let n = self.node(id);
                    n.unsynced.clear();
                    n.pending_install = Some(entries.clone());
                    // State now is the image (the log on disk changes at the fsync).
                    n.tree = DataTree::new();
                    n.applied = 0;
                    for (z, t) in &entries {
                        self.apply(id, *z, t)?;
                    }
                    self.schedule_fsync(id);
                }
                Action::SendSnapshot { to, epoch, zxid, epoch_ends } => {
                    self.stats.snapshots_sent += 1;
                    let entries: Vec<(i64, SharedTxn)> = self.node(id).log().cloned().collect();
                    if entries.last().map(|(z, _)| *z).unwrap_or(0) != zxid {
                        return Err(format!("server {id}: asked to snapshot at {zxid:#x}, its log differs"));
                    }
                    let image = Arc::new(encode_image(&entries));
                    self.send(id, to, Msg::Snapshot { epoch, zxid, epoch_ends, image });
                }
                Action::PersistEpochs { accepted, current } => {
                    let n = self.node(id);
                    n.accepted_epoch = accepted;
                    n.current_epoch = current;
                }
                Action::Role(view) => {
                    self.note(format!(
                        "{id}: role {:?} leader {:?} epoch {} serving {}",
                        view.state, view.leader, view.epoch, view.serving
                    ));
                    let n = self.node(id);
                    n.role = view.state;
                    n.serving = view.serving;
                    if view.state == ServerState::Looking {
                        self.stats.elections += 1;
                    }
                    if view.state == ServerState::Leading && view.serving {
                        self.leader_established(id, view.epoch)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn leader_established(&mut self, id: ServerId, epoch: u32) -> Check {
        if let Some(other) = self.leaders.insert(epoch, id) {
            if other != id {
                return Err(format!("two leaders in epoch {epoch}: {other} and {id}"));
            }
        }
        self.holds_every_commit(id)
    }

    fn holds_every_commit(&mut self, id: ServerId) -> Check {
        let log: HashMap<i64, u64> = self.node(id).log().map(|(z, t)| (*z, txn_hash(t))).collect();
        for (z, h) in &self.committed {
            if log.get(z) != Some(h) {
                return Err(format!("server {id} lacks committed txn {z:#x} (lost commit)"));
            }
        }
        Ok(())
    }

    /// The leader committed up to `zxid`: every txn of its log up to there is committed.
    fn committed_by(&mut self, id: ServerId, zxid: i64) -> Check {
        if self.node(id).role != ServerState::Leading {
            return Ok(()); // a learner's own commit point
        }
        let entries: Vec<(i64, u64)> =
            self.node(id).log().filter(|(z, _)| *z <= zxid).map(|(z, t)| (*z, txn_hash(t))).collect();
        for (z, h) in entries.into_iter().rev() {
            match self.committed.insert(z, h) {
                Some(old) if old != h => {
                    return Err(format!("zxid {z:#x} committed with two different txns"))
                }
                Some(_) => break,
                None => {}
            }
        }
        // Acknowledge client writes this leader proposed.
        let inc = self.node(id).incarnation;
        let epoch = self.node(id).peer.role().epoch;
        for c in &mut self.clients {
            if let Some(p) = &c.pending {
                if p.leader == id && p.incarnation == inc && p.epoch == epoch && p.zxid <= zxid {
                    c.allowed = vec![Some(p.value)];
                    c.last_seen = c.last_seen.max(p.zxid);
                    c.pending = None;
                    self.stats.acked_writes += 1;
                }
            }
        }
        Ok(())
    }

    fn client_write(&mut self) -> Check {
        let Some(leader) = self
            .nodes
            .iter()
            .filter(|n| n.alive && n.role == ServerState::Leading && n.peer.next_zxid().is_some())
            .map(|n| n.id)
            .max()
        else {
            return Ok(());
        };
        // A write whose leader is gone or deposed has an unknown outcome.
        for i in 0..self.clients.len() {
            if let Some(p) = &self.clients[i].pending {
                let n = &self.nodes[(p.leader - 1) as usize];
                let role = n.peer.role();
                if !n.alive
                    || n.incarnation != p.incarnation
                    || role.state != ServerState::Leading
                    || role.epoch != p.epoch
                {
                    let value = p.value;
                    self.clients[i].allowed.push(Some(value));
                    self.clients[i].pending = None;
                }
            }
        }
        let idle: Vec<usize> =
            (0..self.clients.len()).filter(|&i| self.clients[i].pending.is_none()).collect();
        if idle.is_empty() {
            return Ok(());
        }
        let ci = idle[self.rng.below(idle.len() as u64) as usize];
        let zxid = self.node(leader).peer.next_zxid().expect("checked");
        let value = self.clients[ci].next_value;
        self.clients[ci].next_value += 1;
        let key = self.clients[ci].key.clone();
        let data = value.to_le_bytes().to_vec();
        let now = self.now;
        let n = self.node(leader);
        let body = match n.tree.get(&key) {
            Some(node) => TxnOp::SetData { path: key, data, version: node.stat.version + 1 },
            None => {
                let root_cversion = n.tree.get("/").map(|r| r.stat.cversion).unwrap_or(0);
                let acl = vec![TxnAcl { perms: 31, scheme: "world".into(), id: "anyone".into() }];
                TxnOp::Create { path: key, data, acl, ephemeral_owner: 0, parent_cversion: root_cversion + 1 }
            }
        };
        let t = Txn {
            session_id: ci as i64 + 1,
            cxid: value as i32,
            zxid,
            time_ms: now,
            body: TxnBody::Op(body),
        };
        let shared: SharedTxn = Arc::new(txn::encode(&t));
        let inc = n.incarnation;
        let epoch = n.peer.role().epoch;
        n.unsynced.push((zxid, shared.clone()));
        self.apply(leader, zxid, &shared)?;
        self.schedule_fsync(leader);
        self.clients[ci].pending = Some(PendingWrite { zxid, value, leader, incarnation: inc, epoch });
        self.note(format!("client {ci} writes {value} as {zxid:#x} via {leader}"));
        self.step(leader, Event::Proposed { zxid, txn: shared })
    }

    fn client_read(&mut self) -> Check {
        if self.clients.is_empty() {
            return Ok(());
        }
        let ci = self.rng.below(self.clients.len() as u64) as usize;
        let last_seen = self.clients[ci].last_seen;
        // ZooKeeper refuses a session on a server behind what the client has seen.
        let candidates: Vec<ServerId> = self
            .nodes
            .iter()
            .filter(|n| n.alive && n.serving && n.applied >= last_seen)
            .map(|n| n.id)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let id = candidates[self.rng.below(candidates.len() as u64) as usize];
        let key = self.clients[ci].key.clone();
        let n = &self.nodes[(id - 1) as usize];
        let value =
            n.tree.get(&key).map(|node| u64::from_le_bytes(node.data[..8].try_into().expect("8 bytes")));
        let mzxid = n.tree.get(&key).map(|node| node.stat.mzxid).unwrap_or(0);
        let applied = n.applied;
        let c = &mut self.clients[ci];
        let pending = c.pending.as_ref().map(|p| Some(p.value));
        if !c.allowed.contains(&value) && pending != Some(value) {
            return Err(format!(
                "client {ci} read {value:?} (mzxid {mzxid:#x}) from server {id} at {applied:#x}, expected one of {:?} \
                 (pending {pending:?}, last seen {:#x}): its write went back",
                c.allowed, c.last_seen
            ));
        }
        c.last_seen = c.last_seen.max(applied);
        self.stats.reads += 1;
        Ok(())
    }

    fn converged(&mut self) -> Check {
        let leaders: Vec<ServerId> =
            self.nodes.iter().filter(|n| n.role == ServerState::Leading && n.serving).map(|n| n.id).collect();
        if leaders.len() != 1 {
            return Err(format!("after healing: {} serving leaders {leaders:?}", leaders.len()));
        }
        let leader = leaders[0];
        let target = self.node(leader).applied;
        let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            let n = self.node(id);
            if !n.alive || !n.serving || n.applied != target {
                return Err(format!(
                    "after healing: server {id} alive {} serving {} applied {:#x}, leader {leader} at {target:#x}",
                    n.alive, n.serving, n.applied
                ));
            }
            self.holds_every_commit(id)?;
        }
        Ok(())
    }
}

fn short(msg: &Msg) -> String {
    match msg {
        Msg::Proposal { epoch, zxid, .. } => format!("Proposal e{epoch} {zxid:#x}"),
        Msg::Snapshot { epoch, zxid, .. } => format!("Snapshot e{epoch} {zxid:#x}"),
        other => format!("{other:?}"),
    }
}

/// Runs one seed.
pub fn run(seed: u64, opts: &SimOptions) -> Result<SimStats, SimFailure> {
    World::new(seed, opts.clone()).run()
}
