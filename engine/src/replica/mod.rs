//! One server as a single sans-IO state machine: [`Node`] owns the request [`Processor`],
//! the ZAB [`Peer`] (in an ensemble), the [`gate::HoldGate`] and the learner's relay queues
//! ([`learner::LearnerQueues`]).
//!
//! In: [`Input`]s — client connects, request frames and disconnects from the network cores,
//! "durable up to Z" from the log, peer and relay messages, link losses, ticks — each with the
//! current time from outside. Out: [`Effect`]s, to carry out in order — frames and closes for
//! a network core, log appends, peer and relay sends, epochs to persist, a truncation or a
//! snapshot install (both restart the server from disk), role changes, commit points. The server carries
//! them out on io_uring; the simulator in tests/ on a simulated network and disk.
//!
//! The rules it keeps:
//! - Standalone or leader: the processor answers every request; each txn goes to the log
//!   (and, on a leader, to the peer as a proposal); outputs are held until their zxid is
//!   durable (standalone) or committed (ensemble), per network core in emission order.
//! - Leader: requests a learner relays run on stand-in connections
//!   ([`ConnId::StandIn`]); their replies and closes go back over the peer link with the zxid
//!   the learner must apply before releasing them.
//! - Learner: reads run locally on the committed tree; writes, `sync`, closeSession and
//!   session creation go to the leader ([`is_forwarded`]); per connection a FIFO keeps later
//!   reads behind an earlier relayed request until its reply is released (after the learner
//!   applied its txn); committed txns are applied in zxid order, watch events first, then the
//!   replies they release, then closes of sessions they ended.
//! - One source of zxids: the processor assigns them; in an ensemble only a serving leader may,
//!   up to its epoch's counter limit ([`Processor::set_zxid_limit`]), and its peer takes each
//!   as proposed.
//! - A server that stops serving (or changes leader) closes every client connection and drops
//!   held outputs (they could wait for zxids this server never commits).
//! - Read-only mode (`readonlymode.enabled`, Apache's `ReadOnlyZooKeeperServer`): a member
//!   that has not served for [`read_only_delay_ms`] serves clients that asked for read-only
//!   ([`Processor::set_read_only`]: reads on its tree, NotReadOnly for writes, local sessions);
//!   once it serves in the ensemble again it closes those connections (the clients reconnect,
//!   here or to another member, read-write).
//!
//! Invariants: no client sees a write before it is durable (standalone) or committed; the
//! effects of one step come out in the order they must be carried out; the same inputs give
//! the same effects (no hash-order iteration reaches an effect).

pub mod gate;
pub mod learner;
pub mod local_replies;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::conn::{ClientConn, ConnId};
use crate::proto::{ConnectRequest, ConnectResponse, ErrorCode, Id, Jute, OpCode, ReplyHeader};
use crate::request::replica::is_forwarded;
use crate::request::EnsembleView;
use crate::request::{Output, Processor};
use crate::txn;
use crate::zab::{
    make_zxid, Action, Event, Membership, Msg, Peer, PeerConfig, Relay, RoleView, ServerId, ServerState,
    SharedTxn,
};
use gate::{HoldGate, Limits};
use learner::{LearnerQueues, Queued};
use local_replies::LocalReplies;

/// The opcode of a request frame (xid, then type), if it names one.
fn request_op(frame: &[u8]) -> Option<OpCode> {
    let op = i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
    OpCode::from_i32(op)
}

/// The processor's zxid limit while it may assign none (learners, servers not serving).
const NO_ZXIDS: i64 = 0;

/// Something that happened to the server.
#[derive(Debug)]
pub enum Input {
    /// A decoded ConnectRequest on a new client connection; `authenticated`: ids the
    /// transport established before it (a TLS client certificate's `x509` id).
    Connect {
        conn: ClientConn,
        client_ip: String,
        remote: String,
        authenticated: Vec<Id>,
        request: ConnectRequest,
    },
    /// One request frame (payload after the length prefix) of an established connection.
    Request { conn: ClientConn, frame: Vec<u8> },
    /// The socket closed or failed.
    Disconnected { conn: ClientConn },
    /// Answer a connection with these bytes (if any), then close it: a four-letter word's
    /// reply, computed by the server (it reads files).
    AnswerAndClose { conn: ClientConn, bytes: Option<Vec<u8>> },
    /// The log is durable up to this zxid.
    Durable { zxid: i64 },
    /// A ZAB message from a peer.
    PeerMessage { from: ServerId, msg: Msg },
    /// Relayed client traffic from a peer.
    RelayMessage { from: ServerId, relay: Relay },
    /// The link to a peer went down.
    LinkDown { peer: ServerId },
    /// The ZAB timers (call every few milliseconds).
    PeerTick,
    /// Session expiry, the container reaper, and a learner's session touches for its leader.
    Tick,
}

