//! A TCP proxy a test controls, to partition servers without touching the host's network:
//! it forwards every connection made to its port on to `upstream`, until the test blocks it.
//!
//! Blocked means silent, like a cable pulled: nothing is forwarded and no connection is reset
//! (bytes wait in the kernel buffers; a connection accepted while the forward direction is
//! blocked is not connected upstream until it unblocks), so peers only notice through their
//! own timeouts; unblocked, the streams carry on intact, unless the test closes them
//! ([`Proxy::close_connections`], so that peers reconnect afresh). Each direction blocks on its own
//! ([`Proxy::set_forward_blocked`], [`Proxy::set_backward_blocked`]): *forward* is what the connecting side sends, *backward*
//! what `upstream` answers, so one-way partitions are possible. Threads end when the proxy
//! drops.
//!
//! Apache ZooKeeper's election connection starts with an initial message carrying the
//! sender's own election address, and a receiver with the higher id drops the connection and
//! connects *back* to that address, which would bypass the proxies. A proxy started with
//! [`Proxy::forward_to`]`(upstream, Some(back_port))` rewrites that address (protocol versions
//! -65536 and -65535: `long version, long sid, int length, "host:port"`) to
//! `127.0.0.1:back_port`, the proxy leading back; other first bytes pass unchanged.
//!
//! [`ProxyMesh`] puts such proxies between every ordered pair of an ensemble's members and
//! partitions them (shared by the tests' ensemble and the bench's election trials).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a pump waits for bytes before checking the flags again.
const POLL: Duration = Duration::from_millis(5);
/// Apache's election protocol versions whose initial message carries an address.
const ELECTION_PROTOCOL_VERSIONS: [i64; 2] = [-65536, -65535];
/// Longest address string accepted in an initial message.
const ADDRESS_BYTES_MAX: usize = 512;

/// The flags a proxy's threads share, and its open connections.
#[derive(Default)]
struct Flags {
    forward_blocked: AtomicBool,
    backward_blocked: AtomicBool,
    stopped: AtomicBool,
    /// The sockets of every connection accepted and not yet ended (the accepted one, and the
    /// upstream one once connected), by connection number.
    connections: Mutex<BTreeMap<u64, Vec<TcpStream>>>,
}

impl Flags {
    fn wait_while_forward_blocked(&self) {
        while self.forward_blocked.load(Ordering::Relaxed) && !self.stopped.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
        }
    }
}

/// One proxy: `127.0.0.1:port` -> `upstream`.
pub struct Proxy {
    pub port: u16,
    flags: Arc<Flags>,
    /// Bound but not yet forwarding (see [`Proxy::bind`]).
    listener: Option<TcpListener>,
}

impl Proxy {
    /// A proxy to `upstream`, forwarding at once.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let mut proxy = Proxy::bind();
        proxy.forward_to(upstream, None);
        proxy
    }

    /// A proxy listening on a port of its own, accepting nothing until
    /// [`Proxy::forward_to`] (so the ports of a mesh of proxies are known before any runs).
    pub fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        Proxy { port, flags: Arc::default(), listener: Some(listener) }
    }

    /// Starts forwarding to `upstream`; with `election_back_port`, rewrites the address of an
    /// Apache election initial message to `127.0.0.1:election_back_port`.
    pub fn forward_to(&mut self, upstream: SocketAddr, election_back_port: Option<u16>) {
        let listener = self.listener.take().expect("a proxy forwards to one upstream");
        let flags = self.flags.clone();
        std::thread::spawn(move || {
            let mut accepted = 0u64;
            while !flags.stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        accepted += 1;
                        let (flags, number) = (flags.clone(), accepted);
                        std::thread::spawn(move || {
                            connect(client, upstream, election_back_port, &flags, number);
                            flags.connections.lock().unwrap().remove(&number);
                        });
                    }
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
    }

    /// Stops (or resumes) forwarding in both directions, silently.
    pub fn set_blocked(&self, blocked: bool) {
        self.set_forward_blocked(blocked);
        self.set_backward_blocked(blocked);
    }

    /// Stops (or resumes) forwarding what the connecting side sends.
    pub fn set_forward_blocked(&self, blocked: bool) {
        self.flags.forward_blocked.store(blocked, Ordering::Relaxed);
    }

    /// Stops (or resumes) forwarding what the upstream answers.
    pub fn set_backward_blocked(&self, blocked: bool) {
        self.flags.backward_blocked.store(blocked, Ordering::Relaxed);
    }

    /// Whether either direction is blocked.
    pub fn is_blocked(&self) -> bool {
        self.flags.forward_blocked.load(Ordering::Relaxed)
            || self.flags.backward_blocked.load(Ordering::Relaxed)
    }

    /// Closes every connection open through the proxy now (both ends see it end).
    pub fn close_connections(&self) {
        for socket in std::mem::take(&mut *self.flags.connections.lock().unwrap()).into_values().flatten() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.flags.stopped.store(true, Ordering::Relaxed);
    }
}

