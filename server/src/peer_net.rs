//! Peer transport of an ensemble: TCP links between servers on the data role's executor.
//!
//! In: frames to send to a peer (`send`), TCP connections from peers on this server's
//! peerPort. Out: [`PeerInput`]s handed to a callback — each frame received, and "link down"
//! when a peer's connection fails or closes.
//!
//! Every server dials every other server's peerPort (`server.N=host:peerPort:...`) and only
//! writes on the connection it dialled; it only reads on connections it accepted. So each
//! direction of a pair has its own connection and no tie-breaking is needed. A connection
//! starts with a handshake (magic, sender id, the sender's own peer address); with
//! `reconfigEnabled` a server not (yet) in the configuration may connect, and is dialled
//! back at the address it gave (a server joining before the reconfig that adds it), and
//! [`PeerNet::add_peer`] adds the members a committed reconfig brings (and moves a member
//! whose `server.N` line it changed in place: the next connection attempt goes to its new
//! address). Frames are `u32` little-endian length, one kind
//! byte ([`FrameKind`]), payload. The election port of the `server.N` line is not used: ZAB
//! and election share the link.
//!
//! A peer's host name is resolved again before every connection attempt (off the executor,
//! on glommio's blocking pool), so a member whose name is not in DNS yet, or whose address
//! changed (a rescheduled Kubernetes pod), is reached once the name resolves; until then the
//! failure is logged (a warning when it starts, an info line when the name resolves) and
//! retried. Failed attempts back off from [`REDIAL_INTERVAL`] to [`REDIAL_INTERVAL_MAX`]; a
//! peer that is up but refuses the link (TLS, SASL) is redialled from
//! [`REFUSED_REDIAL_INTERVAL`] up to [`REFUSED_REDIAL_INTERVAL_MAX`] apart, and the short
//! waits start again once a link comes up or the peer goes down.
//!
//! Invariants: frames to one peer are written in `send` order (one writer task per peer);
//! frames sent while a link is down are dropped (the protocol resends what matters: votes
//! on a timer, syncs from scratch); a malformed or oversized frame closes that link only.
//! Frames are capped at 1 GiB (state images), ZAB messages other than state images and
//! proposals at 1 MiB; a frame's buffer grows with the bytes received, so a header claiming
//! a large frame costs no memory until its bytes arrive.
//!
//! With `sslQuorum` ([`QuorumTls`]) every connection is mutual TLS before the handshake: the
//! dialler checks the certificate of the peer it dialled, the acceptor the dialler's, and a
//! connection that fails either check is logged and closed. Without it the links write to
//! and read from the socket itself (the TLS path is a separate instance of the same code).
//! With `quorum.auth.enableSasl` the dialler authenticates after its handshake
//! ([`crate::quorum_sasl`]); a link whose authentication fails as required is logged and
//! closed.
//!
//! Before any authentication the accepting side reads at most a handshake (an address of at
//! most [`HANDSHAKE_ADDRESS_BYTES_MAX`] bytes, as Apache's `QuorumCnxManager.maxBuffer`)
//! and refuses an unknown id before allocating anything for it. Everything before a link is
//! admitted (TLS handshake, host name check, handshake, SASL) has one deadline, the peer
//! timeout (with `sslQuorum` at least the TLS handshake timeout): a connection that stalls
//! anywhere in it is refused and closed. A
//! refused dialler may redial often (a ringkeeper member backs off, see above; anything else
//! need not): the accepting member logs a refusal for one address and reason once per
//! [`REFUSAL_LOG_INTERVAL`], with the count of the refusals it did not log.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use ringkeeper_engine::zab;

use crate::config::QuorumSasl;
use crate::quorum_sasl;
use crate::quorum_tls::QuorumTls;
use crate::role_stats::{self, Role};
use crate::send_queue::SendQueue;

