//! Apache 3.8's server-to-server transport (`ringkeeper.quorum.protocol=apache`): the sockets
//! around the engine's [`Bridge`], which translates between Apache's protocol and the ZAB
//! peer's own messages (layouts in `engine/src/apache/quorum/QUORUM.md`).
//!
//! In: the peer's messages and the node's relayed traffic ([`ApacheQuorum::send_msg`],
//! [`ApacheQuorum::send_relay`]), bytes from Apache servers. Out: [`QuorumInput`]s on a local
//! channel the data role steps the node with (never from inside a step: no re-entrance).
//!
//! - Election port (`QuorumCnxManager`): one connection per other member, carrying frames both
//!   ways. Only a connection opened by the higher id survives, so this server dials every
//!   member with a lower id (initial message, then frames) and keeps accepted connections from
//!   members with a higher id; one from a lower id is closed (the dial covers it). While a
//!   member with a higher id has no connection, it is asked for one (dialled with the
//!   initial message, which it closes and answers by dialling back). A newer connection of a
//!   member replaces the older.
//! - Peer port: one connection to the leader the peer follows, opened when the bridge asks
//!   (the peer's FOLLOWERINFO/OBSERVERINFO, and again when one closes before the leader said
//!   anything), closed when the bridge finds garbage or another leader is followed. Its loss
//!   is reported to the peer as a link down (it looks again).
//! - Its own peer port: while its peer leads, Apache learners connect to it; each accepted
//!   connection gets a number, its bytes go to the bridge's learner handler
//!   ([`Bridge::learner_bytes`]), and its loss is reported to the peer as that learner's link
//!   down.
//!
//! Invariants: bytes to one connection go out in the order the bridge produced them; bytes
//! queued while an election connection is down are dropped (the peer resends its vote on a
//! timer); a connection's tasks end when a newer one replaces it (its generation changed).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use ringkeeper_engine::apache::quorum::bridge::{Bridge, Out};
use ringkeeper_engine::apache::quorum::election::{frame_at, InitialMessage};
use ringkeeper_engine::zab::{Msg, Relay, ServerId};

use crate::link;
use crate::peer_net::{redial_wait, PeerAddress};
use crate::replica::ApacheSetup;
use crate::send_queue::SendQueue;

/// Bytes read from a connection at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// How long connecting to a newly elected leader's peer port is retried.
const LEADER_CONNECT_PATIENCE: Duration = Duration::from_secs(5);
/// Pause between those attempts.
const LEADER_CONNECT_RETRY: Duration = Duration::from_millis(100);
/// How often a learner's FOLLOWERINFO the peer has not answered is handed to it again.
const LEARNER_INFO_REPEAT: Duration = Duration::from_millis(100);
/// How often a member with a higher id and no election connection is asked to dial.
const ASK_TO_BE_DIALLED_EVERY: Duration = Duration::from_millis(500);

/// What the transport hands the data role.
#[derive(Debug)]
pub enum QuorumInput {
    Msg { from: ServerId, msg: Msg },
    Relay { from: ServerId, relay: Relay },
    LinkDown { peer: ServerId },
}

/// Bytes waiting for one connection, and which connection may write them.
#[derive(Default)]
struct Outbox {
    bytes: SendQueue,
    /// Bumped whenever the connection is replaced or closed; a task whose number is not the
    /// current one stops.
    generation: u64,
    connected: bool,
    waker: Option<Waker>,
}

impl Outbox {
    fn push(&mut self, bytes: &[u8]) {
        self.bytes.push_slice(bytes);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// A new connection takes over (or, with `connected` false, none): returns its number.
    fn replace(&mut self, connected: bool) -> u64 {
        self.generation += 1;
        self.connected = connected;
        self.bytes.clear();
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        self.generation
    }
}

/// Writes `outbox` to `writer` until the outbox belongs to a newer connection or a write fails.
async fn write_outbox(outbox: &RefCell<Outbox>, generation: u64, writer: &mut (impl AsyncWriteExt + Unpin)) {
    let mut taken = SendQueue::default();
    loop {
        let current = poll_fn(|cx| {
            let mut o = outbox.borrow_mut();
            if o.generation != generation {
                Poll::Ready(false)
            } else if o.bytes.is_empty() {
                o.waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                o.bytes.move_to(&mut taken);
                Poll::Ready(true)
            }
        })
        .await;
        if !current {
            return;
        }
        if taken.write_to(writer, |_| {}).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

/// Reads `reader` until it ends or fails, or a chunk arrives when `still_current` says the
/// connection was replaced; hands every other chunk to `feed`.
async fn read_chunks(
    reader: &mut (impl AsyncReadExt + Unpin),
    still_current: impl Fn() -> bool,
    mut feed: impl FnMut(&[u8]),
) {
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) if still_current() => feed(&chunk[..n]),
            Ok(_) => return,
        }
    }
}

