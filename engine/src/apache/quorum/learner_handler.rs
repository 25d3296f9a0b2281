//! The leader's side of Apache 3.8's learner protocol (`LearnerHandler`), one per Apache
//! learner connected to this member's peer port while its [`crate::zab::Peer`] leads: the
//! learner's packets become the peer's [`Msg`]s and relayed client traffic for the node, and
//! what the peer sends that learner becomes Apache's packets, in the order Apache's learner
//! needs (`Learner.syncWithLeader`, read from Apache 3.8.0):
//!
//! | the peer's messages to the learner       | Apache packets                                    |
//! |------------------------------------------|---------------------------------------------------|
//! | `LeaderInfo { epoch }`                   | LEADERINFO `makeZxid(epoch, 0)`, `int 0x10000`     |
//! | `Trunc`, `Snapshot`, `Proposal`s, `Commit` (the commit point), `NewLeader` | held, then at NEWLEADER: TRUNC z or SNAP z + state or DIFF, PROPOSAL+COMMIT per committed txn, PROPOSAL alone for the rest (a follower; an observer gets those later as INFORMs), NEWLEADER `makeZxid(epoch, 0)` + config text |
//! | `UpToDate { committed }`                 | UPTODATE, then the COMMITs held since NEWLEADER    |
//! | `Proposal` (serving)                     | PROPOSAL (txn entry); an observer: held for INFORM |
//! | `Commit z`, `CommitOnceDurable z`, `Ping` | one COMMIT (or INFORM) per txn up to z; for `CommitOnceDurable` up to the lower of z and the learner's last ACK |
//! | `Ping`                                   | PING (last zxid), once serving                     |
//!
//! | learner packets                          | to the peer / the node                            |
//! |------------------------------------------|---------------------------------------------------|
//! | FOLLOWERINFO / OBSERVERINFO              | `FollowerInfo { accepted_epoch, observer }`        |
//! | ACKEPOCH (last zxid, current epoch / -1) | `AckEpoch` (no epoch ends: the peer reads the leader's own up to that zxid's epoch) |
//! | ACK `makeZxid(epoch, 0)` after NEWLEADER | `AckNewLeader` of the NEWLEADER zxid               |
//! | ACK z                                    | `Ack z` (Apache's log acks in order: cumulative)   |
//! | PING (session touches)                   | `Relay::Touch`, and an `Ack` (the learner lives)   |
//! | REVALIDATE `long id, int timeout`        | `Relay::Revalidate`; the node's one-byte answer becomes REVALIDATE `long id, boolean valid` |
//! | REQUEST createSession (`int timeout`)    | `Relay::CreateSession` with the learner's id and timeout |
//! | REQUEST other                            | `Relay::Forward` (header + body, auth ids); the reply is dropped (the learner answers from the committed txn), except a sync's: SYNC once this learner was sent the commits up to its zxid |
//!
//! Invariant: no COMMIT goes out between NEWLEADER and UPTODATE (Apache's learner dies on
//! one whose proposal came before NEWLEADER), and COMMITs go out in zxid order, each for a
//! proposal this learner was sent.

use std::collections::{BTreeSet, VecDeque};

use super::packet::{decode_touches, kind, LearnerInfo, QuorumPacket, PROTOCOL_VERSION};
use super::{be_i32, be_i64, WireError};
use crate::apache::replay::apache_snapshot_of;
use crate::apache::snapshot::encode_streamed_state;
use crate::apache::txnlog::encode_entry;
use crate::conn::ClientConn;
use crate::proto::{ConnectRequest, Jute, OpCode, ReplyHeader};
use crate::zab::{make_zxid, CarriedConfig, Msg, Relay, ServerId};

/// `ClientConn::core` of the stand-in connections a leader's node runs an Apache learner's
/// forwarded requests on (one per session: `local` is the session id).
pub const FORWARDED_CORE: u32 = u32::MAX - 1;
/// `ClientConn::core` of a revalidation asked of the node (`local` is the session id).
pub const REVALIDATION_CORE: u32 = u32::MAX - 2;

