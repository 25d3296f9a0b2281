//! Network role: owns client sockets on one core.
//!
//! Connections of a TLS listener (`secureClientPort`, `client.portUnification`) are secured
//! by [`crate::tls`] before their first read; the ids their certificate authenticated go with
//! the ConnectRequest.
//!
//! In: TCP connections (each network core accepts on its duplicate of the one client-port socket), and `Vec<ToNet>` batches
//! from the data role. Out: `ToData` messages. Each connection has a reader task (framing
//! through a read buffer, size limit, connect decode, four-letter words) and a writer task that coalesces every
//! queued frame into one socket write. Invariants: a frame longer than `jute.maxbuffer` or
//! one that cannot be decoded closes only its own connection; bytes for a connection are
//! written in the order the data role emitted them; `maxClientCnxns` per client IP holds
//! across all network cores.
//!
//! Slow clients: a connection that has not sent its whole first frame (connect request or
//! four-letter word) within `nio.sessionlessCnxnTimeout` is closed, as Apache's NIO factory
//! closes sessionless connections; after the handshake, a client that trickles a frame
//! without completing it is ended by its session's expiry (only whole requests touch it).
//!
//! Backpressure: a connection's reader takes its next request frame only while the replies
//! waiting for that client fit `ringkeeper.client.outboxBytesMax` ([`Outbox::may_take_request`]),
//! so a client that does not read its replies stops being read instead of growing the
//! server's memory; and no connection on any core is read while `globalOutstandingLimit`
//! requests are unanswered (Apache's throttle). Watch notifications cannot be held back (the
//! data role emits them on other clients' writes): one arriving while the outbox holds more
//! than [`NOTIFICATION_OVERFLOW_FACTOR`] times the bound closes the connection instead, as a
//! client that far behind has stopped reading.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use ringkeeper_engine::conn::ClientConn;
use ringkeeper_engine::proto::{ConnectRequest, Id, Jute};
use ringkeeper_engine::FastMap;

use crate::four_letter::FOUR_LETTER_WORDS;
use crate::link;
use crate::messages::{NewConnection, ToData, ToNet};
use crate::request_stats::{PendingReplies, RequestStats};
use crate::role_stats::{self, Role};
use crate::send_queue::SendQueue;
use crate::tls::{ClientStream, Transport};

/// Read buffer of a client connection: the frames a pipelining client sent together (and
/// each frame's length prefix with its body) come out of one socket read.
const CLIENT_READ_BUFFER_BYTES: usize = 8 << 10;

/// A watch notification for a connection whose outbox holds more than this many times
/// `outbox_bytes_max` closes the connection (its replies can overshoot the bound by the
/// requests already in flight when reading stopped; notifications past this are unbounded).
const NOTIFICATION_OVERFLOW_FACTOR: usize = 4;

/// How often a reader held back by `globalOutstandingLimit` looks again (the count falls on
/// whichever core answers, so there is no one waker to register with).
const GLOBAL_THROTTLE_RECHECK: std::time::Duration = std::time::Duration::from_millis(1);

/// Limits a network role enforces.
#[derive(Debug, Clone)]
pub struct NetworkLimits {
    pub jute_max_buffer: usize,
    /// 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `nio.sessionlessCnxnTimeout`: how long a new connection may take to send its first
    /// frame (connect request or four-letter word) before it is closed.
    pub sessionless_timeout: std::time::Duration,
    /// `ringkeeper.client.outboxBytesMax`: reply bytes a connection may have waiting for its
    /// client before the server stops reading that connection's requests.
    pub outbox_bytes_max: usize,
    /// `globalOutstandingLimit`: unanswered requests (all connections) before every
    /// connection stops being read.
    pub global_outstanding_limit: u64,
}

/// Open connections per client IP, shared by all network cores.
pub type ConnectionCounts = Arc<Mutex<HashMap<IpAddr, u32>>>;

/// What a connection's writer has to do.
struct Outbox {
    /// Frames waiting for the writer, in order (a pipelining client's small replies share
    /// one socket write).
    queued: SendQueue,
    /// Bytes the writer took and has not finished writing yet.
    writing: usize,
    close: bool,
    waker: Option<Waker>,
    /// The reader, waiting for the outbox to drain below the bound.
    reader_waker: Option<Waker>,
    /// Expected size of the next reply: the last reply's, or half the previous estimate when
    /// that is larger (replies of a client fetching large znodes stay expensive for a while).
    reply_estimate: usize,
    /// The writer finished (closed by the data role, or the socket failed).
    done: bool,
    done_waker: Option<Waker>,
    /// Requests of this connection waiting for their reply (latency, outstanding).
    pending: PendingReplies,
    /// `bytes` hold the reply of a request traced hop by hop ([`crate::hops`]).
    traced_reply: bool,
}