/// One member's addresses.
struct Member {
    peer: PeerAddress,
    election: PeerAddress,
}

/// The Apache-protocol links of this server.
pub struct ApacheQuorum {
    my_id: ServerId,
    my_election_address: String,
    bridge: RefCell<Bridge>,
    members: HashMap<ServerId, Member>,
    election: HashMap<ServerId, Rc<RefCell<Outbox>>>,
    leader: Rc<RefCell<Outbox>>,
    /// Outboxes of the learner connections accepted on the peer port, by connection number.
    learners: RefCell<HashMap<u64, Rc<RefCell<Outbox>>>>,
    next_learner_conn: Cell<u64>,
    connect_timeout: Duration,
    inputs: link::Sender<QuorumInput>,
    /// Set once the first election connection to a lower id was logged (less noise).
    started: Cell<bool>,
}

impl ApacheQuorum {
    /// Listens on the election port, dials the members with lower ids; what arrives goes to
    /// `inputs`. Runs for the life of the executor.
    pub fn start(
        my_id: ServerId,
        setup: &ApacheSetup,
        listener: TcpListener,
        learner_listener: TcpListener,
        connect_timeout: Duration,
        inputs: link::Sender<QuorumInput>,
    ) -> Rc<ApacheQuorum> {
        let mut members = HashMap::new();
        let mut my_election_address = String::new();
        for (&id, member) in &setup.membership.members {
            let election = PeerAddress { host: member.host.clone(), port: member.election_port };
            if id == my_id {
                my_election_address = election.to_string();
                continue;
            }
            let peer = PeerAddress { host: member.host.clone(), port: member.peer_port };
            members.insert(id, Member { peer, election });
        }
        let election = members.keys().map(|id| (*id, Rc::new(RefCell::new(Outbox::default())))).collect();
        let quorum = Rc::new(ApacheQuorum {
            my_id,
            my_election_address,
            bridge: RefCell::new(Bridge::new(my_id, &setup.membership)),
            members,
            election,
            leader: Rc::new(RefCell::new(Outbox::default())),
            learners: RefCell::new(HashMap::new()),
            next_learner_conn: Cell::new(0),
            connect_timeout,
            inputs,
            started: Cell::new(false),
        });
        for &id in quorum.members.keys() {
            if id < my_id {
                glommio::spawn_local(quorum.clone().dial_election(id)).detach();
            } else {
                glommio::spawn_local(quorum.clone().ask_to_be_dialled(id)).detach();
            }
        }
        glommio::spawn_local(quorum.clone().accept_election(listener)).detach();
        glommio::spawn_local(quorum.clone().accept_learners(learner_listener)).detach();
        glommio::spawn_local(quorum.clone().repeat_unanswered_learner_infos()).detach();
        quorum
    }

    /// A message of the ZAB peer to `to`.
    pub fn send_msg(self: &Rc<Self>, to: ServerId, msg: &Msg) {
        let mut outs = Vec::new();
        self.bridge.borrow_mut().from_peer(to, msg, &mut outs);
        self.carry_out(outs);
    }

    /// Relayed client traffic of the node to `to`.
    pub fn send_relay(self: &Rc<Self>, to: ServerId, relay: Relay) {
        let mut outs = Vec::new();
        self.bridge.borrow_mut().relay_from_node(to, relay, &mut outs);
        self.carry_out(outs);
    }

    fn deliver(&self, input: QuorumInput) {
        let _ = self.inputs.try_send(input);
    }

    fn carry_out(self: &Rc<Self>, outs: Vec<Out>) {
        for out in outs {
            match out {
                Out::ToPeer { from, msg } => self.deliver(QuorumInput::Msg { from, msg }),
                Out::ToNode { from, relay } => self.deliver(QuorumInput::Relay { from, relay }),
                Out::Election { to, bytes } => {
                    if let Some(outbox) = self.election.get(&to) {
                        let mut o = outbox.borrow_mut();
                        if o.connected {
                            o.push(&bytes);
                        }
                    }
                }
                Out::ConnectLeader { leader } => {
                    let generation = self.leader.borrow_mut().replace(false);
                    glommio::spawn_local(self.clone().leader_connection(leader, generation)).detach();
                }
                Out::ToLeader { bytes } => self.leader.borrow_mut().push(&bytes),
                Out::CloseLeader { leader, reason } => {
                    log::warn!("closing the connection to Apache leader {leader}: {reason}");
                    self.leader.borrow_mut().replace(false);
                    self.deliver(QuorumInput::LinkDown { peer: leader });
                }
                Out::ToLearner { conn, bytes } => {
                    if let Some(outbox) = self.learners.borrow().get(&conn) {
                        outbox.borrow_mut().push(&bytes);
                    }
                }
                Out::CloseLearner { conn, learner, reason } => {
                    log::warn!("closing learner connection {conn} ({learner:?}): {reason}");
                    if let Some(outbox) = self.learners.borrow_mut().remove(&conn) {
                        outbox.borrow_mut().replace(false);
                    }
                    if let Some(peer) = learner {
                        self.deliver(QuorumInput::LinkDown { peer });
                    }
                }
            }
        }
    }