/// The signature ending a SNAP's streamed state (`LearnerHandler`: `oa.writeString("BenWasHere")`).
const SNAP_SIGNATURE: &[u8] = b"BenWasHere";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// FOLLOWERINFO read; LEADERINFO and ACKEPOCH next.
    Discovery,
    /// The peer is sending the sync (held until its NEWLEADER).
    Syncing,
    /// NEWLEADER sent; waiting for its ACK and then the peer's UPTODATE.
    AwaitUpToDate,
    /// UPTODATE sent: broadcast.
    Serving,
}

/// One Apache learner's connection, seen from the leader.
pub struct LearnerHandler {
    /// The transport's number of the connection.
    pub conn: u64,
    pub observer: bool,
    /// The learner's FOLLOWERINFO/OBSERVERINFO as the peer's message: handed to the peer
    /// again until a LEADERINFO comes back ([`LearnerHandler::awaiting_leader_info`]).
    pub info: Msg,
    stage: Stage,
    epoch: u32,
    /// Held sync: a TRUNC point, a SNAP (zxid, streamed state), the proposals' entries.
    trunc: Option<i64>,
    snap: Option<(i64, Vec<u8>)>,
    sync_proposals: Vec<(i64, Vec<u8>)>,
    /// The highest commit point the peer told (at once or in a ping).
    commit_point: i64,
    /// The peer's last `CommitOnceDurable` point (applies up to the learner's ACKs).
    commit_once_durable: i64,
    /// The learner's last ACKed zxid.
    acked: i64,
    /// The NEWLEADER zxid the peer synced this learner to.
    new_leader_zxid: i64,
    /// Txns this learner holds as proposals (an observer: will get as INFORMs), not yet
    /// committed to it, in zxid order, with their entries (INFORM carries the entry).
    uncommitted: VecDeque<(i64, Vec<u8>)>,
    /// The last zxid this learner was sent a COMMIT (or INFORM) or a committed sync pair for.
    committed_sent: i64,
    /// Forwarded syncs (session, cxid) not answered by the node yet.
    forwarded_syncs: BTreeSet<(i64, i32)>,
    /// Syncs the node answered, waiting until commits up to their zxid went out.
    syncs: VecDeque<i64>,
}

/// What handling a learner's packet or a peer message gives.
#[derive(Debug)]
pub enum HandlerOut {
    ToPeer(Msg),
    ToNode(Relay),
    Packet(QuorumPacket),
    /// Raw bytes (a SNAP's streamed state) after the packets before it.
    Raw(Vec<u8>),
}

impl LearnerHandler {
    /// A learner that sent FOLLOWERINFO/OBSERVERINFO on connection `conn`.
    pub fn new(conn: u64, observer: bool, info: Msg) -> LearnerHandler {
        LearnerHandler {
            conn,
            observer,
            info,
            stage: Stage::Discovery,
            epoch: 0,
            trunc: None,
            snap: None,
            sync_proposals: Vec::new(),
            commit_point: i64::MIN,
            commit_once_durable: i64::MIN,
            acked: 0,
            new_leader_zxid: i64::MIN,
            uncommitted: VecDeque::new(),
            committed_sent: i64::MIN,
            forwarded_syncs: BTreeSet::new(),
            syncs: VecDeque::new(),
        }
    }

