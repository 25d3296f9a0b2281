//! Data role: owns the engine's [`Processor`] (tree, sessions, watches) on one core, and
//! holds every output until the log says the zxid it depends on is durable.
//!
//! In: `ToData` from every network core (one bounded channel each), "durable up to zxid Z"
//! from the log role, and a timer for session expiry and the container reaper.
//! Snapshots are captured here in bounded slices by a task of their own ([`crate::snapshotter`]).
//! Out: the encoded txn of every write to the log role (bounded channel, zxid order), and
//! `Vec<ToNet>` batches to each network core, in the exact order the processor emitted them
//! (one ordered hold queue per core, released front-first once durable ≥ the output's zxid,
//! then one ordered local queue per core drained by one forwarder task).
//! In an ensemble the same core runs the ZAB peer ([`crate::replica`]): outputs are then held
//! until their zxid is committed (a quorum has it durably) instead of locally durable.
//! Invariants: nothing else touches the processor; a message is handled to completion (no
//! await) before the next one, so every request sees all earlier writes; no client observes
//! a write before it is durable (a read's output carries the last zxid, so it waits behind
//! pending writes); txns still awaiting durability and held outputs are bounded: requests
//! are not taken from the network while either bound is reached.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use ringkeeper_engine::proto::{ConnectRequest, ConnectResponse, Id, Jute, OpCode};
use ringkeeper_engine::request::replica::is_forwarded;
use ringkeeper_engine::request::{ConnId, Output, Processor};
use ringkeeper_engine::txn;
use ringkeeper_engine::zab::{make_zxid, Action, Event, Msg, Peer, Relay, RoleView, ServerId, ServerState};

use crate::four_letter::ServerMode;
use crate::log_role::LogRecord;
use crate::messages::{core_of, ToData, ToNet};
use crate::peer_net::{FrameKind, PeerInput, PeerNet};
use crate::replica::{self, Queued, Relaying, ReplicaSetup};
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

/// Outputs waiting for durability (or commit), per network core, in emission order.
struct Held {
    /// Outputs up to this zxid may go out (durable standalone, committed in an ensemble).
    durable_zxid: i64,
    /// zxids sent to the log and not yet durable (ascending).
    in_flight: VecDeque<i64>,
    per_core: Vec<VecDeque<(i64, ToNet)>>,
    held_count: usize,
    /// Tasks waiting for room (request receivers).
    room_wakers: Vec<Waker>,
}

struct DataRole {
    processor: RefCell<Processor>,
    to_cores: Vec<LocalSender<Vec<ToNet>>>,
    to_log: LocalSender<LogRecord>,
    held: RefCell<Held>,
    in_flight_max: usize,
    held_max: usize,
    status: StatusSource,
    snapshots: RefCell<Snapshotter>,
    replica: Option<Replica>,
}

/// The ensemble member state beside the processor (see [`crate::replica`]).
struct Replica {
    peer: RefCell<Peer>,
    net: OnceCell<PeerNet>,
    relaying: RefCell<Relaying>,
    role: Cell<RoleView>,
    data_dir: std::path::PathBuf,
    /// The epochs on disk (accepted, current).
    epochs: Cell<(u32, u32)>,
}

impl Replica {
    fn learner_of(&self) -> Option<ServerId> {
        let role = self.role.get();
        match role.state {
            ServerState::Following | ServerState::Observing if role.serving => role.leader,
            _ => None,
        }
    }

    fn send_relay(&self, to: ServerId, relay: &Relay) {
        if let Some(net) = self.net.get() {
            net.send(to, FrameKind::Relay, |b| relay.encode(b));
        }
    }
}

