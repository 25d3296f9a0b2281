//! Data role: runs the engine's replica [`Node`] (processor, ZAB peer, hold gate, learner
//! relay) on one core, and carries out what it asks.
//!
//! In: `ToData` from every network core (one bounded [`link`] each), "durable up to zxid Z"
//! from the log role (drained per wake-up: the newest covers the rest), peer frames and link
//! losses ([`crate::peer_net`]), and one timer task for session expiry, the container reaper
//! and the ZAB peer, sleeping until the next of them is due (an idle serving member wakes
//! about once per heartbeat). Snapshots are captured here in bounded slices by a
//! task of their own ([`crate::snapshotter`]).
//! Out: the encoded txn of every write to the log role (bounded channel, zxid order),
//! `Vec<ToNet>` batches to each network core in the order the node released them, peer
//! frames, and the file work of an ensemble member ([`crate::replica`]: epochs, TRUNC and SNAP
//! by restart). Every protocol rule lives in [`Node`]; this file has channels, timers and I/O.
//! Invariants: nothing else touches the node; a message is handled to completion (no await)
//! before the next one, so every request sees all earlier writes; txns still awaiting
//! durability and held outputs are bounded: requests are not taken from the network while
//! [`Node::has_room`] is false.

use std::cell::{Cell, OnceCell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringkeeper_engine::replica::gate::Limits;
use ringkeeper_engine::replica::{Effect, Input, Node};
use ringkeeper_engine::request::Processor;
use ringkeeper_engine::zab::{counter_of, epoch_of, Msg, Peer, Relay, RoleView, ServerState};

use crate::apache_quorum::{ApacheQuorum, QuorumInput};
use crate::coalesce::Coalescer;
use crate::four_letter::ServerMode;
use crate::hops;
use crate::link;
use crate::log_role::LogRecord;
use crate::messages::{NewConnection, ToData, ToNet};
use crate::peer_net::{FrameKind, PeerAddress, PeerInput, PeerNet, PeerNetSetup};
use crate::replica::{self, ReplicaSetup};
use crate::role_stats::{self, Role};
use crate::snapshotter::Snapshotter;
use crate::status::{LeaderFigures, StatusSource};

/// Wall-clock milliseconds (ctime/mtime and session deadlines).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How often expiry and reaping are checked.
const TICK_INTERVAL: Duration = Duration::from_millis(50);
/// How often the ZAB peer's timers run while it elects or syncs (finalize wait, vote
/// resends, discovery), where a few ms decide how soon the ensemble serves again. Serving,
/// the peer names its next timer ([`Peer::next_timer_at`]) and the data role sleeps until then.
const PEER_TICK_ELECTING: Duration = Duration::from_millis(5);
/// How late the processor's tick may run on a leader so that it shares a wake-up with the
/// next ping (an idle server then wakes about once per heartbeat, not twice).
const PROCESSOR_TICK_SLACK: Duration = Duration::from_millis(25);

/// Links between the data role and the log role.
pub struct LogLink {
    pub to_log: link::Sender<LogRecord>,
    pub from_log: link::Receiver<i64>,
    /// The last zxid recovered from the log: durable already.
    pub durable_zxid: i64,
    /// Most txns sent to the log and not yet durable before requests stop being taken.
    pub in_flight_max: usize,
    /// Most outputs held for durability before requests stop being taken.
    pub held_max: usize,
    /// When and how snapshots are taken ([`crate::snapshotter`]).
    pub snapshots: Snapshotter,
}

/// Txns logged and not yet applied (a new epoch's counter when the two epochs differ).
fn writes_in_flight(last_logged: i64, applied: i64) -> i64 {
    if epoch_of(last_logged) == epoch_of(applied) {
        last_logged - applied
    } else {
        i64::from(counter_of(last_logged))
    }
}

/// What `srvr` says for an ensemble role.
fn role_mode(view: RoleView) -> ServerMode {
    match view.state {
        ServerState::Leading => ServerMode::Leader,
        ServerState::Observing => ServerMode::Observer,
        _ => ServerMode::Follower,
    }
}

struct DataRole {
    node: RefCell<Node>,
    /// Never full (see [`never_waiting`]).
    to_cores: Vec<link::Sender<Vec<ToNet>>>,
    /// Never full (see [`never_waiting`]).
    to_log: link::Sender<LogRecord>,
    /// Tasks waiting for room (request receivers).
    room_wakers: RefCell<Vec<Waker>>,
    /// The timer task, waiting for a role change (its sleep depends on the role).
    role_waker: Cell<Option<Waker>>,
    status: StatusSource,
    snapshots: RefCell<Snapshotter>,
    ensemble: Option<EnsembleIo>,
    /// Told the writes in flight after each step (`ringkeeper.coalesceMicros`).
    coalescer: Option<Rc<Coalescer>>,
}

/// The server-to-server protocol of an ensemble member (`ringkeeper.quorum.protocol`).
enum PeerTransport {
    Ringkeeper(PeerNet),
    Apache(Rc<ApacheQuorum>),
}

/// The I/O of an ensemble member (see [`crate::replica`]).
struct EnsembleIo {
    transport: OnceCell<PeerTransport>,
    data_dir: std::path::PathBuf,
    /// The epochs on disk (accepted, current).
    epochs: Cell<(u32, u32)>,
    /// Where committed configurations are written.
    config_files: replica::ConfigFiles,
}

impl DataRole {
    /// Steps the node with one input and carries out its effects.
    fn step(&self, input: Input) {
        let mut effects = Vec::new();
        hops::recorder().input(&input);
        self.node.borrow_mut().step(now_ms(), input, &mut effects);
        hops::recorder().effects(&effects);
        if let Some(coalescer) = &self.coalescer {
            if let Some(peer) = self.node.borrow().peer() {
                coalescer.writes_in_flight(writes_in_flight(peer.last_logged(), peer.applied()));
            }
        }
        self.carry_out(effects);
    }

    fn carry_out(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Deliver { core, batch } => {
                    role_stats::arrived(Role::Network, batch.len() as u64);
                    let batch = batch.into_iter().map(ToNet::from).collect();
                    // Unbounded locally, but bounded by `held_max` through `wait_for_room`.
                    let _ = self.to_cores[core as usize].try_send(batch);
                }
                Effect::Append { zxid, txn } => {
                    self.snapshots.borrow_mut().txn_logged();
                    role_stats::arrived(Role::Log, 1);
                    // Unbounded locally, but bounded by `in_flight_max` through `wait_for_room`.
                    let _ = self.to_log.try_send(LogRecord { zxid, bytes: txn });
                }
                Effect::PeerSend { to, msg } => {
                    if let Msg::Snapshot { zxid, image, .. } = &msg {
                        log::info!("sending server {to} a snapshot at {zxid:#x} ({} bytes)", image.len());
                    }
                    match self.ensemble.as_ref().and_then(|io| io.transport.get()) {
                        Some(PeerTransport::Ringkeeper(net)) => {
                            net.send(to, FrameKind::Zab, |b| msg.encode(b))
                        }
                        Some(PeerTransport::Apache(quorum)) => quorum.send_msg(to, &msg),
                        None => {}
                    }
                }
                Effect::RelaySend { to, relay } => {
                    match self.ensemble.as_ref().and_then(|io| io.transport.get()) {
                        Some(PeerTransport::Ringkeeper(net)) => {
                            net.send(to, FrameKind::Relay, |b| relay.encode(b))
                        }
                        Some(PeerTransport::Apache(quorum)) => quorum.send_relay(to, relay),
                        None => {}
                    }
                }
                Effect::PersistEpochs { accepted, current } => {
                    let io = self.ensemble();
                    let before = io.epochs.replace((accepted, current));
                    if before == (accepted, current) {
                        continue;
                    }
                    if let Err(e) = replica::persist_epochs(&io.data_dir, before, accepted, current) {
                        log::error!("FATAL: writing epochs in {}: {e}", io.data_dir.display());
                        std::process::exit(71);
                    }
                }
                Effect::Truncate { zxid } => {
                    let io = self.ensemble();
                    if let Err(e) = replica::record_truncation(&io.data_dir, zxid) {
                        log::error!("FATAL: recording a log truncation in {}: {e}", io.data_dir.display());
                        std::process::exit(71);
                    }
                    replica::restart_from_disk(&format!(
                        "the leader's history ends at {zxid:#x}; txns after it are cut"
                    ));
                }
                Effect::InstallSnapshot { zxid, image, epoch_ends } => {
                    match replica::record_installation(&self.ensemble().data_dir, &image, &epoch_ends) {
                        Ok(_) => replica::restart_from_disk(&format!(
                            "installing the leader's snapshot at {zxid:#x}"
                        )),
                        Err(e) => {
                            log::error!("FATAL: installing the leader's snapshot at {zxid:#x}: {e}");
                            std::process::exit(71);
                        }
                    }
                }
                // Timed by `hops` (the only reader of commit points) before carrying out.
                Effect::Committed { .. } => {}
                Effect::RoleChanged(view) => {
                    if let Some(waker) = self.role_waker.take() {
                        waker.wake();
                    }
                    if view.serving || !self.node.borrow().processor().is_read_only() {
                        self.status.set_role(role_mode(view), view.serving);
                    } else {
                        // A member serving read-only sessions only (Apache protocol): read-only
                        // while it has no leader.
                        self.status.set_role(ServerMode::ReadOnly, true);
                    }
                    log::info!(
                        "ensemble role: {:?}, leader {:?}, epoch {}, {}",
                        view.state,
                        view.leader,
                        view.epoch,
                        if view.serving { "serving" } else { "not serving" }
                    );
                }
                Effect::ConfigChanged(membership) => {
                    let io = self.ensemble();
                    if let Some(PeerTransport::Ringkeeper(net)) = io.transport.get() {
                        for m in membership.members.values() {
                            net.add_peer(m.id, PeerAddress { host: m.host.clone(), port: m.peer_port });
                        }
                    }
                    match io.config_files.record(&membership) {
                        Ok(path) => {
                            log::info!("configuration {:x} written to {}", membership.version, path.display())
                        }
                        // The log holds the configuration; the file is for operators.
                        Err(e) => log::warn!("could not write the configuration files: {e:#}"),
                    }
                }
                Effect::ReadOnly(on) => {
                    if on {
                        self.status.set_role(ServerMode::ReadOnly, true);
                    } else {
                        let view = self.node.borrow().role();
                        self.status.set_role(role_mode(view), view.serving);
                    }
                }
            }
        }
        if self.node.borrow().has_room() {
            self.room_wakers.borrow_mut().drain(..).for_each(Waker::wake);
        }
    }

    fn ensemble(&self) -> &EnsembleIo {
        self.ensemble.as_ref().expect("ensemble effects come from an ensemble member")
    }

    /// Resolves after the next role change (or a spurious wake-up: callers re-check).
    async fn role_changed(&self) {
        let mut waiting = false;
        poll_fn(|cx| {
            if waiting {
                return Poll::Ready(());
            }
            waiting = true;
            self.role_waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }

    /// Resolves once fewer txns and outputs than the bounds await durability.
    async fn wait_for_room(&self) {
        poll_fn(|cx| {
            if self.node.borrow().has_room() {
                Poll::Ready(())
            } else {
                self.room_wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    fn handle(&self, message: ToData) {
        role_stats::taken(Role::Data, 1);
        let input = match message {
            ToData::Connect { conn, connect } => {
                let NewConnection { client_ip, remote, authenticated, request } = *connect;
                Input::Connect { conn, client_ip, remote, authenticated, request }
            }
            ToData::Request { conn, frame, sampled } => {
                hops::recorder().request_in(conn, &frame, sampled);
                Input::Request { conn, frame }
            }
            ToData::Disconnected { conn } => Input::Disconnected { conn },
            ToData::FourLetter { conn, word } => {
                let text = self.status.respond(self.node.borrow().processor(), &word);
                if text.as_deref() == Some(crate::four_letter::SNAPSHOT_REQUESTED) {
                    self.snapshots.borrow_mut().request();
                }
                Input::AnswerAndClose { conn, bytes: text.map(String::into_bytes) }
            }
        };
        self.step(input);
    }

    /// The log made everything up to `zxid` durable.
    fn durable(&self, zxid: i64) {
        self.snapshots.borrow_mut().durable(zxid);
        self.step(Input::Durable { zxid });
    }

    /// A frame or a link loss from the peer transport.
    fn peer_input(&self, input: PeerInput) {
        match input {
            PeerInput::LinkDown { peer } => self.step(Input::LinkDown { peer }),
            PeerInput::Frame { from, kind: FrameKind::Zab, payload } => match Msg::decode(&payload) {
                Ok(msg) => self.step(Input::PeerMessage { from, msg }),
                Err(e) => log::warn!("dropping a message from server {from}: {e}"),
            },
            PeerInput::Frame { from, kind: FrameKind::Relay, payload } => match Relay::decode(&payload) {
                Ok(relay) => self.step(Input::RelayMessage { from, relay }),
                Err(e) => log::warn!("dropping relayed traffic from server {from}: {e}"),
            },
        }
    }
}

/// A sender the data role can `try_send` to without ever finding it full: a local link as
/// the runtime made it (unbounded), or a local queue forwarded in order into a bounded shared
/// link by a task of its own. What the data role has in flight is bounded by `in_flight_max`
/// and `held_max` instead.
fn never_waiting<T: Send + 'static>(sender: link::Sender<T>) -> link::Sender<T> {
    if let link::Sender::Local(_) = sender {
        return sender;
    }
    let (local_tx, local_rx) = link::local_unbounded::<T>();
    role_stats::spawn(Role::Data, async move {
        while let Some(item) = local_rx.recv().await {
            if sender.send(item).await.is_err() {
                break;
            }
        }
    })
    .detach();
    local_tx
}

/// Runs the data role on the current executor until the process ends.
pub async fn run(
    processor: Processor,
    status: StatusSource,
    from_cores: Vec<link::Receiver<ToData>>,
    to_cores: Vec<link::Sender<Vec<ToNet>>>,
    log: LogLink,
    replica: Option<ReplicaSetup>,
    coalescer: Option<Rc<Coalescer>>,
) {
    let limits = Limits { in_flight_max: log.in_flight_max, held_max: log.held_max };
    let node = match &replica {
        Some(setup) => {
            let peer = Peer::new(setup.peer_config.clone(), setup.recovered.clone(), now_ms());
            Node::ensemble(processor, peer, log.durable_zxid, limits)
        }
        None => Node::standalone(processor, log.durable_zxid, limits),
    };
    let role = Rc::new(DataRole {
        node: RefCell::new(node),
        to_cores: to_cores.into_iter().map(never_waiting).collect(),
        to_log: never_waiting(log.to_log),
        room_wakers: RefCell::new(Vec::new()),
        role_waker: Cell::new(None),
        status,
        ensemble: replica.as_ref().map(|setup| EnsembleIo {
            transport: OnceCell::new(),
            data_dir: setup.data_dir.clone(),
            epochs: Cell::new((setup.recovered.accepted_epoch, setup.recovered.current_epoch)),
            config_files: setup.config_files.clone(),
        }),
        snapshots: RefCell::new(log.snapshots),
        coalescer,
    });
    if let Some(setup) = replica {
        start_replica(&role, setup).await;
    }
    {
        let role = role.clone();
        role_stats::spawn(
            Role::Data,
            async move { crate::snapshotter::run(&role.snapshots, &role.node).await },
        )
        .detach();
    }
    {
        let role = role.clone();
        role_stats::spawn(Role::Data, async move {
            let from_log = log.from_log;
            while let Some(mut zxid) = from_log.recv().await {
                // Durable zxids only grow: the newest of those already queued covers the rest.
                while let Some(newer) = from_log.recv_ready().await {
                    zxid = newer;
                }
                role.durable(zxid);
            }
        })
        .detach();
    }
    for receiver in from_cores {
        let role = role.clone();
        role_stats::spawn(Role::Data, async move {
            loop {
                role.wait_for_room().await;
                let Some(message) = receiver.recv().await else { break };
                role.handle(message);
            }
        })
        .detach();
    }
    run_timers(&role).await
}

/// The data role's timers (ZAB peer, session expiry and reaping, a learner's session
/// touches) on one task that sleeps until the next of them is due, or the ensemble role
/// changes: an idle serving member wakes about once per heartbeat, plus the pings it hears.
async fn run_timers(role: &DataRole) -> ! {
    // A learner's tick only reports its clients' sessions to the leader (which owns expiry):
    // as often as an Apache learner does, twice per tickTime.
    let tick_ms = role.node.borrow().processor().config.tick_ms.max(0) as u64;
    let learner_interval = TICK_INTERVAL.max(Duration::from_millis(tick_ms / 2));
    let mut processor_tick_at = Instant::now() + TICK_INTERVAL;
    loop {
        let until_processor_tick = processor_tick_at.saturating_duration_since(Instant::now());
        if role.ensemble.is_some() {
            let (view, next_peer_timer) = {
                let node = role.node.borrow();
                (node.role(), node.peer().and_then(Peer::next_timer_at))
            };
            let leading = view.state == ServerState::Leading && view.serving;
            let until_peer_timer = match next_peer_timer {
                // At least 1 ms: the wall clock in whole ms may lag the timer a little.
                Some(at) => Duration::from_millis((at - now_ms()).max(1) as u64),
                None => PEER_TICK_ELECTING,
            };
            // A leader's tick may wait a little for the next ping's wake-up.
            let until_processor_tick =
                if leading { until_processor_tick + PROCESSOR_TICK_SLACK } else { until_processor_tick };
            let wait = until_peer_timer.min(until_processor_tick);
            futures_lite::future::or(glommio::timer::sleep(wait), role.role_changed()).await;
            let due = role.node.borrow().peer().and_then(Peer::next_timer_at).is_none_or(|at| now_ms() >= at);
            if due {
                role.step(Input::PeerTick);
            }
        } else {
            glommio::timer::sleep(until_processor_tick).await;
        }
        let now = Instant::now();
        if now >= processor_tick_at {
            let role_view = role.node.borrow().role();
            let learner = role.ensemble.is_some()
                && matches!(role_view.state, ServerState::Following | ServerState::Observing)
                && role_view.serving;
            processor_tick_at = now + if learner { learner_interval } else { TICK_INTERVAL };
            role.step(Input::Tick);
            let node = role.node.borrow();
            let leader = node
                .peer()
                .and_then(Peer::learner_counts)
                .map(|learners| LeaderFigures { learners, pending_syncs: node.pending_syncs() });
            role.status.publish(node.processor(), leader);
        }
    }
}

/// Binds a quorum or election port (`key` names it: `server.3 quorum port`) for this process
/// alone ([`crate::listen::bind`]); a previous incarnation of this server
/// (restarted from disk) may still hold it for a moment: the bind is retried for a while
/// before giving up. Another live process on it (a second server on the same zoo.cfg) ends
/// this one, as Apache's "Address already in use".
async fn bind_retrying(addr: std::net::SocketAddr, key: &str) -> glommio::net::TcpListener {
    let mut attempts = 0;
    loop {
        match crate::listen::bind(addr) {
            Ok(listener) => return listener,
            Err(e) if attempts < 200 => {
                attempts += 1;
                log::debug!("{key} {addr} not free yet: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                log::error!("FATAL: {key}: cannot listen on {addr}: {e}; is another server running on it?");
                std::process::exit(71);
            }
        }
    }
}

/// Opens the peer links and starts the election (the peer's timers run in [`run`]'s loop).
async fn start_replica(role: &Rc<DataRole>, setup: ReplicaSetup) {
    let connect_timeout = Duration::from_millis(setup.peer_config.peer_timeout_ms.max(1) as u64);
    if let Some(apache) = &setup.apache {
        let listener = bind_retrying(
            apache.election_listen,
            &format!("server.{} election port", setup.peer_config.my_id),
        )
        .await;
        let learner_listener =
            bind_retrying(setup.listen, &format!("server.{} quorum port", setup.peer_config.my_id)).await;
        let (inputs, from_quorum) = link::local_unbounded();
        let quorum = ApacheQuorum::start(
            setup.peer_config.my_id,
            apache,
            listener,
            learner_listener,
            connect_timeout,
            inputs,
        );
        let _ = role.ensemble().transport.set(PeerTransport::Apache(quorum));
        let stepping = role.clone();
        role_stats::spawn(Role::Data, async move {
            while let Some(input) = from_quorum.recv().await {
                stepping.step(match input {
                    QuorumInput::Msg { from, msg } => Input::PeerMessage { from, msg },
                    QuorumInput::Relay { from, relay } => Input::RelayMessage { from, relay },
                    QuorumInput::LinkDown { peer } => Input::LinkDown { peer },
                });
            }
        })
        .detach();
        let mut effects = Vec::new();
        {
            let mut node = role.node.borrow_mut();
            node.follow_apache_leaders();
            node.start(now_ms(), &mut effects);
        }
        role.carry_out(effects);
        return;
    }
    let listener =
        bind_retrying(setup.listen, &format!("server.{} quorum port", setup.peer_config.my_id)).await;
    let deliver_to = role.clone();
    let my_address = PeerAddress { host: setup.listen.ip().to_string(), port: setup.listen.port() };
    let net_setup = PeerNetSetup {
        my_id: setup.peer_config.my_id,
        my_address,
        peers: setup.peers,
        connect_timeout,
        accept_unknown: setup.reconfig_enabled,
        tls: setup.quorum_tls,
        sasl: setup.quorum_sasl,
    };
    let net = PeerNet::start(net_setup, listener, Rc::new(move |input| deliver_to.peer_input(input)));
    let _ = role.ensemble().transport.set(PeerTransport::Ringkeeper(net));
    let mut effects = Vec::new();
    role.node.borrow_mut().start(now_ms(), &mut effects);
    role.carry_out(effects);
}
