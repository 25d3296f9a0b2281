//! Listening TCP sockets set up as Apache ZooKeeper's (a Java `ServerSocket` on Linux) are:
//! with `SO_REUSEADDR`, so a server started on the ports another process just left binds even
//! while that process's closed connections sit in TIME_WAIT (a rolling restart, and a
//! ringkeeper member replacing an Apache one on the same zoo.cfg: issue #16; without it the
//! bind fails for a minute after Apache answered its last four-letter word).
//!
//! Every listener is exclusive (no `SO_REUSEPORT`): a second process on the same port fails
//! with "Address already in use", as Apache does, instead of silently sharing it (clients
//! would then land on two different servers). The client ports are served by every network
//! executor from ONE socket bound on the main thread ([`listen`]), each executor accepting on
//! its own duplicate of the descriptor ([`listener_on`]); the quorum and election ports are
//! bound where they are served ([`bind`]).
//!
//! In: an address. Out: a listening socket, or a glommio listener of the calling executor;
//! [`accept`] takes its connections without spinning on a failing accept.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Connections waiting to be accepted (glommio's own bind uses the same backlog).
const BACKLOG: i32 = 1024;

/// A socket listening on `addr` that no other socket can share.
pub fn listen(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

/// A glommio listener of the calling executor accepting on `socket` (a duplicate descriptor:
/// several executors may accept on one socket).
pub fn listener_on(socket: &Socket) -> io::Result<glommio::net::TcpListener> {
    let duplicate = socket.try_clone()?;
    // SAFETY: the descriptor is a bound, listening TCP socket whose ownership moves into the
    // listener (into_raw_fd gives it up here).
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(duplicate.into_raw_fd()) })
}

/// A listener on `addr` for the glommio executor this runs on.
pub fn bind(addr: SocketAddr) -> io::Result<glommio::net::TcpListener> {
    let socket = listen(addr)?;
    // SAFETY: as in `listener_on`, for the socket itself.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// After a failed `accept` (out of descriptors, memory), how long the accepting task waits
/// before trying again: the error repeats at once, and retrying without a pause would spin
/// the executor that every other task of this server shares.
const ACCEPT_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The next connection `listener` accepts. A failed accept is logged (`what` names the port)
/// and retried after [`ACCEPT_RETRY_PAUSE`]: every accept loop of the server goes through here.
pub async fn accept(listener: &glommio::net::TcpListener, what: &str) -> glommio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok(stream) => return stream,
            Err(e) => {
                log::warn!("accepting on the {what} failed: {e}");
                glommio::timer::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
}
