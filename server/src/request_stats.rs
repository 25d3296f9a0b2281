//! Request latency and outstanding requests, measured where Apache measures them: from the
//! moment a request is read off the socket to the moment its reply is handed to the
//! connection's writer (Apache: `Request.createTime` to `FinalRequestProcessor`).
//!
//! The network role does the measuring, on every core, without asking the data role: each
//! connection keeps the arrival times of its requests still waiting for a reply
//! ([`PendingReplies`]), and ZooKeeper answers a connection's requests in order, so the next
//! reply frame on a connection answers its oldest pending request. Watch notifications
//! (xid -1) answer nothing. The totals ([`RequestStats`]) are lock-free atomics shared by the
//! network cores and read by `srvr`/`stat`/`mntr` and the metrics endpoint.
//! Also the millisecond histogram shape every latency metric shares ([`millisecond_histogram`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts};
use ringkeeper_engine::conn::{ClientConn, ConnId};
use ringkeeper_engine::proto::xid;

use crate::four_letter::Latency;

/// Latency samples in microseconds, accumulated lock-free like Apache's `AvgMinMaxCounter`.
#[derive(Debug)]
struct LatencyCounters {
    /// `u64::MAX` while there is no sample.
    min_us: AtomicU64,
    max_us: AtomicU64,
    total_us: AtomicU64,
    count: AtomicU64,
}