    /// The first packet of a learner connection: its id, whether it observes, the message
    /// for the peer. `None` when it is not FOLLOWERINFO/OBSERVERINFO.
    pub fn learner_info(packet: &QuorumPacket) -> Result<(ServerId, bool, Msg), WireError> {
        let observer = match packet.kind {
            kind::FOLLOWERINFO => false,
            kind::OBSERVERINFO => true,
            other => return Err(WireError::new(format!("a learner's first packet is type {other}"))),
        };
        let data = packet.data.as_deref().unwrap_or_default();
        let info = LearnerInfo::from_bytes(data).map_err(|e| WireError::new(format!("LearnerInfo: {e}")))?;
        if info.server_id < 0 {
            return Err(WireError::new(format!("LearnerInfo server id {}", info.server_id)));
        }
        let accepted_epoch = crate::zab::epoch_of(packet.zxid);
        Ok((info.server_id as ServerId, observer, Msg::FollowerInfo { accepted_epoch, observer }))
    }

    /// True until the peer answered the learner's FOLLOWERINFO with LEADERINFO. A learner
    /// may connect while this member is still deciding to lead (its listener is always
    /// open; Apache's leader opens its own only once leading): the peer drops a FOLLOWERINFO
    /// that comes before it leads, and Apache's learner sends it once per connection, so the
    /// transport hands it to the peer again while this holds (the peer treats a repeated one
    /// from a learner it has not answered as the same).
    pub fn awaiting_leader_info(&self) -> bool {
        self.stage == Stage::Discovery && self.epoch == 0
    }

    /// A message the peer sends this learner.
    pub fn from_peer(&mut self, msg: &Msg, out: &mut Vec<HandlerOut>) {
        match msg {
            // A repeat (its FOLLOWERINFO was handed to the peer again): sent once.
            Msg::LeaderInfo { epoch } if *epoch == self.epoch => {}
            Msg::LeaderInfo { epoch } => {
                self.epoch = *epoch;
                self.stage = Stage::Discovery;
                let data = PROTOCOL_VERSION.to_be_bytes().to_vec();
                out.push(HandlerOut::Packet(QuorumPacket::with_data(
                    kind::LEADERINFO,
                    make_zxid(*epoch, 0),
                    data,
                )));
            }
            Msg::Trunc { zxid, .. } if self.stage == Stage::Syncing => self.trunc = Some(*zxid),
            Msg::Snapshot { zxid, image, .. } if self.stage == Stage::Syncing => {
                match streamed_state_of(image) {
                    Ok(state) => self.snap = Some((*zxid, state)),
                    Err(e) => log::error!("cannot send SNAP {zxid:#x} to an Apache learner: {e}"),
                }
            }
            Msg::Proposal { zxid, txn, .. } => {
                let entry = encode_entry(&deserialize_txn(txn));
                match self.stage {
                    Stage::Discovery => {}
                    Stage::Syncing => self.sync_proposals.push((*zxid, entry)),
                    Stage::AwaitUpToDate | Stage::Serving => {
                        if !self.observer {
                            out.push(HandlerOut::Packet(QuorumPacket::with_data(
                                kind::PROPOSAL,
                                *zxid,
                                entry.clone(),
                            )));
                        }
                        self.uncommitted.push_back((*zxid, entry));
                    }
                }
            }
            Msg::Commit { zxid, .. } => {
                self.commit_point = self.commit_point.max(*zxid);
                self.release_commits(out);
            }
            Msg::CommitOnceDurable { zxid, .. } => {
                self.commit_once_durable = self.commit_once_durable.max(*zxid);
                self.release_commits(out);
            }
            Msg::NewLeader { zxid, config, .. } if self.stage == Stage::Syncing => {
                self.send_sync(*zxid, config, out);
            }
            Msg::UpToDate { committed, .. } if self.stage == Stage::AwaitUpToDate => {
                self.stage = Stage::Serving;
                out.push(HandlerOut::Packet(QuorumPacket::control(kind::UPTODATE, -1)));
                self.commit_point = self.commit_point.max(*committed);
                self.release_commits(out);
            }
            Msg::Ping { committed, last_zxid, .. } => {
                self.commit_point = self.commit_point.max(*committed);
                self.release_commits(out);
                if self.stage == Stage::Serving {
                    out.push(HandlerOut::Packet(QuorumPacket::control(kind::PING, *last_zxid)));
                }
            }
            other => log::debug!("not sent to an Apache learner ({:?}): {other:?}", self.stage),
        }
    }