type SharedOutbox = Rc<RefCell<Outbox>>;

impl Outbox {
    /// Bytes waiting for the client: queued for the writer, or being written.
    fn waiting_bytes(&self) -> usize {
        self.queued.len() + self.writing
    }

    /// Whether the reader may take another request: the replies waiting, plus the replies the
    /// requests already taken are expected to produce, fit `bound`. A connection with nothing
    /// in flight may always take one request, however large its replies.
    fn may_take_request(&self, bound: usize) -> bool {
        let waiting = self.waiting_bytes();
        let in_flight = self.pending.waiting();
        waiting <= bound
            && (in_flight == 0
                || waiting.saturating_add(in_flight.saturating_mul(self.reply_estimate)) <= bound)
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.reader_waker.take() {
            w.wake();
        }
    }
}

struct NetworkCore {
    index: usize,
    to_data: link::Sender<ToData>,
    outboxes: RefCell<FastMap<ClientConn, SharedOutbox>>,
    limits: NetworkLimits,
    counts: ConnectionCounts,
    stats: Arc<RequestStats>,
    /// Per-core number of the next connection.
    next_local: Cell<u64>,
}

/// Runs the network role on the current executor until the process ends, serving every
/// listener with its transport (plain, TLS, or either).
pub async fn run(
    index: usize,
    listeners: Vec<(TcpListener, Transport)>,
    to_data: link::Sender<ToData>,
    from_data: link::Receiver<Vec<ToNet>>,
    limits: NetworkLimits,
    counts: ConnectionCounts,
    stats: Arc<RequestStats>,
) {
    let core = Rc::new(NetworkCore {
        index,
        to_data,
        outboxes: RefCell::new(FastMap::default()),
        limits,
        counts,
        stats,
        next_local: Cell::new(1),
    });
    role_stats::spawn(Role::Network, dispatch(core.clone(), from_data)).detach();
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|(listener, transport)| {
            role_stats::spawn(Role::Network, accept_loop(core.clone(), listener, transport))
        })
        .collect();
    for task in accepting {
        task.await;
    }
}

async fn accept_loop(core: Rc<NetworkCore>, listener: TcpListener, transport: Transport) {
    loop {
        let stream = crate::listen::accept(&listener, "client port").await;
        let Ok(peer) = stream.peer_addr() else { continue };
        if !core.admit(peer.ip()) {
            log::warn!("too many connections from {} - max is {}", peer.ip(), core.limits.max_client_cnxns);
            drop(stream);
            continue;
        }
        let conn = ClientConn { core: core.index as u32, local: core.next_local.get() };
        core.next_local.set(conn.local + 1);
        let _ = stream.set_nodelay(true);
        role_stats::spawn(Role::Network, serve(core.clone(), stream, transport.clone(), conn, peer)).detach();
    }
}

impl NetworkCore {
    /// Hands `message` to the data role (counted in its queue depth, [`role_stats`]).
    async fn send_to_data(&self, message: ToData) -> Result<(), link::NotSent> {
        role_stats::arrived(Role::Data, 1);
        self.to_data.send(message).await
    }

