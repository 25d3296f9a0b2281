//! What the request processor does as one replica of an ensemble (beside [`super`]'s
//! standalone path, which the leader keeps using for its own and forwarded requests).
//!
//! In: committed txns from the leader (learners), sessions that exist ensemble-wide, epoch
//! changes. Out: the same [`Output`]s as the standalone path (watch events, closes).
//! - A learner applies each committed txn with [`Processor::apply_committed`]: tree and session
//!   table change exactly as on the leader, watches of its own clients fire, and clients of a
//!   session the leader closed are disconnected.
//! - Writes, session creation/closing and `sync` are forwarded to the leader
//!   ([`is_forwarded`]); the leader runs them for a stand-in connection made with
//!   [`Processor::attach`], and a learner attaches its client's connection the same way once
//!   the leader created its session.
//! - Only the leader expires sessions and reaps containers ([`Processor::set_owns_expiry`]);
//!   learners relay their clients' activity to it.
//!
//! Invariant: a learner's tree only ever holds committed txns, applied in zxid order.

use super::{decode_request, ConnId, Connection, Output, Processor, Request};
use crate::acl;
use crate::proto::{Id, Jute, JuteReader, OpCode, RequestHeader};
use crate::txn::{ArchivedTxn, ArchivedTxnBody, OpResult, Txn, TxnBody, TxnOp};
use crate::zab::make_zxid;

/// Requests a learner sends to its leader: every op that becomes a txn
/// ([`OpCode::is_write`]), and `sync` (answered once the learner has applied what the leader
/// had when it saw the sync).
pub fn is_forwarded(op: OpCode) -> bool {
    op.is_write() || op == OpCode::Sync
}

/// What a write reply is built from besides the apply results ([`super::reply::write_reply`]):
/// the request's xid and opcode, and for a multi the opcodes of its ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteShape {
    pub xid: i32,
    pub op: OpCode,
    pub sub_ops: Vec<OpCode>,
    pub is_multi: bool,
}

impl WriteShape {
    /// The shape of a request frame (payload after the length prefix); `None` when its header
    /// does not decode or names no opcode. A body that does not decode gives no sub-ops (the
    /// leader answers such a request with an error txn, whose reply needs none).
    pub fn of(frame: &[u8]) -> Option<WriteShape> {
        let mut r = JuteReader::new(frame);
        let header = RequestHeader::decode(&mut r).ok()?;
        let op = OpCode::from_i32(header.op)?;
        let (sub_ops, is_multi) = match decode_request(op, &mut r) {
            Ok(Request::Write { ops, is_multi: true }) => (ops.iter().map(|w| w.opcode()).collect(), true),
            _ => (Vec::new(), op == OpCode::Multi),
        };
        Some(WriteShape { xid: header.xid, op, sub_ops, is_multi })
    }

    /// The reply frame to this request once its txn `zxid` applied with `results`.
    pub fn reply(&self, zxid: i64, results: &[OpResult]) -> Vec<u8> {
        super::reply::write_reply(self.xid, zxid, self.op, &self.sub_ops, results, self.is_multi)
    }
}

impl Processor {
    /// Leader of Apache learners: the createSession an Apache learner forwarded, with the id
    /// and the (negotiated) timeout it chose (`LearnerSessionTracker`; Apache's leader logs
    /// them as they come). Nothing without a zxid left.
    pub fn create_learner_session(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.txns_allowed() == 0 {
            return out;
        }
        let zxid = self.next_zxid();
        let txn =
            Txn { session_id, cxid: 0, zxid, time_ms: now_ms, body: TxnBody::CreateSession { timeout_ms } };
        self.commit(&txn, now_ms, &mut out);
        tracing::info!(session_id = %format_args!("0x{session_id:x}"), timeout_ms, "Established session of an Apache learner");
        out
    }

