//! Runs ringkeeper's own [`Peer`] as a member of an Apache 3.8 ensemble by translating at its
//! edge: Apache's notifications and learner packets become [`Msg`]s for the peer, and the
//! peer's messages become Apache's. Apache's learner protocol and ringkeeper's ZAB are the same
//! protocol (ZAB 1.0) with different bytes, so the peer's rules (epochs, sync, durability before
//! acks, commits applied in order) carry over unchanged; what differs is kept here:
//!
//! | Apache (leader -> learner)           | ringkeeper `Msg` to the peer                        |
//! |--------------------------------------|-----------------------------------------------------|
//! | notification                         | `Notification { round: electionEpoch, state, vote }` |
//! | LEADERINFO `makeZxid(e, 0)`          | `LeaderInfo { epoch: e }`                            |
//! | DIFF                                 | nothing (the proposals that follow are the diff)     |
//! | TRUNC z                              | `Trunc { zxid: z }`                                  |
//! | SNAP z + streamed state              | `Snapshot { zxid: z, image }` (converted image)      |
//! | PROPOSAL (txn entry)                 | `Proposal { prev_zxid: last passed, zxid, txn }`     |
//! | COMMIT z                             | `Commit { zxid: z }` (ringkeeper's is cumulative)    |
//! | INFORM (txn entry)                   | `Proposal` then `Commit` of it                       |
//! | NEWLEADER                            | `NewLeader { zxid: last passed }`                    |
//! | UPTODATE (zxid -1)                   | `UpToDate { committed: last commit seen }`           |
//! | PING z                               | `Ping`; answered here: PING z with session touches   |
//! | SYNC                                 | `Relay::Reply` of the oldest forwarded `sync`        |
//!
//! | the node's relayed traffic (learner -> leader) | Apache                                |
//! |----------------------------------------|---------------------------------------------------|
//! | `Relay::Forward` (write, closeSession, sync) | REQUEST `sessionId, cxid, type, body`, auth ids |
//! | `Relay::CreateSession` (id, timeout chosen by the node) | REQUEST createSession, body `int timeout` |
//! | `Relay::Revalidate` (password checked by the node) | REVALIDATE `long sessionId, int timeout` |
//! | `Relay::Touch`                         | kept for the next PING reply                      |
//!
//! The leader's REVALIDATE answer (`long sessionId, boolean valid`) becomes the client's
//! ConnectResponse (`Relay::Reply`, then `Relay::Close` when not valid), as
//! `Learner.revalidate` / `finishSessionInit` build it.
//!
//! The peer's FOLLOWERINFO (resent on a timer) opens one connection per leader and is sent
//! once on it; its ACKEPOCH becomes Apache's (data -1 when the epoch was accepted before);
//! its NEWLEADER ack becomes `ACK makeZxid(e, 0)`, and after UPTODATE the bridge sends the
//! second ACK Apache's learner sends. As an observer its votes ask who leads (`leader = zxid =
//! peerEpoch = Long.MIN_VALUE`, as Apache's observers vote) and its acks are not sent. As a
//! follower its votes are the peer's (its real zxid and epoch: it may be elected)
//! and the peer's cumulative ack of a durable prefix becomes one `ACK zxid` per proposal
//! received after NEWLEADER, in order (Apache's leader counts each zxid's acks separately).
//! The replies of forwarded requests are built by the node when it applies their txns
//! (`Node::follow_apache_leaders`), except a `sync`'s, which the leader's SYNC releases.
//!
//! While the peer leads, Apache learners connect to this member's peer port: each gets a
//! [`LearnerHandler`] (the leader's side, `learner_handler.rs`), to which the peer's messages
//! for that learner and the node's replies to it go ([`Bridge::learner_bytes`]).
//!
//! Invariants: every packet from the leader is either translated or logged and dropped, never
//! half-applied; a connection that sends bytes that do not decode is closed (the peer then
//! looks for a leader again, as on any lost link).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::be_i64;
use super::election::{encode_frame, Notification};
use super::learner_handler::{HandlerOut, LearnerHandler};
use super::packet::PROTOCOL_VERSION;
use super::packet::{encode_touches, find_streamed_state, kind, LearnerInfo, QuorumPacket, SnapSearch};
use super::WireError;
use crate::apache::apache_session_password;
use crate::apache::replay::ApacheReplay;
use crate::apache::txnlog::decode_entry;
use crate::conn::ClientConn;
use crate::proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Id, Jute, JuteReader, OpCode, PathRequest, RequestHeader,
};
use crate::request::{record_frame, reply_frame};
use crate::txn;
use crate::zab::{epoch_of, make_zxid, CarriedConfig, Membership, Msg, Relay, ServerId, ServerState, Vote};

/// How many times one leader link's connection is opened again after closing before the
/// leader sent anything ([`Bridge::reopen_leader`]; with the transport's pause between
/// attempts, some seconds).
pub const LEADER_REOPENS_MAX: u32 = 50;

/// What the socket side must do.
#[derive(Debug)]
pub enum Out {
    /// Hand this message to the peer (as from `from`).
    ToPeer { from: ServerId, msg: Msg },
    /// Hand this relayed traffic to the node (as from `from`).
    ToNode { from: ServerId, relay: Relay },
    /// Write these bytes (whole frames) on the election connection to `to`.
    Election { to: ServerId, bytes: Vec<u8> },
    /// Close any connection to a leader and open one to `leader`'s peer port.
    ConnectLeader { leader: ServerId },
    /// Write these bytes on the leader connection (in order, after the connect).
    ToLeader { bytes: Vec<u8> },
    /// Close the leader connection (report the loss to the peer as a link down).
    CloseLeader { leader: ServerId, reason: String },
    /// Write these bytes on learner connection `conn` (this member leads).
    ToLearner { conn: u64, bytes: Vec<u8> },
    /// Close learner connection `conn`; when it was `learner`'s, report the loss to the peer
    /// as a link down.
    CloseLearner { conn: u64, learner: Option<ServerId>, reason: String },
}

