//! Listening TCP sockets set up as Apache ZooKeeper's (a Java `ServerSocket` on Linux) are:
//! with `SO_REUSEADDR`, so a server started on the ports another process just left binds even
//! while that process's closed connections sit in TIME_WAIT (a rolling restart, and a
//! ringkeeper member replacing an Apache one on the same zoo.cfg: issue #16; without it the
//! bind fails for a minute after Apache answered its last four-letter word); and with
//! `SO_REUSEPORT`, as glommio's own `TcpListener::bind`, so every network executor binds the
//! client port.
//!
//! In: an address. Out: a glommio listener of the calling executor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Connections waiting to be accepted (glommio's own bind uses the same backlog).
const BACKLOG: i32 = 1024;

/// A listener on `addr` for the glommio executor this runs on.
pub fn bind(addr: SocketAddr) -> io::Result<glommio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket whose ownership moves into the
    // listener (into_raw_fd gives it up here).
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}
