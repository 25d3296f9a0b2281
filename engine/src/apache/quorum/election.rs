//! The election port of Apache 3.8 (`QuorumCnxManager`, `FastLeaderElection`).
//!
//! A connection opens with the initial message of the dialling server: `long protocol
//! version` (3.8 sends [`PROTOCOL_VERSION_V1`] = -65536 unless multi-address is on, then
//! [`PROTOCOL_VERSION_V2`]), `long sid`, `int length`, the election address `host:port` (V2:
//! several joined by `|`). A non-negative first long is a pre-3.5 server's bare sid. Only the
//! connection dialled by the higher sid survives: a server closes a connection from a lower sid
//! and dials it instead. Then both directions carry frames: `int length` (1..=512 KiB,
//! `PACKETMAXSIZE`) and that many bytes, each one notification:
//!
//! ```text
//! int state (0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING)   long leader   long zxid
//! long electionEpoch (the round)   long peerEpoch   int version (0x2)
//! int config length   config bytes (QuorumVerifier.toString(): "server.N=...\nversion=<hex>")
//! ```
//! Apache still reads the 28-byte (no peerEpoch: taken from the zxid) and 40-byte (no
//! version) forms; so does [`Notification::decode`].

use super::{be_i32, be_i64, WireError};

/// Initial message version of 3.8 without multi-address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// Initial message version with a `|`-joined address list.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Largest frame (`QuorumCnxManager.PACKETMAXSIZE`).
pub const FRAME_BYTES_MAX: usize = 512 * 1024;
/// Notification format version Apache 3.8 sends (`Notification.CURRENTVERSION`).
pub const NOTIFICATION_VERSION: i32 = 0x2;
/// Largest election address accepted in an initial message (Apache: `maxBuffer`, 4 KiB).
const ADDRESS_BYTES_MAX: usize = 4096;

/// The first bytes of an election connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub sid: u64,
    /// `host:port` of the sender's election port (empty from a pre-3.5 server).
    pub election_address: String,
}

impl InitialMessage {
    /// The V1 form 3.8 sends.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROTOCOL_VERSION_V1.to_be_bytes());
        out.extend_from_slice(&(self.sid as i64).to_be_bytes());
        out.extend_from_slice(&(self.election_address.len() as i32).to_be_bytes());
        out.extend_from_slice(self.election_address.as_bytes());
    }

    /// The message at the start of `bytes` and its length, `None` while incomplete.
    pub fn decode(bytes: &[u8]) -> Result<Option<(InitialMessage, usize)>, WireError> {
        let Some(first) = be_i64(bytes, 0) else { return Ok(None) };
        if first >= 0 {
            return Ok(Some((InitialMessage { sid: first as u64, election_address: String::new() }, 8)));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(WireError::new(format!("unrecognized election protocol version {first}")));
        }
        let (Some(sid), Some(length)) = (be_i64(bytes, 8), be_i32(bytes, 16)) else { return Ok(None) };
        if sid < 0 || length < 0 || length as usize > ADDRESS_BYTES_MAX {
            return Err(WireError::new(format!("initial message: sid {sid}, address length {length}")));
        }
        let end = 20 + length as usize;
        let Some(address) = bytes.get(20..end) else { return Ok(None) };
        let election_address = String::from_utf8(address.to_vec())
            .map_err(|_| WireError::new("initial message: the address is not UTF-8"))?;
        Ok(Some((InitialMessage { sid: sid as u64, election_address }, end)))
    }
}

/// Appends one frame (length, then `payload`).
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The payload range of the frame at the start of `bytes` and the frame's length, `None` while
/// incomplete.
pub fn frame_at(bytes: &[u8]) -> Result<Option<(std::ops::Range<usize>, usize)>, WireError> {
    let Some(length) = be_i32(bytes, 0) else { return Ok(None) };
    if length <= 0 || length as usize > FRAME_BYTES_MAX {
        return Err(WireError::new(format!("election frame length {length}")));
    }
    let end = 4 + length as usize;
    Ok((bytes.len() >= end).then_some((4..end, end)))
}

/// One FastLeaderElection notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// 0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING.
    pub state: i32,
    /// The proposed (or followed) leader; `i64::MIN` from an observer.
    pub leader: i64,
    pub zxid: i64,
    /// The sender's election round (`logicalclock`).
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub version: i32,
    /// The sender's quorum config text (version 0x2 and later).
    pub config: Vec<u8>,
}