/// First bytes of every peer connection ("RKZE"); the letter after "RKZ" is the peer
/// protocol's version, so members of builds that cannot talk refuse each other at once.
const HANDSHAKE_MAGIC: u32 = 0x524b_5a45;
/// First bytes of a peer connection whose dialler authenticates with quorum SASL ("RKZV"):
/// the acceptor answers the handshake ([`crate::quorum_sasl`]).
const HANDSHAKE_MAGIC_SASL: u32 = 0x524b_5a56;
/// The magics of earlier peer protocols, refused by name: "RKZD"/"RKZU" (before election
/// notifications and NEWLEADER carried the configuration), "RKZC"/"RKZT" (before
/// `CommitOnceDurable`, without which a follower would wait for commits the leader no longer
/// sends it), "RKZB"/"RKZS" (before a relayed session touch carried its timeout).
const OLDER_HANDSHAKE_MAGICS: [u32; 6] =
    [0x524b_5a44, 0x524b_5a55, 0x524b_5a43, 0x524b_5a54, 0x524b_5a42, 0x524b_5a53];
/// Largest frame accepted from a peer (a state image of a large tree is the biggest).
const FRAME_BYTES_MAX: usize = 1 << 30;
/// Largest ZAB frame other than a state image or a proposal ([`zab::msg::may_be_large`]):
/// votes, epochs, acks, pings and the per-epoch list of an epoch ack are far smaller.
const CONTROL_FRAME_BYTES_MAX: usize = 1 << 20;
/// A frame's buffer grows by at most this much ahead of the bytes received, so a length
/// claimed in a header costs memory only once the bytes arrive.
const FRAME_GROWTH_BYTES: usize = 1 << 20;
/// Read buffer of an accepted peer connection: a burst of small frames (proposals, acks) is
/// taken from the socket in one read instead of two reads per frame.
const READ_BUFFER_BYTES: usize = 256 << 10;
/// Wait after a first failed connection attempt to a peer; doubled after each further one.
const REDIAL_INTERVAL: Duration = Duration::from_millis(20);
/// Longest wait between connection attempts (and name lookups) to a peer that is down.
const REDIAL_INTERVAL_MAX: Duration = Duration::from_millis(200);
/// Wait after a first connection refused by TLS or SASL (the peer is up but the link is not
/// admitted: a certificate or password to be fixed); doubled after each further refusal.
const REFUSED_REDIAL_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait between connection attempts to a peer that keeps refusing the link (Apache's
/// election backs off its reconnections similarly, from 200 ms up to
/// `zookeeper.fastleader.maxNotificationInterval`); a link that comes up, or a peer that
/// goes down, starts the waits again from the short ones.
const REFUSED_REDIAL_INTERVAL_MAX: Duration = Duration::from_secs(5);
/// A link lost this soon after it was dialled counts as refused: the peer closed it before it
/// carried anything (a TLS 1.3 acceptor refuses the dialler's certificate only after the
/// dialler's side of the handshake completed; a refused handshake is closed without a word).
const LINK_LOST_AS_REFUSED: Duration = Duration::from_secs(1);
/// Longest peer address a handshake may carry (Apache's `QuorumCnxManager.maxBuffer`, the
/// limit of its initial message; a host name is at most 253 bytes).
const HANDSHAKE_ADDRESS_BYTES_MAX: usize = 2048;
/// A peer connection refused for the same reason from the same address is logged at most
/// once per this period (a refused dialler may redial several times a second).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// Refusals remembered for [`REFUSAL_LOG_INTERVAL`]; past this many, the expired ones are
/// forgotten (a flood from many addresses cannot grow the table without bound).
const REFUSALS_REMEMBERED_MAX: usize = 1024;

/// A peer's address as `server.N` gives it: a host name or IP literal, and the peer port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl PeerAddress {
    /// The socket address to dial now: an IP literal at once, a name looked up afresh on the
    /// blocking pool (getaddrinfo blocks).
    pub(crate) async fn resolve(&self) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        let (host, port) = (self.host.clone(), self.port);
        glommio::executor()
            .spawn_blocking(move || {
                (host.as_str(), port).to_socket_addrs()?.next().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
                })
            })
            .await
    }
}