/// The connection to the leader being followed.
struct LeaderLink {
    leader: ServerId,
    /// Accepted epoch announced in FOLLOWERINFO (ACKEPOCH says -1 when LEADERINFO repeats it).
    announced_accepted: u32,
    /// OBSERVERINFO rather than FOLLOWERINFO.
    observer: bool,
    /// Connections opened again after one closed before the leader said anything.
    reopened: u32,
    epoch: u32,
    /// zxid of the last txn handed to the peer (the next proposal's `prev_zxid`).
    last_passed: i64,
    /// The last commit point seen.
    committed: i64,
    /// Proposals passed to the peer after NEWLEADER and not acked yet, in zxid order: the
    /// peer acks cumulatively, Apache's leader counts an ACK for its one zxid only (and
    /// commits in order), so each becomes its own ACK once the peer's ack covers it. Proposals
    /// of the sync before NEWLEADER are covered by NEWLEADER's ACK (the leader reads that ACK
    /// as the first packet after NEWLEADER).
    unacked: VecDeque<i64>,
    /// NEWLEADER was received on this connection.
    new_leader_seen: bool,
    /// Bytes received and not yet decoded.
    inbox: Vec<u8>,
    /// A SNAP packet's zxid while its state is still arriving, and where to search on.
    snap: Option<(i64, usize)>,
    /// Revalidations asked and not answered yet, by session id: the client connection, the
    /// negotiated timeout, and whether its ConnectRequest had the readOnly byte.
    revalidations: BTreeMap<i64, (ClientConn, i32, bool)>,
    /// Forwarded `sync`s not answered yet, oldest first (the leader answers each with a SYNC,
    /// in order): the client connection, the request's xid and path.
    syncs: VecDeque<(ClientConn, i32, String)>,
}

/// The translator of one ringkeeper member of an Apache ensemble.
pub struct Bridge {
    my_id: ServerId,
    /// Sent in every notification (`QuorumVerifier.toString()`).
    config_text: Vec<u8>,
    /// This member observes (votes only ask who leads; acks are not sent).
    observer: bool,
    link: Option<LeaderLink>,
    /// Sessions of this member's clients active since the last PING reply, with their
    /// timeouts (the next reply carries them: Apache's `LearnerSessionTracker` touch table).
    touched: BTreeMap<i64, i32>,
    /// Apache learners connected to this member's peer port, by id (this member leads).
    learners: BTreeMap<ServerId, LearnerHandler>,
    /// Learner connections: whose (once FOLLOWERINFO named it), and bytes not decoded yet.
    learner_conns: BTreeMap<u64, (Option<ServerId>, Vec<u8>)>,
}

impl Bridge {
    /// `membership`: the ensemble, sent in every notification as Apache's
    /// `QuorumVerifier.toString()` prints it ([`Membership::render`]).
    pub fn new(my_id: ServerId, membership: &Membership) -> Bridge {
        let observer = membership.members.get(&my_id).is_some_and(|m| m.observer);
        Bridge {
            my_id,
            config_text: membership.render().into_bytes(),
            observer,
            link: None,
            touched: BTreeMap::new(),
            learners: BTreeMap::new(),
            learner_conns: BTreeMap::new(),
        }
    }

    /// The leader connection's leader, if one is open.
    pub fn leader(&self) -> Option<ServerId> {
        self.link.as_ref().map(|l| l.leader)
    }

    /// A message the peer sends `to`.
    pub fn from_peer(&mut self, to: ServerId, msg: &Msg, out: &mut Vec<Out>) {
        let to_learner = matches!(
            msg,
            Msg::LeaderInfo { .. }
                | Msg::Trunc { .. }
                | Msg::Snapshot { .. }
                | Msg::Proposal { .. }
                | Msg::NewLeader { .. }
                | Msg::UpToDate { .. }
                | Msg::Commit { .. }
                | Msg::CommitOnceDurable { .. }
                | Msg::Ping { .. }
        );
        if to_learner {
            let Some(handler) = self.learners.get_mut(&to) else { return };
            let mut handled = Vec::new();
            handler.from_peer(msg, &mut handled);
            let conn = handler.conn;
            self.carry_handler_out(to, conn, handled, out);
            return;
        }
        match msg {
            Msg::Notification { round, state, vote, .. } => {
                // An observer's vote only asks who leads (Apache's observers send MIN_VALUE);
                // a follower's is its own vote.
                let (leader, zxid, peer_epoch) = if self.observer {
                    (i64::MIN, i64::MIN, i64::MIN)
                } else {
                    (vote.leader as i64, vote.zxid, vote.epoch as i64)
                };
                let n = Notification {
                    state: *state as i32,
                    leader,
                    zxid,
                    election_epoch: *round as i64,
                    peer_epoch,
                    version: super::election::NOTIFICATION_VERSION,
                    config: self.config_text.clone(),
                };
                let mut bytes = Vec::new();
                encode_frame(&n.encode(), &mut bytes);
                out.push(Out::Election { to, bytes });
            }
            Msg::FollowerInfo { accepted_epoch, observer } => {
                if self.link.as_ref().is_some_and(|l| l.leader == to) {
                    return; // the peer's resend: Apache reads FOLLOWERINFO once per connection
                }
                self.link = Some(LeaderLink {
                    leader: to,
                    announced_accepted: *accepted_epoch,
                    observer: *observer,
                    reopened: 0,
                    epoch: 0,
                    last_passed: 0,
                    committed: 0,
                    unacked: VecDeque::new(),
                    new_leader_seen: false,
                    inbox: Vec::new(),
                    snap: None,
                    syncs: VecDeque::new(),
                    revalidations: BTreeMap::new(),
                });
                self.open_leader_connection(out);
            }
            Msg::AckEpoch { epoch, current_epoch, last_zxid, .. } => {
                let Some(link) = self.link_to(to) else { return };
                link.last_passed = *last_zxid;
                let repeated = *epoch == link.announced_accepted;
                let data = if repeated { -1 } else { *current_epoch as i32 };
                let packet = QuorumPacket::with_data(kind::ACKEPOCH, *last_zxid, data.to_be_bytes().to_vec());
                self.send_leader(&packet, out);
            }
            Msg::AckNewLeader { epoch, .. } => {
                if self.link_to(to).is_some() {
                    self.send_leader(&QuorumPacket::control(kind::ACK, make_zxid(*epoch, 0)), out);
                }
            }
            // An observer's acks count for nothing (Apache's leader ignores them).
            Msg::Ack { .. } if self.observer => {}
            Msg::Ack { zxid, .. } => {
                let Some(link) = self.link_to(to) else { return };
                let mut acks = Vec::new();
                while let Some(acked) = link.unacked.front().copied().filter(|z| z <= zxid) {
                    link.unacked.pop_front();
                    acks.push(acked);
                }
                for acked in acks {
                    self.send_leader(&QuorumPacket::control(kind::ACK, acked), out);
                }
            }
            other => log::debug!("not sent to Apache server {to}: {other:?}"),
        }
    }