    /// The held sync goes out, in the order Apache's learner needs, ending with NEWLEADER.
    fn send_sync(&mut self, new_leader_zxid: i64, config: &CarriedConfig, out: &mut Vec<HandlerOut>) {
        let packet = |p| HandlerOut::Packet(p);
        if let Some((zxid, state)) = self.snap.take() {
            out.push(packet(QuorumPacket::control(kind::SNAP, zxid)));
            out.push(HandlerOut::Raw(state));
        } else if let Some(zxid) = self.trunc.take() {
            out.push(packet(QuorumPacket::control(kind::TRUNC, zxid)));
        } else {
            out.push(packet(QuorumPacket::control(kind::DIFF, new_leader_zxid)));
        }
        for (zxid, entry) in std::mem::take(&mut self.sync_proposals) {
            if zxid <= self.commit_point {
                out.push(packet(QuorumPacket::with_data(kind::PROPOSAL, zxid, entry)));
                out.push(packet(QuorumPacket::control(kind::COMMIT, zxid)));
                self.committed_sent = zxid;
            } else {
                if !self.observer {
                    out.push(packet(QuorumPacket::with_data(kind::PROPOSAL, zxid, entry.clone())));
                }
                self.uncommitted.push_back((zxid, entry));
            }
        }
        let text = match config {
            CarriedConfig::Whole(membership) => membership.render(),
            CarriedConfig::Version(_) => String::new(),
        };
        self.new_leader_zxid = new_leader_zxid;
        self.stage = Stage::AwaitUpToDate;
        out.push(packet(QuorumPacket::with_data(
            kind::NEWLEADER,
            make_zxid(self.epoch, 0),
            text.into_bytes(),
        )));
    }

    /// Sends COMMITs (INFORMs to an observer) for the held txns the commit points cover, once
    /// serving; then the SYNCs they release.
    fn release_commits(&mut self, out: &mut Vec<HandlerOut>) {
        if self.stage != Stage::Serving {
            return;
        }
        let upto = self.commit_point.max(self.commit_once_durable.min(self.acked));
        while let Some((zxid, _)) = self.uncommitted.front().filter(|(z, _)| *z <= upto) {
            let zxid = *zxid;
            let (_, entry) = self.uncommitted.pop_front().expect("checked");
            let commit = if self.observer {
                QuorumPacket::with_data(kind::INFORM, zxid, entry)
            } else {
                QuorumPacket::control(kind::COMMIT, zxid)
            };
            out.push(HandlerOut::Packet(commit));
            self.committed_sent = zxid;
        }
        self.committed_sent = self.committed_sent.max(upto.min(self.highest_known()));
        while self.syncs.front().is_some_and(|z| *z <= self.committed_sent) {
            self.syncs.pop_front();
            out.push(HandlerOut::Packet(QuorumPacket::control(kind::SYNC, 0)));
        }
    }

    /// The highest zxid this learner holds or was sent, as far as this handler knows.
    fn highest_known(&self) -> i64 {
        self.uncommitted.back().map_or(self.committed_sent.max(self.new_leader_zxid), |(z, _)| *z)
    }