impl DataRole {
    /// Routes processor outputs: txns to the log (and, on a leader, to its followers), replies
    /// of relayed requests back to their learner, the rest to the hold queues of their cores.
    fn route(&self, outputs: Vec<Output>) {
        let mut proposals = Vec::new();
        let mut relays = Vec::new();
        {
            let mut held = self.held.borrow_mut();
            for output in outputs {
                let (core, zxid, item) = match output {
                    Output::Log { zxid, bytes } => {
                        held.in_flight.push_back(zxid);
                        self.snapshots.borrow_mut().txn_logged();
                        let bytes = Arc::new(bytes);
                        // Unbounded locally, but bounded by `in_flight_max` through `wait_for_room`.
                        let _ = self.to_log.try_send(LogRecord { zxid, bytes: bytes.clone() });
                        if self.replica.is_some() {
                            proposals.push((zxid, bytes));
                        }
                        continue;
                    }
                    Output::Send { conn, frame, zxid } => match replica::relayed(conn) {
                        Some((learner, token)) => {
                            relays.push((learner, Relay::Reply { token, zxid, frame }));
                            continue;
                        }
                        None => (core_of(conn), zxid, ToNet::Send { conn, bytes: frame }),
                    },
                    Output::Close { conn, zxid } => match replica::relayed(conn) {
                        Some((learner, token)) => {
                            relays.push((learner, Relay::Close { token }));
                            continue;
                        }
                        None => (core_of(conn), zxid, ToNet::Close { conn }),
                    },
                };
                held.per_core[core].push_back((zxid, item));
                held.held_count += 1;
            }
        }
        if let Some(r) = &self.replica {
            for (to, relay) in relays {
                r.send_relay(to, &relay);
            }
            for (zxid, txn) in proposals {
                self.step_peer(Event::Proposed { zxid, txn });
            }
        }
        self.release();
    }

    /// Sends every held output whose zxid is durable, front-first per core (order is kept:
    /// an output never overtakes an earlier one of its core).
    fn release(&self) {
        let mut held = self.held.borrow_mut();
        let durable = held.durable_zxid;
        let mut released = 0;
        for (core, queue) in held.per_core.iter_mut().enumerate() {
            let ready = queue.iter().take_while(|(zxid, _)| *zxid <= durable).count();
            if ready > 0 {
                let batch: Vec<ToNet> = queue.drain(..ready).map(|(_, item)| item).collect();
                released += ready;
                let _ = self.to_cores[core].try_send(batch);
            }
        }
        held.held_count -= released;
        if self.has_room(&held) {
            held.room_wakers.drain(..).for_each(Waker::wake);
        }
    }

    /// The log made everything up to `zxid` durable: standalone, its outputs may go out; in an
    /// ensemble, the peer counts it towards the quorum.
    fn durable(&self, zxid: i64) {
        {
            let mut held = self.held.borrow_mut();
            while held.in_flight.front().is_some_and(|z| *z <= zxid) {
                held.in_flight.pop_front();
            }
        }
        self.snapshots.borrow_mut().durable(zxid);
        if self.replica.is_some() {
            self.step_peer(Event::Durable { zxid });
            self.release();
        } else {
            self.open_gate(zxid);
        }
    }

    /// Outputs up to `zxid` may go out.
    fn open_gate(&self, zxid: i64) {
        {
            let mut held = self.held.borrow_mut();
            held.durable_zxid = held.durable_zxid.max(zxid);
        }
        self.release();
    }

    fn has_room(&self, held: &Held) -> bool {
        held.in_flight.len() < self.in_flight_max && held.held_count < self.held_max
    }