    /// Relayed client traffic the node sends its leader `to`: client requests become REQUEST
    /// packets (`Learner.request`: `long sessionId, int cxid, int type`, the request body, the
    /// connection's auth ids); touches wait for the next PING. A request with no connection
    /// to `to`, or that does not decode, closes its client's connection.
    pub fn relay_from_node(&mut self, to: ServerId, relay: Relay, out: &mut Vec<Out>) {
        if matches!(relay, Relay::Reply { .. } | Relay::Close { .. }) {
            if let Some(handler) = self.learners.get_mut(&to) {
                let mut handled = Vec::new();
                handler.from_node(relay, &mut handled);
                let conn = handler.conn;
                self.carry_handler_out(to, conn, handled, out);
            }
            return;
        }
        let (token, request) = match relay {
            Relay::Forward { token, session_id, ids, frame, .. } => {
                (token, self.forwarded_request(to, token, session_id, ids, &frame))
            }
            Relay::CreateSession { token, request, .. } => {
                // The node chose the id and timeout (`Node::follow_apache_leaders`).
                let packet = ConnectRequest::from_bytes(&request).ok().map(|connect| {
                    let mut data = Vec::with_capacity(20);
                    data.extend_from_slice(&connect.session_id.to_be_bytes());
                    data.extend_from_slice(&0i32.to_be_bytes());
                    data.extend_from_slice(&(OpCode::CreateSession as i32).to_be_bytes());
                    data.extend_from_slice(&connect.timeout_ms.to_be_bytes());
                    QuorumPacket::with_data(kind::REQUEST, -1, data)
                });
                (token, packet.filter(|_| self.link_to(to).is_some()))
            }
            Relay::Revalidate { token, session_id, timeout_ms, read_only_byte } => {
                let packet = self.link_to(to).map(|link| {
                    link.revalidations.insert(session_id, (token, timeout_ms, read_only_byte));
                    let mut data = session_id.to_be_bytes().to_vec();
                    data.extend_from_slice(&timeout_ms.to_be_bytes());
                    QuorumPacket::with_data(kind::REVALIDATE, -1, data)
                });
                (token, packet)
            }
            Relay::Touch { sessions } => {
                self.touched.extend(sessions);
                return;
            }
            // Apache's leader hears nothing of a client that went away (its session lives on
            // until closed or expired); replies and closes only ever go to the node.
            Relay::Gone { .. } | Relay::Reply { .. } | Relay::Close { .. } => return,
        };
        match request {
            Some(packet) => self.send_leader(&packet, out),
            None => out.push(Out::ToNode { from: to, relay: Relay::Close { token } }),
        }
    }

    /// The REQUEST packet of a client request forwarded to leader `to` (a `sync` is also
    /// remembered for the leader's SYNC); `None` when there is no connection to `to` or the
    /// request header does not decode.
    fn forwarded_request(
        &mut self,
        to: ServerId,
        token: ClientConn,
        session_id: i64,
        ids: Vec<(String, String)>,
        frame: &[u8],
    ) -> Option<QuorumPacket> {
        let mut r = JuteReader::new(frame);
        let header = RequestHeader::decode(&mut r).ok()?;
        let body = r.rest();
        let link = self.link_to(to)?;
        if header.op == OpCode::Sync as i32 {
            let path = PathRequest::from_bytes(body).ok()?.path;
            link.syncs.push_back((token, header.xid, path));
        }
        let mut data = Vec::with_capacity(16 + body.len());
        data.extend_from_slice(&session_id.to_be_bytes());
        data.extend_from_slice(&header.xid.to_be_bytes());
        data.extend_from_slice(&header.op.to_be_bytes());
        data.extend_from_slice(body);
        let auth = ids.into_iter().map(|(scheme, id)| Id { scheme, id }).collect();
        Some(QuorumPacket { kind: kind::REQUEST, zxid: -1, data: Some(data), auth })
    }

    /// Bytes received on learner connection `conn` (accepted on this member's peer port).
    pub fn learner_bytes(&mut self, conn: u64, bytes: &[u8], out: &mut Vec<Out>) {
        let entry = self.learner_conns.entry(conn).or_insert((None, Vec::new()));
        entry.1.extend_from_slice(bytes);
        if let Err(e) = self.drain_learner(conn, out) {
            let learner = self.learner_closed(conn);
            out.push(Out::CloseLearner { conn, learner, reason: e.to_string() });
        }
    }

    /// The FOLLOWERINFO/OBSERVERINFO of every learner the peer has not answered yet, for the
    /// peer again (the transport calls this on a timer; see
    /// [`LearnerHandler::awaiting_leader_info`]).
    pub fn repeat_unanswered_learner_infos(&self, out: &mut Vec<Out>) {
        for (&from, handler) in &self.learners {
            if handler.awaiting_leader_info() {
                out.push(Out::ToPeer { from, msg: handler.info.clone() });
            }
        }
    }

    /// Learner connection `conn` is gone: forgets it; the learner it belonged to (if it is
    /// still that learner's connection), whose loss the peer must hear of.
    pub fn learner_closed(&mut self, conn: u64) -> Option<ServerId> {
        let (learner, _) = self.learner_conns.remove(&conn)?;
        let learner = learner?;
        if self.learners.get(&learner).is_some_and(|h| h.conn == conn) {
            self.learners.remove(&learner);
            return Some(learner);
        }
        None
    }

    fn drain_learner(&mut self, conn: u64, out: &mut Vec<Out>) -> Result<(), WireError> {
        loop {
            let Some((learner, inbox)) = self.learner_conns.get_mut(&conn) else { return Ok(()) };
            let Some((packet, used)) = QuorumPacket::decode(inbox)? else { return Ok(()) };
            inbox.drain(..used);
            match *learner {
                None => {
                    let (id, observer, msg) = LearnerHandler::learner_info(&packet)?;
                    *learner = Some(id);
                    log::info!("Apache learner {id} connected (observer: {observer})");
                    let handler = LearnerHandler::new(conn, observer, msg.clone());
                    if let Some(old) = self.learners.insert(id, handler) {
                        if old.conn != conn {
                            self.learner_conns.remove(&old.conn);
                            out.push(Out::CloseLearner {
                                conn: old.conn,
                                learner: None,
                                reason: "the learner connected again".into(),
                            });
                        }
                    }
                    out.push(Out::ToPeer { from: id, msg });
                }
                Some(id) => {
                    let Some(handler) = self.learners.get_mut(&id).filter(|h| h.conn == conn) else {
                        return Ok(());
                    };
                    let mut handled = Vec::new();
                    handler.learner_packet(packet, &mut handled)?;
                    self.carry_handler_out(id, conn, handled, out);
                }
            }
        }
    }