    /// One packet from the learner (after its FOLLOWERINFO).
    pub fn learner_packet(
        &mut self,
        packet: QuorumPacket,
        out: &mut Vec<HandlerOut>,
    ) -> Result<(), WireError> {
        let epoch = self.epoch;
        match packet.kind {
            kind::ACKEPOCH if self.stage == Stage::Discovery && epoch != 0 => {
                let current = packet.data_i32().unwrap_or(-1);
                self.stage = Stage::Syncing;
                out.push(HandlerOut::ToPeer(Msg::AckEpoch {
                    epoch,
                    // -1: the learner had accepted the epoch before; nothing to compare.
                    current_epoch: current.max(0) as u32,
                    last_zxid: packet.zxid,
                    epoch_ends: Vec::new(),
                }));
            }
            kind::ACK if packet.zxid == make_zxid(epoch, 0) => {
                if self.stage == Stage::AwaitUpToDate && self.new_leader_zxid != i64::MIN {
                    let zxid = std::mem::replace(&mut self.new_leader_zxid, i64::MIN);
                    self.acked = self.acked.max(zxid);
                    out.push(HandlerOut::ToPeer(Msg::AckNewLeader { epoch, zxid }));
                    out.push(HandlerOut::ToPeer(Msg::Ack { epoch, zxid }));
                }
                // The second one (after UPTODATE) says nothing more.
            }
            kind::ACK => {
                self.acked = self.acked.max(packet.zxid);
                out.push(HandlerOut::ToPeer(Msg::Ack { epoch, zxid: packet.zxid }));
                self.release_commits(out);
            }
            kind::PING => {
                let touches = decode_touches(packet.data.as_deref().unwrap_or_default());
                if !touches.is_empty() {
                    out.push(HandlerOut::ToNode(Relay::Touch { sessions: touches }));
                }
                out.push(HandlerOut::ToPeer(Msg::Ack { epoch, zxid: self.acked }));
            }
            kind::REVALIDATE => {
                let data = packet.data.as_deref().unwrap_or_default();
                let (Some(session_id), Some(timeout_ms)) = (be_i64(data, 0), be_i32(data, 8)) else {
                    return Err(WireError::new("REVALIDATE without a session id and timeout"));
                };
                let token = ClientConn { core: REVALIDATION_CORE, local: session_id as u64 };
                out.push(HandlerOut::ToNode(Relay::Revalidate {
                    token,
                    session_id,
                    timeout_ms,
                    read_only_byte: false,
                }));
            }
            kind::REQUEST => self.request(packet, out)?,
            other => log::debug!("Apache learner packet type {other} at {:#x} not handled", packet.zxid),
        }
        Ok(())
    }

    /// A forwarded client request (`Learner.request`: `long sessionId, int cxid, int type`,
    /// the request body; the packet's auth ids).
    fn request(&mut self, packet: QuorumPacket, out: &mut Vec<HandlerOut>) -> Result<(), WireError> {
        let data = packet.data.unwrap_or_default();
        let (Some(session_id), Some(cxid), Some(op)) =
            (be_i64(&data, 0), be_i32(&data, 8), be_i32(&data, 12))
        else {
            return Err(WireError::new("REQUEST shorter than its header"));
        };
        let body = &data[16..];
        let token = ClientConn { core: FORWARDED_CORE, local: session_id as u64 };
        if op == OpCode::CreateSession as i32 {
            let Some(timeout_ms) = be_i32(body, 0) else {
                return Err(WireError::new("createSession REQUEST without a timeout"));
            };
            let request = ConnectRequest { session_id, timeout_ms, ..Default::default() }.to_bytes();
            out.push(HandlerOut::ToNode(Relay::CreateSession { token, client_ip: String::new(), request }));
            return Ok(());
        }
        if op == OpCode::Sync as i32 {
            self.forwarded_syncs.insert((session_id, cxid));
        }
        let mut frame = Vec::with_capacity(8 + body.len());
        frame.extend_from_slice(&cxid.to_be_bytes());
        frame.extend_from_slice(&op.to_be_bytes());
        frame.extend_from_slice(body);
        let ids = packet.auth.into_iter().map(|id| (id.scheme, id.id)).collect();
        out.push(HandlerOut::ToNode(Relay::Forward {
            token,
            session_id,
            ids,
            client_ip: String::new(),
            frame,
        }));
        Ok(())
    }