/// The wait before the next connection attempt after `failures` failed ones in a row.
pub(crate) fn redial_wait(failures: u32) -> Duration {
    doubling_wait(REDIAL_INTERVAL, REDIAL_INTERVAL_MAX, failures)
}

/// The wait before the next connection attempt after the peer refused `refusals` links in a
/// row (TLS or SASL).
fn refused_redial_wait(refusals: u32) -> Duration {
    doubling_wait(REFUSED_REDIAL_INTERVAL, REFUSED_REDIAL_INTERVAL_MAX, refusals)
}

/// `first` after one failure, doubled after each further one, `max` at most.
fn doubling_wait(first: Duration, max: Duration, failures: u32) -> Duration {
    first.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(max)
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// An election or ZAB message (`zab::Msg`).
    Zab = 0,
    /// Relayed client traffic (`zab::Relay`).
    Relay = 1,
}

/// Something a peer link delivered.
#[derive(Debug)]
pub enum PeerInput {
    Frame { from: u64, kind: FrameKind, payload: Vec<u8> },
    LinkDown { peer: u64 },
}

struct Outbox {
    bytes: SendQueue,
    connected: bool,
    waker: Option<Waker>,
    /// Where the peer is dialled: read again before every connection attempt, so a reconfig
    /// that gives a member new ports in place ([`PeerNet::add_peer`]) is followed.
    address: PeerAddress,
}

/// The links of one server to its peers (cheap to clone: one shared state).
#[derive(Clone)]
pub struct PeerNet {
    inner: Rc<Inner>,
}

struct Inner {
    my_id: u64,
    /// This server's own peer address, sent in the handshake.
    my_address: PeerAddress,
    connect_timeout: Duration,
    deliver: Deliver,
    /// Accept (and dial back) servers that are not peers yet.
    accept_unknown: bool,
    /// `sslQuorum`: every link is mutual TLS.
    tls: Option<Arc<QuorumTls>>,
    /// `quorum.auth.enableSasl`: links authenticate.
    sasl: Option<Arc<QuorumSasl>>,
    outboxes: RefCell<HashMap<u64, Rc<RefCell<Outbox>>>>,
    refusals: RefCell<RefusalLog>,
}

/// The refused peer connections logged lately, by dialling address and reason.
#[derive(Default)]
struct RefusalLog {
    logged: HashMap<(IpAddr, String), LoggedRefusal>,
}

struct LoggedRefusal {
    at: Instant,
    /// Refusals for the same address and reason since, not logged.
    unlogged: u64,
}

impl RefusalLog {
    /// Logs that a connection from `from` was refused for `reason`, unless the same refusal
    /// was logged less than [`REFUSAL_LOG_INTERVAL`] ago (then it is only counted).
    fn refused(&mut self, from: SocketAddr, reason: String) {
        let now = Instant::now();
        let key = (from.ip(), reason);
        if let Some(last) = self.logged.get_mut(&key) {
            if now.duration_since(last.at) < REFUSAL_LOG_INTERVAL {
                last.unlogged += 1;
                return;
            }
        }
        if self.logged.len() >= REFUSALS_REMEMBERED_MAX {
            self.logged.retain(|_, r| now.duration_since(r.at) < REFUSAL_LOG_INTERVAL);
        }
        let unlogged = self.logged.get(&key).map_or(0, |r| r.unlogged);
        let also = if unlogged > 0 {
            format!(" ({unlogged} more from {} for this reason since the last such line)", from.ip())
        } else {
            String::new()
        };
        log::warn!("refused a peer connection from {from}: {}{also}", key.1);
        self.logged.insert(key, LoggedRefusal { at: now, unlogged: 0 });
    }
}

type Deliver = Rc<dyn Fn(PeerInput)>;

