//! Connection ids: who a request came from and where its replies go.
//!
//! A client connection lives on one network core of this server ([`ClientConn`]); a leader
//! runs the requests a learner relays for one of *its* clients on a stand-in connection named
//! by the learner and that client's own id ([`ConnId::StandIn`]). Outputs for a client
//! connection go to its network core; outputs for a stand-in go back over the peer link.
//! No bit layouts: the relay codec writes the two fields of a [`ClientConn`] as they are.

use std::fmt;

use crate::zab::ServerId;

/// A client's TCP connection: the network core that owns the socket and its per-core number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientConn {
    pub core: u32,
    pub local: u64,
}

/// Any connection the request processor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnId {
    /// A client connected to this server.
    Client(ClientConn),
    /// Leader only: learner `learner`'s client `client`, whose requests it relays.
    StandIn { learner: ServerId, client: ClientConn },
}

impl ConnId {
    /// The client connection number `local` of network core `core`.
    pub const fn client(core: u32, local: u64) -> ConnId {
        ConnId::Client(ClientConn { core, local })
    }

    /// The client connection, if this is one of this server's own.
    pub fn as_client(self) -> Option<ClientConn> {
        match self {
            ConnId::Client(c) => Some(c),
            ConnId::StandIn { .. } => None,
        }
    }
}

impl fmt::Display for ClientConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.core, self.local)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnId::Client(c) => write!(f, "{c}"),
            ConnId::StandIn { learner, client } => write!(f, "{client}@server{learner}"),
        }
    }
}