impl Default for LatencyCounters {
    fn default() -> Self {
        LatencyCounters {
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
            total_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl LatencyCounters {
    fn record(&self, us: u64) {
        self.min_us.fetch_min(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// In milliseconds, as the four-letter words print it. The average keeps the
    /// sub-millisecond part (Apache's samples are whole milliseconds, so its average of
    /// sub-millisecond requests is 0): the total is summed in microseconds.
    fn latency(&self) -> Latency {
        let count = self.count.load(Ordering::Relaxed);
        let min_us = self.min_us.load(Ordering::Relaxed);
        Latency {
            min_ms: if count == 0 { 0 } else { min_us / 1000 },
            max_ms: self.max_us.load(Ordering::Relaxed) / 1000,
            total_ms: self.total_us.load(Ordering::Relaxed) / 1000,
            count,
        }
    }

    fn reset(&self) {
        self.min_us.store(u64::MAX, Ordering::Relaxed);
        self.max_us.store(0, Ordering::Relaxed);
        self.total_us.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }
}

/// One connection's request figures (`cons`: `queued=`, `lresp=`, `llat=`, `min/avg/maxlat=`).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    outstanding: AtomicU64,
    latency: LatencyCounters,
    last_latency_us: AtomicU64,
    /// When the last reply went out, ms since the server started.
    last_response_ms: AtomicU64,
    /// The reader waits: the connection's replies or the server's outstanding requests are
    /// over their bound (Apache's throttled connection, read interest off).
    throttled: AtomicBool,
    /// Replies are queued for the client and not written yet (write interest on).
    output_pending: AtomicBool,
}

/// Java NIO's `SelectionKey.OP_READ` and `OP_WRITE`, as `cons` prints interest ops.
const OP_READ: u32 = 1;
const OP_WRITE: u32 = 4;

/// What `cons` prints of one connection's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionFigures {
    pub outstanding: u64,
    pub latency: Latency,
    pub last_latency_ms: u64,
    pub last_response_ms: i64,
    /// `cons`'s interest ops: read unless throttled, write while output is queued.
    pub interest_ops: u32,
}

/// Server-wide request counters, shared by every network core.
#[derive(Debug)]
pub struct RequestStats {
    /// Requests received and not answered yet.
    outstanding: AtomicU64,
    latency: LatencyCounters,
    /// Every sample, in milliseconds, for the metrics endpoint (`request_latency_ms`).
    pub histogram: Histogram,
    /// Per open connection (the lock is taken when a connection opens or closes and when
    /// `cons`/`stat` read them, never per request).
    connections: Mutex<HashMap<ClientConn, Arc<ConnectionStats>>>,
    started: Instant,
    /// Sizes of the frames sent to clients (`zk_last/min/max_client_response_size`).
    response_sizes: ResponseSizes,
    /// TLS handshakes under way (`zk_outstanding_tls_handshake`).
    tls_handshakes: AtomicU64,
    /// Connections opened without TLS, from a loopback address and from any other
    /// (`zk_non_mtls_local_conn_count`, `zk_non_mtls_remote_conn_count`).
    non_mtls_local: AtomicU64,
    non_mtls_remote: AtomicU64,
    /// Client TLS handshakes that failed, client certificates refused included
    /// (`zk_auth_failed_count`).
    auth_failed: AtomicU64,
}

/// Sizes of response frames (header and body, not the length prefix) as Apache's
/// `BufferStats` counts them: every frame but the ConnectResponse (replies, pings and watch
/// notifications alike). A frame costs a relaxed store and two relaxed loads; the min and
/// max are written only when they move.
#[derive(Debug)]
struct ResponseSizes {
    /// -1 until the first response.
    last: AtomicI64,
    /// `i64::MAX` until the first response.
    min: AtomicI64,
    max: AtomicI64,
}

impl Default for ResponseSizes {
    fn default() -> Self {
        ResponseSizes { last: AtomicI64::new(-1), min: AtomicI64::new(i64::MAX), max: AtomicI64::new(-1) }
    }
}

impl ResponseSizes {
    fn record(&self, size: i64) {
        self.last.store(size, Ordering::Relaxed);
        if size < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(size, Ordering::Relaxed);
        }
        if size > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(size, Ordering::Relaxed);
        }
    }

    fn reset(&self) {
        self.last.store(-1, Ordering::Relaxed);
        self.min.store(i64::MAX, Ordering::Relaxed);
        self.max.store(-1, Ordering::Relaxed);
    }
}

/// `zk_last_client_response_size`, `zk_min_...` and `zk_max_...`: -1 before any response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseSizeFigures {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

/// Upper bounds of the millisecond histograms (request latency, fsync time).
pub const MILLISECOND_BUCKETS: [f64; 14] =
    [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0];

/// A millisecond histogram for the metrics endpoint.
pub fn millisecond_histogram(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(MILLISECOND_BUCKETS.to_vec()))
        .expect("a valid metric name and increasing buckets")
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            outstanding: AtomicU64::new(0),
            latency: LatencyCounters::default(),
            histogram: millisecond_histogram(
                "request_latency_ms",
                "Request latency on the server: request read to reply handed to the socket writer, ms",
            ),
            connections: Mutex::default(),
            started: Instant::now(),
            response_sizes: ResponseSizes::default(),
            tls_handshakes: AtomicU64::new(0),
            non_mtls_local: AtomicU64::new(0),
            non_mtls_remote: AtomicU64::new(0),
            auth_failed: AtomicU64::new(0),
        }
    }
}

impl RequestStats {
    /// Requests received and not answered yet (`Outstanding:`, `zk_outstanding_requests`).
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Latency over all connections, in milliseconds.
    pub fn latency(&self) -> Latency {
        self.latency.latency()
    }

    /// `srst`: latency and response sizes start over, as Apache's `ServerStats.reset`
    /// (outstanding requests stay counted; the metrics histogram is a Prometheus counter and
    /// never goes back).
    pub fn reset_latency(&self) {
        self.latency.reset();
        self.response_sizes.reset();
    }

    /// Response frame sizes so far.
    pub fn response_sizes(&self) -> ResponseSizeFigures {
        let r = &self.response_sizes;
        let min = r.min.load(Ordering::Relaxed);
        ResponseSizeFigures {
            last: r.last.load(Ordering::Relaxed),
            min: if min == i64::MAX { -1 } else { min },
            max: r.max.load(Ordering::Relaxed),
        }
    }