/// One output released to a network core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Bytes to write to the connection (whole frames, or four-letter text).
    Send { conn: ClientConn, frame: Vec<u8> },
    /// Close the connection once everything before this is written.
    Close { conn: ClientConn },
}

/// Something the server must do, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Hand these outputs to network core `core`, in this order.
    Deliver { core: u32, batch: Vec<Delivery> },
    /// Append this txn to the log (report [`Input::Durable`] once flushed).
    Append { zxid: i64, txn: SharedTxn },
    /// Send a ZAB message to a peer.
    PeerSend { to: ServerId, msg: Msg },
    /// Send relayed client traffic to a peer.
    RelaySend { to: ServerId, relay: Relay },
    /// Persist these epochs before carrying out later effects.
    PersistEpochs { accepted: u32, current: u32 },
    /// Cut every logged txn after `zxid` and rebuild the state from what remains (the server
    /// restarts from disk).
    Truncate { zxid: i64 },
    /// Replace log and state with the leader's image at `zxid` (with the leader's per-epoch
    /// last zxids up to it); the server restarts from disk.
    InstallSnapshot { zxid: i64, image: Arc<Vec<u8>>, epoch_ends: Vec<i64> },
    /// The ensemble role changed.
    RoleChanged(RoleView),
    /// Read-only serving started (true) or ended (false).
    ReadOnly(bool),
    /// A reconfig committed, or the first leader versioned a configuration no reconfig made:
    /// the ensemble's members from now on (reach new members, write the dynamic config
    /// file). This server may no longer be one of them.
    ConfigChanged(Membership),
    /// Everything up to `zxid` is committed (standalone: durable); outputs held for it are
    /// released in this step. Nothing to carry out: the server times it ([`Input`]s carry no
    /// clock of their own, so the moment of a commit is only known outside).
    Committed { zxid: i64 },
}

/// How long a member cut off from its quorum waits before serving read-only clients: Apache's
/// `QuorumPeer` starts its `ReadOnlyZooKeeperServer` after `max(2000, tickTime)` ms of looking.
pub fn read_only_delay_ms(tick_ms: i64) -> i64 {
    tick_ms.max(2000)
}

/// The configuration an ensemble member starts with, as Apache 3.8's `QuorumPeerMain`
/// (`setQuorumVerifier` from the configuration files, then `initConfigInZKDatabase`): the one
/// its files give (written only once a configuration is committed or learned from a leader or
/// a peer) is its committed configuration, and `/zookeeper/config` is set to it whatever the
/// recovered tree holds there. The tree's may come from a reconfig proposed and logged but
/// never committed (recovery replays the whole log): taking it up would make the server count
/// votes and gossip a configuration the ensemble never agreed on. Such a reconfig is the
/// peer's last seen one ([`Peer::new`] finds it in the log), settled once committed or cut.
/// Used by the server and by the simulator alike.
pub fn start_with_committed_configuration(
    processor: &mut Processor,
    peer_config: &mut PeerConfig,
    committed: &Membership,
    now_ms: i64,
) {
    if let Some(logged) = processor.config_node_membership().filter(|m| m.version > committed.version) {
        log::info!(
            "starting with committed configuration {:x} from the files; configuration {:x} in the log \
             counts only once committed",
            committed.version,
            logged.version
        );
    }
    processor.set_config_node(committed, now_ms);
    peer_config.adopt(committed);
}

/// One server: processor, peer (in an ensemble), hold gate and learner relay.
pub struct Node {
    processor: Processor,
    peer: Option<Peer>,
    role: RoleView,
    gate: HoldGate,
    learner: LearnerQueues,
    now: i64,
    /// Since when this ensemble member has not served (for read-only mode).
    not_serving_since: i64,
    /// Leader: the zxids that learners' `sync` replies wait for, not yet committed, ascending
    /// (Apache's `Leader.pendingSyncs`, `mntr zk_pending_syncs`).
    pending_syncs: VecDeque<i64>,
    /// A learner of Apache leaders: builds its clients' replies from the committed txns
    /// ([`Node::follow_apache_leaders`]).
    local_replies: Option<LocalReplies>,
}

impl Node {
    /// A standalone server whose log is durable up to `durable_zxid`.
    pub fn standalone(processor: Processor, durable_zxid: i64, limits: Limits) -> Node {
        Node::with_peer(processor, None, durable_zxid, limits)
    }