    fn carry_handler_out(
        &mut self,
        learner: ServerId,
        conn: u64,
        handled: Vec<HandlerOut>,
        out: &mut Vec<Out>,
    ) {
        let mut bytes = Vec::new();
        for h in handled {
            match h {
                HandlerOut::Packet(packet) => packet.encode(&mut bytes),
                HandlerOut::Raw(raw) => bytes.extend_from_slice(&raw),
                HandlerOut::ToPeer(msg) => out.push(Out::ToPeer { from: learner, msg }),
                HandlerOut::ToNode(relay) => out.push(Out::ToNode { from: learner, relay }),
            }
        }
        if !bytes.is_empty() {
            out.push(Out::ToLearner { conn, bytes });
        }
    }

    /// One frame received on the election connection from `from`.
    pub fn election_frame(
        &mut self,
        from: ServerId,
        payload: &[u8],
        out: &mut Vec<Out>,
    ) -> Result<(), WireError> {
        let n = Notification::decode(payload)?;
        log::debug!(
            "Apache notification from {from}: state {}, leader {}, zxid {:#x}, round {}, peer epoch {}",
            n.state,
            n.leader,
            n.zxid,
            n.election_epoch,
            n.peer_epoch
        );
        let state = match n.state {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            other => return Err(WireError::new(format!("notification state {other}"))),
        };
        let vote = if n.leader >= 0 {
            Vote {
                leader: n.leader as ServerId,
                zxid: n.zxid,
                epoch: n.peer_epoch.clamp(0, u32::MAX as i64) as u32,
            }
        } else if self.observer {
            return Ok(()); // an observer's question; ringkeeper's observer has no answer to give
        } else {
            // An observer asks who leads: the peer answers a non-voter whatever it votes.
            Vote { leader: from, zxid: i64::MIN, epoch: 0 }
        };
        out.push(Out::ToPeer {
            from,
            msg: Msg::Notification {
                round: n.election_epoch.max(0) as u64,
                state,
                vote,
                config: CarriedConfig::Version(0),
            },
        });
        Ok(())
    }

    /// Opens the connection to the link's leader: the connect, then FOLLOWERINFO or
    /// OBSERVERINFO (`LearnerInfo`, zxid `makeZxid(acceptedEpoch, 0)`).
    fn open_leader_connection(&self, out: &mut Vec<Out>) {
        let Some(link) = self.link.as_ref() else { return };
        let info = LearnerInfo {
            server_id: self.my_id as i64,
            protocol_version: PROTOCOL_VERSION,
            config_version: 0,
        };
        let kind = if link.observer { kind::OBSERVERINFO } else { kind::FOLLOWERINFO };
        let packet = QuorumPacket::with_data(kind, make_zxid(link.announced_accepted, 0), info.to_bytes());
        out.push(Out::ConnectLeader { leader: link.leader });
        self.send_leader(&packet, out);
    }

    /// The connection to `leader` closed before the leader sent anything (its LEADERINFO
    /// comes first): something in between (a proxy, a load balancer) may accept before the
    /// leader listens and close once it finds it does not. Opens a new connection that starts
    /// again with FOLLOWERINFO/OBSERVERINFO, as Apache's `Learner.connectToLeader` retries,
    /// at most [`LEADER_REOPENS_MAX`] times per link; false (nothing done) past that, or when
    /// the link is not to `leader` or has heard from it.
    pub fn reopen_leader(&mut self, leader: ServerId, out: &mut Vec<Out>) -> bool {
        let Some(link) = self.link.as_mut().filter(|l| l.leader == leader) else { return false };
        if link.epoch != 0 || !link.inbox.is_empty() || link.reopened >= LEADER_REOPENS_MAX {
            return false;
        }
        link.reopened += 1;
        self.open_leader_connection(out);
        true
    }

    /// The leader connection is gone (closed, failed, or never opened).
    pub fn leader_closed(&mut self, leader: ServerId) {
        if self.link.as_ref().is_some_and(|l| l.leader == leader) {
            self.link = None;
        }
    }

    /// Bytes received on the leader connection.
    pub fn leader_bytes(&mut self, bytes: &[u8], out: &mut Vec<Out>) {
        let Some(link) = self.link.as_mut() else { return };
        link.inbox.extend_from_slice(bytes);
        if let Err(e) = self.drain_leader(out) {
            let leader = self.link.take().map(|l| l.leader).unwrap_or_default();
            out.push(Out::CloseLeader { leader, reason: e.to_string() });
        }
    }

    fn link_to(&mut self, leader: ServerId) -> Option<&mut LeaderLink> {
        self.link.as_mut().filter(|l| l.leader == leader)
    }

    fn send_leader(&self, packet: &QuorumPacket, out: &mut Vec<Out>) {
        let mut bytes = Vec::new();
        packet.encode(&mut bytes);
        out.push(Out::ToLeader { bytes });
    }

    /// Translates every complete packet (and a complete SNAP state) in the inbox.
    fn drain_leader(&mut self, out: &mut Vec<Out>) -> Result<(), WireError> {
        loop {
            let Some(link) = self.link.as_mut() else { return Ok(()) };
            if let Some((zxid, search_from)) = link.snap {
                match find_streamed_state(&link.inbox, search_from)? {
                    SnapSearch::NeedMore { resume_at } => {
                        link.snap = Some((zxid, resume_at));
                        return Ok(());
                    }
                    SnapSearch::Found { state, used } => {
                        link.inbox.drain(..used);
                        link.snap = None;
                        link.last_passed = zxid;
                        let replay = ApacheReplay::from_snapshot(&state, zxid)
                            .map_err(|e| WireError::new(format!("the leader's SNAP state: {e}")))?;
                        let encoded = crate::snapshot::encode(&replay.into_image());
                        let mut image = encoded.header.to_vec();
                        image.extend_from_slice(&encoded.payload);
                        let (from, epoch) = (link.leader, link.epoch);
                        log::info!(
                            "SNAP from Apache leader {from} at {zxid:#x}: {} bytes as an image",
                            image.len()
                        );
                        let msg =
                            Msg::Snapshot { epoch, zxid, epoch_ends: Vec::new(), image: Arc::new(image) };
                        out.push(Out::ToPeer { from, msg });
                        continue;
                    }
                }
            }
            let Some((packet, used)) = QuorumPacket::decode(&link.inbox)? else { return Ok(()) };
            link.inbox.drain(..used);
            self.leader_packet(packet, out)?;
        }
    }