    /// Relayed traffic the node sends this learner: the answer to a revalidation, a sync's
    /// reply (SYNC once the commits up to it went out); other replies are dropped (Apache's
    /// learner answers its client from the committed txn).
    pub fn from_node(&mut self, relay: Relay, out: &mut Vec<HandlerOut>) {
        let Relay::Reply { token, zxid, frame } = relay else { return };
        match token.core {
            REVALIDATION_CORE => {
                let mut data = (token.local as i64).to_be_bytes().to_vec();
                data.push(u8::from(frame.first().copied().unwrap_or(0) != 0));
                out.push(HandlerOut::Packet(QuorumPacket::with_data(kind::REVALIDATE, -1, data)));
            }
            FORWARDED_CORE => {
                let session_id = token.local as i64;
                let Some(xid) = ReplyHeader::of_frame(&frame).map(|h| h.xid) else {
                    return;
                };
                if self.forwarded_syncs.remove(&(session_id, xid)) {
                    self.syncs.push_back(zxid);
                    self.release_commits(out);
                }
            }
            _ => {}
        }
    }
}

/// A txn the peer holds (rkyv bytes this process made) as an owned [`crate::txn::Txn`].
fn deserialize_txn(txn: &crate::zab::SharedTxn) -> crate::txn::Txn {
    rkyv::deserialize::<crate::txn::Txn, rkyv::rancor::Error>(crate::txn::access_trusted(txn))
        .expect("a txn this process encoded deserializes")
}