    /// An ensemble member; call [`Node::start`] once its peer links can carry messages.
    pub fn ensemble(processor: Processor, peer: Peer, durable_zxid: i64, limits: Limits) -> Node {
        Node::with_peer(processor, Some(peer), durable_zxid, limits)
    }

    fn with_peer(mut processor: Processor, peer: Option<Peer>, durable_zxid: i64, limits: Limits) -> Node {
        if peer.is_some() {
            processor.set_zxid_limit(NO_ZXIDS);
            processor.set_ensemble_view(Some(EnsembleView::default()));
        }
        Node {
            processor,
            peer,
            role: RoleView { state: ServerState::Looking, leader: None, epoch: 0, serving: false },
            gate: HoldGate::new(durable_zxid, limits),
            learner: LearnerQueues::default(),
            now: 0,
            not_serving_since: 0,
            pending_syncs: VecDeque::new(),
            local_replies: None,
        }
    }

    /// Starts the election (ensemble only; nothing standalone).
    pub fn start(&mut self, now: i64, out: &mut Vec<Effect>) {
        self.now = now;
        self.not_serving_since = now;
        if let Some(peer) = &mut self.peer {
            let mut actions = Vec::new();
            peer.start(&mut actions);
            self.carry_out(actions, out);
        }
        self.gate.release(out);
    }

    /// From now on this member learns from Apache 3.8 leaders: it forwards its clients'
    /// writes, session creations and closes, and `sync`s as Apache's learner does (the
    /// session id and timeout chosen here, see [`Relay::CreateSession`]), and answers them
    /// itself when it applies the committed txn with the client's session id and cxid
    /// ([`local_replies`]); an Apache leader sends no reply frames. Sessions get Apache's
    /// passwords, so a client moves between this member and Apache members.
    pub fn follow_apache_leaders(&mut self) {
        self.local_replies = Some(LocalReplies::default());
        self.processor.sessions.use_apache_passwords();
    }

    pub fn processor(&self) -> &Processor {
        &self.processor
    }

    /// The ZAB peer, in an ensemble.
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    /// The role as last reported by the peer (Looking and not serving until then).
    pub fn role(&self) -> RoleView {
        self.role
    }

