//! Listening TCP sockets set up as Apache ZooKeeper's (a Java `ServerSocket` on Linux) are:
//! with `SO_REUSEADDR`, so a server started on the ports another process just left binds even
//! while that process's closed connections sit in TIME_WAIT (a rolling restart, and a
//! ringkeeper member replacing an Apache one on the same zoo.cfg: issue #16; without it the
//! bind fails for a minute after Apache answered its last four-letter word).
//!
//! Two kinds ([`Sharing`]): the client ports are bound by every network executor, so with
//! `SO_REUSEPORT` as well (the kernel spreads connections over the executors; that another
//! process cannot silently join them is checked before, in the runtime's `ensure_port_free`);
//! the quorum and election ports are bound once per process, without `SO_REUSEPORT`, so a
//! second process on the same `server.N` ports fails with "Address already in use" as Apache
//! does instead of sharing them.
//!
//! In: an address and how it is shared. Out: a glommio listener of the calling executor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Connections waiting to be accepted (glommio's own bind uses the same backlog).
const BACKLOG: i32 = 1024;

/// Who may listen on the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Every network executor of this process (`SO_REUSEPORT`): the client ports.
    Executors,
    /// Nobody else: the quorum and election ports.
    Exclusive,
}

/// A listener on `addr` for the glommio executor this runs on.
pub fn bind(addr: SocketAddr, sharing: Sharing) -> io::Result<glommio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(sharing == Sharing::Executors)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket whose ownership moves into the
    // listener (into_raw_fd gives it up here).
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}
