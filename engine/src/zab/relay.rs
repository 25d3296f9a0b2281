//! Client traffic a learner relays to its leader, and the leader's answers (the part of
//! Apache's Learner/LearnerHandler packets that is not the ZAB protocol itself: REQUEST,
//! REVALIDATE/session creation, PING session touches).
//!
//! A learner names each of its client connections by a `token` (its [`ClientConn`]). Writes,
//! `sync` and session creation are forwarded; the leader runs them for a stand-in
//! connection and answers with the reply frame and the zxid the learner must have applied
//! before releasing it. Encoding: as [`super::msg`] (tag byte, little-endian fields).

use super::msg::{MsgError, Reader, Writer};
use crate::conn::ClientConn;

/// One relayed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relay {
    /// Learner -> leader: a client request frame (payload after the length prefix) of a
    /// session, with the ACL ids its connection authenticated as (`(scheme, id)`).
    Forward {
        token: ClientConn,
        session_id: i64,
        ids: Vec<(String, String)>,
        client_ip: String,
        frame: Vec<u8>,
    },
    /// Learner -> leader: a ConnectRequest (jute bytes) asking for a new session. A learner
    /// of an Apache leader ([`crate::replica::Node::follow_apache_leaders`]) fills in the
    /// session id and the negotiated timeout it chose (Apache's learner picks them).
    CreateSession { token: ClientConn, client_ip: String, request: Vec<u8> },
    /// Leader -> learner: the reply frame for `token`, to release once `zxid` is applied.
    Reply { token: ClientConn, zxid: i64, frame: Vec<u8> },
    /// Leader -> learner: close `token`'s connection after its earlier replies.
    Close { token: ClientConn },
    /// Learner -> leader: `token`'s client went away.
    Gone { token: ClientConn },
    /// Learner of an Apache leader -> its transport: a client reconnects with session
    /// `session_id` (its password checked here), asking `timeout_ms`; `read_only_byte`: its
    /// ConnectRequest carried the readOnly byte. Apache's leader answers REVALIDATE (the
    /// session is alive, and its requests now come through this learner); the transport
    /// gives the node the ConnectResponse as a [`Relay::Reply`] (and a [`Relay::Close`] when
    /// the session is not valid).
    Revalidate { token: ClientConn, session_id: i64, timeout_ms: i32, read_only_byte: bool },
    /// Learner -> leader: sessions active since the last touch (keeps them alive), each with
    /// its timeout (an Apache leader renews a session's deadline by the timeout it is sent).
    Touch { sessions: Vec<(i64, i32)> },
}

const TAG_FORWARD: u8 = 1;
const TAG_CREATE_SESSION: u8 = 2;
const TAG_REPLY: u8 = 3;
const TAG_CLOSE: u8 = 4;
const TAG_GONE: u8 = 5;
const TAG_TOUCH: u8 = 6;
const TAG_REVALIDATE: u8 = 7;

impl Writer<'_> {
    fn client(&mut self, c: ClientConn) -> &mut Self {
        self.u32(c.core).u64(c.local)
    }
}

impl Reader<'_> {
    fn client(&mut self) -> Result<ClientConn, MsgError> {
        Ok(ClientConn { core: self.u32()?, local: self.u64()? })
    }
}

fn string(r: &mut Reader<'_>) -> Result<String, MsgError> {
    let at = r.at;
    String::from_utf8(r.bytes()?.to_vec()).map_err(|_| MsgError::Truncated(at))
}