/// How the network is set up: who this server is and whom it dials.
pub struct PeerNetSetup {
    pub my_id: u64,
    pub my_address: PeerAddress,
    pub peers: Vec<(u64, PeerAddress)>,
    pub connect_timeout: Duration,
    /// `reconfigEnabled`: servers not in `peers` may connect (and are dialled back).
    pub accept_unknown: bool,
    /// `sslQuorum`: the TLS both ends of every link speak; `None`: plain TCP.
    pub tls: Option<Arc<QuorumTls>>,
    /// `quorum.auth.enableSasl`: the credentials links authenticate with; `None`: off.
    pub sasl: Option<Arc<QuorumSasl>>,
}

impl PeerNet {
    /// Listens on `listener`, dials every `(id, address)` of the setup's peers, and hands
    /// everything received to `deliver`. Runs for the life of the executor.
    pub fn start(setup: PeerNetSetup, listener: TcpListener, deliver: Deliver) -> PeerNet {
        let net = PeerNet {
            inner: Rc::new(Inner {
                my_id: setup.my_id,
                my_address: setup.my_address,
                connect_timeout: setup.connect_timeout,
                deliver,
                accept_unknown: setup.accept_unknown,
                tls: setup.tls,
                sasl: setup.sasl,
                outboxes: RefCell::new(HashMap::new()),
                refusals: RefCell::new(RefusalLog::default()),
            }),
        };
        for (id, address) in setup.peers {
            net.add_peer(id, address);
        }
        role_stats::spawn(Role::Data, accept_loop(listener, net.clone())).detach();
        net
    }

    /// Starts dialling server `id` at `address`; if it is dialled already at another address
    /// (a reconfig changed its `server.N` line in place), the next connection attempt goes
    /// to the new one (a live link is kept until it fails: the old address may still be the
    /// member's until it restarts).
    pub fn add_peer(&self, id: u64, address: PeerAddress) {
        let inner = &self.inner;
        if id == inner.my_id {
            return;
        }
        if let Some(outbox) = inner.outboxes.borrow().get(&id) {
            let mut outbox = outbox.borrow_mut();
            if outbox.address != address {
                log::info!(
                    "server {id}: peer address {} -> {address}; dialled there from now on",
                    outbox.address
                );
                outbox.address = address;
            }
            return;
        }
        let outbox = Rc::new(RefCell::new(Outbox {
            bytes: SendQueue::default(),
            connected: false,
            waker: None,
            address,
        }));
        inner.outboxes.borrow_mut().insert(id, outbox.clone());
        let link = DialledLink {
            hello: Hello {
                my_id: inner.my_id,
                my_address: inner.my_address.clone(),
                sasl: inner.sasl.is_some(),
            }
            .encode(),
            peer: id,
            connect_timeout: inner.connect_timeout,
            tls: inner.tls.clone(),
            sasl: inner.sasl.clone(),
        };
        role_stats::spawn(Role::Data, dial_loop(link, outbox, inner.deliver.clone())).detach();
    }

    /// How long an accepted connection has to be admitted (TLS handshake, handshake, quorum
    /// SASL): the peer timeout, and with `sslQuorum` at least
    /// `ssl.quorum.handshakeDetectionTimeoutMillis`.
    fn pre_authentication_limit(&self) -> Duration {
        let tls_handshake = self.inner.tls.as_ref().map_or(Duration::ZERO, |tls| tls.handshake_timeout());
        self.inner.connect_timeout.max(tls_handshake)
    }

    fn knows(&self, id: u64) -> bool {
        self.inner.outboxes.borrow().contains_key(&id)
    }

    fn refused(&self, from: SocketAddr, reason: String) {
        self.inner.refusals.borrow_mut().refused(from, reason);
    }