/// The two proxies member `from` reaches member `to` through: its peer (quorum) port and its
/// election port (ringkeeper uses only the first; Apache both).
struct MeshLink {
    peer: Proxy,
    election: Proxy,
}

impl MeshLink {
    fn proxies(&self) -> [&Proxy; 2] {
        [&self.peer, &self.election]
    }
}

/// Proxies between every ordered pair of an ensemble's members, for partitions (the tests'
/// [`crate::ensemble::Ensemble::start_partitionable`] and the bench's election trials): member
/// `from` names [`ProxyMesh::route`]`(from, to)` as member `to`'s peer and election ports in
/// its zoo.cfg, so cutting links cuts members apart while their clients still reach them.
/// Each election proxy rewrites Apache's initial message to name the proxy leading back.
pub struct ProxyMesh {
    /// `links[from][to]`, `None` on the diagonal.
    links: Vec<Vec<Option<MeshLink>>>,
}

impl ProxyMesh {
    /// Binds and starts the proxies between members whose own (peer, election) ports are
    /// `member_ports`, by index.
    pub fn start(member_ports: &[(u16, u16)]) -> ProxyMesh {
        let n = member_ports.len();
        let mut links: Vec<Vec<Option<MeshLink>>> = (0..n)
            .map(|from| {
                (0..n)
                    .map(|to| (from != to).then(|| MeshLink { peer: Proxy::bind(), election: Proxy::bind() }))
                    .collect()
            })
            .collect();
        // The election port of the link leading back, for the initial-message rewrite.
        let back_ports: Vec<Vec<Option<u16>>> = (0..n)
            .map(|from| (0..n).map(|to| links[to][from].as_ref().map(|back| back.election.port)).collect())
            .collect();
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        for (from, row) in links.iter_mut().enumerate() {
            for (to, link) in row.iter_mut().enumerate() {
                if let Some(link) = link {
                    let (peer, election) = member_ports[to];
                    link.peer.forward_to(local(peer), None);
                    link.election.forward_to(local(election), back_ports[from][to]);
                }
            }
        }
        ProxyMesh { links }
    }

    /// The (peer, election) ports member `from` must name for member `to`: the proxies'
    /// (`None` for a member itself).
    pub fn route(&self, from: usize, to: usize) -> Option<(u16, u16)> {
        self.links[from][to].as_ref().map(|link| (link.peer.port, link.election.port))
    }

    fn link(&self, from: usize, to: usize) -> &MeshLink {
        self.links[from][to].as_ref().expect("no link from a member to itself")
    }

    /// Cuts what member `from` sends to member `to` (one way: `to` still reaches `from`).
    /// On a connection `from` opened that is its forward direction, on one `to` opened
    /// the backward one.
    pub fn cut(&self, from: usize, to: usize) {
        for proxy in self.link(from, to).proxies() {
            proxy.set_forward_blocked(true);
        }
        for proxy in self.link(to, from).proxies() {
            proxy.set_backward_blocked(true);
        }
    }

    /// Cuts every pair of members in different `groups`, both ways; members in no group
    /// keep their links.
    pub fn partition(&self, groups: &[&[usize]]) {
        for (g, group) in groups.iter().enumerate() {
            for other in groups.iter().skip(g + 1) {
                for &a in group.iter() {
                    for &b in other.iter() {
                        self.cut(a, b);
                        self.cut(b, a);
                    }
                }
            }
        }
    }

    /// Cuts member `i` off from every other member, both ways.
    pub fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.links.len()).filter(|&j| j != i).collect();
        self.partition(&[&[i], &others]);
    }

    /// Restores every link; connections held while cut carry on with what was held.
    pub fn heal_all(&self) {
        for proxy in self.links.iter().flatten().flatten().flat_map(MeshLink::proxies) {
            proxy.set_blocked(false);
        }
    }

    /// Restores every link and closes the connections of those that were cut, so the peers
    /// reconnect afresh.
    pub fn heal_and_reconnect(&self) {
        for proxy in self.links.iter().flatten().flatten().flat_map(MeshLink::proxies) {
            if proxy.is_blocked() {
                proxy.set_blocked(false);
                proxy.close_connections();
            }
        }
    }
}

