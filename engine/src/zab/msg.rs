//! Peer messages of the election and of ZAB, and their byte encoding.
//!
//! Encoding (little endian): one tag byte, then the fields in declaration order; `u32`/`u64`/
//! `i64` fixed width, byte strings and lists prefixed by a `u32` count. A proposal's txn bytes
//! are the rkyv bytes the leader encoded once; the receiver validates them ([`txn::access`])
//! while decoding, so everything past [`Msg::decode`] is trusted. The transport adds its own
//! length prefix. Decoding never panics: a short, oversized or unknown message is an error.
//!
//! Every message after the election names the leader's epoch; receivers drop messages of
//! another epoch (a deposed leader's late packets).

use std::sync::Arc;

use super::membership::Membership;
use super::{ServerId, SharedTxn};
use crate::txn::{self, TxnBytes};

/// What a server is doing, as reported in election notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

/// A vote: who should lead, and the state it was judged on (FastLeaderElection's
/// `(peerEpoch, zxid, sid)` order: a higher epoch wins, then a higher zxid, then a higher id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: i64,
    pub epoch: u32,
}

impl Vote {
    /// True when `self` is a better leader than `other`.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.epoch, self.zxid, self.leader) > (other.epoch, other.zxid, other.leader)
    }
}

/// The sender's committed configuration, as election notifications and NEWLEADER carry it
/// (Apache's carry the whole configuration text every time; ours the version, and the members
/// where the receiver needs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarriedConfig {
    /// Only the version: the receiver is not known to hold an older configuration, or the
    /// sender knows no addresses (reconfig off). 0 names a configuration no leader versioned.
    Version(i64),
    /// The whole configuration (members with addresses, and its version).
    Whole(Membership),
}

impl CarriedConfig {
    pub fn version(&self) -> i64 {
        match self {
            CarriedConfig::Version(version) => *version,
            CarriedConfig::Whole(membership) => membership.version,
        }
    }
}

/// One peer message.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Election: the sender's round, state, current vote and committed configuration. A
    /// looking server takes up a newer configuration it is sent (Apache's
    /// `FastLeaderElection` receiver calls `processReconfig`): a voter removed and added back
    /// while cut off learns that it votes again, and a removed one that it no longer does.
    Notification { round: u64, state: ServerState, vote: Vote, config: CarriedConfig },
    /// Learner -> leader: first message to a leader (Apache FOLLOWERINFO/OBSERVERINFO).
    FollowerInfo { accepted_epoch: u32, observer: bool },
    /// Leader -> learner: the new epoch (LEADERINFO).
    LeaderInfo { epoch: u32 },
    /// Learner -> leader: epoch accepted, with the learner's history summary (ACKEPOCH).
    /// `epoch_ends` holds, per epoch the learner has txns of, its last zxid in that epoch.
    AckEpoch { epoch: u32, current_epoch: u32, last_zxid: i64, epoch_ends: Vec<i64> },
    /// Leader -> learner: drop every txn after `zxid` (TRUNC).
    Trunc { epoch: u32, zxid: i64 },
    /// Leader -> learner: replace state and log by this image of the leader at `zxid` (SNAP).
    Snapshot { epoch: u32, zxid: i64, epoch_ends: Vec<i64>, image: Arc<Vec<u8>> },
    /// Leader -> learner: one txn, following `prev_zxid` (PROPOSAL, also DIFF entries).
    Proposal { epoch: u32, prev_zxid: i64, zxid: i64, txn: SharedTxn },
    /// Leader -> learner: history up to `zxid` sent; ack once it is durable (NEWLEADER).
    /// `config`: the leader's configuration, which the learner takes up at UPTODATE if it is
    /// newer than its own (Apache's NEWLEADER carries the leader's configuration and its
    /// learner calls `processReconfig` with it at UPTODATE): this is how the first leader's
    /// version of a configuration no reconfig made reaches every member, and how a joining
    /// server learns the members it joins (its own files list it, the ensemble's does not
    /// until its reconfig commits).
    NewLeader { epoch: u32, zxid: i64, config: CarriedConfig },
    /// Learner -> leader: synced and durable up to `zxid`.
    AckNewLeader { epoch: u32, zxid: i64 },
    /// Leader -> learner: start serving clients; committed up to `committed` (UPTODATE).
    UpToDate { epoch: u32, committed: i64 },
    /// Leader -> learner: everything up to `zxid` is committed (cumulative COMMIT).
    Commit { epoch: u32, zxid: i64 },
    /// Leader -> synced voting follower: a quorum holds everything up to `zxid` durably if
    /// the receiver does: commit up to the lower of `zxid` and the receiver's own durable
    /// point, now and as its log reports more (cumulative; no Apache counterpart).
    CommitOnceDurable { epoch: u32, zxid: i64 },
    /// Learner -> leader: durable up to `zxid` (cumulative ACK; also the answer to a ping).
    Ack { epoch: u32, zxid: i64 },
    /// Leader -> learner heartbeat, carrying the commit point and the last zxid proposed (a
    /// synced learner behind it lost a message and resynchronises).
    Ping { epoch: u32, committed: i64, last_zxid: i64 },
}