    /// Queues one frame to `to` (dropped while the link is down).
    pub fn send(&self, to: u64, kind: FrameKind, payload_writer: impl FnOnce(&mut Vec<u8>)) {
        let outboxes = self.inner.outboxes.borrow();
        let Some(outbox) = outboxes.get(&to) else { return };
        let mut o = outbox.borrow_mut();
        if !o.connected {
            return;
        }
        o.bytes.write(|chunk| {
            let start = chunk.len();
            chunk.extend_from_slice(&[0; 4]);
            chunk.push(kind as u8);
            payload_writer(chunk);
            let len = (chunk.len() - start - 4) as u32;
            chunk[start..start + 4].copy_from_slice(&len.to_le_bytes());
        });
        if let Some(w) = o.waker.take() {
            w.wake();
        }
    }
}

/// What a dialling server says first.
struct Hello {
    my_id: u64,
    my_address: PeerAddress,
    /// The dialler authenticates with quorum SASL next.
    sasl: bool,
}

impl Hello {
    /// Magic, id, then the address as a u16-length-prefixed `host:port`.
    fn encode(&self) -> Vec<u8> {
        let address = self.my_address.to_string();
        let mut hello = Vec::with_capacity(14 + address.len());
        let magic = if self.sasl { HANDSHAKE_MAGIC_SASL } else { HANDSHAKE_MAGIC };
        hello.extend_from_slice(&magic.to_le_bytes());
        hello.extend_from_slice(&self.my_id.to_le_bytes());
        hello.extend_from_slice(&(address.len() as u16).to_le_bytes());
        hello.extend_from_slice(address.as_bytes());
        hello
    }
}

/// Parses `host:port` or `[v6]:port` as a handshake carries it.
fn parse_address(text: &str) -> Option<PeerAddress> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => rest.split_once("]:")?,
        None => text.rsplit_once(':')?,
    };
    Some(PeerAddress { host: host.to_string(), port: port.parse().ok()? })
}

/// What [`dial_loop`] needs to keep a link to one peer.
struct DialledLink {
    /// The encoded [`Hello`].
    hello: Vec<u8>,
    peer: u64,
    connect_timeout: Duration,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
}

/// How a dialled connection ended.
enum Dialled {
    /// The handshake could not be written: the link never came up.
    Unreachable,
    /// TLS or SASL refused the link (the reason); it never came up.
    Refused(String),
    /// The link was up and failed.
    Lost,
}