impl Notification {
    /// The 3.8 layout (version 0x2, config included).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(44 + self.config.len());
        out.extend_from_slice(&self.state.to_be_bytes());
        out.extend_from_slice(&self.leader.to_be_bytes());
        out.extend_from_slice(&self.zxid.to_be_bytes());
        out.extend_from_slice(&self.election_epoch.to_be_bytes());
        out.extend_from_slice(&self.peer_epoch.to_be_bytes());
        out.extend_from_slice(&NOTIFICATION_VERSION.to_be_bytes());
        out.extend_from_slice(&(self.config.len() as i32).to_be_bytes());
        out.extend_from_slice(&self.config);
        out
    }

    /// One frame's payload, in any form Apache 3.8 reads (28, 40, or 44+ bytes).
    pub fn decode(bytes: &[u8]) -> Result<Notification, WireError> {
        let short = || WireError::new(format!("notification of {} bytes", bytes.len()));
        if bytes.len() < 28 {
            return Err(short());
        }
        let state = be_i32(bytes, 0).ok_or_else(short)?;
        let leader = be_i64(bytes, 4).ok_or_else(short)?;
        let zxid = be_i64(bytes, 12).ok_or_else(short)?;
        let election_epoch = be_i64(bytes, 20).ok_or_else(short)?;
        if bytes.len() == 28 {
            let peer_epoch = zxid >> 32;
            return Ok(Notification {
                state,
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                version: 0,
                config: vec![],
            });
        }
        let peer_epoch = be_i64(bytes, 28).ok_or_else(short)?;
        let version = if bytes.len() == 40 { 0 } else { be_i32(bytes, 36).ok_or_else(short)? };
        let config = if version > 0x1 {
            let length = be_i32(bytes, 40).ok_or_else(short)?;
            if length < 0 {
                return Err(WireError::new(format!("notification config length {length}")));
            }
            bytes.get(44..44 + length as usize).ok_or_else(short)?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Notification { state, leader, zxid, election_epoch, peer_epoch, version, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_message_is_version_sid_and_address_as_start_connection_writes_them() {
        let mut bytes = Vec::new();
        InitialMessage { sid: 3, election_address: "127.0.0.1:3888".into() }.encode(&mut bytes);
        let mut expected = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00]; // -65536
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 14]);
        expected.extend_from_slice(b"127.0.0.1:3888");
        assert_eq!(bytes, expected);
        for cut in 0..bytes.len() {
            assert_eq!(InitialMessage::decode(&bytes[..cut]), Ok(None), "incomplete at {cut}");
        }
        let (message, used) = InitialMessage::decode(&bytes).unwrap().unwrap();
        assert_eq!((message.sid, message.election_address.as_str(), used), (3, "127.0.0.1:3888", 34));
        // A pre-3.5 server sends only its sid.
        assert_eq!(InitialMessage::decode(&7i64.to_be_bytes()).unwrap().unwrap().0.sid, 7);
        assert!(InitialMessage::decode(&(-5i64).to_be_bytes()).is_err());
    }

    #[test]
    fn notification_has_build_msg_layout_and_old_forms_still_decode() {
        let n = Notification {
            state: 2,
            leader: 1,
            zxid: 0x1_0000_0005,
            election_epoch: 4,
            peer_epoch: 1,
            version: NOTIFICATION_VERSION,
            config: b"server.1=127.0.0.1:2888:3888:participant\nversion=0".to_vec(),
        };
        let bytes = n.encode();
        // FastLeaderElection.buildMsg: int, 4 longs, int version, int length, config.
        assert_eq!(bytes.len(), 44 + n.config.len());
        assert_eq!(&bytes[0..4], &[0, 0, 0, 2]);
        assert_eq!(&bytes[4..12], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&bytes[12..20], &[0, 0, 0, 1, 0, 0, 0, 5]);
        assert_eq!(&bytes[36..40], &[0, 0, 0, 2]);
        assert_eq!(Notification::decode(&bytes).unwrap(), n);
        // The 40-byte form (3.4 before version) and the 28-byte form (no peer epoch).
        let forty = Notification::decode(&bytes[..40]).unwrap();
        assert_eq!((forty.version, forty.peer_epoch, forty.config.len()), (0, 1, 0));
        let twenty_eight = Notification::decode(&bytes[..28]).unwrap();
        assert_eq!(twenty_eight.peer_epoch, 1, "the epoch of the zxid");
        assert!(Notification::decode(&bytes[..20]).is_err());
        let mut framed = Vec::new();
        encode_frame(&bytes, &mut framed);
        assert_eq!(frame_at(&framed[..10]), Ok(None));
        assert_eq!(frame_at(&framed).unwrap().unwrap(), (4..4 + bytes.len(), 4 + bytes.len()));
        assert!(frame_at(&[0xff, 0, 0, 0]).is_err(), "a negative length closes the connection");
    }
}