    fn leader_packet(&mut self, packet: QuorumPacket, out: &mut Vec<Out>) -> Result<(), WireError> {
        let link = self.link.as_mut().expect("called with a link");
        let (from, epoch) = (link.leader, link.epoch);
        let mut to_peer = |msg| out.push(Out::ToPeer { from, msg });
        match packet.kind {
            kind::LEADERINFO => {
                link.epoch = epoch_of(packet.zxid);
                to_peer(Msg::LeaderInfo { epoch: link.epoch });
            }
            kind::DIFF => {}
            kind::TRUNC => {
                link.last_passed = packet.zxid;
                to_peer(Msg::Trunc { epoch, zxid: packet.zxid });
            }
            kind::SNAP => link.snap = Some((packet.zxid, 0)),
            kind::PROPOSAL | kind::INFORM => {
                let entry = packet.data.as_deref().unwrap_or_default();
                let txn = decode_entry(entry, 0)
                    .map_err(|e| WireError::new(format!("txn {:#x}: {e}", packet.zxid)))?;
                if txn.zxid != packet.zxid {
                    return Err(WireError::new(format!(
                        "packet {:#x} carries txn {:#x}",
                        packet.zxid, txn.zxid
                    )));
                }
                let prev_zxid = std::mem::replace(&mut link.last_passed, packet.zxid);
                if packet.kind == kind::PROPOSAL && link.new_leader_seen {
                    link.unacked.push_back(packet.zxid);
                }
                to_peer(Msg::Proposal {
                    epoch,
                    prev_zxid,
                    zxid: packet.zxid,
                    txn: Arc::new(txn::encode(&txn)),
                });
                if packet.kind == kind::INFORM {
                    link.committed = link.committed.max(packet.zxid);
                    to_peer(Msg::Commit { epoch, zxid: packet.zxid });
                }
            }
            kind::COMMIT => {
                link.committed = link.committed.max(packet.zxid);
                to_peer(Msg::Commit { epoch, zxid: packet.zxid });
            }
            kind::NEWLEADER => {
                link.new_leader_seen = true;
                to_peer(Msg::NewLeader { epoch, zxid: link.last_passed, config: CarriedConfig::Version(0) })
            }
            kind::UPTODATE => {
                to_peer(Msg::UpToDate { epoch, committed: link.committed });
                // Learner.syncWithLeader acks UPTODATE itself.
                self.send_leader(&QuorumPacket::control(kind::ACK, make_zxid(epoch, 0)), out);
            }
            kind::PING => {
                to_peer(Msg::Ping { epoch, committed: link.committed, last_zxid: link.last_passed });
                let touches: Vec<(i64, i32)> = std::mem::take(&mut self.touched).into_iter().collect();
                let reply = QuorumPacket { data: Some(encode_touches(&touches)), ..packet };
                self.send_leader(&reply, out);
            }
            kind::REVALIDATE => {
                let data = packet.data.as_deref().unwrap_or_default();
                let (Some(session_id), Some(&valid)) = (be_i64(data, 0), data.get(8)) else {
                    return Err(WireError::new("REVALIDATE without a session id and answer"));
                };
                let Some((token, timeout_ms, read_only_byte)) = link.revalidations.remove(&session_id) else {
                    log::warn!("Apache leader {from}: REVALIDATE of session {session_id:#x}, not asked");
                    return Ok(());
                };
                let valid = valid != 0;
                let response = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: if valid { timeout_ms } else { 0 },
                    session_id: if valid { session_id } else { 0 },
                    passwd: if valid { apache_session_password(session_id).to_vec() } else { vec![0; 16] },
                    read_only: read_only_byte.then_some(false),
                };
                let frame = record_frame(&response);
                out.push(Out::ToNode { from, relay: Relay::Reply { token, zxid: 0, frame } });
                if !valid {
                    out.push(Out::ToNode { from, relay: Relay::Close { token } });
                }
            }
            kind::SYNC => {
                // `FollowerZooKeeperServer.sync`: the oldest pending sync is answered, as of
                // what this learner has applied when it sees the SYNC.
                let committed = link.committed;
                match link.syncs.pop_front() {
                    Some((token, xid, path)) => {
                        let frame = reply_frame(xid, committed, ErrorCode::Ok, Some(&PathRequest { path }));
                        out.push(Out::ToNode { from, relay: Relay::Reply { token, zxid: committed, frame } });
                    }
                    None => log::warn!("Apache leader {from}: a SYNC with no sync pending"),
                }
            }
            other => {
                log::debug!("Apache leader {from}: packet type {other} at {:#x} not handled", packet.zxid)
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apache::records::{CreateTxn, TxnHeader};
    use crate::apache::snapshot::{encode_streamed_state, one_node_state};
    use crate::proto::Acl;

    fn packets(out: &[Out]) -> Vec<QuorumPacket> {
        let mut bytes = Vec::new();
        for o in out {
            if let Out::ToLeader { bytes: b } = o {
                bytes.extend_from_slice(b);
            }
        }
        let mut found = Vec::new();
        let mut at = 0;
        while let Some((p, used)) = QuorumPacket::decode(&bytes[at..]).unwrap() {
            found.push(p);
            at += used;
        }
        found
    }

    fn to_peer(out: &[Out]) -> Vec<Msg> {
        out.iter()
            .filter_map(|o| if let Out::ToPeer { msg, .. } = o { Some(msg.clone()) } else { None })
            .collect()
    }

    fn create_entry(zxid: i64, path: &str) -> Vec<u8> {
        let mut entry = TxnHeader { client_id: 5, cxid: 1, zxid, time: 10, txn_type: 1 }.to_bytes();
        let acl = crate::acl::open_acl_unsafe().to_vec();
        let acl: Vec<Acl> = acl;
        entry.extend(
            CreateTxn {
                path: path.into(),
                data: Some(b"x".to_vec()),
                acl,
                ephemeral: false,
                parent_cversion: -1,
            }
            .to_bytes(),
        );
        entry
    }

    #[test]
    fn an_observer_joins_syncs_by_diff_and_follows_informs() {
        let membership =
            Membership::parse("server.1=h:2888:3888:participant\nserver.4=h:2889:3889:observer").unwrap();
        let mut bridge = Bridge::new(4, &membership);
        let mut out = Vec::new();
        // Election: the vote asks who leads; a LEADING reply becomes a settled vote.
        bridge.from_peer(
            1,
            &Msg::Notification {
                round: 1,
                state: ServerState::Looking,
                vote: Vote { leader: 4, zxid: 0, epoch: 0 },
                config: CarriedConfig::Version(0),
            },
            &mut out,
        );
        let Some(Out::Election { to: 1, bytes }) = out.pop() else { panic!("a notification frame") };
        let n = Notification::decode(&bytes[4..]).unwrap();
        assert_eq!((n.leader, n.zxid, n.peer_epoch, n.state), (i64::MIN, i64::MIN, i64::MIN, 0));
        let leading = Notification {
            state: 2,
            leader: 1,
            zxid: 0x1_0000_0003,
            election_epoch: 1,
            peer_epoch: 1,
            version: 2,
            config: vec![],
        };
        bridge.election_frame(1, &leading.encode(), &mut out).unwrap();
        assert!(matches!(
            &to_peer(&out)[..],
            [Msg::Notification { state: ServerState::Leading, vote: Vote { leader: 1, epoch: 1, .. }, .. }]
        ));
        out.clear();

        // OBSERVERINFO once per connection, with LearnerInfo.
        let info = Msg::FollowerInfo { accepted_epoch: 1, observer: true };
        bridge.from_peer(1, &info, &mut out);
        bridge.from_peer(1, &info, &mut out);
        assert!(matches!(out[0], Out::ConnectLeader { leader: 1 }));
        let sent = packets(&out);
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].kind, sent[0].zxid), (kind::OBSERVERINFO, 0x1_0000_0000));
        out.clear();