/// One accepted connection (number `number`): connects upstream once the forward direction
/// is open, rewrites an election initial message if asked, then pumps both directions (the
/// backward one on a thread of its own) until the connection ends.
fn connect(
    mut client: TcpStream,
    upstream: SocketAddr,
    election_back_port: Option<u16>,
    flags: &Arc<Flags>,
    number: u64,
) {
    client.set_nonblocking(false).ok();
    let Ok(client_copy) = client.try_clone() else { return };
    flags.connections.lock().unwrap().insert(number, vec![client_copy]);
    flags.wait_while_forward_blocked();
    let Ok(mut server) = TcpStream::connect(upstream) else { return };
    client.set_nodelay(true).ok();
    server.set_nodelay(true).ok();
    let Ok(server_copy) = server.try_clone() else { return };
    match flags.connections.lock().unwrap().get_mut(&number) {
        Some(sockets) => sockets.push(server_copy),
        // Closed while it waited.
        None => return,
    }
    if let Some(back_port) = election_back_port {
        let Ok(first) = read_initial_message(&mut client, back_port) else { return };
        flags.wait_while_forward_blocked();
        if server.write_all(&first).is_err() {
            return;
        }
    }
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else { return };
    let backward_flags = flags.clone();
    let backward =
        std::thread::spawn(move || pump(server_reader, client, &backward_flags, |f| &f.backward_blocked));
    pump(client_reader, server, flags, |f| &f.forward_blocked);
    let _ = backward.join();
}

fn pump(mut from: TcpStream, mut to: TcpStream, flags: &Flags, blocked: fn(&Flags) -> &AtomicBool) {
    from.set_read_timeout(Some(POLL)).ok();
    let mut buf = vec![0u8; 64 * 1024];
    while !flags.stopped.load(Ordering::Relaxed) {
        if blocked(flags).load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Blocked while this read was under way: hold what it got.
                while blocked(flags).load(Ordering::Relaxed) && !flags.stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(POLL);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Reads Apache's election initial message and returns it with the address replaced by
/// `127.0.0.1:back_port`; other first bytes (another protocol) come back unchanged.
fn read_initial_message(reader: &mut TcpStream, back_port: u16) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 8];
    reader.read_exact(&mut head)?;
    if !ELECTION_PROTOCOL_VERSIONS.contains(&i64::from_be_bytes(head)) {
        return Ok(head.to_vec());
    }
    let mut sid_and_length = [0u8; 12];
    reader.read_exact(&mut sid_and_length)?;
    let length = i32::from_be_bytes(sid_and_length[8..12].try_into().expect("4 bytes"));
    let length = usize::try_from(length).ok().filter(|l| *l <= ADDRESS_BYTES_MAX).ok_or_else(|| {
        std::io::Error::new(ErrorKind::InvalidData, "election initial message address too long")
    })?;
    let mut address = vec![0u8; length];
    reader.read_exact(&mut address)?;
    Ok(initial_message(head, &sid_and_length[..8], back_port))
}

/// The election initial message `version, sid, length, "127.0.0.1:port"`.
pub fn initial_message(version: [u8; 8], sid: &[u8], port: u16) -> Vec<u8> {
    let address = format!("127.0.0.1:{port}");
    let mut out = version.to_vec();
    out.extend_from_slice(sid);
    out.extend_from_slice(&(address.len() as i32).to_be_bytes());
    out.extend_from_slice(address.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_message_is_version_sid_length_address() {
        let out = initial_message((-65536i64).to_be_bytes(), &3i64.to_be_bytes(), 4242);
        assert_eq!(&out[..8], &(-65536i64).to_be_bytes());
        assert_eq!(&out[8..16], &3i64.to_be_bytes());
        assert_eq!(&out[16..20], &14i32.to_be_bytes());
        assert_eq!(&out[20..], b"127.0.0.1:4242");
    }

    #[test]
    fn a_mesh_routes_each_ordered_pair_through_its_own_proxies() {
        let mesh = ProxyMesh::start(&[(101, 201), (102, 202), (103, 203)]);
        assert_eq!(mesh.route(1, 1), None, "a member reaches itself directly");
        let mut proxied = Vec::new();
        for (from, to) in (0..3).flat_map(|from| (0..3).map(move |to| (from, to))) {
            if let Some((peer, election)) = mesh.route(from, to) {
                proxied.extend([peer, election]);
            }
        }
        proxied.sort();
        proxied.dedup();
        assert_eq!(proxied.len(), 12, "six links of two proxies each");
        assert!(proxied.iter().all(|p| *p > 1024));
    }

    /// An echo server behind a proxy; a one-way block stops only its direction.
    #[test]
    fn each_direction_blocks_on_its_own() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 64];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let proxy = Proxy::start(upstream);
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut buf = [0u8; 3];
        client.write_all(b"abc").unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        // Backward blocked: the request goes through, the echo is held.
        proxy.set_backward_blocked(true);
        client.write_all(b"def").unwrap();
        assert!(client.read_exact(&mut buf).is_err(), "the echo came back through a blocked direction");
        proxy.set_blocked(false);
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"def", "held bytes arrive intact once unblocked");
        proxy.close_connections();
        assert!(matches!(client.read(&mut buf), Ok(0)), "a closed connection ends");
    }
}
