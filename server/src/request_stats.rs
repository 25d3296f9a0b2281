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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts};
use ringkeeper_engine::proto::xid;

use crate::four_letter::Latency;

/// Server-wide request counters, shared by every network core.
#[derive(Debug)]
pub struct RequestStats {
    /// Requests received and not answered yet.
    outstanding: AtomicU64,
    /// Latency samples, microseconds (min starts at `u64::MAX`: no sample yet).
    min_us: AtomicU64,
    max_us: AtomicU64,
    total_us: AtomicU64,
    count: AtomicU64,
    /// Every sample, in milliseconds, for the metrics endpoint (`request_latency_ms`).
    pub histogram: Histogram,
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
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
            total_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
            histogram: millisecond_histogram(
                "request_latency_ms",
                "Request latency on the server: request read to reply handed to the socket writer, ms",
            ),
        }
    }
}

impl RequestStats {
    fn received(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    fn answered(&self, latency: Duration) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.min_us.fetch_min(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.histogram.observe(us as f64 / 1000.0);
    }

    fn abandoned(&self, requests: usize) {
        self.outstanding.fetch_sub(requests as u64, Ordering::Relaxed);
    }

    /// Requests received and not answered yet (`Outstanding:`, `zk_outstanding_requests`).
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Latency as the four-letter words print it, in milliseconds. The average keeps the
    /// sub-millisecond part (Apache's samples are whole milliseconds, so its average of
    /// sub-millisecond requests is 0): the total is summed in microseconds.
    pub fn latency(&self) -> Latency {
        let count = self.count.load(Ordering::Relaxed);
        let min_us = self.min_us.load(Ordering::Relaxed);
        Latency {
            min_ms: if count == 0 { 0 } else { min_us / 1000 },
            max_ms: self.max_us.load(Ordering::Relaxed) / 1000,
            total_ms: self.total_us.load(Ordering::Relaxed) / 1000,
            count,
        }
    }

    /// `srst`: latency starts over (outstanding requests stay counted; the metrics
    /// histogram is a Prometheus counter and never goes back).
    pub fn reset_latency(&self) {
        self.min_us.store(u64::MAX, Ordering::Relaxed);
        self.max_us.store(0, Ordering::Relaxed);
        self.total_us.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }
}

/// The arrival times of one connection's requests that have no reply yet, oldest first.
#[derive(Debug, Default)]
pub struct PendingReplies {
    arrived: VecDeque<Instant>,
    /// The connect request is answered by a ConnectResponse, which has no reply header.
    connect_answered: bool,
}

impl PendingReplies {
    /// A request (the connect request included) was read off the socket.
    pub fn received(&mut self, stats: &RequestStats) {
        self.arrived.push_back(Instant::now());
        stats.received();
    }

    /// `frame` (length prefix included) is being handed to the writer: when it is a reply,
    /// the oldest pending request is answered.
    pub fn sending(&mut self, frame: &[u8], stats: &RequestStats) {
        let is_reply = if self.connect_answered {
            frame
                .get(4..8)
                .is_some_and(|x| i32::from_be_bytes(x.try_into().expect("4 bytes")) != xid::NOTIFICATION)
        } else {
            self.connect_answered = true;
            true
        };
        if is_reply {
            if let Some(arrived) = self.arrived.pop_front() {
                stats.answered(arrived.elapsed());
            }
        }
    }

    /// The connection is gone: its unanswered requests are no longer outstanding.
    pub fn abandon(&mut self, stats: &RequestStats) {
        stats.abandoned(self.arrived.len());
        self.arrived.clear();
    }
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
        let stats = RequestStats::default();
        let mut pending = PendingReplies::default();
        pending.received(&stats); // connect
        pending.received(&stats);
        pending.received(&stats);
        assert_eq!(stats.outstanding(), 3);
        // The ConnectResponse starts with the protocol version 0, whatever it holds.
        pending.sending(&reply(0), &stats);
        pending.sending(&reply(xid::NOTIFICATION), &stats);
        assert_eq!(stats.outstanding(), 2);
        pending.sending(&reply(1), &stats);
        assert_eq!((stats.outstanding(), stats.latency().count), (1, 2));
        pending.abandon(&stats);
        assert_eq!(stats.outstanding(), 0);
        assert_eq!(stats.histogram.get_sample_count(), 2);
        stats.reset_latency();
        assert_eq!(stats.latency(), Latency::default());
    }
}