        // LEADERINFO of a new epoch -> AckEpoch -> ACKEPOCH with the current epoch.
        let mut stream = Vec::new();
        QuorumPacket::with_data(kind::LEADERINFO, 0x2_0000_0000, PROTOCOL_VERSION.to_be_bytes().to_vec())
            .encode(&mut stream);
        bridge.leader_bytes(&stream, &mut out);
        assert!(matches!(&to_peer(&out)[..], [Msg::LeaderInfo { epoch: 2 }]));
        out.clear();
        bridge.from_peer(
            1,
            &Msg::AckEpoch { epoch: 2, current_epoch: 1, last_zxid: 0x1_0000_0002, epoch_ends: vec![] },
            &mut out,
        );
        let ack_epoch = &packets(&out)[0];
        assert_eq!(
            (ack_epoch.kind, ack_epoch.zxid, ack_epoch.data_i32()),
            (kind::ACKEPOCH, 0x1_0000_0002, Some(1))
        );
        out.clear();

        // DIFF, PROPOSAL+COMMIT, NEWLEADER, UPTODATE, INFORM, PING — split at every byte.
        let mut stream = Vec::new();
        QuorumPacket::control(kind::DIFF, 0x1_0000_0003).encode(&mut stream);
        QuorumPacket::with_data(kind::PROPOSAL, 0x1_0000_0003, create_entry(0x1_0000_0003, "/a"))
            .encode(&mut stream);
        QuorumPacket::control(kind::COMMIT, 0x1_0000_0003).encode(&mut stream);
        QuorumPacket::with_data(kind::NEWLEADER, 0x2_0000_0000, b"server.1=...".to_vec()).encode(&mut stream);
        QuorumPacket::control(kind::UPTODATE, -1).encode(&mut stream);
        QuorumPacket::with_data(kind::INFORM, 0x2_0000_0001, create_entry(0x2_0000_0001, "/b"))
            .encode(&mut stream);
        QuorumPacket::control(kind::PING, 0x2_0000_0001).encode(&mut stream);
        bridge.relay_from_node(1, Relay::Touch { sessions: vec![(5, 30_000)] }, &mut out);
        for byte in &stream {
            bridge.leader_bytes(std::slice::from_ref(byte), &mut out);
        }
        let msgs = to_peer(&out);
        assert!(
            matches!(msgs[0], Msg::Proposal { epoch: 2, prev_zxid: 0x1_0000_0002, zxid: 0x1_0000_0003, .. }),
            "{:?}",
            msgs[0]
        );
        assert!(matches!(msgs[1], Msg::Commit { zxid: 0x1_0000_0003, .. }));
        assert!(matches!(msgs[2], Msg::NewLeader { zxid: 0x1_0000_0003, .. }));
        assert!(matches!(msgs[3], Msg::UpToDate { committed: 0x1_0000_0003, .. }));
        assert!(matches!(msgs[4], Msg::Proposal { prev_zxid: 0x1_0000_0003, zxid: 0x2_0000_0001, .. }));
        assert!(matches!(msgs[5], Msg::Commit { zxid: 0x2_0000_0001, .. }));
        assert!(matches!(msgs[6], Msg::Ping { committed: 0x2_0000_0001, last_zxid: 0x2_0000_0001, .. }));
        if let Msg::Proposal { txn, .. } = &msgs[0] {
            assert_eq!(txn::access_trusted(txn).zxid, 0x1_0000_0003);
        }
        // The acks of UPTODATE and the PING reply (with the touches).
        let replies = packets(&out);
        assert_eq!((replies[0].kind, replies[0].zxid), (kind::ACK, 0x2_0000_0000));
        assert_eq!((replies[1].kind, replies[1].zxid), (kind::PING, 0x2_0000_0001));
        assert_eq!(replies[1].data.as_ref().map(Vec::len), Some(12));
        out.clear();
        bridge.from_peer(1, &Msg::AckNewLeader { epoch: 2, zxid: 0x1_0000_0003 }, &mut out);
        assert_eq!(packets(&out)[0].zxid, 0x2_0000_0000, "NEWLEADER is acked with makeZxid(epoch, 0)");
    }

    #[test]
    fn a_connection_closed_before_leaderinfo_is_opened_again_with_followerinfo_a_bounded_number_of_times() {
        let mut bridge = Bridge::new(3, &Membership::default());
        let mut out = Vec::new();
        bridge.from_peer(1, &Msg::FollowerInfo { accepted_epoch: 2, observer: false }, &mut out);
        let first = packets(&out);
        out.clear();
        assert!(!bridge.reopen_leader(2, &mut out), "not the link's leader");
        assert!(bridge.reopen_leader(1, &mut out));
        assert!(matches!(out[0], Out::ConnectLeader { leader: 1 }));
        assert_eq!(packets(&out), first, "the same FOLLOWERINFO again");
        assert_eq!((first[0].kind, first[0].zxid), (kind::FOLLOWERINFO, 0x2_0000_0000));
        for _ in 1..LEADER_REOPENS_MAX {
            assert!(bridge.reopen_leader(1, &mut out));
        }
        assert!(!bridge.reopen_leader(1, &mut out), "bounded");

        // Once the leader has said something, a closed connection is a lost leader.
        bridge.leader_closed(1);
        bridge.from_peer(1, &Msg::FollowerInfo { accepted_epoch: 2, observer: true }, &mut out);
        let mut stream = Vec::new();
        QuorumPacket::with_data(kind::LEADERINFO, 0x3_0000_0000, PROTOCOL_VERSION.to_be_bytes().to_vec())
            .encode(&mut stream);
        bridge.leader_bytes(&stream, &mut out);
        out.clear();
        assert!(!bridge.reopen_leader(1, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn a_snap_becomes_an_image_and_garbage_closes_the_connection() {
        let mut bridge = Bridge::new(4, &Membership::default());
        let mut out = Vec::new();
        bridge.from_peer(1, &Msg::FollowerInfo { accepted_epoch: 3, observer: true }, &mut out);
        let mut stream = Vec::new();
        QuorumPacket::with_data(kind::LEADERINFO, 0x3_0000_0000, PROTOCOL_VERSION.to_be_bytes().to_vec())
            .encode(&mut stream);
        QuorumPacket::control(kind::SNAP, 0x2_0000_0009).encode(&mut stream);
        let state = one_node_state((77, 10_000), "/x", b"1".to_vec());
        stream.extend(encode_streamed_state(&state));
        stream.extend(&[0, 0, 0, 10]);
        stream.extend(b"BenWasHere");
        bridge.leader_bytes(&stream, &mut out);
        let msgs = to_peer(&out);
        let Msg::Snapshot { epoch: 3, zxid: 0x2_0000_0009, image, .. } = &msgs[1] else { panic!("{msgs:?}") };
        let mut aligned = crate::txn::TxnBytes::new();
        aligned.extend_from_slice(image);
        let (_, decoded) = crate::snapshot::decode(&aligned).expect("a ringkeeper image");
        assert!(decoded.nodes().any(|n| n.path == "/x"));
        assert_eq!(decoded.sessions().len(), 1);
        out.clear();
        bridge.leader_bytes(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0], &mut out);
        assert!(matches!(out[..], [Out::CloseLeader { leader: 1, .. }]));
        assert_eq!(bridge.leader(), None);
    }

    #[test]
    fn a_follower_votes_for_real_and_acks_each_proposal_after_newleader() {
        let text = "server.1=h:2888:3888:participant\nserver.2=h:2889:3889:participant\n\
                    server.3=h:2890:3890:participant;127.0.0.1:2181\nversion=0";
        let mut bridge = Bridge::new(3, &Membership::parse(text).unwrap());
        let mut out = Vec::new();
        // The peer's vote goes out as it is, with the config rendered as Apache prints it.
        let vote = Vote { leader: 2, zxid: 0x1_0000_0004, epoch: 1 };
        let notification = Msg::Notification {
            round: 5,
            state: ServerState::Looking,
            vote,
            config: CarriedConfig::Version(0),
        };
        bridge.from_peer(1, &notification, &mut out);
        let Some(Out::Election { to: 1, bytes }) = out.pop() else { panic!("a notification frame") };
        let n = Notification::decode(&bytes[4..]).unwrap();
        assert_eq!((n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch), (0, 2, 0x1_0000_0004, 5, 1));
        assert!(String::from_utf8(n.config.clone())
            .unwrap()
            .contains("server.3=h:2890:3890:participant;127.0.0.1:2181"));
        // An Apache observer's question reaches the peer (which answers non-voters).
        let question = Notification { leader: i64::MIN, zxid: i64::MIN, peer_epoch: i64::MIN, ..n.clone() };
        bridge.election_frame(4, &question.encode(), &mut out).unwrap();
        assert!(matches!(&to_peer(&out)[..], [Msg::Notification { vote: Vote { leader: 4, .. }, .. }]));
        out.clear();

        bridge.from_peer(2, &Msg::FollowerInfo { accepted_epoch: 1, observer: false }, &mut out);
        assert_eq!(packets(&out)[0].kind, kind::FOLLOWERINFO);
        out.clear();
        let mut stream = Vec::new();
        QuorumPacket::with_data(kind::LEADERINFO, 0x2_0000_0000, PROTOCOL_VERSION.to_be_bytes().to_vec())
            .encode(&mut stream);
        QuorumPacket::control(kind::DIFF, 0x1_0000_0001).encode(&mut stream);
        QuorumPacket::with_data(kind::PROPOSAL, 0x1_0000_0001, create_entry(0x1_0000_0001, "/a"))
            .encode(&mut stream);
        QuorumPacket::control(kind::COMMIT, 0x1_0000_0001).encode(&mut stream);
        QuorumPacket::with_data(kind::NEWLEADER, 0x2_0000_0000, vec![]).encode(&mut stream);
        QuorumPacket::control(kind::UPTODATE, -1).encode(&mut stream);
        for zxid in [0x2_0000_0001, 0x2_0000_0002, 0x2_0000_0003] {
            QuorumPacket::with_data(kind::PROPOSAL, zxid, create_entry(zxid, &format!("/p{zxid}")))
                .encode(&mut stream);
        }
        bridge.leader_bytes(&stream, &mut out);
        out.clear();
        // NEWLEADER's ACK first; the sync's proposal is not acked on its own.
        bridge.from_peer(2, &Msg::AckNewLeader { epoch: 2, zxid: 0x1_0000_0001 }, &mut out);
        // A cumulative ack of two proposals: one ACK each, in order; then the third.
        bridge.from_peer(2, &Msg::Ack { epoch: 2, zxid: 0x2_0000_0002 }, &mut out);
        bridge.from_peer(2, &Msg::Ack { epoch: 2, zxid: 0x2_0000_0002 }, &mut out);
        bridge.from_peer(2, &Msg::Ack { epoch: 2, zxid: 0x2_0000_0003 }, &mut out);
        let acks: Vec<i64> = packets(&out).iter().filter(|p| p.kind == kind::ACK).map(|p| p.zxid).collect();
        assert_eq!(acks, [0x2_0000_0000, 0x2_0000_0001, 0x2_0000_0002, 0x2_0000_0003]);
    }

    #[test]
    fn client_requests_become_requests_and_a_sync_is_answered_by_the_leaders_sync() {
        use crate::apache::quorum::be_i32;
        let mut bridge = Bridge::new(3, &Membership::default());
        let mut out = Vec::new();
        let token = ClientConn { core: 0, local: 7 };
        // No leader connection: the client's connection closes.
        let sync_frame = |xid: i32| {
            let mut frame = Vec::new();
            let mut w = crate::proto::JuteWriter::new(&mut frame);
            RequestHeader { xid, op: OpCode::Sync as i32 }.encode(&mut w);
            PathRequest { path: "/s".into() }.encode(&mut w);
            frame
        };
        let forward = |frame: Vec<u8>| Relay::Forward {
            token,
            session_id: 0x0300_0000_0000_0001,
            ids: vec![("ip".into(), "127.0.0.1".into())],
            client_ip: "127.0.0.1".into(),
            frame,
        };
        bridge.relay_from_node(1, forward(sync_frame(5)), &mut out);
        assert!(matches!(&out[..], [Out::ToNode { relay: Relay::Close { token: t }, .. }] if *t == token));
        out.clear();

        bridge.from_peer(1, &Msg::FollowerInfo { accepted_epoch: 1, observer: false }, &mut out);
        out.clear();
        // createSession with the id and timeout the node chose; a write; a sync.
        let connect =
            ConnectRequest { session_id: 0x0300_0000_0000_0001, timeout_ms: 6_000, ..Default::default() };
        bridge.relay_from_node(
            1,
            Relay::CreateSession { token, client_ip: "::1".into(), request: connect.to_bytes() },
            &mut out,
        );
        let mut delete = Vec::new();
        let mut w = crate::proto::JuteWriter::new(&mut delete);
        RequestHeader { xid: 4, op: OpCode::Delete as i32 }.encode(&mut w);
        crate::proto::DeleteRequest { path: "/d".into(), version: -1 }.encode(&mut w);
        bridge.relay_from_node(1, forward(delete.clone()), &mut out);
        bridge.relay_from_node(1, forward(sync_frame(5)), &mut out);
        let sent = packets(&out);
        assert!(sent.iter().all(|p| (p.kind, p.zxid) == (kind::REQUEST, -1)));
        let data = sent[0].data.as_deref().unwrap();
        assert_eq!(
            (be_i64(data, 0), be_i32(data, 8), be_i32(data, 12), be_i32(data, 16), data.len()),
            (Some(0x0300_0000_0000_0001), Some(0), Some(-10), Some(6_000), 20)
        );
        let data = sent[1].data.as_deref().unwrap();
        assert_eq!((be_i32(data, 8), be_i32(data, 12)), (Some(4), Some(OpCode::Delete as i32)));
        assert_eq!(&data[16..], &delete[8..], "the request body after the header");
        assert_eq!(sent[1].auth, vec![Id { scheme: "ip".into(), id: "127.0.0.1".into() }]);
        out.clear();

        // Touches wait for the PING; the leader's SYNC answers the sync.
        bridge.relay_from_node(1, Relay::Touch { sessions: vec![(0x0300_0000_0000_0001, 6_000)] }, &mut out);
        assert!(out.is_empty());
        let mut stream = Vec::new();
        QuorumPacket::with_data(kind::LEADERINFO, 0x2_0000_0000, PROTOCOL_VERSION.to_be_bytes().to_vec())
            .encode(&mut stream);
        QuorumPacket::control(kind::PING, 0x2_0000_0000).encode(&mut stream);
        QuorumPacket::control(kind::SYNC, 0).encode(&mut stream);
        QuorumPacket::control(kind::PING, 0x2_0000_0000).encode(&mut stream);
        bridge.leader_bytes(&stream, &mut out);
        let pings: Vec<usize> = packets(&out)
            .iter()
            .filter(|p| p.kind == kind::PING)
            .map(|p| p.data.as_ref().map_or(0, Vec::len))
            .collect();
        assert_eq!(pings, [12, 0], "touches go out once");
        let reply = out.iter().find_map(|o| match o {
            Out::ToNode { relay: Relay::Reply { token: t, frame, .. }, .. } if *t == token => {
                Some(frame.clone())
            }
            _ => None,
        });
        let reply = reply.expect("the sync's reply");
        let mut r = JuteReader::new(&reply[4..]);
        let header = crate::proto::ReplyHeader::decode(&mut r).unwrap();
        assert_eq!((header.xid, header.err), (5, 0));
        assert_eq!(PathRequest::decode(&mut r).unwrap().path, "/s");
    }

    #[test]
    fn a_revalidation_is_asked_of_the_leader_and_its_answer_becomes_the_connect_response() {
        let mut bridge = Bridge::new(3, &Membership::default());
        let mut out = Vec::new();
        bridge.from_peer(1, &Msg::FollowerInfo { accepted_epoch: 1, observer: false }, &mut out);
        out.clear();
        let (kept, refused) = (ClientConn { core: 0, local: 1 }, ClientConn { core: 1, local: 2 });
        let (kept_id, refused_id) = (0x0100_0000_0000_0005, 0x0200_0000_0000_0009);
        for (token, session_id) in [(kept, kept_id), (refused, refused_id)] {
            let relay = Relay::Revalidate { token, session_id, timeout_ms: 4_000, read_only_byte: true };
            bridge.relay_from_node(1, relay, &mut out);
        }
        let asked = packets(&out);
        assert_eq!((asked[0].kind, asked[0].zxid), (kind::REVALIDATE, -1));
        let data = asked[0].data.as_deref().unwrap();
        assert_eq!(
            (be_i64(data, 0), crate::apache::quorum::be_i32(data, 8), data.len()),
            (Some(kept_id), Some(4_000), 12)
        );
        out.clear();
        // LearnerHandler answers `long sessionId, boolean valid`, in any order.
        let mut stream = Vec::new();
        QuorumPacket::with_data(kind::LEADERINFO, 0x2_0000_0000, PROTOCOL_VERSION.to_be_bytes().to_vec())
            .encode(&mut stream);
        for (session_id, valid) in [(refused_id, 0u8), (kept_id, 1)] {
            let mut data = i64::to_be_bytes(session_id).to_vec();
            data.push(valid);
            QuorumPacket::with_data(kind::REVALIDATE, -1, data).encode(&mut stream);
        }
        bridge.leader_bytes(&stream, &mut out);
        let to_node: Vec<&Relay> = out
            .iter()
            .filter_map(|o| if let Out::ToNode { relay, .. } = o { Some(relay) } else { None })
            .collect();
        let [Relay::Reply { token: t1, frame: f1, .. }, Relay::Close { token: t2 }, Relay::Reply { token: t3, frame: f3, .. }] =
            &to_node[..]
        else {
            panic!("{to_node:?}")
        };
        assert_eq!((*t1, *t2, *t3), (refused, refused, kept));
        let no = ConnectResponse::from_bytes(&f1[4..]).unwrap();
        assert_eq!((no.session_id, no.timeout_ms, no.read_only), (0, 0, Some(false)));
        let yes = ConnectResponse::from_bytes(&f3[4..]).unwrap();
        assert_eq!((yes.session_id, yes.timeout_ms), (kept_id, 4_000));
        assert_eq!(yes.passwd, apache_session_password(kept_id));
    }
}