    /// A TLS handshake started; [`Self::tls_handshake_ended`] when it ends, however.
    pub fn tls_handshake_started(&self) {
        self.tls_handshakes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn tls_handshake_ended(&self) {
        self.tls_handshakes.fetch_sub(1, Ordering::Relaxed);
    }

    /// TLS handshakes under way.
    pub fn outstanding_tls_handshakes(&self) -> u64 {
        self.tls_handshakes.load(Ordering::Relaxed)
    }

    /// A client connection from `peer` opened without TLS: counted as local (loopback) or
    /// remote, where Apache 3.8's Netty connection factory counts them (`channelActive`).
    pub fn connection_without_tls(&self, peer: IpAddr) {
        let counter = if peer.is_loopback() { &self.non_mtls_local } else { &self.non_mtls_remote };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections opened without TLS: (local, remote).
    pub fn non_mtls_connections(&self) -> (u64, u64) {
        (self.non_mtls_local.load(Ordering::Relaxed), self.non_mtls_remote.load(Ordering::Relaxed))
    }

    /// A client's TLS handshake failed or its certificate was refused (Apache 3.8 counts
    /// both in `NettyServerCnxnFactory.CertificateVerifier`).
    pub fn authentication_failed(&self) {
        self.auth_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Failed authentications so far (`zk_auth_failed_count`).
    pub fn auth_failed_count(&self) -> u64 {
        self.auth_failed.load(Ordering::Relaxed)
    }

    /// `crst`: every connection's latency starts over.
    pub fn reset_connection_latency(&self) {
        for c in self.connections.lock().expect("connection stats lock").values() {
            c.latency.reset();
            c.last_latency_us.store(0, Ordering::Relaxed);
        }
    }

    /// What `cons` prints of `conn`'s requests (zeros for a connection not open here, e.g.
    /// a learner's client relayed to this leader).
    pub fn connection(&self, conn: ConnId) -> ConnectionFigures {
        let Some(c) = conn
            .as_client()
            .and_then(|conn| self.connections.lock().expect("connection stats lock").get(&conn).cloned())
        else {
            return ConnectionFigures::default();
        };
        ConnectionFigures {
            outstanding: c.outstanding.load(Ordering::Relaxed),
            latency: c.latency.latency(),
            last_latency_ms: c.last_latency_us.load(Ordering::Relaxed) / 1000,
            last_response_ms: c.last_response_ms.load(Ordering::Relaxed) as i64,
            interest_ops: if c.throttled.load(Ordering::Relaxed) { 0 } else { OP_READ }
                | if c.output_pending.load(Ordering::Relaxed) { OP_WRITE } else { 0 },
        }
    }
}

/// The arrival times of one connection's requests that have no reply yet, oldest first.
#[derive(Debug)]
pub struct PendingReplies {
    arrived: VecDeque<Instant>,
    /// The connect request is answered by a ConnectResponse, which has no reply header.
    connect_answered: bool,
    conn: ClientConn,
    server: Arc<RequestStats>,
    own: Arc<ConnectionStats>,
}

impl PendingReplies {
    /// Starts counting for the new connection `conn`.
    pub fn open(conn: ClientConn, server: Arc<RequestStats>) -> PendingReplies {
        let own = Arc::new(ConnectionStats::default());
        server.connections.lock().expect("connection stats lock").insert(conn, own.clone());
        PendingReplies { arrived: VecDeque::new(), connect_answered: false, conn, server, own }
    }

    /// A request (the connect request included) was read off the socket.
    pub fn received(&mut self) {
        self.arrived.push_back(Instant::now());
        self.server.outstanding.fetch_add(1, Ordering::Relaxed);
        self.own.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// The reader stops (`true`) or resumes taking requests.
    pub fn set_throttled(&self, throttled: bool) {
        self.own.throttled.store(throttled, Ordering::Relaxed);
    }

    /// Output is queued for the writer (`true`), or all of it was written.
    pub fn set_output_pending(&self, pending: bool) {
        self.own.output_pending.store(pending, Ordering::Relaxed);
    }

    /// Requests of this connection without a reply yet.
    pub fn waiting(&self) -> usize {
        self.arrived.len()
    }

    /// `frame` (length prefix included) is being handed to the writer at `now`: when it is a
    /// reply, the oldest pending request is answered. Returns whether it was a reply (false
    /// for a watch notification). The caller reads the clock once for a batch of frames.
    pub fn sending(&mut self, frame: &[u8], now: Instant) -> bool {
        let is_reply = if self.connect_answered {
            self.server.response_sizes.record(frame.len().saturating_sub(4) as i64);
            frame
                .get(4..8)
                .is_some_and(|x| i32::from_be_bytes(x.try_into().expect("4 bytes")) != xid::NOTIFICATION)
        } else {
            self.connect_answered = true;
            true
        };
        let Some(arrived) = is_reply.then(|| self.arrived.pop_front()).flatten() else { return is_reply };
        let us = duration_us(now.saturating_duration_since(arrived));
        let server = &self.server;
        server.outstanding.fetch_sub(1, Ordering::Relaxed);
        server.latency.record(us);
        server.histogram.observe(us as f64 / 1000.0);
        self.own.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.own.latency.record(us);
        self.own.last_latency_us.store(us, Ordering::Relaxed);
        self.own
            .last_response_ms
            .store(now.saturating_duration_since(server.started).as_millis() as u64, Ordering::Relaxed);
        true
    }
}

impl Drop for PendingReplies {
    /// The connection is gone: its unanswered requests are no longer outstanding.
    fn drop(&mut self) {
        self.server.outstanding.fetch_sub(self.arrived.len() as u64, Ordering::Relaxed);
        self.server.connections.lock().expect("connection stats lock").remove(&self.conn);
    }
}

fn duration_us(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(xid: i32) -> Vec<u8> {
        let mut frame = 16i32.to_be_bytes().to_vec();
        frame.extend_from_slice(&xid.to_be_bytes());
        frame.extend_from_slice(&[0; 12]);
        frame
    }

    #[test]
    fn replies_answer_requests_in_order_and_notifications_answer_none() {
        let stats = Arc::new(RequestStats::default());
        let conn = ClientConn { core: 0, local: 7 };
        let mut pending = PendingReplies::open(conn, stats.clone());
        pending.received(); // connect
        pending.received();
        pending.received();
        assert_eq!(stats.outstanding(), 3);
        assert_eq!(stats.connection(ConnId::Client(conn)).outstanding, 3);
        // The ConnectResponse starts with the protocol version 0, whatever it holds.
        assert!(pending.sending(&reply(0), Instant::now()));
        assert!(!pending.sending(&reply(xid::NOTIFICATION), Instant::now()));
        assert_eq!((stats.outstanding(), pending.waiting()), (2, 2));
        assert!(pending.sending(&reply(1), Instant::now()));
        assert_eq!((stats.outstanding(), stats.latency().count), (1, 2));
        assert_eq!(stats.connection(ConnId::Client(conn)).latency.count, 2);
        assert_eq!(stats.histogram.get_sample_count(), 2);
        // Every frame after the ConnectResponse counts its size (the notification too).
        let mut larger = reply(2);
        larger.extend_from_slice(&[0; 8]);
        pending.sending(&larger, Instant::now());
        assert_eq!(stats.response_sizes(), ResponseSizeFigures { last: 24, min: 16, max: 24 });
        stats.reset_connection_latency();
        assert_eq!(stats.connection(ConnId::Client(conn)).latency, Latency::default());
        drop(pending);
        assert_eq!(stats.outstanding(), 0);
        assert_eq!(stats.connection(ConnId::Client(conn)), ConnectionFigures::default());
        stats.reset_latency();
        assert_eq!(stats.latency(), Latency::default());
        assert_eq!(stats.response_sizes(), ResponseSizeFigures { last: -1, min: -1, max: -1 });
    }
}
