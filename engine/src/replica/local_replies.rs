//! Replies a learner of an Apache leader builds itself (Apache's `FinalRequestProcessor` on a
//! follower or observer). An Apache leader sends its learners only txns, never reply frames:
//! the learner that forwarded a client's request answers it when it applies the committed
//! txn carrying that client's session id and cxid (an `error` txn for a request that
//! failed), and answers a new session when it applies that session's createSession txn.
//!
//! In: the requests forwarded ([`LocalReplies::expect_write`], [`LocalReplies::expect_session`]),
//! each committed txn with its apply results. Out: the reply frame of the client connection
//! whose request the txn answers ([`LocalReplies::reply_to`]); the learner queue then releases
//! it in request order, after the txn applied.
//! Invariant: at most one reply per forwarded request; entries of a connection that closed are
//! forgotten (a txn for them answers nobody).

use std::collections::BTreeMap;

use crate::conn::ClientConn;
use crate::proto::ConnectResponse;
use crate::request::record_frame;
use crate::request::replica::WriteShape;
use crate::txn::{ArchivedTxn, ArchivedTxnBody, OpResult};

/// A forwarded request waiting for its txn.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaited {
    /// A write (or closeSession): the reply is built from the txn's results.
    Write { conn: ClientConn, shape: WriteShape },
    /// A new session: the ConnectResponse goes out once its createSession txn applied;
    /// `sent_read_only`: the client sent the readOnly byte (Apache answers `false` then).
    Session { conn: ClientConn, passwd: Vec<u8>, sent_read_only: bool },
}

/// Forwarded requests by (session id, cxid): what a committed txn's header names.
#[derive(Debug, Default)]
pub struct LocalReplies {
    awaited: BTreeMap<(i64, i32), Awaited>,
}

impl LocalReplies {
    /// `conn` forwarded the request `frame` of `session_id`; false when its header does not
    /// decode (nothing is awaited: the caller does not forward it).
    pub fn expect_write(&mut self, conn: ClientConn, session_id: i64, frame: &[u8]) -> bool {
        let Some(shape) = WriteShape::of(frame) else { return false };
        self.awaited.insert((session_id, shape.xid), Awaited::Write { conn, shape });
        true
    }

    /// `conn` asked for session `session_id` (created with cxid 0, as Apache's learner does).
    pub fn expect_session(
        &mut self,
        conn: ClientConn,
        session_id: i64,
        passwd: Vec<u8>,
        sent_read_only: bool,
    ) {
        self.awaited.insert((session_id, 0), Awaited::Session { conn, passwd, sent_read_only });
    }

    /// The reply a committed txn answers, with the connection it goes to.
    pub fn reply_to(&mut self, txn: &ArchivedTxn, results: &[OpResult]) -> Option<(ClientConn, Vec<u8>)> {
        let zxid = txn.zxid.to_native();
        let awaited = self.awaited.remove(&(txn.session_id.to_native(), txn.cxid.to_native()))?;
        Some(match (awaited, &txn.body) {
            (
                Awaited::Session { conn, passwd, sent_read_only },
                ArchivedTxnBody::CreateSession { timeout_ms },
            ) => {
                let response = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: timeout_ms.to_native(),
                    session_id: txn.session_id.to_native(),
                    passwd,
                    read_only: sent_read_only.then_some(false),
                };
                (conn, record_frame(&response))
            }
            (Awaited::Session { conn, sent_read_only, .. }, _) => {
                // The leader refused the session (an error txn): Apache answers an invalid
                // session (id 0), and the connection closes.
                (conn, record_frame(&ConnectResponse::invalid_session(sent_read_only.then_some(false))))
            }
            (Awaited::Write { conn, shape }, _) => (conn, shape.reply(zxid, results)),
        })
    }

    /// `conn` closed: its requests answer nobody.
    pub fn forget(&mut self, conn: ClientConn) {
        self.awaited.retain(|_, a| match a {
            Awaited::Write { conn: c, .. } | Awaited::Session { conn: c, .. } => *c != conn,
        });
    }

    /// Every connection closed (the leader changed).
    pub fn clear(&mut self) {
        self.awaited.clear();
    }

    /// Requests waiting for their txn.
    pub fn len(&self) -> usize {
        self.awaited.len()
    }

    pub fn is_empty(&self) -> bool {
        self.awaited.is_empty()
    }
}