    /// An election connection to member `id` on which this server's initial message went out.
    async fn dial_with_initial_message(&self, id: ServerId) -> Option<TcpStream> {
        let addr = self.members[&id].election.resolve().await.ok()?;
        let mut stream =
            glommio::timer::timeout(self.connect_timeout, TcpStream::connect(addr)).await.ok()?;
        let mut hello = Vec::new();
        InitialMessage { sid: self.my_id, election_address: self.my_election_address.clone() }
            .encode(&mut hello);
        stream.write_all(&hello).await.ok()?;
        if !self.started.replace(true) {
            log::info!("Apache election: connected to server {id} at {addr}");
        }
        Some(stream)
    }

    /// Keeps an election connection to member `id` (a lower id) open.
    async fn dial_election(self: Rc<Self>, id: ServerId) {
        let mut failures = 0u32;
        loop {
            if failures > 0 {
                glommio::timer::sleep(redial_wait(failures).max(Duration::from_millis(100))).await;
            }
            let Some(stream) = self.dial_with_initial_message(id).await else {
                failures += 1;
                continue;
            };
            self.run_election_connection(id, stream, Vec::new()).await;
            failures = 1;
        }
    }

    /// While member `id` (a higher id) has no election connection to this server, asks it for
    /// one: dials it with the initial message, which it answers by closing that connection
    /// and dialling back (`QuorumCnxManager.handleConnection`), as an Apache server with a
    /// lower id does before sending. Without it a member with the lowest id that joins a
    /// settled ensemble (its members send no notification unless asked) is never connected.
    async fn ask_to_be_dialled(self: Rc<Self>, id: ServerId) {
        loop {
            if !self.election[&id].borrow().connected {
                drop(self.dial_with_initial_message(id).await);
            }
            glommio::timer::sleep(ASK_TO_BE_DIALLED_EVERY).await;
        }
    }

    /// Takes election connections; keeps those from higher ids.
    async fn accept_election(self: Rc<Self>, listener: TcpListener) {
        loop {
            let stream = crate::listen::accept(&listener, "election port").await;
            let quorum = self.clone();
            glommio::spawn_local(async move {
                let mut stream = stream;
                let mut received = Vec::new();
                let mut chunk = vec![0u8; 4096];
                let (hello, used) = loop {
                    match InitialMessage::decode(&received) {
                        Ok(Some(found)) => break found,
                        Ok(None) => {}
                        Err(e) => {
                            log::warn!("closing an election connection: {e}");
                            return;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => received.extend_from_slice(&chunk[..n]),
                    }
                };
                let from = hello.sid;
                if from < quorum.my_id || !quorum.members.contains_key(&from) {
                    // A lower id: our own dial is the connection that counts.
                    return;
                }
                quorum.run_election_connection(from, stream, received[used..].to_vec()).await;
            })
            .detach();
        }
    }

    /// Takes Apache learners' connections on the peer port (served while this member leads;
    /// a learner that connects to a member that does not lead gets no LEADERINFO and gives up).
    async fn accept_learners(self: Rc<Self>, listener: TcpListener) {
        loop {
            let stream = crate::listen::accept(&listener, "quorum port").await;
            let conn = self.next_learner_conn.get();
            self.next_learner_conn.set(conn + 1);
            glommio::spawn_local(self.clone().run_learner_connection(conn, stream)).detach();
        }
    }

    /// Hands the peer unanswered learners' FOLLOWERINFO again every
    /// [`LEARNER_INFO_REPEAT`] ([`Bridge::repeat_unanswered_learner_infos`]).
    async fn repeat_unanswered_learner_infos(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(LEARNER_INFO_REPEAT).await;
            let mut outs = Vec::new();
            self.bridge.borrow().repeat_unanswered_learner_infos(&mut outs);
            self.carry_out(outs);
        }
    }