/// Keeps a connection to one peer open and writes its outbox to it.
async fn dial_loop(link: DialledLink, outbox: Rc<RefCell<Outbox>>, deliver: Deliver) {
    let DialledLink { hello, peer, connect_timeout, tls, sasl } = link;
    let sasl = sasl.as_deref();
    let mut failures = 0u32;
    // Links refused in a row by a peer that is up (TLS or SASL); 0 once it is down or linked.
    let mut refusals = 0u32;
    let mut unresolvable = false;
    loop {
        if refusals > 0 {
            glommio::timer::sleep(refused_redial_wait(refusals)).await;
        } else if failures > 0 {
            glommio::timer::sleep(redial_wait(failures)).await;
        }
        let address = outbox.borrow().address.clone();
        let addr = match address.resolve().await {
            Ok(addr) => {
                if std::mem::take(&mut unresolvable) {
                    log::info!("server {peer}: {address} resolves to {addr} now");
                }
                addr
            }
            Err(e) => {
                if !unresolvable {
                    log::warn!(
                        "server {peer}: cannot resolve {address}: {e}; retrying (every {REDIAL_INTERVAL_MAX:?} at most)"
                    );
                    unresolvable = true;
                }
                failures += 1;
                continue;
            }
        };
        let stream = glommio::timer::timeout(connect_timeout, TcpStream::connect(addr)).await;
        let Ok(stream) = stream else {
            failures += 1;
            refusals = 0;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let dialled_at = Instant::now();
        let dialled = match &tls {
            None => write_link(stream, &hello, sasl, &outbox).await,
            Some(tls) => match tls.connect(&address.host, stream).await {
                Ok(stream) => write_link(stream, &hello, sasl, &outbox).await,
                Err(e) => Dialled::Refused(format!("sslQuorum: {e}")),
            },
        };
        match dialled {
            Dialled::Lost if dialled_at.elapsed() < LINK_LOST_AS_REFUSED => {
                if refusals == 0 {
                    log::warn!(
                        "server {peer}: the peer link to {addr} was closed by the peer at once (refused?); retrying (every {REFUSED_REDIAL_INTERVAL_MAX:?} at most)"
                    );
                }
                refusals += 1;
                outbox_down(&outbox, &deliver, peer);
                continue;
            }
            Dialled::Lost => {}
            Dialled::Unreachable => {
                failures += 1;
                refusals = 0;
                continue;
            }
            Dialled::Refused(reason) => {
                if refusals == 0 {
                    log::warn!(
                        "server {peer}: no peer link to {addr}: {reason}; retrying (every {REFUSED_REDIAL_INTERVAL_MAX:?} at most)"
                    );
                }
                refusals += 1;
                continue;
            }
        }
        if std::mem::take(&mut refusals) > 0 {
            log::info!("server {peer}: the peer link to {addr} was up again");
        }
        log::info!("peer link to server {peer} at {addr} lost");
        outbox_down(&outbox, &deliver, peer);
        failures = 1;
    }
}

/// Marks the link to `peer` down: what was queued for it is dropped, and the node is told.
fn outbox_down(outbox: &RefCell<Outbox>, deliver: &Deliver, peer: u64) {
    {
        let mut o = outbox.borrow_mut();
        o.connected = false;
        o.bytes.clear();
    }
    deliver(PeerInput::LinkDown { peer });
}

/// Writes the hello on a freshly dialled connection (and authenticates with `sasl`), then
/// the outbox as it fills until the connection fails.
async fn write_link(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    hello: &[u8],
    sasl: Option<&QuorumSasl>,
    outbox: &RefCell<Outbox>,
) -> Dialled {
    // A TLS stream may keep what it was given until flushed; a plain socket's flush is a no-op.
    if stream.write_all(hello).await.is_err() || stream.flush().await.is_err() {
        return Dialled::Unreachable;
    }
    if let Some(sasl) = sasl {
        if let Err(reason) = quorum_sasl::authenticate(&mut stream, sasl).await {
            return Dialled::Refused(format!("quorum SASL: {reason}"));
        }
    }
    outbox.borrow_mut().connected = true;
    log::debug!("peer link up");
    let mut taken = SendQueue::default();
    loop {
        poll_fn(|cx| {
            let mut o = outbox.borrow_mut();
            if o.bytes.is_empty() {
                o.waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                o.bytes.move_to(&mut taken);
                Poll::Ready(())
            }
        })
        .await;
        if taken.write_to(&mut stream, |_| {}).await.is_err() || stream.flush().await.is_err() {
            return Dialled::Lost;
        }
    }
}

async fn accept_loop(listener: TcpListener, net: PeerNet) {
    loop {
        let stream = crate::listen::accept(&listener, "quorum or election port").await;
        role_stats::spawn(Role::Data, accept_link(stream, net.clone())).detach();
    }
}

/// Serves one accepted connection: with `sslQuorum`, only once the TLS handshake verified the
/// dialler's certificate. The whole pre-authentication phase (TLS handshake, host name check,
/// handshake, quorum SASL) runs under one deadline ([`serve_once_admitted`]):
/// a connection that stalls anywhere before it is admitted is refused and closed then. A
/// refusal is logged before the connection is closed.
async fn accept_link(stream: TcpStream, net: PeerNet) {
    let Ok(from) = stream.peer_addr() else { return };
    match net.inner.tls.clone() {
        None => serve_once_admitted(from, &net, admit_link(stream, from, &net)).await,
        Some(tls) => {
            let secured_and_admitted = async {
                match tls.accept(stream, from.ip()).await {
                    Ok(stream) => admit_link(stream, from, &net).await,
                    Err(e) => {
                        net.refused(from, format!("(sslQuorum) {e}"));
                        None
                    }
                }
            };
            serve_once_admitted(from, &net, secured_and_admitted).await
        }
    }
}

/// Runs `admission` (everything before a link from `peer` is admitted) under the
/// pre-authentication deadline, then reads the admitted link's frames; once the deadline
/// passes first, the refusal is logged and the connection dropped.
async fn serve_once_admitted<S: AsyncRead + Unpin>(
    peer: SocketAddr,
    net: &PeerNet,
    admission: impl std::future::Future<Output = Option<(AdmittedLink<S>, u64)>>,
) {
    let limit = net.pre_authentication_limit();
    let admitted = futures_lite::future::or(admission, async {
        glommio::timer::sleep(limit).await;
        net.refused(peer, format!("not admitted within {limit:?} (TLS, handshake and SASL together)"));
        None
    })
    .await;
    if let Some((stream, id)) = admitted {
        read_frames(stream, id, net.clone()).await
    }
}

/// What a dialler says first, as read by the accepting side.
struct ReadHello {
    magic: u32,
    from: u64,
    address: Option<PeerAddress>,
}

/// Reads a dialler's [`Hello`]; Err names what was wrong with it.
async fn read_hello(stream: &mut (impl AsyncRead + Unpin)) -> Result<ReadHello, String> {
    let mut hello = [0u8; 14];
    stream.read_exact(&mut hello).await.map_err(|e| format!("no handshake: {e}"))?;
    let magic = u32::from_le_bytes(hello[..4].try_into().expect("4 bytes"));
    let from = u64::from_le_bytes(hello[4..12].try_into().expect("8 bytes"));
    let address_len = u16::from_le_bytes([hello[12], hello[13]]) as usize;
    if address_len > HANDSHAKE_ADDRESS_BYTES_MAX {
        return Err(format!(
            "bad handshake: an address of {address_len} bytes (at most {HANDSHAKE_ADDRESS_BYTES_MAX})"
        ));
    }
    let mut address = vec![0u8; address_len];
    stream.read_exact(&mut address).await.map_err(|e| format!("no handshake: {e}"))?;
    let address = std::str::from_utf8(&address).ok().and_then(parse_address);
    Ok(ReadHello { magic, from, address })
}

/// An accepted connection, buffered for reading frames.
type AdmittedLink<S> = futures_lite::io::BufReader<S>;

/// Reads the dialler's handshake from a connection accepted from `peer` and authenticates it
/// (quorum SASL): the link and the dialler's server id, or `None` once the refusal is logged.
/// Unbounded in time: [`accept_link`] puts the deadline around it.
async fn admit_link<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    net: &PeerNet,
) -> Option<(AdmittedLink<S>, u64)> {
    let mut stream = futures_lite::io::BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    match admission(&mut stream, net).await {
        Ok(from) => {
            log::debug!("peer link from server {from} at {peer} admitted");
            Some((stream, from))
        }
        Err(reason) => {
            net.refused(peer, reason);
            None
        }
    }
}