    fn admit(&self, ip: IpAddr) -> bool {
        let mut counts = self.counts.lock().expect("connection counts lock");
        let count = counts.entry(ip).or_insert(0);
        if self.limits.max_client_cnxns != 0 && *count >= self.limits.max_client_cnxns {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut counts = self.counts.lock().expect("connection counts lock");
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }

    /// Queues `bytes` (or the close, `None`) for `conn`'s writer; `now` is when the batch
    /// holding it reached this core (a reply's latency ends there).
    fn outbox_push(&self, conn: ClientConn, bytes: Option<Vec<u8>>, now: Instant) {
        let outbox = self.outboxes.borrow().get(&conn).cloned();
        if let Some(outbox) = outbox {
            let mut o = outbox.borrow_mut();
            if let Some(b) = &bytes {
                o.traced_reply |= crate::hops::recorder().reply_out(conn, b);
                if o.pending.sending(b, now) {
                    o.reply_estimate = b.len().max(o.reply_estimate / 2);
                    o.wake_reader();
                } else if o.waiting_bytes() > NOTIFICATION_OVERFLOW_FACTOR * self.limits.outbox_bytes_max {
                    log::warn!(
                        "closing connection {conn}: a watch notification found {} bytes not read by the client",
                        o.waiting_bytes()
                    );
                    o.queued.clear();
                    o.close = true;
                    if let Some(w) = o.waker.take() {
                        w.wake();
                    }
                    return;
                }
            }
            match bytes {
                Some(b) => o.queued.push(b),
                None => o.close = true,
            }
            o.pending.set_output_pending(o.waiting_bytes() > 0);
            if let Some(w) = o.waker.take() {
                w.wake();
            }
        }
    }
}

/// Routes data-role output to connection writers, in arrival order. The batches queued when
/// it wakes are routed together, with one clock reading.
async fn dispatch(core: Rc<NetworkCore>, from_data: link::Receiver<Vec<ToNet>>) {
    while let Some(first) = from_data.recv().await {
        let now = Instant::now();
        let mut next = Some(first);
        while let Some(batch) = next {
            role_stats::taken(Role::Network, batch.len() as u64);
            for item in batch {
                match item {
                    ToNet::Send { conn, bytes } => core.outbox_push(conn, Some(bytes), now),
                    ToNet::Close { conn } => core.outbox_push(conn, None, now),
                }
            }
            next = from_data.recv_ready().await;
        }
    }
}

/// Writes everything queued for one connection, coalescing frames into single writes.
async fn write_loop(
    outbox: SharedOutbox,
    mut writer: futures_lite::io::WriteHalf<ClientStream>,
    conn: ClientConn,
) {
    // The frames being written.
    let mut taken = SendQueue::default();
    loop {
        let (close, traced_reply) = poll_fn(|cx| {
            let mut o = outbox.borrow_mut();
            if o.queued.is_empty() && !o.close {
                o.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            o.writing = o.queued.len();
            o.queued.move_to(&mut taken);
            Poll::Ready((o.close, std::mem::take(&mut o.traced_reply)))
        })
        .await;
        // Each chunk written makes room for the reader's next request.
        let written = taken.write_to(&mut writer, |len| {
            let mut o = outbox.borrow_mut();
            o.writing -= len;
            o.wake_reader();
        });
        if written.await.is_err() {
            break;
        }
        if traced_reply {
            crate::hops::recorder().reply_written(conn);
        }
        {
            let o = outbox.borrow();
            o.pending.set_output_pending(!o.queued.is_empty());
        }
        if close {
            let _ = writer.flush().await;
            break;
        }
    }
    let _ = writer.close().await;
    let mut o = outbox.borrow_mut();
    o.done = true;
    if let Some(w) = o.done_waker.take() {
        w.wake();
    }
}

/// Resolves once the connection's writer has finished.
async fn writer_finished(outbox: SharedOutbox) -> Result<(), String> {
    poll_fn(|cx| {
        let mut o = outbox.borrow_mut();
        if o.done {
            Poll::Ready(Ok(()))
        } else {
            o.done_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

/// Whether the first four bytes of a connection are a four-letter word.
fn four_letter_word(first: &[u8; 4]) -> bool {
    FOUR_LETTER_WORDS.iter().any(|w| w.as_bytes() == first)
}

async fn serve(
    core: Rc<NetworkCore>,
    stream: TcpStream,
    transport: Transport,
    conn: ClientConn,
    peer: SocketAddr,
) {
    let handshaking = !matches!(transport, Transport::Plain);
    if handshaking {
        core.stats.tls_handshake_started();
    }
    let accepted = transport.accept(stream).await;
    if handshaking {
        core.stats.tls_handshake_ended();
    }
    let (stream, authenticated) = match accepted {
        Ok((stream, authenticated)) => {
            if matches!(stream, ClientStream::Plain(_)) {
                core.stats.connection_without_tls(peer.ip());
            }
            (stream, authenticated)
        }
        Err(reason) => {
            core.stats.authentication_failed();
            log::warn!("closing connection {conn} from {peer}: {reason}");
            core.release(peer.ip());
            return;
        }
    };
    let outbox: SharedOutbox = Rc::new(RefCell::new(Outbox {
        queued: SendQueue::default(),
        writing: 0,
        close: false,
        waker: None,
        reader_waker: None,
        reply_estimate: core.limits.outbox_bytes_max / INITIAL_REQUESTS_IN_FLIGHT,
        done: false,
        done_waker: None,
        pending: PendingReplies::open(conn, core.stats.clone()),
        traced_reply: false,
    }));
    core.outboxes.borrow_mut().insert(conn, outbox.clone());
    let (reader, writer) = futures_lite::io::split(stream);
    let reader = futures_lite::io::BufReader::with_capacity(CLIENT_READ_BUFFER_BYTES, reader);
    let writer_task = role_stats::spawn(Role::Network, write_loop(outbox.clone(), writer, conn));
    let reason = futures_lite::future::or(
        read_loop(&core, &outbox, reader, conn, peer, authenticated),
        writer_finished(outbox.clone()),
    )
    .await;
    if let Err(reason) = reason {
        log::info!("closing connection {conn} from {peer}: {reason}");
    }
    // Stop reading; let the writer drain what is queued, then close.
    {
        let mut o = outbox.borrow_mut();
        o.close = true;
        if let Some(w) = o.waker.take() {
            w.wake();
        }
    }
    writer_task.await;
    core.outboxes.borrow_mut().remove(&conn);
    core.release(peer.ip());
    let _ = core.send_to_data(ToData::Disconnected { conn }).await;
}

type ClientReader = futures_lite::io::BufReader<futures_lite::io::ReadHalf<ClientStream>>;

async fn read_exact_or_eof(reader: &mut ClientReader, buf: &mut [u8]) -> Result<bool, String> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err("connection closed mid-frame".into()),
            Ok(n) => filled += n,
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Ok(true)
}

/// `read`, or an error once `deadline` (the end of `nio.sessionlessCnxnTimeout`) passes.
async fn before_handshake_deadline(
    deadline: std::time::Instant,
    read: impl std::future::Future<Output = Result<bool, String>>,
) -> Result<bool, String> {
    futures_lite::future::or(read, async {
        glommio::timer::sleep(deadline.saturating_duration_since(std::time::Instant::now())).await;
        Err("no connect request within nio.sessionlessCnxnTimeout".to_string())
    })
    .await
}

/// Requests a new connection may have in flight before its first reply tells how large its
/// replies are (the initial reply estimate is the outbox bound divided by this).
const INITIAL_REQUESTS_IN_FLIGHT: usize = 16;

/// Waits until `outbox` may take another request and the server is under
/// `globalOutstandingLimit`; while it waits, the connection shows as throttled in `cons`.
async fn request_admitted(core: &NetworkCore, outbox: &SharedOutbox) {
    poll_fn(|cx| {
        let mut o = outbox.borrow_mut();
        let admitted = o.may_take_request(core.limits.outbox_bytes_max);
        o.pending.set_throttled(!admitted);
        if admitted {
            Poll::Ready(())
        } else {
            o.reader_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await;
    if core.stats.outstanding() >= core.limits.global_outstanding_limit {
        outbox.borrow().pending.set_throttled(true);
        while core.stats.outstanding() >= core.limits.global_outstanding_limit {
            glommio::timer::sleep(GLOBAL_THROTTLE_RECHECK).await;
        }
        outbox.borrow().pending.set_throttled(false);
    }
}

/// Reads frames until EOF or a protocol violation. Err names the violation.
async fn read_loop(
    core: &NetworkCore,
    outbox: &SharedOutbox,
    mut reader: ClientReader,
    conn: ClientConn,
    peer: SocketAddr,
    authenticated: Vec<Id>,
) -> Result<(), String> {
    let mut authenticated = Some(authenticated);
    let mut first = true;
    let mut requests_read = 0;
    let mut length = [0u8; 4];
    let handshake_deadline = std::time::Instant::now() + core.limits.sessionless_timeout;
    loop {
        if !first {
            request_admitted(core, outbox).await;
        }
        let read_length = read_exact_or_eof(&mut reader, &mut length);
        let read = if first {
            before_handshake_deadline(handshake_deadline, read_length).await
        } else {
            read_length.await
        };
        if !read? {
            return Ok(());
        }
        if first && four_letter_word(&length) {
            // The data role answers and closes; the writer finishing ends this connection.
            let _ = core.send_to_data(ToData::FourLetter { conn, word: length }).await;
            return std::future::pending().await;
        }
        let len = i32::from_be_bytes(length);
        if len < 0 || len as usize > core.limits.jute_max_buffer {
            return Err(format!(
                "packet length {len} is out of range (jute.maxbuffer {})",
                core.limits.jute_max_buffer
            ));
        }
        let mut frame = vec![0u8; len as usize];
        let read_frame = read_exact_or_eof(&mut reader, &mut frame);
        let read = if first {
            before_handshake_deadline(handshake_deadline, read_frame).await
        } else {
            read_frame.await
        };
        if !read? && len > 0 {
            return Err("connection closed mid-frame".into());
        }
        let message = if first {
            first = false;
            let request =
                ConnectRequest::from_bytes(&frame).map_err(|e| format!("bad connect request: {e}"))?;
            ToData::Connect {
                conn,
                connect: Box::new(NewConnection {
                    client_ip: peer.ip().to_string(),
                    remote: peer.to_string(),
                    authenticated: authenticated.take().unwrap_or_default(),
                    request,
                }),
            }
        } else {
            ToData::Request { conn, frame, sampled: crate::hops::sample(&mut requests_read) }
        };
        outbox.borrow_mut().pending.received();
        if core.send_to_data(message).await.is_err() {
            return Err("data role is gone".into());
        }
    }
}
