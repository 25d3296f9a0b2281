//! Data role: runs the engine's replica [`Node`] (processor, ZAB peer, hold gate, learner
//! relay) on one core, and carries out what it asks.
//!
//! In: `ToData` from every network core (one bounded channel each), "durable up to zxid Z"
//! from the log role, peer frames and link losses ([`crate::peer_net`]), and timers (session
//! expiry and the reaper; the ZAB peer's). Snapshots are captured here in bounded slices by a
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use ringkeeper_engine::replica::gate::Limits;
use ringkeeper_engine::replica::{Effect, Input, Node};
use ringkeeper_engine::request::Processor;
use ringkeeper_engine::zab::{Msg, Peer, Relay, ServerState};

use crate::four_letter::ServerMode;
use crate::log_role::LogRecord;
use crate::messages::{ToData, ToNet};
use crate::peer_net::{FrameKind, PeerInput, PeerNet};
use crate::replica::{self, ReplicaSetup};
use crate::snapshotter::Snapshotter;
use crate::status::StatusSource;

/// Wall-clock milliseconds (ctime/mtime and session deadlines).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How often expiry and reaping are checked.
const TICK_INTERVAL: Duration = Duration::from_millis(50);
/// How often the ZAB peer's timers run.
const PEER_TICK_INTERVAL: Duration = Duration::from_millis(5);

/// Channels between the data role and the log role.
pub struct LogLink {
    pub to_log: SharedSender<LogRecord>,
    pub from_log: SharedReceiver<i64>,
    /// The last zxid recovered from the log: durable already.
    pub durable_zxid: i64,
    /// Most txns sent to the log and not yet durable before requests stop being taken.
    pub in_flight_max: usize,
    /// Most outputs held for durability before requests stop being taken.
    pub held_max: usize,
    /// When and how snapshots are taken ([`crate::snapshotter`]).
    pub snapshots: Snapshotter,
}

struct DataRole {
    node: RefCell<Node>,
    to_cores: Vec<LocalSender<Vec<ToNet>>>,
    to_log: LocalSender<LogRecord>,
    /// Tasks waiting for room (request receivers).
    room_wakers: RefCell<Vec<Waker>>,
    status: StatusSource,
    snapshots: RefCell<Snapshotter>,
    ensemble: Option<EnsembleIo>,
}

/// The I/O of an ensemble member (see [`crate::replica`]).
struct EnsembleIo {
    net: OnceCell<PeerNet>,
    data_dir: std::path::PathBuf,
    /// The epochs on disk (accepted, current).
    epochs: Cell<(u32, u32)>,
}

impl DataRole {
    /// Steps the node with one input and carries out its effects.
    fn step(&self, input: Input) {
        let mut effects = Vec::new();
        self.node.borrow_mut().step(now_ms(), input, &mut effects);
        self.carry_out(effects);
    }

