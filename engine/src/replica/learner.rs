//! A learner's per-connection FIFOs for client traffic relayed to its leader.
//!
//! In: a relayed request going out ([`LearnerQueues::awaiting`]), a local read arriving
//! behind one, the leader's reply or close for a connection. Out: the items at the front of a
//! connection's queue that may go now ([`LearnerQueues::pop_ready`]).
//! Invariants: per connection, replies and reads leave in request order; a reply leaves only
//! once the learner applied the txn it answers (a session sees its own writes); a read never
//! overtakes a pending relayed request of its connection. Sessions used since the last touch
//! are remembered for the leader (in id order, so runs replay identically).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::conn::ClientConn;
use crate::proto::Id;

/// One queued item of a learner's client connection (kept in request order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// A relayed request whose reply has not come back yet.
    Awaiting,
    /// A reply from the leader, released once the learner applied `zxid`; `connect` marks a
    /// session creation (the connection is attached to the session on release).
    Reply { zxid: i64, frame: Vec<u8>, connect: bool },
    /// A local read that arrived behind a relayed request.
    Read(Vec<u8>),
    /// Close the connection (the leader closed the session).
    Close,
}

/// A learner's per-connection FIFOs and the sessions to touch on the leader.
#[derive(Debug, Default)]
pub struct LearnerQueues {
    queues: BTreeMap<ClientConn, VecDeque<Queued>>,
    /// Client IP, and the ids the transport authenticated, of connections waiting for a new
    /// session.
    connecting: BTreeMap<ClientConn, (String, Vec<Id>)>,
    touched: BTreeSet<i64>,
}

impl LearnerQueues {
    /// `conn` relayed a request; its reply takes this place in the queue.
    pub fn awaiting(&mut self, conn: ClientConn) {
        self.queues.entry(conn).or_default().push_back(Queued::Awaiting);
    }

    /// `conn` asked the leader for a new session (from `client_ip`, with the ids its
    /// transport authenticated).
    pub fn connecting(&mut self, conn: ClientConn, client_ip: String, authenticated: Vec<Id>) {
        self.connecting.insert(conn, (client_ip, authenticated));
        self.awaiting(conn);
    }

    /// The client IP and transport ids of a connection whose new session the leader just
    /// answered.
    pub fn connected(&mut self, conn: ClientConn) -> Option<(String, Vec<Id>)> {
        self.connecting.remove(&conn)
    }

    /// Queues a local read behind `conn`'s pending items; gives it back when nothing is
    /// pending (it may run at once).
    pub fn read_behind(&mut self, conn: ClientConn, frame: Vec<u8>) -> Option<Vec<u8>> {
        match self.queues.get_mut(&conn) {
            Some(q) => {
                q.push_back(Queued::Read(frame));
                None
            }
            None => Some(frame),
        }
    }

    /// Fills the oldest awaiting slot of `conn` with the leader's reply.
    pub fn reply(&mut self, conn: ClientConn, zxid: i64, frame: Vec<u8>) {
        let connect = self.connecting.contains_key(&conn);
        if let Some(slot) =
            self.queues.get_mut(&conn).and_then(|q| q.iter_mut().find(|i| matches!(i, Queued::Awaiting)))
        {
            *slot = Queued::Reply { zxid, frame, connect };
        }
    }

    /// The leader closed `conn`'s session: close it after its earlier items.
    pub fn close(&mut self, conn: ClientConn) {
        if let Some(q) = self.queues.get_mut(&conn) {
            q.push_back(Queued::Close);
        }
    }

    /// The front item of `conn`'s queue if it may go now that `applied` is applied; an
    /// emptied queue is removed (later reads run at once).
    pub fn pop_ready(&mut self, conn: ClientConn, applied: i64) -> Option<Queued> {
        let q = self.queues.get_mut(&conn)?;
        let ready = match q.front() {
            Some(Queued::Reply { zxid, .. }) => *zxid <= applied,
            Some(Queued::Read(_)) | Some(Queued::Close) => true,
            Some(Queued::Awaiting) => false,
            None => {
                self.queues.remove(&conn);
                return None;
            }
        };
        if ready {
            q.pop_front()
        } else {
            None
        }
    }

    /// Connections with queued items, in id order.
    pub fn queued(&self) -> Vec<ClientConn> {
        self.queues.keys().copied().collect()
    }

    /// The connection is gone: its queue and pending session creation go with it.
    pub fn forget(&mut self, conn: ClientConn) {
        self.queues.remove(&conn);
        self.connecting.remove(&conn);
    }

    /// A session was used (the leader is told at the next tick).
    pub fn touch(&mut self, session_id: i64) {
        self.touched.insert(session_id);
    }

    /// Sessions used since the last call, in id order.
    pub fn take_touched(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }
}