    /// Leader: learners' `sync` requests answered with a zxid not committed yet (their
    /// clients see the reply once it is); 0 elsewhere.
    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.len()
    }

    /// Outputs held in the gate right now.
    pub fn held(&self) -> usize {
        self.gate.held()
    }

    /// Whether the server may take more requests (fewer txns and outputs await durability
    /// than the bounds).
    pub fn has_room(&self) -> bool {
        self.gate.has_room()
    }

    /// Handles one input to completion; `out` receives what to carry out, in order. Held
    /// outputs are released once, at the end of the step.
    pub fn step(&mut self, now: i64, input: Input, out: &mut Vec<Effect>) {
        self.now = now;
        match input {
            Input::Connect { conn, client_ip, remote, authenticated, request } => {
                self.connect(conn, client_ip, remote, authenticated, request, out)
            }
            Input::Request { conn, frame } => {
                if self.learner_of().is_some() {
                    self.learner_request(conn, frame, out);
                } else {
                    self.refresh_ensemble_view(&frame);
                    let outputs = self.run_request(ConnId::Client(conn), &frame);
                    self.route(outputs, out);
                }
            }
            Input::Disconnected { conn } => {
                self.processor.disconnected(ConnId::Client(conn));
                self.learner.forget(conn);
                if let Some(replies) = &mut self.local_replies {
                    replies.forget(conn);
                }
                if let Some(leader) = self.learner_of() {
                    out.push(Effect::RelaySend { to: leader, relay: Relay::Gone { token: conn } });
                }
            }
            Input::AnswerAndClose { conn, bytes } => {
                let conn = ConnId::Client(conn);
                let mut outputs: Vec<Output> =
                    bytes.into_iter().map(|frame| Output::Send { conn, frame, zxid: 0 }).collect();
                outputs.push(Output::Close { conn, zxid: 0 });
                self.route(outputs, out);
            }
            Input::Durable { zxid } => {
                self.gate.durable(zxid);
                if self.peer.is_some() {
                    self.step_peer(Event::Durable { zxid }, out);
                } else {
                    self.gate.open(zxid);
                    out.push(Effect::Committed { zxid });
                }
            }
            Input::PeerMessage { from, msg } => self.step_peer(Event::Message { from, msg }, out),
            Input::RelayMessage { from, relay } => self.relay_in(from, relay, out),
            Input::LinkDown { peer } => {
                self.drop_stand_ins(peer);
                self.step_peer(Event::LinkDown { peer }, out);
            }
            Input::PeerTick => {
                self.step_peer(Event::Tick, out);
                self.maybe_serve_read_only(out);
            }
            Input::Tick => {
                let outputs = self.processor.tick(now);
                self.route(outputs, out);
                self.relay_touches(out);
            }
        }
        self.gate.release(out);
    }

    /// Starts read-only serving once an ensemble member with read-only mode on has not served
    /// for [`read_only_delay_ms`].
    fn maybe_serve_read_only(&mut self, out: &mut Vec<Effect>) {
        let processor = &self.processor;
        if self.peer.is_none()
            || self.role.serving
            || processor.is_read_only()
            || !processor.config.read_only_mode_enabled
            || self.now - self.not_serving_since < read_only_delay_ms(processor.config.tick_ms)
        {
            return;
        }
        log::info!("no quorum for {} ms: serving read-only clients", self.now - self.not_serving_since);
        self.processor.set_read_only(true);
        out.push(Effect::ReadOnly(true));
    }

    /// Ends read-only serving: its clients are disconnected (they reconnect read-write).
    fn stop_read_only(&mut self, out: &mut Vec<Effect>) {
        self.close_client_connections(out);
        self.processor.set_read_only(false);
        log::info!("serving the ensemble again: read-only clients disconnected");
        out.push(Effect::ReadOnly(false));
    }

    /// The leader this server serves as a learner, if it does.
    fn learner_of(&self) -> Option<ServerId> {
        match self.role.state {
            ServerState::Following | ServerState::Observing if self.role.serving => self.role.leader,
            _ => None,
        }
    }

    fn leading(&self) -> bool {
        self.role.state == ServerState::Leading && self.role.serving
    }

    /// Before a reconfig request runs on the leader: tells the processor which members are
    /// synced and whether a reconfig is in flight (it checks the new configuration's quorum).
    fn refresh_ensemble_view(&mut self, frame: &[u8]) {
        let op = frame.get(4..8).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
        let Some(peer) = &self.peer else { return };
        if op != Some(OpCode::Reconfig as i32) {
            return;
        }
        let view = EnsembleView { synced: peer.synced_members(), reconfig_pending: peer.reconfig_pending() };
        self.processor.set_ensemble_view(Some(view));
    }

    /// Runs a request frame; a frame whose header does not decode closes the connection.
    fn run_request(&mut self, conn: ConnId, frame: &[u8]) -> Vec<Output> {
        match self.processor.request(conn, frame, self.now) {
            Ok(outputs) => outputs,
            Err(_) => {
                self.processor.disconnected(conn);
                vec![Output::Close { conn, zxid: 0 }]
            }
        }
    }

    fn connect(
        &mut self,
        conn: ClientConn,
        client_ip: String,
        remote: String,
        authenticated: Vec<Id>,
        request: ConnectRequest,
        out: &mut Vec<Effect>,
    ) {
        let id = ConnId::Client(conn);
        if self.peer.is_some() && !self.processor.is_read_only() {
            if !self.role.serving {
                // Not serving (electing or syncing): the client tries another server.
                self.route(vec![Output::Close { conn: id, zxid: 0 }], out);
                return;
            }
            // A new session, or (between ringkeeper members) one this learner has not applied
            // yet, e.g. made on the leader a moment ago: the leader answers it, as Apache's
            // learner has its leader revalidate every session a client brings.
            let unknown_here = self.local_replies.is_none()
                && request.session_id != 0
                && self.processor.sessions.get(request.session_id).is_none();
            if let (Some(leader), true) = (self.learner_of(), request.session_id == 0 || unknown_here) {
                self.relay_new_session(leader, conn, client_ip, authenticated, &request, out);
                return;
            }
            let apache_learner = self.learner_of().filter(|_| self.local_replies.is_some());
            if let Some(leader) = apache_learner {
                if self.revalidate(leader, conn, &client_ip, &authenticated, &request, out) {
                    return;
                }
            }
        }
        let outputs = self.processor.connect(id, &client_ip, &remote, &request, self.now);
        self.processor.add_auth_ids(id, authenticated);
        self.route(outputs, out);
    }

    /// Routes processor outputs: txns to the log (and, on a leader, to its peer as
    /// proposals), replies of relayed requests back to their learner, the rest into the gate.
    fn route(&mut self, outputs: Vec<Output>, out: &mut Vec<Effect>) {
        let mut proposals = Vec::new();
        for output in outputs {
            match output {
                Output::Log { zxid, bytes } => {
                    self.gate.logged(zxid);
                    let txn: SharedTxn = Arc::new(bytes);
                    if self.peer.is_some() {
                        proposals.push((zxid, txn.clone()));
                    }
                    out.push(Effect::Append { zxid, txn });
                }
                Output::Send { conn: ConnId::Client(conn), frame, zxid } => {
                    self.gate.hold(conn.core, zxid, Delivery::Send { conn, frame })
                }
                Output::Close { conn: ConnId::Client(conn), zxid } => {
                    self.gate.hold(conn.core, zxid, Delivery::Close { conn })
                }
                Output::Send { conn: ConnId::StandIn { learner, client }, frame, zxid } => {
                    out.push(Effect::RelaySend {
                        to: learner,
                        relay: Relay::Reply { token: client, zxid, frame },
                    })
                }
                Output::Close { conn: ConnId::StandIn { learner, client }, .. } => {
                    out.push(Effect::RelaySend { to: learner, relay: Relay::Close { token: client } })
                }
            }
        }
        for (zxid, txn) in proposals {
            self.step_peer(Event::Proposed { zxid, txn }, out);
        }
    }

    /// Steps the ZAB peer and carries out what it asks, in order.
    fn step_peer(&mut self, event: Event, out: &mut Vec<Effect>) {
        let Some(peer) = &mut self.peer else { return };
        let mut actions = Vec::new();
        peer.step(self.now, event, &mut actions);
        self.carry_out(actions, out);
    }

    fn carry_out(&mut self, actions: Vec<Action>, out: &mut Vec<Effect>) {
        for action in actions {
            match action {
                Action::Send { to, msg } => out.push(Effect::PeerSend { to, msg }),
                Action::Append { zxid, txn } => {
                    self.gate.logged(zxid);
                    out.push(Effect::Append { zxid, txn });
                }
                Action::Apply { zxid, txn } => {
                    // Validated when the proposal was decoded from the wire (or made here).
                    let txn = txn::access_trusted(&txn);
                    let (outputs, results) = self.processor.apply_committed(txn, self.now);
                    if let Some((conn, frame)) =
                        self.local_replies.as_mut().and_then(|replies| replies.reply_to(txn, &results))
                    {
                        // Released by the drains below (a close) or at the commit point.
                        self.learner.reply(conn, zxid, frame);
                    }
                    // Watch events, then the replies this txn releases (a closeSession's
                    // reply among them), then the closes of sessions it ended.
                    let (mut closes, events): (Vec<Output>, Vec<Output>) =
                        outputs.into_iter().partition(|o| matches!(o, Output::Close { .. }));
                    self.route(events, out);
                    if !closes.is_empty() {
                        // A connection whose queue held the leader's close is closed already.
                        let closed = self.drain_all(out);
                        closes.retain(|c| !matches!(c, Output::Close { conn: ConnId::Client(c), .. } if closed.contains(c)));
                    }
                    self.route(closes, out);
                }
                Action::Committed { zxid } => {
                    self.gate.open(zxid);
                    while self.pending_syncs.front().is_some_and(|z| *z <= zxid) {
                        self.pending_syncs.pop_front();
                    }
                    out.push(Effect::Committed { zxid });
                    if self.learner_of().is_some() {
                        self.drain_all(out);
                    }
                }
                Action::Truncate { zxid } => out.push(Effect::Truncate { zxid }),
                Action::SendSnapshot { to, epoch, zxid, epoch_ends } => {
                    // A consistent image of the state right now (the leader's tree holds
                    // exactly its log): a stall proportional to the tree, paid only when a
                    // learner is too far behind for DIFF.
                    let image = crate::snapshot::encode(&crate::snapshot::capture(
                        &self.processor.tree,
                        &self.processor.sessions,
                    ));
                    let mut bytes = Vec::with_capacity(image.header.len() + image.payload.len());
                    bytes.extend_from_slice(&image.header);
                    bytes.extend_from_slice(&image.payload);
                    let msg = Msg::Snapshot { epoch, zxid, epoch_ends, image: Arc::new(bytes) };
                    out.push(Effect::PeerSend { to, msg });
                }
                Action::InstallSnapshot { zxid, image } => {
                    let epoch_ends = self.peer.as_ref().map(Peer::epoch_ends).unwrap_or_default();
                    out.push(Effect::InstallSnapshot { zxid, image, epoch_ends });
                }
                Action::PersistEpochs { accepted, current } => {
                    out.push(Effect::PersistEpochs { accepted, current })
                }
                Action::Role(view) => {
                    out.push(Effect::RoleChanged(view));
                    self.role_changed(view, out);
                }
                Action::ConfigChanged(membership) => {
                    log::info!("configuration {:x} active: {}", membership.version, membership.render());
                    // A committed reconfig txn put it there already; one learned from a peer
                    // or versioned by the first leader has no txn (Apache's
                    // `initConfigInZKDatabase`).
                    if self.processor.config_node_membership().as_ref() != Some(&membership) {
                        self.processor.set_config_node(&membership, self.now);
                    }
                    out.push(Effect::ConfigChanged(membership));
                }
            }
        }
    }

    /// Closes every client connection and forgets every connection (stand-ins included).
    fn close_client_connections(&mut self, out: &mut Vec<Effect>) {
        let mut conns: Vec<ConnId> = self.processor.connections().map(|(c, _)| *c).collect();
        conns.sort();
        let mut outputs = Vec::new();
        for conn in conns {
            self.processor.disconnected(conn);
            if let ConnId::Client(_) = conn {
                outputs.push(Output::Close { conn, zxid: 0 });
            }
        }
        self.learner = LearnerQueues::default();
        if let Some(replies) = &mut self.local_replies {
            replies.clear();
        }
        self.pending_syncs.clear();
        // What the gate already lets through goes first; replies still waiting for a
        // commit belong to connections being closed: drop them, or the closes would queue
        // behind zxids this server may never commit.
        self.gate.release(out);
        self.gate.drop_held();
        self.route(outputs, out);
    }

    fn role_changed(&mut self, view: RoleView, out: &mut Vec<Effect>) {
        let was = std::mem::replace(&mut self.role, view);
        if was.serving && !(view.serving && view.state == was.state && view.leader == was.leader) {
            // Clients reconnect elsewhere (or here once serving again): no reply may come from
            // a server that lost its leader.
            self.close_client_connections(out);
        }
        if was.serving && !view.serving {
            self.not_serving_since = self.now;
        }
        if view.serving && self.processor.is_read_only() {
            self.stop_read_only(out);
        }
        if view.serving {
            self.processor.begin_epoch(view.epoch);
            self.processor.set_owns_expiry(view.state == ServerState::Leading, self.now);
            self.gate.open(make_zxid(view.epoch, 0));
        } else {
            self.processor.set_owns_expiry(false, self.now);
        }
        // The processor assigns every zxid; only a serving leader may, up to its epoch's end.
        let limit = match &self.peer {
            Some(peer) if view.serving && view.state == ServerState::Leading => {
                make_zxid(view.epoch, peer.config().counter_limit)
            }
            _ => NO_ZXIDS,
        };
        self.processor.set_zxid_limit(limit);
    }

    /// Stand-in connections of a learner whose link went down are forgotten.
    fn drop_stand_ins(&mut self, learner: ServerId) {
        let gone: Vec<ConnId> = self
            .processor
            .connections()
            .map(|(c, _)| *c)
            .filter(|c| matches!(c, ConnId::StandIn { learner: l, .. } if *l == learner))
            .collect();
        for conn in gone {
            self.processor.disconnected(conn);
        }
    }

    /// Relayed traffic from peer `from`: requests on the leader, answers on a learner.
    fn relay_in(&mut self, from: ServerId, relay: Relay, out: &mut Vec<Effect>) {
        let now = self.now;
        let leading = self.leading();
        let outputs = match relay {
            Relay::Forward { token, session_id, ids, client_ip, frame } if leading => {
                let conn = ConnId::StandIn { learner: from, client: token };
                let ids = ids.into_iter().map(|(scheme, id)| Id { scheme, id }).collect();
                self.processor.attach(conn, session_id, ids, &client_ip, now);
                self.refresh_ensemble_view(&frame);
                let outputs = self
                    .processor
                    .request(conn, &frame, now)
                    .unwrap_or_else(|_| vec![Output::Close { conn, zxid: 0 }]);
                let op = request_op(&frame);
                if op == Some(OpCode::Sync) {
                    self.note_pending_sync(&outputs);
                }
                let refused_without_txn = self.local_replies.is_some()
                    && op.is_some_and(|op| op.is_write())
                    && !outputs.iter().any(|o| matches!(o, Output::Log { .. }));
                if refused_without_txn {
                    // An Apache learner answers its client only from a committed txn.
                    let err = outputs.iter().find_map(|o| match o {
                        Output::Send { frame, .. } => ReplyHeader::of_frame(frame).map(|h| h.err),
                        _ => None,
                    });
                    let cxid =
                        frame.get(..4).map_or(0, |b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
                    let err = err.unwrap_or(ErrorCode::SessionExpired.code());
                    let mut outputs = outputs;
                    outputs.extend(self.processor.learner_error_txn(session_id, cxid, err, now));
                    outputs
                } else {
                    outputs
                }
            }
            Relay::CreateSession { token, client_ip, request } if leading => {
                let conn = ConnId::StandIn { learner: from, client: token };
                match ConnectRequest::from_bytes(&request) {
                    // An Apache learner chose the id and timeout of the session it asks for.
                    Ok(req) if self.local_replies.is_some() && req.session_id != 0 => {
                        self.processor.create_learner_session(req.session_id, req.timeout_ms, now)
                    }
                    Ok(req) => self.processor.connect(conn, &client_ip, &client_ip, &req, now),
                    Err(_) => vec![Output::Close { conn, zxid: 0 }],
                }
            }
            Relay::Revalidate { token, session_id, .. } if leading => {
                // An Apache learner's client brought its session: alive (and renewed) or not,
                // as `SessionTrackerImpl.touchSession` answers; the learner checked the password.
                let valid = self.processor.sessions.touch(session_id, now);
                out.push(Effect::RelaySend {
                    to: from,
                    relay: Relay::Reply { token, zxid: 0, frame: vec![u8::from(valid)] },
                });
                Vec::new()
            }
            Relay::Gone { token } => {
                self.processor.disconnected(ConnId::StandIn { learner: from, client: token });
                Vec::new()
            }
            Relay::Touch { sessions } => {
                for (id, _) in sessions {
                    self.processor.sessions.touch(id, now);
                }
                Vec::new()
            }
            Relay::Reply { token, zxid, frame } => {
                self.learner.reply(token, zxid, frame);
                self.drain(token, out);
                Vec::new()
            }
            Relay::Close { token } => {
                self.learner.close(token);
                self.drain(token, out);
                Vec::new()
            }
            // Relayed traffic reaching a server that is not the serving leader: the learner
            // will see the leader change and its clients reconnect. (Revalidate is for an
            // Apache leader's transport only.)
            Relay::Forward { .. } | Relay::CreateSession { .. } | Relay::Revalidate { .. } => Vec::new(),
        };
        self.route(outputs, out);
    }

    /// A learner's `sync` was answered: its reply waits for the zxid it names, if that is
    /// not committed yet.
    fn note_pending_sync(&mut self, outputs: &[Output]) {
        for output in outputs {
            if let Output::Send { conn: ConnId::StandIn { .. }, zxid, .. } = output {
                if *zxid > self.gate.open_to() {
                    self.pending_syncs.push_back(*zxid);
                }
            }
        }
    }

    /// A learner asks its leader for a new session on behalf of `conn` (or to reopen one it
    /// does not know yet: the leader's processor answers either, see [`Processor::connect`]).
    fn relay_new_session(
        &mut self,
        leader: ServerId,
        conn: ClientConn,
        client_ip: String,
        authenticated: Vec<Id>,
        request: &ConnectRequest,
        out: &mut Vec<Effect>,
    ) {
        if request.last_zxid_seen > self.processor.last_zxid() {
            // The client saw newer state than this learner has: it tries another server.
            self.route(vec![Output::Close { conn: ConnId::Client(conn), zxid: 0 }], out);
            return;
        }
        self.learner.connecting(conn, client_ip.clone(), authenticated);
        let mut request = request.clone();
        if let Some(replies) = &mut self.local_replies {
            // Apache's learner picks the id and timeout; its leader logs them as sent.
            let (session_id, timeout_ms) = self.processor.new_session_terms(request.timeout_ms);
            let passwd = self.processor.sessions.password_for(session_id).to_vec();
            replies.expect_session(conn, session_id, passwd, request.read_only.is_some());
            request.session_id = session_id;
            request.timeout_ms = timeout_ms;
        }
        let relay = Relay::CreateSession { token: conn, client_ip, request: request.to_bytes() };
        out.push(Effect::RelaySend { to: leader, relay });
    }

    /// A learner of an Apache leader: a client brings session `request.session_id` back
    /// (`LearnerZooKeeperServer.revalidateSession`). With the right password for a session
    /// this member knows, the leader is asked to revalidate it (it then takes this member's
    /// requests for the session); false: answered here as the processor answers (an invalid
    /// session, or a client that saw newer state).
    fn revalidate(
        &mut self,
        leader: ServerId,
        conn: ClientConn,
        client_ip: &str,
        authenticated: &[Id],
        request: &ConnectRequest,
        out: &mut Vec<Effect>,
    ) -> bool {
        let session_id = request.session_id;
        let known =
            self.processor.sessions.get(session_id).is_some_and(|s| s.passwd[..] == request.passwd[..]);
        if !known || request.last_zxid_seen > self.processor.last_zxid() {
            return false;
        }
        let timeout_ms = self.processor.negotiated_timeout(request.timeout_ms);
        self.learner.connecting(conn, client_ip.to_string(), authenticated.to_vec());
        let relay = Relay::Revalidate {
            token: conn,
            session_id,
            timeout_ms,
            read_only_byte: request.read_only.is_some(),
        };
        out.push(Effect::RelaySend { to: leader, relay });
        true
    }

    /// A learner's client request: reads run here unless an earlier relayed request of the
    /// same connection is still pending; writes, sync and closeSession go to the leader.
    fn learner_request(&mut self, conn: ClientConn, frame: Vec<u8>, out: &mut Vec<Effect>) {
        let Some(leader) = self.learner_of() else { return };
        let id = ConnId::Client(conn);
        let op = frame.get(4..8).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
        let session_id = self.processor.session_of(id);
        if session_id != 0 {
            self.learner.touch(session_id);
        }
        if op.and_then(OpCode::from_i32).is_some_and(is_forwarded) && session_id != 0 {
            let built_here = op != Some(OpCode::Sync as i32);
            if let (Some(replies), true) = (&mut self.local_replies, built_here) {
                if !replies.expect_write(conn, session_id, &frame) {
                    self.route(vec![Output::Close { conn: id, zxid: 0 }], out);
                    return;
                }
            }
            self.learner.awaiting(conn);
            let ids = self.processor.ids_of(id).into_iter().map(|id| (id.scheme, id.id)).collect();
            let client_ip = self.processor.connection(id).map(|c| c.client_ip.clone()).unwrap_or_default();
            let relay = Relay::Forward { token: conn, session_id, ids, client_ip, frame };
            out.push(Effect::RelaySend { to: leader, relay });
            return;
        }
        if let Some(frame) = self.learner.read_behind(conn, frame) {
            let outputs = self.run_request(id, &frame);
            self.route(outputs, out);
        }
    }

    /// Releases what is ready at the front of `conn`'s queue: replies whose txn this learner
    /// applied, then the reads behind them, up to the next pending relayed request. True when
    /// that closed the connection.
    fn drain(&mut self, conn: ClientConn, out: &mut Vec<Effect>) -> bool {
        let id = ConnId::Client(conn);
        let mut closed = false;
        while let Some(item) = self.learner.pop_ready(conn, self.processor.last_zxid()) {
            let outputs = match item {
                Queued::Reply { frame, connect, .. } => {
                    if connect {
                        self.attach_new_session(conn, &frame);
                    }
                    vec![Output::Send { conn: id, frame, zxid: 0 }]
                }
                Queued::Read(frame) => self.run_request(id, &frame),
                Queued::Close => {
                    self.processor.disconnected(id);
                    self.learner.forget(conn);
                    closed = true;
                    vec![Output::Close { conn: id, zxid: 0 }]
                }
                Queued::Awaiting => unreachable!("never ready"),
            };
            self.route(outputs, out);
        }
        closed
    }

    /// The leader created the session a learner's client asked for: bind the connection.
    fn attach_new_session(&mut self, conn: ClientConn, frame: &[u8]) {
        let Some((client_ip, authenticated)) = self.learner.connected(conn) else { return };
        if let Some(Ok(resp)) = frame.get(4..).map(ConnectResponse::from_bytes) {
            if resp.session_id != 0 {
                let id = ConnId::Client(conn);
                self.processor.attach(id, resp.session_id, Vec::new(), &client_ip, self.now);
                self.processor.add_auth_ids(id, authenticated);
            }
        }
    }

    /// Drains every queue; returns the connections that closed.
    fn drain_all(&mut self, out: &mut Vec<Effect>) -> Vec<ClientConn> {
        self.learner.queued().into_iter().filter(|&conn| self.drain(conn, out)).collect()
    }

    /// Learner: tells the leader which sessions were active since the last tick.
    fn relay_touches(&mut self, out: &mut Vec<Effect>) {
        let Some(leader) = self.learner_of() else { return };
        let sessions: Vec<(i64, i32)> = self
            .learner
            .take_touched()
            .into_iter()
            .map(|id| (id, self.processor.sessions.get(id).map_or(0, |s| s.timeout_ms)))
            .collect();
        if !sessions.is_empty() {
            out.push(Effect::RelaySend { to: leader, relay: Relay::Touch { sessions } });
        }
    }
}