    /// Leader of Apache learners: an error txn (`ErrorTxn`, the code `err`) for a forwarded
    /// request it refused without a txn, as Apache's `PrepRequestProcessor` logs one: the
    /// learner answers its client from the committed txn carrying its session id and cxid.
    pub fn learner_error_txn(&mut self, session_id: i64, cxid: i32, err: i32, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.txns_allowed() == 0 {
            return out;
        }
        let zxid = self.next_zxid();
        let body = TxnBody::Op(TxnOp::Error { code: err });
        self.commit(&Txn { session_id, cxid, zxid, time_ms: now_ms, body }, now_ms, &mut out);
        out
    }

    /// Registers `conn` as a connection of an existing session (a leader's stand-in for a
    /// learner's client, or a learner's client once the leader created its session), with the
    /// ACL ids it authenticated as.
    pub fn attach(&mut self, conn: ConnId, session_id: i64, ids: Vec<Id>, client_ip: &str, now_ms: i64) {
        let ids = if ids.is_empty() { acl::connection_ids(client_ip) } else { ids };
        match self.conns.get_mut(&conn) {
            Some(c) => {
                c.ids = ids;
                c.session_id = session_id;
            }
            None => {
                self.conns.insert(
                    conn,
                    Connection {
                        session_id,
                        ids,
                        client_ip: client_ip.to_string(),
                        remote: client_ip.to_string(),
                        received: 0,
                        sent: 0,
                        last_cxid: 0,
                        last_zxid: 0,
                        last_op: None,
                        connected_at_ms: now_ms,
                        sasl: None,
                    },
                );
            }
        }
        self.session_conn.insert(session_id, conn);
    }

    /// Applies a txn the leader committed (learners, in zxid order): watch events for this
    /// server's clients, and closes of connections whose session the txn closed; also gives
    /// the txn's results (a learner of an Apache leader builds its client's reply from them).
    pub fn apply_committed(&mut self, txn: &ArchivedTxn, now_ms: i64) -> (Vec<Output>, Vec<OpResult>) {
        let mut out = Vec::new();
        let zxid = txn.zxid.to_native();
        let applied = self.apply_archived(txn, now_ms);
        self.notify(&applied.changes, zxid, &mut out);
        if let ArchivedTxnBody::CloseSession { .. } = &txn.body {
            if let Some(conn) = self.session_conn.get(&txn.session_id.to_native()).copied() {
                self.close_conn(conn, &mut out);
            }
        }
        (out, applied.results)
    }

    /// A learner of an Apache leader starts a session for a client itself (Apache's learner
    /// picks the id, its leader only logs it): a new id and the timeout negotiated within
    /// the configured bounds.
    pub fn new_session_terms(&mut self, requested_timeout_ms: i32) -> (i64, i32) {
        (self.sessions.allocate_id(), self.negotiated_timeout(requested_timeout_ms))
    }

    /// The session timeout granted for `requested_timeout_ms` (within the configured bounds).
    pub fn negotiated_timeout(&self, requested_timeout_ms: i32) -> i32 {
        requested_timeout_ms.clamp(self.config.min_session_timeout_ms, self.config.max_session_timeout_ms)
    }

    /// Enters `epoch` (leader established, or learner up to date): the last zxid becomes
    /// `epoch << 32` unless already past it, so the leader's next txn is `epoch << 32 | 1`
    /// and every client's last seen zxid stays at or below any serving replica's.
    pub fn begin_epoch(&mut self, epoch: u32) {
        let start = make_zxid(epoch, 0);
        if self.tree.last_processed_zxid < start {
            self.tree.last_processed_zxid = start;
        }
    }

    /// Whether this replica expires sessions and reaps containers (the leader does; a new
    /// leader renews every session's deadline first).
    pub fn set_owns_expiry(&mut self, owns: bool, now_ms: i64) {
        if owns && !self.owns_expiry {
            self.sessions.touch_all(now_ms);
        }
        self.owns_expiry = owns;
    }

    /// The session a connection belongs to (0 while it has none).
    pub fn session_of(&self, conn: ConnId) -> i64 {
        self.conns.get(&conn).map(|c| c.session_id).unwrap_or(0)
    }

    /// The ACL ids a connection authenticated as.
    pub fn ids_of(&self, conn: ConnId) -> Vec<Id> {
        self.conns.get(&conn).map(|c| c.ids.clone()).unwrap_or_default()
    }
}