    fn carry_out(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Deliver { core, batch } => {
                    let batch = batch.into_iter().map(ToNet::from).collect();
                    // Unbounded locally, but bounded by `held_max` through `wait_for_room`.
                    let _ = self.to_cores[core as usize].try_send(batch);
                }
                Effect::Append { zxid, txn } => {
                    self.snapshots.borrow_mut().txn_logged();
                    // Unbounded locally, but bounded by `in_flight_max` through `wait_for_room`.
                    let _ = self.to_log.try_send(LogRecord { zxid, bytes: txn });
                }
                Effect::PeerSend { to, msg } => {
                    if let Msg::Snapshot { zxid, image, .. } = &msg {
                        log::info!("sending server {to} a snapshot at {zxid:#x} ({} bytes)", image.len());
                    }
                    self.send_peer(to, FrameKind::Zab, |b| msg.encode(b));
                }
                Effect::RelaySend { to, relay } => self.send_peer(to, FrameKind::Relay, |b| relay.encode(b)),
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
                Effect::RoleChanged(view) => {
                    let mode = match view.state {
                        ServerState::Leading => ServerMode::Leader,
                        ServerState::Observing => ServerMode::Observer,
                        _ => ServerMode::Follower,
                    };
                    self.status.set_role(mode, view.serving);
                    log::info!(
                        "ensemble role: {:?}, leader {:?}, epoch {}, {}",
                        view.state,
                        view.leader,
                        view.epoch,
                        if view.serving { "serving" } else { "not serving" }
                    );
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

    fn send_peer(&self, to: u64, kind: FrameKind, encode: impl FnOnce(&mut Vec<u8>)) {
        if let Some(net) = self.ensemble.as_ref().and_then(|io| io.net.get()) {
            net.send(to, kind, encode);
        }
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
        let input = match message {
            ToData::Connect { conn, client_ip, remote, request } => {
                Input::Connect { conn, client_ip, remote, request }
            }
            ToData::Request { conn, frame } => Input::Request { conn, frame },
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

/// Forwards a local queue into a bounded shared channel, in order, until either side closes.
fn spawn_forwarder<T: Send + 'static>(shared: SharedSender<T>) -> LocalSender<T> {
    let (local_tx, local_rx) = local_channel::new_unbounded::<T>();
    glommio::spawn_local(async move {
        let shared = shared.connect().await;
        while let Some(item) = local_rx.recv().await {
            if shared.send(item).await.is_err() {
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
    from_cores: Vec<SharedReceiver<ToData>>,
    to_cores: Vec<SharedSender<Vec<ToNet>>>,
    log: LogLink,
    replica: Option<ReplicaSetup>,
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
        to_cores: to_cores.into_iter().map(spawn_forwarder).collect(),
        to_log: spawn_forwarder(log.to_log),
        room_wakers: RefCell::new(Vec::new()),
        status,
        ensemble: replica.as_ref().map(|setup| EnsembleIo {
            net: OnceCell::new(),
            data_dir: setup.data_dir.clone(),
            epochs: Cell::new((setup.recovered.accepted_epoch, setup.recovered.current_epoch)),
        }),
        snapshots: RefCell::new(log.snapshots),
    });
    if let Some(setup) = replica {
        start_replica(&role, setup).await;
    }
    {
        let role = role.clone();
        glommio::spawn_local(async move { crate::snapshotter::run(&role.snapshots, &role.node).await })
            .detach();
    }
    {
        let role = role.clone();
        glommio::spawn_local(async move {
            let from_log = log.from_log.connect().await;
            while let Some(zxid) = from_log.recv().await {
                role.durable(zxid);
            }
        })
        .detach();
    }
    for receiver in from_cores {
        let role = role.clone();
        glommio::spawn_local(async move {
            let receiver = receiver.connect().await;
            loop {
                role.wait_for_room().await;
                let Some(message) = receiver.recv().await else { break };
                role.handle(message);
            }
        })
        .detach();
    }
    loop {
        glommio::timer::sleep(TICK_INTERVAL).await;
        role.step(Input::Tick);
    }
}

/// Opens the peer links, starts the election and the peer's timers.
async fn start_replica(role: &Rc<DataRole>, setup: ReplicaSetup) {
    // A previous incarnation of this server (restarted from disk) may still hold the port
    // for a moment: retry the bind for a while before giving up.
    let mut attempts = 0;
    let listener = loop {
        match glommio::net::TcpListener::bind(setup.listen) {
            Ok(l) => break l,
            Err(e) if attempts < 200 => {
                attempts += 1;
                log::debug!("peer port {} not free yet: {e}", setup.listen);
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                log::error!("FATAL: cannot listen on peer port {}: {e}", setup.listen);
                std::process::exit(71);
            }
        }
    };
    let deliver_to = role.clone();
    let connect_timeout = Duration::from_millis(setup.peer_config.peer_timeout_ms.max(1) as u64);
    let net = PeerNet::start(
        setup.peer_config.my_id,
        listener,
        setup.peers,
        connect_timeout,
        Rc::new(move |input| deliver_to.peer_input(input)),
    );
    let _ = role.ensemble().net.set(net);
    let mut effects = Vec::new();
    role.node.borrow_mut().start(now_ms(), &mut effects);
    role.carry_out(effects);
    let ticking = role.clone();
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(PEER_TICK_INTERVAL).await;
            ticking.step(Input::PeerTick);
        }
    })
    .detach();
}