/// Messages are equal when their encodings are (txn bytes compared by content).
impl PartialEq for Msg {
    fn eq(&self, other: &Msg) -> bool {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.encode(&mut a);
        other.encode(&mut b);
        a == b
    }
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    #[error("peer message truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown peer message tag {0}")]
    UnknownTag(u8),
    #[error("unknown server state {0}")]
    UnknownState(u8),
    #[error("{0} trailing bytes after a peer message")]
    Trailing(usize),
    #[error("proposal {zxid:#x} carries an invalid txn: {detail}")]
    InvalidTxn { zxid: i64, detail: String },
    #[error("unknown configuration form {0}")]
    UnknownConfigForm(u8),
    #[error("the configuration a peer sent does not parse: {0}")]
    InvalidConfig(String),
}

const TAG_NOTIFICATION: u8 = 1;
const TAG_FOLLOWER_INFO: u8 = 2;
const TAG_LEADER_INFO: u8 = 3;
const TAG_ACK_EPOCH: u8 = 4;
const TAG_TRUNC: u8 = 5;
const TAG_SNAPSHOT: u8 = 6;
const TAG_PROPOSAL: u8 = 7;
const TAG_NEW_LEADER: u8 = 8;
const TAG_ACK_NEW_LEADER: u8 = 9;
const TAG_UP_TO_DATE: u8 = 10;
const TAG_COMMIT: u8 = 11;
const TAG_ACK: u8 = 12;
const TAG_PING: u8 = 13;
const TAG_COMMIT_ONCE_DURABLE: u8 = 14;

/// Whether an encoded message starting with `first_byte` (its tag) may be large: a state
/// image grows with the tree, a proposal with its txn (a session's close lists every
/// ephemeral it deletes). Every other message has a small fixed or per-epoch size.
pub fn may_be_large(first_byte: u8) -> bool {
    matches!(first_byte, TAG_SNAPSHOT | TAG_PROPOSAL)
}

/// Little-endian field writer shared by the peer codecs.
pub(super) struct Writer<'a>(pub(super) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(v as u64)
    }
    pub(super) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    pub(super) fn zxids(&mut self, list: &[i64]) -> &mut Self {
        self.u32(list.len() as u32);
        for z in list {
            self.i64(*z);
        }
        self
    }
    /// A form byte, then the version (0) or the configuration's text (1).
    pub(super) fn config(&mut self, config: &CarriedConfig) -> &mut Self {
        match config {
            CarriedConfig::Version(version) => self.u8(0).i64(*version),
            CarriedConfig::Whole(membership) => self.u8(1).bytes(membership.render().as_bytes()),
        }
    }
}

/// Bounds-checked field reader shared by the peer codecs.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], MsgError> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(MsgError::Truncated(self.at))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    pub(super) fn u8(&mut self) -> Result<u8, MsgError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Result<u32, MsgError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub(super) fn u64(&mut self) -> Result<u64, MsgError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    pub(super) fn i64(&mut self) -> Result<i64, MsgError> {
        Ok(self.u64()? as i64)
    }
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], MsgError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(super) fn zxids(&mut self) -> Result<Vec<i64>, MsgError> {
        let n = self.u32()? as usize;
        // Each entry is 8 bytes: a count larger than the rest is a truncated message.
        if n > (self.buf.len() - self.at) / 8 {
            return Err(MsgError::Truncated(self.at));
        }
        (0..n).map(|_| self.i64()).collect()
    }
    pub(super) fn config(&mut self) -> Result<CarriedConfig, MsgError> {
        match self.u8()? {
            0 => Ok(CarriedConfig::Version(self.i64()?)),
            1 => {
                let text =
                    std::str::from_utf8(self.bytes()?).map_err(|e| MsgError::InvalidConfig(e.to_string()))?;
                Ok(CarriedConfig::Whole(Membership::parse(text).map_err(MsgError::InvalidConfig)?))
            }
            other => Err(MsgError::UnknownConfigForm(other)),
        }
    }
    pub(super) fn state(&mut self) -> Result<ServerState, MsgError> {
        Ok(match self.u8()? {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            other => return Err(MsgError::UnknownState(other)),
        })
    }
}

