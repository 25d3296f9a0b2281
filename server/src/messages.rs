//! Messages crossing between the network and data roles (over bounded [`crate::link`]s).
//! A connection id carries its network core in the top 16 bits, so the data role can route
//! every output back to the core that owns the socket.

use ringkeeper_engine::proto::ConnectRequest;
use ringkeeper_engine::request::ConnId;

/// Network role → data role.
#[derive(Debug)]
pub enum ToData {
    /// A decoded ConnectRequest on a new connection.
    Connect { conn: ConnId, client_ip: String, remote: String, request: ConnectRequest },
    /// One request frame (payload after the length prefix).
    Request { conn: ConnId, frame: Vec<u8> },
    /// The socket closed or failed.
    Disconnected { conn: ConnId },
    /// A four-letter word on a fresh connection.
    FourLetter { conn: ConnId, word: [u8; 4] },
}

/// Data role → network role.
#[derive(Debug)]
pub enum ToNet {
    /// Bytes to write to the connection (whole frames, or 4lw text).
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Close the connection once everything before this is written.
    Close { conn: ConnId },
}

/// Builds a connection id from the network core index and a per-core counter.
pub fn conn_id(core_index: usize, local: u64) -> ConnId {
    ((core_index as u64) << 48) | (local & 0xffff_ffff_ffff)
}

/// The network core index a connection id belongs to.
pub fn core_of(conn: ConnId) -> usize {
    (conn >> 48) as usize
}