impl Relay {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        match self {
            Relay::Forward { token, session_id, ids, client_ip, frame } => {
                w.u8(TAG_FORWARD).client(*token).i64(*session_id).u32(ids.len() as u32);
                for (scheme, id) in ids {
                    w.bytes(scheme.as_bytes()).bytes(id.as_bytes());
                }
                w.bytes(client_ip.as_bytes()).bytes(frame);
            }
            Relay::CreateSession { token, client_ip, request } => {
                w.u8(TAG_CREATE_SESSION).client(*token).bytes(client_ip.as_bytes()).bytes(request);
            }
            Relay::Reply { token, zxid, frame } => {
                w.u8(TAG_REPLY).client(*token).i64(*zxid).bytes(frame);
            }
            Relay::Close { token } => {
                w.u8(TAG_CLOSE).client(*token);
            }
            Relay::Gone { token } => {
                w.u8(TAG_GONE).client(*token);
            }
            Relay::Revalidate { token, session_id, timeout_ms, read_only_byte } => {
                w.u8(TAG_REVALIDATE)
                    .client(*token)
                    .i64(*session_id)
                    .u32(*timeout_ms as u32)
                    .u8(*read_only_byte as u8);
            }
            Relay::Touch { sessions } => {
                w.u8(TAG_TOUCH).u32(sessions.len() as u32);
                for (id, timeout_ms) in sessions {
                    w.i64(*id).u32(*timeout_ms as u32);
                }
            }
        }
    }

    /// Decodes one whole relay message.
    pub fn decode(buf: &[u8]) -> Result<Relay, MsgError> {
        let mut r = Reader { buf, at: 0 };
        let relay = match r.u8()? {
            TAG_FORWARD => {
                let (token, session_id) = (r.client()?, r.i64()?);
                let count = r.u32()? as usize;
                // Each id takes at least 8 bytes: a larger count is a truncated message.
                if count > (buf.len() - r.at) / 8 {
                    return Err(MsgError::Truncated(r.at));
                }
                let mut ids = Vec::with_capacity(count);
                for _ in 0..count {
                    ids.push((string(&mut r)?, string(&mut r)?));
                }
                let client_ip = string(&mut r)?;
                Relay::Forward { token, session_id, ids, client_ip, frame: r.bytes()?.to_vec() }
            }
            TAG_CREATE_SESSION => Relay::CreateSession {
                token: r.client()?,
                client_ip: string(&mut r)?,
                request: r.bytes()?.to_vec(),
            },
            TAG_REPLY => Relay::Reply { token: r.client()?, zxid: r.i64()?, frame: r.bytes()?.to_vec() },
            TAG_CLOSE => Relay::Close { token: r.client()? },
            TAG_GONE => Relay::Gone { token: r.client()? },
            TAG_REVALIDATE => Relay::Revalidate {
                token: r.client()?,
                session_id: r.i64()?,
                timeout_ms: r.u32()? as i32,
                read_only_byte: r.u8()? != 0,
            },
            TAG_TOUCH => {
                let count = r.u32()? as usize;
                // Each touch takes 12 bytes: a larger count is a truncated message.
                if count > (buf.len() - r.at) / 12 {
                    return Err(MsgError::Truncated(r.at));
                }
                let mut sessions = Vec::with_capacity(count);
                for _ in 0..count {
                    sessions.push((r.i64()?, r.u32()? as i32));
                }
                Relay::Touch { sessions }
            }
            other => return Err(MsgError::UnknownTag(other)),
        };
        match buf.len() - r.at {
            0 => Ok(relay),
            n => Err(MsgError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relay_round_trips_and_every_prefix_is_rejected() {
        let all = vec![
            Relay::Forward {
                token: ClientConn { core: 1, local: 7 },
                session_id: -3,
                ids: vec![("digest".into(), "bob:x".into()), ("ip".into(), "127.0.0.1".into())],
                client_ip: "127.0.0.1".into(),
                frame: vec![1, 2, 3],
            },
            Relay::CreateSession {
                token: ClientConn { core: 1, local: 9 },
                client_ip: "::1".into(),
                request: vec![0; 20],
            },
            Relay::Reply { token: ClientConn { core: 1, local: 9 }, zxid: 0x5_0000_0001, frame: vec![4, 5] },
            Relay::Close { token: ClientConn { core: 1, local: 9 } },
            Relay::Gone { token: ClientConn { core: 1, local: 1 } },
            Relay::Touch { sessions: vec![(1, 30_000), (2, 4_000), (3, -1)] },
            Relay::Revalidate {
                token: ClientConn { core: 0, local: 3 },
                session_id: 0x0100_0000_0000_0002,
                timeout_ms: 4_000,
                read_only_byte: true,
            },
        ];
        for m in all {
            let mut buf = Vec::new();
            m.encode(&mut buf);
            assert_eq!(Relay::decode(&buf).unwrap(), m);
            for cut in 0..buf.len() {
                assert!(Relay::decode(&buf[..cut]).is_err(), "{m:?} cut at {cut}");
            }
        }
    }
}