    /// Reads a learner's packets into the bridge and writes what the bridge has for it, until
    /// either side closes.
    async fn run_learner_connection(self: Rc<Self>, conn: u64, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let outbox = Rc::new(RefCell::new(Outbox::default()));
        let generation = outbox.borrow_mut().replace(true);
        self.learners.borrow_mut().insert(conn, outbox.clone());
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let read = read_chunks(
            &mut reader,
            || outbox.borrow().generation == generation,
            |bytes| {
                let mut outs = Vec::new();
                self.bridge.borrow_mut().learner_bytes(conn, bytes, &mut outs);
                self.carry_out(outs);
            },
        );
        futures_lite::future::or(read, write_outbox(&outbox, generation, &mut writer)).await;
        if self.learners.borrow_mut().remove(&conn).is_some() {
            if let Some(peer) = self.bridge.borrow_mut().learner_closed(conn) {
                log::info!("connection of Apache learner {peer} lost");
                self.deliver(QuorumInput::LinkDown { peer });
            }
        }
    }

    /// Reads notification frames from, and writes queued frames to, member `id`'s election
    /// connection until it fails or a newer one replaces it.
    async fn run_election_connection(self: &Rc<Self>, id: ServerId, stream: TcpStream, early: Vec<u8>) {
        let _ = stream.set_nodelay(true);
        let outbox = self.election[&id].clone();
        let generation = outbox.borrow_mut().replace(true);
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let read = async {
            let mut received = early;
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            loop {
                loop {
                    match frame_at(&received) {
                        Ok(Some((payload, used))) => {
                            let mut outs = Vec::new();
                            let result =
                                self.bridge.borrow_mut().election_frame(id, &received[payload], &mut outs);
                            if let Err(e) = result {
                                log::warn!("Apache election: dropping a notification of server {id}: {e}");
                            }
                            self.carry_out(outs);
                            received.drain(..used);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log::warn!("Apache election: closing the connection of server {id}: {e}");
                            return;
                        }
                    }
                }
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                }
            }
        };
        futures_lite::future::or(read, write_outbox(&outbox, generation, &mut writer)).await;
        let mut o = outbox.borrow_mut();
        if o.generation == generation {
            o.replace(false);
        }
    }

    /// The connection to the leader's peer port, while `generation` is the current one.
    ///
    /// A leader opens its peer port only after its own election finished (its finalize wait
    /// may outlast ours), so connecting is retried for a while, as Apache's
    /// `Learner.connectToLeader` does within initLimit; a connection closed before the leader
    /// sent anything is opened again by the bridge ([`Bridge::reopen_leader`]).
    async fn leader_connection(self: Rc<Self>, leader: ServerId, generation: u64) {
        let current = |q: &ApacheQuorum| q.leader.borrow().generation == generation;
        let Some(member) = self.members.get(&leader) else { return };
        let address = member.peer.clone();
        let give_up_at = std::time::Instant::now() + LEADER_CONNECT_PATIENCE;
        let stream = loop {
            let attempt = match address.resolve().await {
                Ok(addr) => {
                    glommio::timer::timeout(self.connect_timeout, TcpStream::connect(addr)).await.ok()
                }
                Err(_) => None,
            };
            if attempt.is_some() || !current(&self) || std::time::Instant::now() >= give_up_at {
                break attempt;
            }
            glommio::timer::sleep(LEADER_CONNECT_RETRY).await;
        };
        let Some(stream) = stream else {
            if current(&self) {
                log::info!("cannot connect to Apache leader {leader} at {address}");
                self.leader_lost(leader);
            }
            return;
        };
        if !current(&self) {
            return;
        }
        let _ = stream.set_nodelay(true);
        log::info!("connected to Apache leader {leader} at {address}");
        let heard_from_leader = Cell::new(false);
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let read = read_chunks(
            &mut reader,
            || current(&self),
            |bytes| {
                heard_from_leader.set(true);
                let mut outs = Vec::new();
                self.bridge.borrow_mut().leader_bytes(bytes, &mut outs);
                self.carry_out(outs);
            },
        );
        futures_lite::future::or(read, write_outbox(&self.leader, generation, &mut writer)).await;
        if !current(&self) {
            return;
        }
        if !heard_from_leader.get() {
            glommio::timer::sleep(LEADER_CONNECT_RETRY).await;
            let mut outs = Vec::new();
            if current(&self) && self.bridge.borrow_mut().reopen_leader(leader, &mut outs) {
                log::info!("Apache leader {leader} at {address} closed the connection before LEADERINFO; connecting again");
                self.carry_out(outs);
                return;
            }
        }
        if current(&self) {
            log::info!("connection to Apache leader {leader} lost");
            self.leader_lost(leader);
        }
    }

    fn leader_lost(&self, leader: ServerId) {
        self.leader.borrow_mut().replace(false);
        self.bridge.borrow_mut().leader_closed(leader);
        self.deliver(QuorumInput::LinkDown { peer: leader });
    }
}
