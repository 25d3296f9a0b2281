//! Apache ZooKeeper 3.8's server-to-server protocol, sans-IO: what a ringkeeper member needs to
//! take part in a running Apache ensemble (`ringkeeper.quorum.protocol=apache`). Wire layouts
//! in `QUORUM.md` beside this module.
//!
//! - [`election`]: the election port (`QuorumCnxManager`): the initial message that opens a
//!   connection, the length-prefixed frames, and FastLeaderElection's notification.
//! - [`packet`]: the peer port (`Leader` / `Learner` / `LearnerHandler`): the `QuorumPacket`
//!   stream, LEARNERINFO, the state streamed after SNAP, PING session touches.
//! - [`bridge`]: translates between Apache's messages and ringkeeper's own [`crate::zab::Msg`],
//!   so the existing [`crate::zab::Peer`] and [`crate::replica::Node`] run a member of an Apache
//!   ensemble unchanged (as an observer, a follower, or the leader of Apache learners).
//! - [`learner_handler`]: the leader's side of the learner protocol (`LearnerHandler`), one
//!   per Apache learner connected while this member leads.
//!
//! Who uses it: `server/src/apache_quorum.rs` (sockets). In: byte streams of the election and
//! peer connections, the peer's messages. Out: typed messages, bytes to write, or a
//! [`WireError`] (a connection that sends one is closed; nothing unchecked is used).

pub mod bridge;
pub mod election;
pub mod learner_handler;
pub mod packet;

/// Why bytes from an Apache server are not a usable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

impl WireError {
    pub fn new(detail: impl Into<String>) -> WireError {
        WireError(detail.into())
    }
}

/// Reads a big-endian i32 at `at`, if the bytes are there.
fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    bytes.get(at..at + 4).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
}

/// Reads a big-endian i64 at `at`, if the bytes are there.
fn be_i64(bytes: &[u8], at: usize) -> Option<i64> {
    bytes.get(at..at + 8).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
}