/// The handshake and quorum SASL of [`admit_link`]: the dialler's server id, or why it is
/// refused.
async fn admission(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), net: &PeerNet) -> Result<u64, String> {
    let ReadHello { magic, from, address } = read_hello(stream).await?;
    let acceptable = net.knows(from) || (net.inner.accept_unknown && address.is_some());
    let offers_sasl = magic == HANDSHAKE_MAGIC_SASL;
    if OLDER_HANDSHAKE_MAGICS.contains(&magic) {
        return Err(format!(
            "server {from} speaks an older ringkeeper peer protocol (magic {magic:#x}; this build speaks {HANDSHAKE_MAGIC:#x}): every member of an ensemble must run a build with the same peer protocol"
        ));
    }
    if !(magic == HANDSHAKE_MAGIC || offers_sasl) || !acceptable || from == net.inner.my_id {
        return Err(format!("bad handshake (magic {magic:#x}, server id {from})"));
    }
    quorum_sasl::admit(stream, from, offers_sasl, net.inner.sasl.as_deref())
        .await
        .map_err(|reason| format!("server {from} (quorum SASL): {reason}"))?;
    if let Some(address) = address.filter(|_| !net.knows(from)) {
        log::info!("server {from} at {address} connected (not in the configuration yet): dialling it back");
        net.add_peer(from, address);
    }
    Ok(from)
}