/// The state Apache streams after SNAP (sessions, ACLs, nodes, then the signature) for a
/// ringkeeper image (header and payload, as [`Msg::Snapshot`] carries it).
fn streamed_state_of(image: &[u8]) -> Result<Vec<u8>, String> {
    let mut aligned = crate::txn::TxnBytes::new();
    aligned.extend_from_slice(image);
    let (_, archived) = crate::snapshot::decode(&aligned).map_err(|e| e.to_string())?;
    let crate::snapshot::ArchivedImage::V2(archived) = archived else {
        return Err("an image of the old format".into());
    };
    let image = rkyv::deserialize::<crate::snapshot::SnapshotImage, rkyv::rancor::Error>(archived)
        .map_err(|e| e.to_string())?;
    let mut state = encode_streamed_state(&apache_snapshot_of(&image, 0));
    state.extend_from_slice(&(SNAP_SIGNATURE.len() as i32).to_be_bytes());
    state.extend_from_slice(SNAP_SIGNATURE);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::txn::{Txn, TxnBody, TxnOp};

    fn proposal(zxid: i64) -> Msg {
        let body = TxnBody::Op(TxnOp::Delete { path: format!("/{zxid:x}") });
        let txn = Txn { session_id: 9, cxid: 1, zxid, time_ms: 5, body };
        Msg::Proposal { epoch: 2, prev_zxid: zxid - 1, zxid, txn: Arc::new(crate::txn::encode(&txn)) }
    }

    /// The packets (kind, zxid) among `out`, in order.
    fn packets(out: &[HandlerOut]) -> Vec<(i32, i64)> {
        out.iter()
            .filter_map(|o| if let HandlerOut::Packet(p) = o { Some((p.kind, p.zxid)) } else { None })
            .collect()
    }

    fn synced_handler(
        observer: bool,
        committed: i64,
        last: i64,
        out: &mut Vec<HandlerOut>,
    ) -> LearnerHandler {
        let mut h = LearnerHandler::new(7, observer, Msg::FollowerInfo { accepted_epoch: 1, observer });
        h.from_peer(&Msg::LeaderInfo { epoch: 2 }, out);
        let ack_epoch =
            QuorumPacket::with_data(kind::ACKEPOCH, 0x1_0000_0001, (-1i32).to_be_bytes().to_vec());
        h.learner_packet(ack_epoch, out).unwrap();
        for zxid in 0x1_0000_0002..=last {
            h.from_peer(&proposal(zxid), out);
        }
        h.from_peer(&Msg::Commit { epoch: 2, zxid: committed }, out);
        h.from_peer(&Msg::NewLeader { epoch: 2, zxid: last, config: CarriedConfig::Version(0) }, out);
        h
    }

    #[test]
    fn a_diff_sends_committed_pairs_before_newleader_and_holds_other_commits_until_uptodate() {
        let mut out = Vec::new();
        let mut h = synced_handler(false, 0x1_0000_0003, 0x1_0000_0004, &mut out);
        let to_peer: Vec<&Msg> =
            out.iter().filter_map(|o| if let HandlerOut::ToPeer(m) = o { Some(m) } else { None }).collect();
        assert!(matches!(
            to_peer[..],
            [Msg::AckEpoch { epoch: 2, current_epoch: 0, last_zxid: 0x1_0000_0001, .. }]
        ));
        assert_eq!(
            packets(&out),
            [
                (kind::LEADERINFO, 0x2_0000_0000),
                (kind::DIFF, 0x1_0000_0004),
                (kind::PROPOSAL, 0x1_0000_0002),
                (kind::COMMIT, 0x1_0000_0002),
                (kind::PROPOSAL, 0x1_0000_0003),
                (kind::COMMIT, 0x1_0000_0003),
                (kind::PROPOSAL, 0x1_0000_0004),
                (kind::NEWLEADER, 0x2_0000_0000),
            ]
        );
        out.clear();
        // Nothing is committed between NEWLEADER and UPTODATE; a proposal still goes out.
        h.from_peer(&Msg::Commit { epoch: 2, zxid: 0x1_0000_0004 }, &mut out);
        h.from_peer(&proposal(0x2_0000_0001), &mut out);
        h.from_peer(&Msg::Ping { epoch: 2, committed: 0x1_0000_0004, last_zxid: 0x2_0000_0001 }, &mut out);
        assert_eq!(packets(&out), [(kind::PROPOSAL, 0x2_0000_0001)]);
        out.clear();
        // NEWLEADER's ACK is makeZxid(epoch, 0); the peer hears the NEWLEADER zxid.
        h.learner_packet(QuorumPacket::control(kind::ACK, 0x2_0000_0000), &mut out).unwrap();
        assert!(matches!(out[0], HandlerOut::ToPeer(Msg::AckNewLeader { epoch: 2, zxid: 0x1_0000_0004 })));
        out.clear();
        h.from_peer(&Msg::UpToDate { epoch: 2, committed: 0x1_0000_0004 }, &mut out);
        assert_eq!(packets(&out), [(kind::UPTODATE, -1), (kind::COMMIT, 0x1_0000_0004)]);
        out.clear();
        // Commit once durable: up to the lower of the point and the learner's ACK.
        h.from_peer(&proposal(0x2_0000_0002), &mut out);
        h.from_peer(&Msg::CommitOnceDurable { epoch: 2, zxid: 0x2_0000_0002 }, &mut out);
        h.learner_packet(QuorumPacket::control(kind::ACK, 0x2_0000_0001), &mut out).unwrap();
        assert_eq!(packets(&out), [(kind::PROPOSAL, 0x2_0000_0002), (kind::COMMIT, 0x2_0000_0001)]);
        out.clear();
        h.from_peer(&Msg::Commit { epoch: 2, zxid: 0x2_0000_0002 }, &mut out);
        h.from_peer(&Msg::Commit { epoch: 2, zxid: 0x2_0000_0002 }, &mut out);
        assert_eq!(packets(&out), [(kind::COMMIT, 0x2_0000_0002)], "each zxid committed once");
    }

    #[test]
    fn an_observer_gets_informs_and_a_forwarded_sync_waits_for_its_commits() {
        let mut out = Vec::new();
        let mut h = synced_handler(true, 0x1_0000_0002, 0x1_0000_0003, &mut out);
        assert!(!packets(&out).contains(&(kind::PROPOSAL, 0x1_0000_0003)), "not committed: held");
        h.learner_packet(QuorumPacket::control(kind::ACK, 0x2_0000_0000), &mut out).unwrap();
        out.clear();
        h.from_peer(&Msg::UpToDate { epoch: 2, committed: 0x1_0000_0002 }, &mut out);
        h.from_peer(&proposal(0x2_0000_0001), &mut out);
        assert_eq!(packets(&out), [(kind::UPTODATE, -1)]);
        out.clear();
        // A sync forwarded, answered by the node at a zxid not committed yet.
        let mut data = 0x55i64.to_be_bytes().to_vec();
        data.extend_from_slice(&3i32.to_be_bytes());
        data.extend_from_slice(&(OpCode::Sync as i32).to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 1, b'/']);
        h.learner_packet(QuorumPacket::with_data(kind::REQUEST, -1, data), &mut out).unwrap();
        assert!(matches!(&out[..], [HandlerOut::ToNode(Relay::Forward { session_id: 0x55, .. })]));
        out.clear();
        let frame = crate::request::reply_frame(3, 0x2_0000_0001, crate::proto::ErrorCode::Ok, None);
        let token = ClientConn { core: FORWARDED_CORE, local: 0x55 };
        h.from_node(Relay::Reply { token, zxid: 0x2_0000_0001, frame }, &mut out);
        assert!(packets(&out).is_empty(), "the sync waits for its zxid's commit");
        h.from_peer(&Msg::Commit { epoch: 2, zxid: 0x2_0000_0001 }, &mut out);
        assert_eq!(
            packets(&out),
            [(kind::INFORM, 0x1_0000_0003), (kind::INFORM, 0x2_0000_0001), (kind::SYNC, 0)]
        );
    }

    #[test]
    fn a_snap_streams_the_image_as_apaches_state_and_signature() {
        use crate::apache::quorum::packet::{find_streamed_state, SnapSearch};
        use crate::apache::replay::ApacheReplay;
        use crate::apache::snapshot::one_node_state;
        let state = one_node_state((77, 10_000), "/x", b"1".to_vec());
        let encoded = crate::snapshot::encode(
            &ApacheReplay::from_snapshot(&state, 0x1_0000_0009).unwrap().into_image(),
        );
        let mut image = encoded.header.to_vec();
        image.extend_from_slice(&encoded.payload);
        let mut out = Vec::new();
        let mut h = LearnerHandler::new(7, false, Msg::FollowerInfo { accepted_epoch: 1, observer: false });
        h.from_peer(&Msg::LeaderInfo { epoch: 2 }, &mut out);
        h.learner_packet(QuorumPacket::with_data(kind::ACKEPOCH, 0, 0i32.to_be_bytes().to_vec()), &mut out)
            .unwrap();
        let snapshot =
            Msg::Snapshot { epoch: 2, zxid: 0x1_0000_0009, epoch_ends: vec![], image: Arc::new(image) };
        h.from_peer(&snapshot, &mut out);
        h.from_peer(
            &Msg::NewLeader { epoch: 2, zxid: 0x1_0000_0009, config: CarriedConfig::Version(0) },
            &mut out,
        );
        let kinds = packets(&out);
        assert_eq!(kinds[1..], [(kind::SNAP, 0x1_0000_0009), (kind::NEWLEADER, 0x2_0000_0000)]);
        let raw = out.iter().find_map(|o| if let HandlerOut::Raw(r) = o { Some(r.clone()) } else { None });
        let raw = raw.expect("the streamed state");
        let SnapSearch::Found { state: streamed, used } = find_streamed_state(&raw, 0).unwrap() else {
            panic!("the state and signature are complete")
        };
        assert_eq!(used, raw.len(), "the signature ends it");
        assert_eq!(streamed.sessions, vec![(77, 10_000)]);
        assert!(streamed.nodes.iter().any(|n| n.path == "/x" && n.data.as_deref() == Some(b"1".as_slice())));
    }
}
