//! ZAB replication as sans-IO state machines: leader election, discovery, synchronisation and
//! pipelined broadcast for an ensemble of voters and observers.
//!
//! In: [`Event`]s — a peer message, a tick, "my log is durable up to zxid Z", "the leader made
//! txn Z" — each with the current time from outside. Out: [`Action`]s — messages to send, txns
//! to append, truncate or apply, a state image to send or install, epochs to persist, role
//! changes. The server carries them out in order on io_uring; the simulator in tests/ carries
//! them out on a simulated network and disk. Nothing here does I/O or reads a clock.
//!
//! - [`msg`]: the peer messages and their byte encoding.
//! - [`peer`]: one server's replica of the protocol ([`Peer`]).
//! - [`relay`]: client requests a learner forwards to its leader, and the answers.
//! - [`membership`]: the ensemble's members as dynamic reconfiguration changes them.
//!
//! Zxids are `epoch << 32 | counter`. Within one epoch only its leader proposes, so two logs
//! holding the same zxid hold the same txn there, and every server's txns of an epoch are a
//! prefix of that leader's sequence: the synchronisation plan ([`peer`]) relies on it.

pub mod membership;
pub mod msg;
pub mod peer;
pub mod relay;

pub use membership::{Member, Membership};
pub use msg::{CarriedConfig, Msg, ServerState, Vote};
pub use peer::{
    Action, Event, LearnerCounts, Peer, PeerConfig, Recovered, RoleView, DEFAULT_HISTORY_BYTES_MAX,
};
pub use relay::Relay;

use std::sync::Arc;

use crate::txn::TxnBytes;

/// A server's id (`server.N` in zoo.cfg, `myid` in dataDir).
pub type ServerId = u64;

/// One encoded txn shared between history, the log and every follower's outbound queue.
pub type SharedTxn = Arc<TxnBytes>;

/// The epoch half of a zxid.
pub fn epoch_of(zxid: i64) -> u32 {
    ((zxid as u64) >> 32) as u32
}

/// The counter half of a zxid.
pub fn counter_of(zxid: i64) -> u32 {
    zxid as u64 as u32
}

/// The zxid with this epoch and counter.
pub fn make_zxid(epoch: u32, counter: u32) -> i64 {
    (((epoch as u64) << 32) | counter as u64) as i64
}

/// Voters needed for a quorum among `voters`.
pub fn quorum_size(voters: usize) -> usize {
    voters / 2 + 1
}
