//! The peer port of Apache 3.8: a stream of jute `QuorumPacket`s with no outer framing
//! (`BinaryOutputArchive.writeRecord`):
//!
//! ```text
//! int type   long zxid   buffer data (int length, -1 = null)   vector<Id> authinfo (int count,
//! -1 = null; each Id: ustring scheme, ustring id)
//! ```
//! Types are `Leader`'s constants ([`kind`]). Payloads used here: FOLLOWERINFO/OBSERVERINFO
//! carry `LearnerInfo {long serverid, int protocolVersion (0x10000), long configVersion}`
//! and zxid = `makeZxid(acceptedEpoch, 0)`; LEADERINFO zxid = `makeZxid(newEpoch, 0)`, data
//! `int 0x10000`; ACKEPOCH zxid = the learner's last logged zxid, data `int currentEpoch` (-1
//! when it had accepted this epoch already); PROPOSAL and INFORM data = a txn entry
//! (`TxnHeader`, txn record, maybe `TxnDigest`); PING from the leader has no data, the
//! learner answers with the same zxid and data = its touched sessions as raw `long id, int
//! timeout` pairs. After SNAP the leader writes the state itself, not in a packet
//! (`serializeSnapshot`: sessions, ACL map, nodes, "/"), then the jute string "BenWasHere".

use super::{be_i32, be_i64, WireError};
use crate::apache::snapshot::{decode_streamed_state, ApacheSnapshot};
use crate::jute_record;
use crate::proto::{Id, Jute, JuteReader, JuteWriter};

/// Packet types (`Leader.java`).
pub mod kind {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;
}

/// The learner protocol version 3.8 speaks (ZAB 1.0: LEADERINFO / ACKEPOCH).
pub const PROTOCOL_VERSION: i32 = 0x10000;
/// The string a leader writes after the state of a SNAP.
pub const SNAP_SIGNATURE: &str = "BenWasHere";
/// Largest packet data accepted (a proposal is bounded by `jute.maxbuffer` on the leader; a
/// generous bound keeps a corrupt length from holding memory).
pub const PACKET_DATA_BYTES_MAX: usize = 64 << 20;

/// One `QuorumPacket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub kind: i32,
    pub zxid: i64,
    /// `None`: a null buffer (length -1), as most control packets carry.
    pub data: Option<Vec<u8>>,
    pub auth: Vec<Id>,
}

impl QuorumPacket {
    /// A packet with no data and no auth info.
    pub fn control(kind: i32, zxid: i64) -> QuorumPacket {
        QuorumPacket { kind, zxid, data: None, auth: Vec::new() }
    }

    pub fn with_data(kind: i32, zxid: i64, data: Vec<u8>) -> QuorumPacket {
        QuorumPacket { kind, zxid, data: Some(data), auth: Vec::new() }
    }

    /// Appends the jute encoding (an empty auth list is written as null, as Apache's `null`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = JuteWriter::new(out);
        w.write_i32(self.kind);
        w.write_i64(self.zxid);
        w.write_nullable_buffer(self.data.as_deref());
        if self.auth.is_empty() {
            w.write_i32(-1);
        } else {
            w.write_vec(&self.auth, |w, id| id.encode(w));
        }
    }

    /// The packet at the start of `bytes` and its length, `None` while incomplete.
    pub fn decode(bytes: &[u8]) -> Result<Option<(QuorumPacket, usize)>, WireError> {
        let Some(length) = packet_length(bytes)? else { return Ok(None) };
        let mut r = JuteReader::new(&bytes[..length]);
        let bad = |e| WireError::new(format!("quorum packet: {e}"));
        let kind = r.read_i32().map_err(bad)?;
        let zxid = r.read_i64().map_err(bad)?;
        let data = r.read_nullable_buffer().map_err(bad)?;
        let auth = r.read_vec(Id::decode).map_err(bad)?;
        Ok(Some((QuorumPacket { kind, zxid, data, auth }, length)))
    }

    /// The data as a big-endian int (LEADERINFO's protocol version, ACKEPOCH's epoch).
    pub fn data_i32(&self) -> Option<i32> {
        self.data.as_deref().and_then(|d| be_i32(d, 0))
    }
}

/// The length of the packet at the start of `bytes`, walking its length fields; `None` while
/// incomplete.
fn packet_length(bytes: &[u8]) -> Result<Option<usize>, WireError> {
    let Some(data_length) = be_i32(bytes, 12) else { return Ok(None) };
    let mut at = 16 + sized(data_length, "data")?;
    let Some(count) = be_i32(bytes, at) else { return Ok(None) };
    at += 4;
    if count > 1024 {
        return Err(WireError::new(format!("quorum packet with {count} auth ids")));
    }
    for _ in 0..count.max(0) * 2 {
        let Some(length) = be_i32(bytes, at) else { return Ok(None) };
        at += 4 + sized(length, "auth id")?;
    }
    Ok((bytes.len() >= at).then_some(at))
}

/// Bytes after a jute length field (-1, null, has none).
fn sized(length: i32, what: &str) -> Result<usize, WireError> {
    match length {
        -1 => Ok(0),
        n if n >= 0 && n as usize <= PACKET_DATA_BYTES_MAX => Ok(n as usize),
        n => Err(WireError::new(format!("quorum packet {what} length {n}"))),
    }
}

jute_record!(
    /// `LearnerInfo`: the data of FOLLOWERINFO and OBSERVERINFO.
    LearnerInfo { server_id: i64, protocol_version: i32, config_version: i64 }
);

