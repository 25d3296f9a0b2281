//! Network partitions between the members of a harness-started ensemble, made with TCP
//! proxies the harness controls: every member reaches every other member's peer and election
//! ports through its own proxy link (`from` → `to`), so cutting the links of one member
//! isolates it from its peers while its clients still reach it.
//!
//! In: the ensemble's members; out: [`Routes`] (the port member `from` must use to reach
//! member `to`, written into `from`'s zoo.cfg) and a running [`Partitioner`].
//! A cut link is a black hole, not a reset: connections stay open and nothing is forwarded,
//! new connections are accepted and never forwarded, so the peers see silence (as with lost
//! packets) and must notice by their own timeouts. Healing closes every held connection, so
//! the peers reconnect cleanly.
//!
//! Apache ZooKeeper's election connection starts with an initial message that carries the
//! sender's own election address, and a receiver with the higher id connects *back* to that
//! address, which would bypass the proxy. The proxy therefore rewrites that address (protocol
//! versions -65536 and -65535: `long version, long sid, int length, "host:port"`) to the
//! proxy link leading back; any other first bytes are forwarded unchanged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::servers::MemberSpec;
use crate::BenchError;

/// Apache's election protocol versions whose initial message carries an address.
const ELECTION_PROTOCOL_VERSIONS: [i64; 2] = [-65536, -65535];
/// Longest address string accepted in an initial message.
const ADDRESS_BYTES_MAX: usize = 512;
/// How long a cut connection is held before checking again whether it was healed.
const HOLD_CHECK: Duration = Duration::from_millis(20);

/// Which port of a member a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortKind {
    Peer,
    Election,
}

/// The port member `from` uses to reach member `to`'s peer and election ports, by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `ports[from][to]` = (peer, election); `from == to` holds the member's own ports.
    pub ports: Vec<Vec<(u16, u16)>>,
}

/// One direction between two members for one port kind.
struct Link {
    from: usize,
    to: usize,
    kind: PortKind,
    target_port: u16,
}

