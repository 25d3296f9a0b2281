//! Messages crossing between the network and data roles (over bounded [`crate::link`]s).
//! A connection is named by its [`ClientConn`] (network core and per-core number), so the
//! data role can route every output back to the core that owns the socket.

use std::time::Instant;

use ringkeeper_engine::conn::ClientConn;
use ringkeeper_engine::proto::{ConnectRequest, Id};
use ringkeeper_engine::replica::Delivery;

/// Network role → data role.
#[derive(Debug)]
pub enum ToData {
    /// A decoded ConnectRequest on a new connection (boxed: once per connection, while every
    /// request frame is moved through the link in a `ToData` as large as its largest variant).
    Connect { conn: ClientConn, connect: Box<NewConnection> },
    /// One request frame (payload after the length prefix); `sampled`: when it was read, if
    /// it is traced hop by hop ([`crate::hops`]).
    Request { conn: ClientConn, frame: Vec<u8>, sampled: Option<Instant> },
    /// The socket closed or failed.
    Disconnected { conn: ClientConn },
    /// A four-letter word on a fresh connection.
    FourLetter { conn: ClientConn, word: [u8; 4] },
}

/// What a new connection's first frame said, and who it is.
#[derive(Debug)]
pub struct NewConnection {
    pub client_ip: String,
    pub remote: String,
    /// The ids its TLS handshake established (`x509`), empty on a plain connection.
    pub authenticated: Vec<Id>,
    pub request: ConnectRequest,
}

/// Data role → network role.
#[derive(Debug)]
pub enum ToNet {
    /// Bytes to write to the connection (whole frames, or 4lw text).
    Send { conn: ClientConn, bytes: Vec<u8> },
    /// Close the connection once everything before this is written.
    Close { conn: ClientConn },
}

impl From<Delivery> for ToNet {
    fn from(delivery: Delivery) -> ToNet {
        match delivery {
            Delivery::Send { conn, frame } => ToNet::Send { conn, bytes: frame },
            Delivery::Close { conn } => ToNet::Close { conn },
        }
    }
}