    /// Resolves once fewer txns and outputs than the bounds await durability.
    async fn wait_for_room(&self) {
        poll_fn(|cx| {
            let mut held = self.held.borrow_mut();
            if self.has_room(&held) {
                Poll::Ready(())
            } else {
                held.room_wakers.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    fn handle(&self, message: ToData) {
        let now = now_ms();
        let outputs = match message {
            ToData::Connect { conn, client_ip, remote, request } => {
                if let Some(r) = &self.replica {
                    if !r.role.get().serving {
                        // Not serving (electing or syncing): the client tries another server.
                        self.route(vec![Output::Close { conn, zxid: 0 }]);
                        return;
                    }
                    if let (Some(leader), 0) = (r.learner_of(), request.session_id) {
                        self.relay_new_session(r, leader, conn, client_ip, &request);
                        return;
                    }
                }
                self.processor.borrow_mut().connect(conn, &client_ip, &remote, &request, now)
            }
            ToData::Request { conn, frame }
                if self.replica.as_ref().is_some_and(|r| r.learner_of().is_some()) =>
            {
                self.learner_request(conn, frame);
                return;
            }
            ToData::Request { conn, frame } => {
                let result = self.processor.borrow_mut().request(conn, &frame, now);
                match result {
                    Ok(outputs) => outputs,
                    Err(e) => {
                        log::info!("closing connection {conn:#x}: malformed request: {e}");
                        self.processor.borrow_mut().disconnected(conn);
                        vec![Output::Close { conn, zxid: 0 }]
                    }
                }
            }
            ToData::Disconnected { conn } => {
                self.processor.borrow_mut().disconnected(conn);
                if let Some(r) = &self.replica {
                    r.relaying.borrow_mut().forget(conn);
                    if let Some(leader) = r.learner_of() {
                        r.send_relay(leader, &Relay::Gone { token: conn });
                    }
                }
                Vec::new()
            }
            ToData::FourLetter { conn, word } => {
                let text = self.status.respond(&self.processor.borrow(), &word);
                if text.as_deref() == Some(crate::four_letter::SNAPSHOT_REQUESTED) {
                    self.snapshots.borrow_mut().request();
                }
                let mut outputs = Vec::new();
                if let Some(text) = text {
                    outputs.push(Output::Send { conn, frame: text.into_bytes(), zxid: 0 });
                }
                outputs.push(Output::Close { conn, zxid: 0 });
                outputs
            }
        };
        self.route(outputs);
    }
}

/// The ensemble paths of the data role (see [`crate::replica`] for the rules).
impl DataRole {
    fn replica(&self) -> &Replica {
        self.replica.as_ref().expect("called in an ensemble only")
    }

    /// Steps the ZAB peer and carries out what it asks, in order.
    fn step_peer(&self, event: Event) {
        let r = self.replica();
        let mut actions = Vec::new();
        r.peer.borrow_mut().step(now_ms(), event, &mut actions);
        self.carry_out(actions);
    }

    fn carry_out(&self, actions: Vec<Action>) {
        let r = self.replica();
        for action in actions {
            match action {
                Action::Send { to, msg } => {
                    if let Some(net) = r.net.get() {
                        net.send(to, FrameKind::Zab, |b| msg.encode(b));
                    }
                }
                Action::Append { zxid, txn } => {
                    self.held.borrow_mut().in_flight.push_back(zxid);
                    self.snapshots.borrow_mut().txn_logged();
                    let _ = self.to_log.try_send(LogRecord { zxid, bytes: txn });
                }
                Action::Apply { txn, .. } => {
                    // Validated when the proposal was decoded from the wire (or made here).
                    let outputs =
                        self.processor.borrow_mut().apply_committed(txn::access_trusted(&txn), now_ms());
                    // Watch events, then the replies this txn releases (a closeSession's
                    // reply among them), then the closes of sessions it ended.
                    let (closes, events): (Vec<Output>, Vec<Output>) =
                        outputs.into_iter().partition(|o| matches!(o, Output::Close { .. }));
                    self.route(events);
                    if !closes.is_empty() {
                        self.drain_all();
                    }
                    self.route(closes);
                }
                Action::Committed { zxid } => {
                    self.open_gate(zxid);
                    if r.learner_of().is_some() {
                        self.drain_all();
                    }
                }
                Action::Truncate { zxid } => {
                    if let Err(e) = replica::record_truncation(&r.data_dir, zxid) {
                        log::error!("FATAL: recording a log truncation in {}: {e}", r.data_dir.display());
                        std::process::exit(71);
                    }
                    replica::restart_from_disk(&format!(
                        "the leader's history ends at {zxid:#x}; txns after it are cut"
                    ));
                }
                Action::SendSnapshot { to, epoch, zxid, epoch_ends } => {
                    // A consistent image of the state right now (the leader's tree holds
                    // exactly its log); built on this core: a stall proportional to the tree,
                    // paid only when a learner is too far behind for DIFF.
                    let image = {
                        let p = self.processor.borrow();
                        ringkeeper_engine::snapshot::encode(&ringkeeper_engine::snapshot::capture(
                            &p.tree,
                            &p.sessions,
                        ))
                    };
                    let mut bytes = Vec::with_capacity(image.header.len() + image.payload.len());
                    bytes.extend_from_slice(&image.header);
                    bytes.extend_from_slice(&image.payload);
                    log::info!("sending server {to} a snapshot at {zxid:#x} ({} bytes)", bytes.len());
                    let msg = Msg::Snapshot { epoch, zxid, epoch_ends, image: Arc::new(bytes) };
                    if let Some(net) = r.net.get() {
                        net.send(to, FrameKind::Zab, |b| msg.encode(b));
                    }
                }
                Action::InstallSnapshot { zxid, image } => {
                    let ends: Vec<i64> = r.peer.borrow().epoch_ends();
                    match replica::record_installation(&r.data_dir, &image, &ends) {
                        Ok(_) => replica::restart_from_disk(&format!(
                            "installing the leader's snapshot at {zxid:#x}"
                        )),
                        Err(e) => {
                            log::error!("FATAL: installing the leader's snapshot at {zxid:#x}: {e}");
                            std::process::exit(71);
                        }
                    }
                }
                Action::PersistEpochs { accepted, current } => {
                    let before = r.epochs.replace((accepted, current));
                    if before == (accepted, current) {
                        continue;
                    }
                    if let Err(e) = replica::persist_epochs(&r.data_dir, before, accepted, current) {
                        log::error!("FATAL: writing epochs in {}: {e}", r.data_dir.display());
                        std::process::exit(71);
                    }
                }
                Action::Role(view) => self.role_changed(view),
            }
        }
    }

    fn role_changed(&self, view: RoleView) {
        let r = self.replica();
        let was = r.role.replace(view);
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
        if was.serving && !(view.serving && view.state == was.state && view.leader == was.leader) {
            // Clients reconnect elsewhere (or here once serving again): no reply may come from
            // a server that lost its leader.
            let conns: Vec<ConnId> = self.processor.borrow().connections().map(|(c, _)| *c).collect();
            let mut outputs = Vec::new();
            for conn in conns {
                self.processor.borrow_mut().disconnected(conn);
                if replica::relayed(conn).is_none() {
                    outputs.push(Output::Close { conn, zxid: 0 });
                }
            }
            *r.relaying.borrow_mut() = Relaying::default();
            // Replies still waiting for a commit belong to connections being closed: drop
            // them, or the closes would queue behind zxids this server may never commit.
            {
                let mut held = self.held.borrow_mut();
                held.per_core.iter_mut().for_each(VecDeque::clear);
                held.held_count = 0;
                held.room_wakers.drain(..).for_each(Waker::wake);
            }
            self.route(outputs);
        }
        if view.serving {
            let mut p = self.processor.borrow_mut();
            p.begin_epoch(view.epoch);
            p.set_owns_expiry(view.state == ServerState::Leading, now_ms());
            drop(p);
            self.open_gate(make_zxid(view.epoch, 0));
        } else {
            self.processor.borrow_mut().set_owns_expiry(false, now_ms());
        }
    }

    /// A frame or a link loss from the peer transport.
    fn peer_input(&self, input: PeerInput) {
        match input {
            PeerInput::LinkDown { peer } => {
                self.drop_stand_ins(peer);
                self.step_peer(Event::LinkDown { peer });
            }
            PeerInput::Frame { from, kind: FrameKind::Zab, payload } => match Msg::decode(&payload) {
                Ok(msg) => self.step_peer(Event::Message { from, msg }),
                Err(e) => log::warn!("dropping a message from server {from}: {e}"),
            },
            PeerInput::Frame { from, kind: FrameKind::Relay, payload } => match Relay::decode(&payload) {
                Ok(relay) => self.relay_in(from, relay),
                Err(e) => log::warn!("dropping relayed traffic from server {from}: {e}"),
            },
        }
    }

    /// Stand-in connections of a learner whose link went down are forgotten.
    fn drop_stand_ins(&self, learner: ServerId) {
        let mut p = self.processor.borrow_mut();
        let gone: Vec<ConnId> = p
            .connections()
            .map(|(c, _)| *c)
            .filter(|c| replica::relayed(*c).is_some_and(|(l, _)| l == learner))
            .collect();
        for conn in gone {
            p.disconnected(conn);
        }
    }

    fn relay_in(&self, from: ServerId, relay: Relay) {
        let now = now_ms();
        let r = self.replica();
        let leading = r.role.get().state == ServerState::Leading && r.role.get().serving;
        let outputs = match relay {
            Relay::Forward { token, session_id, ids, client_ip, frame } if leading => {
                let conn = replica::stand_in(from, token);
                let ids = ids.into_iter().map(|(scheme, id)| Id { scheme, id }).collect();
                let mut p = self.processor.borrow_mut();
                p.attach(conn, session_id, ids, &client_ip, now);
                match p.request(conn, &frame, now) {
                    Ok(outputs) => outputs,
                    Err(_) => vec![Output::Close { conn, zxid: 0 }],
                }
            }
            Relay::CreateSession { token, client_ip, request } if leading => {
                let conn = replica::stand_in(from, token);
                match ConnectRequest::from_bytes(&request) {
                    Ok(req) => self.processor.borrow_mut().connect(conn, &client_ip, &client_ip, &req, now),
                    Err(_) => vec![Output::Close { conn, zxid: 0 }],
                }
            }
            Relay::Gone { token } => {
                self.processor.borrow_mut().disconnected(replica::stand_in(from, token));
                Vec::new()
            }
            Relay::Touch { sessions } => {
                let mut p = self.processor.borrow_mut();
                for id in sessions {
                    p.sessions.touch(id, now);
                }
                Vec::new()
            }
            Relay::Reply { token, zxid, frame } => {
                r.relaying.borrow_mut().reply(token, zxid, frame);
                self.drain(token);
                Vec::new()
            }
            Relay::Close { token } => {
                if let Some(q) = r.relaying.borrow_mut().queues.get_mut(&token) {
                    q.push_back(Queued::Close);
                }
                self.drain(token);
                Vec::new()
            }
            // Relayed traffic reaching a server that is not the serving leader: the learner
            // will see the leader change and its clients reconnect.
            Relay::Forward { .. } | Relay::CreateSession { .. } => Vec::new(),
        };
        self.route(outputs);
    }

    /// A learner asks its leader for a new session on behalf of `conn`.
    fn relay_new_session(
        &self,
        r: &Replica,
        leader: ServerId,
        conn: ConnId,
        client_ip: String,
        request: &ConnectRequest,
    ) {
        if request.last_zxid_seen > self.processor.borrow().last_zxid() {
            // The client saw newer state than this learner has: it tries another server.
            self.route(vec![Output::Close { conn, zxid: 0 }]);
            return;
        }
        let mut relaying = r.relaying.borrow_mut();
        relaying.connecting.insert(conn, client_ip.clone());
        relaying.queues.entry(conn).or_default().push_back(Queued::Awaiting);
        drop(relaying);
        r.send_relay(leader, &Relay::CreateSession { token: conn, client_ip, request: request.to_bytes() });
    }

    /// A learner's client request: reads run here unless an earlier relayed write of the same
    /// connection is still pending; writes, sync and closeSession go to the leader.
    fn learner_request(&self, conn: ConnId, frame: Vec<u8>) {
        let r = self.replica();
        let Some(leader) = r.learner_of() else { return };
        let op = frame.get(4..8).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
        let (session_id, ids, client_ip) = {
            let p = self.processor.borrow();
            let ip = p.connection(conn).map(|c| c.client_ip.clone()).unwrap_or_default();
            (p.session_of(conn), p.ids_of(conn), ip)
        };
        let mut relaying = r.relaying.borrow_mut();
        if session_id != 0 {
            relaying.touched.insert(session_id);
        }
        if op.and_then(OpCode::from_i32).is_some_and(is_forwarded) && session_id != 0 {
            relaying.queues.entry(conn).or_default().push_back(Queued::Awaiting);
            drop(relaying);
            let ids = ids.into_iter().map(|id| (id.scheme, id.id)).collect();
            r.send_relay(leader, &Relay::Forward { token: conn, session_id, ids, client_ip, frame });
            return;
        }
        if let Some(q) = relaying.queues.get_mut(&conn) {
            q.push_back(Queued::Read(frame));
            return;
        }
        drop(relaying);
        let result = self.processor.borrow_mut().request(conn, &frame, now_ms());
        let outputs = result.unwrap_or_else(|e| {
            log::info!("closing connection {conn:#x}: malformed request: {e}");
            self.processor.borrow_mut().disconnected(conn);
            vec![Output::Close { conn, zxid: 0 }]
        });
        self.route(outputs);
    }

    /// Releases what is ready at the front of `conn`'s queue: replies whose txn this learner
    /// applied, then the reads behind them, up to the next pending relayed request.
    fn drain(&self, conn: ConnId) {
        let r = self.replica();
        loop {
            let applied = self.processor.borrow().last_zxid();
            let item = {
                let mut relaying = r.relaying.borrow_mut();
                let Some(q) = relaying.queues.get_mut(&conn) else { return };
                let ready = match q.front() {
                    Some(Queued::Reply { zxid, .. }) => *zxid <= applied,
                    Some(Queued::Read(_)) | Some(Queued::Close) => true,
                    Some(Queued::Awaiting) => false,
                    None => {
                        relaying.queues.remove(&conn);
                        return;
                    }
                };
                if !ready {
                    return;
                }
                q.pop_front().expect("checked")
            };
            let outputs = match item {
                Queued::Reply { frame, connect, .. } => {
                    if connect {
                        self.attach_new_session(conn, &frame);
                    }
                    vec![Output::Send { conn, frame, zxid: 0 }]
                }
                Queued::Read(frame) => {
                    self.processor.borrow_mut().request(conn, &frame, now_ms()).unwrap_or_else(|_| {
                        self.processor.borrow_mut().disconnected(conn);
                        vec![Output::Close { conn, zxid: 0 }]
                    })
                }
                Queued::Close => {
                    self.processor.borrow_mut().disconnected(conn);
                    r.relaying.borrow_mut().forget(conn);
                    vec![Output::Close { conn, zxid: 0 }]
                }
                Queued::Awaiting => unreachable!("never popped"),
            };
            self.route(outputs);
        }
    }

    /// The leader created the session a learner's client asked for: bind the connection.
    fn attach_new_session(&self, conn: ConnId, frame: &[u8]) {
        let r = self.replica();
        let Some(client_ip) = r.relaying.borrow_mut().connecting.remove(&conn) else { return };
        match frame.get(4..).map(ConnectResponse::from_bytes) {
            Some(Ok(resp)) if resp.session_id != 0 => {
                self.processor.borrow_mut().attach(conn, resp.session_id, Vec::new(), &client_ip, now_ms());
            }
            _ => {}
        }
    }

    fn drain_all(&self) {
        let conns: Vec<ConnId> = self.replica().relaying.borrow().queues.keys().copied().collect();
        for conn in conns {
            self.drain(conn);
        }
    }

    /// Learner: tells the leader which sessions were active since the last tick.
    fn relay_touches(&self) {
        let r = self.replica();
        let Some(leader) = r.learner_of() else { return };
        let sessions: Vec<i64> = r.relaying.borrow_mut().touched.drain().collect();
        if !sessions.is_empty() {
            r.send_relay(leader, &Relay::Touch { sessions });
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
    let core_count = to_cores.len();
    let held = Held {
        durable_zxid: log.durable_zxid,
        in_flight: VecDeque::new(),
        per_core: (0..core_count).map(|_| VecDeque::new()).collect(),
        held_count: 0,
        room_wakers: Vec::new(),
    };
    let role = Rc::new(DataRole {
        processor: RefCell::new(processor),
        to_cores: to_cores.into_iter().map(spawn_forwarder).collect(),
        to_log: spawn_forwarder(log.to_log),
        held: RefCell::new(held),
        in_flight_max: log.in_flight_max.max(1),
        held_max: log.held_max.max(1),
        status,
        replica: replica.as_ref().map(|setup| Replica {
            peer: RefCell::new(Peer::new(setup.peer_config.clone(), setup.recovered.clone(), now_ms())),
            net: OnceCell::new(),
            relaying: RefCell::new(Relaying::default()),
            role: Cell::new(RoleView { state: ServerState::Looking, leader: None, epoch: 0, serving: false }),
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
        glommio::spawn_local(async move { crate::snapshotter::run(&role.snapshots, &role.processor).await })
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
        let outputs = role.processor.borrow_mut().tick(now_ms());
        role.route(outputs);
        let learners = role.replica.as_ref().and_then(|r| r.peer.borrow().learner_counts());
        role.status.publish(&role.processor.borrow(), learners);
        if role.replica.is_some() {
            role.relay_touches();
        }
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
    let r = role.replica();
    let _ = r.net.set(net);
    let mut actions = Vec::new();
    r.peer.borrow_mut().start(&mut actions);
    role.carry_out(actions);
    let ticking = role.clone();
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(PEER_TICK_INTERVAL).await;
            ticking.step_peer(Event::Tick);
        }
    })
    .detach();
}