/// Shared state of one link.
struct LinkState {
    cut: AtomicBool,
    /// Forwarding tasks of open connections (aborted on heal).
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// The running proxies of an ensemble.
pub struct Partitioner {
    links: Vec<(usize, usize, Arc<LinkState>)>,
    acceptors: Vec<JoinHandle<()>>,
}

impl Partitioner {
    /// Binds a proxy for every ordered pair of members and port kind on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        members: &[MemberSpec],
    ) -> Result<(Partitioner, Routes), BenchError> {
        let n = members.len();
        let mut routes = Routes {
            ports: (0..n).map(|i| vec![(members[i].peer_port, members[i].election_port); n]).collect(),
        };
        let mut planned = Vec::new();
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                for kind in [PortKind::Peer, PortKind::Election] {
                    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                    listener.set_nonblocking(true)?;
                    let listen_port = listener.local_addr()?.port();
                    let target_port = match kind {
                        PortKind::Peer => members[to].peer_port,
                        PortKind::Election => members[to].election_port,
                    };
                    let route = &mut routes.ports[from][to];
                    match kind {
                        PortKind::Peer => route.0 = listen_port,
                        PortKind::Election => route.1 = listen_port,
                    }
                    planned.push((Link { from, to, kind, target_port }, listener));
                }
            }
        }
        let mut partitioner = Partitioner { links: Vec::new(), acceptors: Vec::new() };
        for (link, listener) in planned {
            // The election port of the link leading back, for the initial-message rewrite.
            let back_port = routes.ports[link.to][link.from].1;
            let state =
                Arc::new(LinkState { cut: AtomicBool::new(false), connections: Mutex::new(Vec::new()) });
            partitioner.links.push((link.from, link.to, state.clone()));
            let _guard = runtime.enter();
            let listener = TcpListener::from_std(listener)?;
            partitioner.acceptors.push(runtime.spawn(accept_loop(listener, link, back_port, state)));
        }
        Ok((partitioner, routes))
    }

    /// Cuts every link to and from member `index`.
    pub fn isolate(&self, index: usize) {
        for (from, to, state) in &self.links {
            if *from == index || *to == index {
                state.cut.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Restores every link and closes the connections held while cut.
    pub fn heal(&self) {
        for (_, _, state) in &self.links {
            if state.cut.swap(false, Ordering::SeqCst) {
                for task in state.connections.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                    task.abort();
                }
            }
        }
    }
}

impl Drop for Partitioner {
    fn drop(&mut self) {
        for task in &self.acceptors {
            task.abort();
        }
        for (_, _, state) in &self.links {
            for task in state.connections.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                task.abort();
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, link: Link, back_port: u16, state: Arc<LinkState>) {
    while let Ok((inbound, _)) = listener.accept().await {
        let state_for_task = state.clone();
        let (kind, target_port) = (link.kind, link.target_port);
        let task = tokio::spawn(async move {
            let _ = forward(inbound, kind, target_port, back_port, &state_for_task).await;
        });
        let mut connections = state.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.retain(|t| !t.is_finished());
        connections.push(task);
    }
}

/// Waits while the link is cut (the connection is held open, nothing moves).
async fn hold_while_cut(state: &LinkState) {
    while state.cut.load(Ordering::SeqCst) {
        tokio::time::sleep(HOLD_CHECK).await;
    }
}

async fn forward(
    inbound: TcpStream,
    kind: PortKind,
    target_port: u16,
    back_port: u16,
    state: &LinkState,
) -> std::io::Result<()> {
    hold_while_cut(state).await;
    inbound.set_nodelay(true)?;
    let outbound = TcpStream::connect(("127.0.0.1", target_port)).await?;
    outbound.set_nodelay(true)?;
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    if kind == PortKind::Election {
        let first = rewrite_initial_message(&mut in_read, back_port).await?;
        out_write.write_all(&first).await?;
    }
    tokio::select! {
        r = pump(&mut in_read, &mut out_write, state) => r,
        r = pump(&mut out_read, &mut in_write, state) => r,
    }
}

/// Copies one direction until EOF; while the link is cut, stops reading (a black hole).
async fn pump(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, state: &LinkState) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        hold_while_cut(state).await;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        hold_while_cut(state).await;
        to.write_all(&buf[..n]).await?;
    }
}

/// Reads Apache's election initial message and returns it with the address replaced by
/// `127.0.0.1:back_port`; other first bytes (another protocol) come back unchanged.
async fn rewrite_initial_message(reader: &mut OwnedReadHalf, back_port: u16) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 8];
    reader.read_exact(&mut head).await?;
    if !ELECTION_PROTOCOL_VERSIONS.contains(&i64::from_be_bytes(head)) {
        return Ok(head.to_vec());
    }
    let mut sid_and_length = [0u8; 12];
    reader.read_exact(&mut sid_and_length).await?;
    let length = i32::from_be_bytes(sid_and_length[8..12].try_into().expect("4 bytes"));
    let length = usize::try_from(length).ok().filter(|l| *l <= ADDRESS_BYTES_MAX).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "election initial message address too long")
    })?;
    let mut address = vec![0u8; length];
    reader.read_exact(&mut address).await?;
    Ok(initial_message(head, &sid_and_length[..8], back_port))
}

/// The initial message `version, sid, length, "127.0.0.1:port"`.
fn initial_message(version: [u8; 8], sid: &[u8], port: u16) -> Vec<u8> {
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
    fn routes_lead_through_distinct_proxies() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let members: Vec<MemberSpec> = (1..=3)
            .map(|id| MemberSpec {
                id,
                client_port: 1,
                peer_port: 100 + id as u16,
                election_port: 200 + id as u16,
            })
            .collect();
        let (_partitioner, routes) = Partitioner::start(&runtime, &members).unwrap();
        assert_eq!(routes.ports[1][1], (102, 202), "a member's own ports stay its own");
        let mut proxied: Vec<u16> = (0..3)
            .flat_map(|f| (0..3).filter(move |t| *t != f).map(move |t| (f, t)))
            .flat_map(|(f, t)| [routes.ports[f][t].0, routes.ports[f][t].1])
            .collect();
        proxied.sort();
        proxied.dedup();
        assert_eq!(proxied.len(), 12);
        assert!(proxied.iter().all(|p| *p > 1024));
    }
}