/// Reads frames from an admitted link (from server `from`) until it fails.
async fn read_frames(mut stream: AdmittedLink<impl AsyncRead + Unpin>, from: u64, net: PeerNet) {
    let deliver = net.inner.deliver.clone();
    loop {
        let mut head = [0u8; 5];
        if stream.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let kind = match head[4] {
            0 => FrameKind::Zab,
            1 => FrameKind::Relay,
            other => {
                log::warn!("closing the link from server {from}: unknown frame kind {other}");
                break;
            }
        };
        if len <= 1 || len > FRAME_BYTES_MAX {
            log::warn!("closing the link from server {from}: frame of {len} bytes");
            break;
        }
        let mut tag = [0u8; 1];
        if stream.read_exact(&mut tag).await.is_err() {
            break;
        }
        if kind == FrameKind::Zab && !zab::msg::may_be_large(tag[0]) && len > CONTROL_FRAME_BYTES_MAX {
            log::warn!("closing the link from server {from}: ZAB message {} of {len} bytes", tag[0]);
            break;
        }
        let Some(payload) = read_payload(&mut stream, tag[0], len - 1).await else { break };
        deliver(PeerInput::Frame { from, kind, payload });
    }
    deliver(PeerInput::LinkDown { peer: from });
}

/// Reads the rest of a `payload_len`-byte payload whose first byte is `first`, growing the
/// buffer with the bytes received ([`FRAME_GROWTH_BYTES`] ahead at most); `None` if the
/// connection ends first.
async fn read_payload(
    stream: &mut (impl futures_lite::AsyncRead + Unpin),
    first: u8,
    payload_len: usize,
) -> Option<Vec<u8>> {
    let mut payload = Vec::with_capacity(payload_len.min(FRAME_GROWTH_BYTES));
    payload.push(first);
    while payload.len() < payload_len {
        let chunk = (payload_len - payload.len()).min(FRAME_GROWTH_BYTES);
        let start = payload.len();
        payload.resize(start + chunk, 0);
        stream.read_exact(&mut payload[start..]).await.ok()?;
    }
    Some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redial_backs_off_from_the_first_interval_to_the_cap() {
        let waits: Vec<_> = (1..=6).map(redial_wait).collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(waits, [ms(20), ms(40), ms(80), ms(160), ms(200), ms(200)]);
        assert_eq!(redial_wait(1000), REDIAL_INTERVAL_MAX);
    }

    #[test]
    fn refused_links_back_off_from_200_ms_to_5_s() {
        let waits: Vec<_> = (1..=7).map(refused_redial_wait).collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(waits, [ms(200), ms(400), ms(800), ms(1600), ms(3200), ms(5000), ms(5000)]);
        assert_eq!(refused_redial_wait(u32::MAX), REFUSED_REDIAL_INTERVAL_MAX);
    }

    #[test]
    fn handshake_addresses_parse_back() {
        for host in ["zk-1.zk", "127.0.0.1", "fe80::1"] {
            let address = PeerAddress { host: host.into(), port: 2888 };
            assert_eq!(parse_address(&address.to_string()), Some(address));
        }
        assert_eq!(parse_address("nocolon"), None);
    }

    #[test]
    fn addresses_print_as_written_with_ipv6_in_brackets() {
        assert_eq!(PeerAddress { host: "zk-1.zk".into(), port: 2888 }.to_string(), "zk-1.zk:2888");
        assert_eq!(PeerAddress { host: "fe80::1".into(), port: 2888 }.to_string(), "[fe80::1]:2888");
    }
}