impl Msg {
    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        match self {
            Msg::Notification { round, state, vote, config } => {
                w.u8(TAG_NOTIFICATION).u64(*round).u8(*state as u8);
                w.u64(vote.leader).i64(vote.zxid).u32(vote.epoch).config(config);
            }
            Msg::FollowerInfo { accepted_epoch, observer } => {
                w.u8(TAG_FOLLOWER_INFO).u32(*accepted_epoch).u8(*observer as u8);
            }
            Msg::LeaderInfo { epoch } => {
                w.u8(TAG_LEADER_INFO).u32(*epoch);
            }
            Msg::AckEpoch { epoch, current_epoch, last_zxid, epoch_ends } => {
                w.u8(TAG_ACK_EPOCH).u32(*epoch).u32(*current_epoch).i64(*last_zxid).zxids(epoch_ends);
            }
            Msg::Trunc { epoch, zxid } => {
                w.u8(TAG_TRUNC).u32(*epoch).i64(*zxid);
            }
            Msg::Snapshot { epoch, zxid, epoch_ends, image } => {
                w.u8(TAG_SNAPSHOT).u32(*epoch).i64(*zxid).zxids(epoch_ends).bytes(image);
            }
            Msg::Proposal { epoch, prev_zxid, zxid, txn } => {
                w.u8(TAG_PROPOSAL).u32(*epoch).i64(*prev_zxid).i64(*zxid).bytes(txn);
            }
            Msg::NewLeader { epoch, zxid, config } => {
                w.u8(TAG_NEW_LEADER).u32(*epoch).i64(*zxid).config(config);
            }
            Msg::AckNewLeader { epoch, zxid } => {
                w.u8(TAG_ACK_NEW_LEADER).u32(*epoch).i64(*zxid);
            }
            Msg::UpToDate { epoch, committed } => {
                w.u8(TAG_UP_TO_DATE).u32(*epoch).i64(*committed);
            }
            Msg::Commit { epoch, zxid } => {
                w.u8(TAG_COMMIT).u32(*epoch).i64(*zxid);
            }
            Msg::Ack { epoch, zxid } => {
                w.u8(TAG_ACK).u32(*epoch).i64(*zxid);
            }
            Msg::CommitOnceDurable { epoch, zxid } => {
                w.u8(TAG_COMMIT_ONCE_DURABLE).u32(*epoch).i64(*zxid);
            }
            Msg::Ping { epoch, committed, last_zxid } => {
                w.u8(TAG_PING).u32(*epoch).i64(*committed).i64(*last_zxid);
            }
        }
    }

    /// Decodes one whole message (no trailing bytes); proposals' txns are validated.
    pub fn decode(buf: &[u8]) -> Result<Msg, MsgError> {
        let mut r = Reader { buf, at: 0 };
        let msg = match r.u8()? {
            TAG_NOTIFICATION => {
                let round = r.u64()?;
                let state = r.state()?;
                let vote = Vote { leader: r.u64()?, zxid: r.i64()?, epoch: r.u32()? };
                Msg::Notification { round, state, vote, config: r.config()? }
            }
            TAG_FOLLOWER_INFO => Msg::FollowerInfo { accepted_epoch: r.u32()?, observer: r.u8()? != 0 },
            TAG_LEADER_INFO => Msg::LeaderInfo { epoch: r.u32()? },
            TAG_ACK_EPOCH => Msg::AckEpoch {
                epoch: r.u32()?,
                current_epoch: r.u32()?,
                last_zxid: r.i64()?,
                epoch_ends: r.zxids()?,
            },
            TAG_TRUNC => Msg::Trunc { epoch: r.u32()?, zxid: r.i64()? },
            TAG_SNAPSHOT => Msg::Snapshot {
                epoch: r.u32()?,
                zxid: r.i64()?,
                epoch_ends: r.zxids()?,
                image: Arc::new(r.bytes()?.to_vec()),
            },
            TAG_PROPOSAL => {
                let (epoch, prev_zxid, zxid) = (r.u32()?, r.i64()?, r.i64()?);
                let mut bytes = TxnBytes::new();
                bytes.extend_from_slice(r.bytes()?);
                match txn::access(&bytes) {
                    Ok(t) if t.zxid.to_native() == zxid => {}
                    Ok(t) => {
                        let detail = format!("txn says zxid {:#x}", t.zxid.to_native());
                        return Err(MsgError::InvalidTxn { zxid, detail });
                    }
                    Err(e) => return Err(MsgError::InvalidTxn { zxid, detail: e.to_string() }),
                }
                Msg::Proposal { epoch, prev_zxid, zxid, txn: Arc::new(bytes) }
            }
            TAG_NEW_LEADER => Msg::NewLeader { epoch: r.u32()?, zxid: r.i64()?, config: r.config()? },
            TAG_ACK_NEW_LEADER => Msg::AckNewLeader { epoch: r.u32()?, zxid: r.i64()? },
            TAG_UP_TO_DATE => Msg::UpToDate { epoch: r.u32()?, committed: r.i64()? },
            TAG_COMMIT => Msg::Commit { epoch: r.u32()?, zxid: r.i64()? },
            TAG_ACK => Msg::Ack { epoch: r.u32()?, zxid: r.i64()? },
            TAG_COMMIT_ONCE_DURABLE => Msg::CommitOnceDurable { epoch: r.u32()?, zxid: r.i64()? },
            TAG_PING => Msg::Ping { epoch: r.u32()?, committed: r.i64()?, last_zxid: r.i64()? },
            other => return Err(MsgError::UnknownTag(other)),
        };
        match buf.len() - r.at {
            0 => Ok(msg),
            n => Err(MsgError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnBody, TxnOp};

    fn proposal(zxid: i64) -> Msg {
        let t = Txn {
            session_id: 7,
            cxid: 1,
            zxid,
            time_ms: 5,
            body: TxnBody::Op(TxnOp::Delete { path: "/a".into() }),
        };
        Msg::Proposal { epoch: 1, prev_zxid: zxid - 1, zxid, txn: Arc::new(txn::encode(&t)) }
    }

    #[test]
    fn every_message_round_trips_and_every_prefix_is_rejected() {
        let vote = Vote { leader: 3, zxid: 0x1_0000_0005, epoch: 1 };
        let members = Membership::parse(
            "server.1=127.0.0.1:2888:3888;2181\nserver.2=[::1]:2889:3889:observer\nversion=200000003",
        )
        .unwrap();
        let all = vec![
            Msg::Notification {
                round: 9,
                state: ServerState::Following,
                vote,
                config: CarriedConfig::Version(7),
            },
            Msg::Notification {
                round: 9,
                state: ServerState::Looking,
                vote,
                config: CarriedConfig::Whole(members.clone()),
            },
            Msg::FollowerInfo { accepted_epoch: 4, observer: true },
            Msg::LeaderInfo { epoch: 5 },
            Msg::AckEpoch { epoch: 5, current_epoch: 4, last_zxid: 77, epoch_ends: vec![3, 0x1_0000_0002] },
            Msg::Trunc { epoch: 5, zxid: 12 },
            Msg::Snapshot { epoch: 5, zxid: 12, epoch_ends: vec![12], image: Arc::new(vec![1, 2, 3]) },
            proposal(0x5_0000_0001),
            Msg::NewLeader { epoch: 5, zxid: 12, config: CarriedConfig::Version(0x1_0000_0000) },
            Msg::NewLeader { epoch: 5, zxid: 12, config: CarriedConfig::Whole(members) },
            Msg::AckNewLeader { epoch: 5, zxid: 12 },
            Msg::UpToDate { epoch: 5, committed: 12 },
            Msg::Commit { epoch: 5, zxid: 13 },
            Msg::Ack { epoch: 5, zxid: 13 },
            Msg::CommitOnceDurable { epoch: 5, zxid: 13 },
            Msg::Ping { epoch: 5, committed: 13, last_zxid: 14 },
        ];
        for m in all {
            let mut buf = Vec::new();
            m.encode(&mut buf);
            assert_eq!(Msg::decode(&buf).unwrap(), m);
            for cut in 0..buf.len() {
                assert!(Msg::decode(&buf[..cut]).is_err(), "{m:?} cut at {cut}");
            }
            buf.push(0);
            assert_eq!(Msg::decode(&buf), Err(MsgError::Trailing(1)));
        }
    }

    #[test]
    fn a_proposal_whose_txn_names_another_zxid_is_rejected() {
        let mut buf = Vec::new();
        if let Msg::Proposal { txn, .. } = proposal(9) {
            Msg::Proposal { epoch: 1, prev_zxid: 7, zxid: 8, txn }.encode(&mut buf);
        }
        assert!(matches!(Msg::decode(&buf), Err(MsgError::InvalidTxn { zxid: 8, .. })));
        assert_eq!(Msg::decode(&[99]), Err(MsgError::UnknownTag(99)));
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let v = |epoch, zxid, leader| Vote { leader, zxid, epoch };
        assert!(v(2, 1, 1).beats(&v(1, 100, 9)));
        assert!(v(1, 5, 1).beats(&v(1, 4, 9)));
        assert!(v(1, 5, 2).beats(&v(1, 5, 1)));
        assert!(!v(1, 5, 1).beats(&v(1, 5, 1)));
    }
}