/// Session touches in a PING reply (`Learner.ping`): raw pairs, no count.
pub fn encode_touches(touches: &[(i64, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(touches.len() * 12);
    for (id, timeout) in touches {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&timeout.to_be_bytes());
    }
    out
}

/// Reads touches as a leader does (`LearnerHandler`: pairs while bytes remain).
pub fn decode_touches(data: &[u8]) -> Vec<(i64, i32)> {
    (0..data.len() / 12).filter_map(|i| Some((be_i64(data, i * 12)?, be_i32(data, i * 12 + 8)?))).collect()
}

/// The end-of-SNAP signature as it appears on the wire (jute ustring: length, bytes).
fn signature_bytes() -> Vec<u8> {
    let mut out = (SNAP_SIGNATURE.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(SNAP_SIGNATURE.as_bytes());
    out
}

/// Looks for the end of the state a leader streams after SNAP in `bytes` (everything
/// received after the SNAP packet), starting the search at `from` (bytes before it were
/// searched already). The state ends where a signature follows bytes that decode as exactly
/// one state; a signature inside znode data fails that test and the search goes on.
/// `Ok(None)`: more bytes needed (resume from the returned hint, see [`SnapSearch`]).
pub fn find_streamed_state(bytes: &[u8], from: usize) -> Result<SnapSearch, WireError> {
    let signature = signature_bytes();
    let mut start = from;
    while let Some(pos) = bytes
        .get(start..)
        .and_then(|rest| rest.windows(signature.len()).position(|w| w == signature.as_slice()))
    {
        let at = start + pos;
        if let Ok(state) = decode_streamed_state(&bytes[..at]) {
            return Ok(SnapSearch::Found { state: Box::new(state), used: at + signature.len() });
        }
        start = at + 1;
    }
    Ok(SnapSearch::NeedMore { resume_at: bytes.len().saturating_sub(signature.len() - 1).max(from) })
}

/// What [`find_streamed_state`] found.
#[derive(Debug)]
pub enum SnapSearch {
    /// The state, and the bytes it and the signature took.
    Found { state: Box<ApacheSnapshot>, used: usize },
    /// Not complete yet; search again from `resume_at` once more bytes arrived.
    NeedMore { resume_at: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apache::snapshot::{encode_streamed_state, one_node_state};

    #[test]
    fn packets_have_the_jute_layout_and_are_framed_by_their_own_lengths() {
        let ping = QuorumPacket::control(kind::PING, 0x1_0000_0002);
        let mut bytes = Vec::new();
        ping.encode(&mut bytes);
        // int type, long zxid, buffer -1 (null), vector -1 (null).
        let expected: Vec<u8> = [
            &[0, 0, 0, 5][..],
            &[0, 0, 0, 1, 0, 0, 0, 2],
            &[0xff, 0xff, 0xff, 0xff],
            &[0xff, 0xff, 0xff, 0xff],
        ]
        .concat();
        assert_eq!(bytes, expected);
        let info = LearnerInfo { server_id: 4, protocol_version: PROTOCOL_VERSION, config_version: 0 };
        let with_data = QuorumPacket {
            kind: kind::OBSERVERINFO,
            zxid: 0x2_0000_0000,
            data: Some(info.to_bytes()),
            auth: vec![Id { scheme: "digest".into(), id: "u:p".into() }],
        };
        with_data.encode(&mut bytes);
        for cut in 0..bytes.len() {
            let decoded = QuorumPacket::decode(&bytes[..cut]).unwrap();
            assert!(cut >= 20 || decoded.is_none(), "incomplete at {cut}");
        }
        let (first, used) = QuorumPacket::decode(&bytes).unwrap().unwrap();
        assert_eq!((first, used), (ping, 20));
        let (second, used2) = QuorumPacket::decode(&bytes[used..]).unwrap().unwrap();
        assert_eq!(used + used2, bytes.len());
        assert_eq!(second, with_data);
        // LearnerInfo: long sid, int 0x10000, long config version (20 bytes).
        let data = second.data.unwrap();
        assert_eq!(data.len(), 20);
        assert_eq!(&data[8..12], &[0, 1, 0, 0]);
        assert!(QuorumPacket::decode(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0]).is_err());
    }

    #[test]
    fn touches_are_raw_pairs_and_a_snap_stream_ends_at_its_signature() {
        let touches = vec![(0x0100_0000_0000_0001, 30_000), (7, 4_000)];
        let data = encode_touches(&touches);
        assert_eq!(data.len(), 24);
        assert_eq!(decode_touches(&data), touches);

        // A node whose data holds the signature itself.
        let state = one_node_state((9, 30_000), "/a", signature_bytes());
        let mut stream = encode_streamed_state(&state);
        stream.extend_from_slice(&signature_bytes());
        let total = stream.len();
        QuorumPacket::control(kind::NEWLEADER, 0x1_0000_0000).encode(&mut stream);
        let mut resume = 0;
        for cut in [10, 40, total - 1] {
            match find_streamed_state(&stream[..cut], resume).unwrap() {
                SnapSearch::NeedMore { resume_at } => resume = resume_at,
                SnapSearch::Found { .. } => panic!("found in the first {cut} bytes"),
            }
        }
        let SnapSearch::Found { state: found, used } = find_streamed_state(&stream, resume).unwrap() else {
            panic!("the whole stream holds the state");
        };
        assert_eq!((*found, used), (state, total));
        let (next, _) = QuorumPacket::decode(&stream[used..]).unwrap().unwrap();
        assert_eq!(next.kind, kind::NEWLEADER);
    }
}
