//! Per-hop latency of sampled writes: where the time of one write goes between the moment
//! its frame was read off the client socket and the moment its reply was written back.
//!
//! Sampling: each connection's reader marks one request in [`SAMPLE_EVERY`] with the time it
//! was read ([`sample`]); only marked requests read the clock. While no sampled request is in
//! flight every other hook costs one relaxed atomic load; while one is, a hook that may
//! concern it takes an uncontended lock. A sampled request that turns out to be a read (or a
//! write that failed, which logs nothing) is dropped when the data role has run it.
//!
//! Each [`Hop`] is cumulative: µs from network-in of the sampled write, on the member its
//! client is connected to. A leader's (or standalone server's) own client goes
//! `data_in → proposal_sent → log_append → durable → ack_in → commit → reply_out →
//! reply_written` (no proposal or ack standalone); a follower's client goes `data_in →
//! relay_out → reply_in → proposal_in → log_append → durable → commit → reply_out →
//! reply_written` (the leader sends the reply naming the zxid before the proposal, on the
//! same link). `log_append` and `durable` are timed by the log role itself; `commit` is the
//! node's [`Effect::Committed`] (standalone: the data role saw the txn durable). A trace
//! ends at `reply_written`: a hop that comes later is not counted (a member's own `durable`
//! when the others formed the quorum first), so hop counts may differ a little.
//!
//! Hooks (one line each): network.rs ([`sample`], [`HopRecorder::reply_out`],
//! [`HopRecorder::reply_written`]), data_role.rs ([`HopRecorder::request_in`],
//! [`HopRecorder::input`], [`HopRecorder::effects`]), log_role.rs
//! ([`HopRecorder::log_append`], [`HopRecorder::durable`]). They reach the one recorder of
//! the process through [`recorder`], as every executor's `log` calls reach one logger.
//!
//! Out: `mntr` lines `zk_ringkeeper_hop_<hop>_us_p50`, `_p99` and `_count` for each hop with
//! samples ([`HopRecorder::monitor_lines`]; `srst` starts them over), and the histogram
//! `ringkeeper_hop_us{hop="<hop>"}` on the metrics endpoint (never reset).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, HistogramVec};
use ringkeeper_engine::conn::ClientConn;
use ringkeeper_engine::replica::{Effect, Input};
use ringkeeper_engine::zab::{Msg, Relay};

/// One request in this many, per connection, is traced hop by hop.
pub const SAMPLE_EVERY: u32 = 64;
/// Most sampled requests traced at once; further samples are skipped until one finishes.
const TRACES_MAX: usize = 64;
/// A trace not finished this long after network-in is dropped (its connection closed, or
/// its server stopped serving).
const TRACE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest hop recorded, µs (larger values are clamped).
const HOP_US_MAX: u64 = 60_000_000;
/// Upper bounds of the metrics endpoint's hop histogram, µs (10 µs to 328 ms).
const METRIC_BUCKETS: (f64, f64, usize) = (10.0, 2.0, 16);

/// A point on a write's path, in path order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// The data role took the request.
    DataIn,
    /// Follower: the request was relayed to the leader.
    RelayOut,
    /// Follower: the leader's reply (naming the write's zxid) arrived.
    ReplyIn,
    /// Leader: the proposal was handed to the peer links.
    ProposalSent,
    /// Follower: the leader's proposal arrived.
    ProposalIn,
    /// The log role started writing the batch holding the txn.
    LogAppend,
    /// The log role made the txn durable.
    Durable,
    /// Leader: the first follower ack covering the txn arrived.
    AckIn,
    /// The txn is committed here: its reply may go out.
    Commit,
    /// The network core handed the reply to the connection's writer.
    ReplyOut,
    /// The socket write holding the reply returned.
    ReplyWritten,
}

impl Hop {
    /// Every hop, in path order.
    pub const ALL: [Hop; 11] = [
        Hop::DataIn,
        Hop::RelayOut,
        Hop::ReplyIn,
        Hop::ProposalSent,
        Hop::ProposalIn,
        Hop::LogAppend,
        Hop::Durable,
        Hop::AckIn,
        Hop::Commit,
        Hop::ReplyOut,
        Hop::ReplyWritten,
    ];

    /// The name in `mntr` and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Hop::DataIn => "data_in",
            Hop::RelayOut => "relay_out",
            Hop::ReplyIn => "reply_in",
            Hop::ProposalSent => "proposal_sent",
            Hop::ProposalIn => "proposal_in",
            Hop::LogAppend => "log_append",
            Hop::Durable => "durable",
            Hop::AckIn => "ack_in",
            Hop::Commit => "commit",
            Hop::ReplyOut => "reply_out",
            Hop::ReplyWritten => "reply_written",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Marks one request in [`SAMPLE_EVERY`] of a connection (`counter` is the connection's):
/// the time it was read, or None.
pub fn sample(counter: &mut u32) -> Option<Instant> {
    *counter = counter.wrapping_add(1);
    counter.is_multiple_of(SAMPLE_EVERY).then(Instant::now)
}

/// The process's recorder.
pub fn recorder() -> &'static HopRecorder {
    static RECORDER: LazyLock<HopRecorder> = LazyLock::new(HopRecorder::default);
    &RECORDER
}

/// One sampled request on its way.
struct Trace {
    conn: ClientConn,
    xid: i32,
    network_in: Instant,
    /// Known once the data role ran it (leader) or the leader's reply named it (follower).
    zxid: Option<i64>,
    /// [`Hop::bit`]s recorded so far.
    recorded: u16,
}

/// Traces in flight and the hop histograms.
struct Traces {
    open: Vec<Trace>,
    /// The trace (connection, xid) of the request the data role is running now, until its
    /// effects say whether it is a write.
    unclaimed: Option<(ClientConn, i32)>,
    /// Per hop (index: `Hop as usize`), µs, for `mntr`.
    hops_us: Vec<hdrhistogram::Histogram<u64>>,
}

/// The per-hop histograms of one process and the sampled requests being traced.
pub struct HopRecorder {
    /// `open.len()`, read without the lock by every hook.
    tracing: AtomicUsize,
    traces: Mutex<Traces>,
    /// `ringkeeper_hop_us`, for the metrics endpoint.
    metric: HistogramVec,
    /// Its child per hop (index: `Hop as usize`).
    metric_hops: Vec<Histogram>,
}

impl Default for HopRecorder {
    fn default() -> Self {
        let (start, factor, count) = METRIC_BUCKETS;
        let opts = HistogramOpts::new(
            "ringkeeper_hop_us",
            "Sampled writes: µs from the request read off the socket to each hop of its path",
        )
        .buckets(prometheus::exponential_buckets(start, factor, count).expect("valid buckets"));
        let metric = HistogramVec::new(opts, &["hop"]).expect("a valid metric name and label");
        let metric_hops = Hop::ALL.iter().map(|hop| metric.with_label_values(&[hop.name()])).collect();
        let histogram = || {
            hdrhistogram::Histogram::new_with_bounds(1, HOP_US_MAX, 2)
                .expect("static histogram bounds are valid")
        };
        HopRecorder {
            tracing: AtomicUsize::new(0),
            traces: Mutex::new(Traces {
                open: Vec::new(),
                unclaimed: None,
                hops_us: Hop::ALL.iter().map(|_| histogram()).collect(),
            }),
            metric,
            metric_hops,
        }
    }
}

impl HopRecorder {
    fn idle(&self) -> bool {
        self.tracing.load(Ordering::Relaxed) == 0
    }

    fn lock(&self) -> MutexGuard<'_, Traces> {
        self.traces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `hop` for the open traces `matches` selects (each hop once per trace).
    fn record(&self, traces: &mut Traces, hop: Hop, matches: impl Fn(&Trace) -> bool) {
        let mut now = None;
        for trace in traces.open.iter_mut().filter(|t| t.recorded & hop.bit() == 0 && matches(t)) {
            let now = *now.get_or_insert_with(Instant::now);
            trace.recorded |= hop.bit();
            let us =
                now.saturating_duration_since(trace.network_in).as_micros().min(HOP_US_MAX as u128) as u64;
            traces.hops_us[hop as usize].saturating_record(us);
            self.metric_hops[hop as usize].observe(us as f64);
        }
    }

    /// Records `hop` for the traces whose txn is `zxid` or earlier.
    fn record_up_to(&self, hop: Hop, zxid: i64) {
        if self.idle() {
            return;
        }
        let mut traces = self.lock();
        self.record(&mut traces, hop, |t| t.zxid.is_some_and(|z| z <= zxid));
    }

    /// Data role: it is about to run the request `frame` of `conn`, read at `network_in`
    /// when it was sampled.
    pub fn request_in(&self, conn: ClientConn, frame: &[u8], network_in: Option<Instant>) {
        let (Some(network_in), Some(xid)) = (network_in, frame.get(..4)) else { return };
        let xid = i32::from_be_bytes(xid.try_into().expect("4 bytes"));
        let mut traces = self.lock();
        traces.open.retain(|t| t.network_in.elapsed() < TRACE_TIMEOUT);
        traces.unclaimed = None;
        if traces.open.len() < TRACES_MAX {
            traces.open.push(Trace { conn, xid, network_in, zxid: None, recorded: 0 });
            traces.unclaimed = Some((conn, xid));
            self.record(&mut traces, Hop::DataIn, |t| t.conn == conn && t.xid == xid);
        }
        self.tracing.store(traces.open.len(), Ordering::Relaxed);
    }

    /// Data role: the node is about to be stepped with `input`.
    pub fn input(&self, input: &Input) {
        if self.idle() {
            return;
        }
        match input {
            Input::PeerMessage { msg: Msg::Ack { zxid, .. }, .. } => self.record_up_to(Hop::AckIn, *zxid),
            Input::PeerMessage { msg: Msg::Proposal { zxid, .. }, .. } => {
                let mut traces = self.lock();
                self.record(&mut traces, Hop::ProposalIn, |t| t.zxid == Some(*zxid));
            }
            Input::RelayMessage { relay: Relay::Reply { token, zxid, .. }, .. } => {
                let mut traces = self.lock();
                let relayed = Hop::RelayOut.bit();
                if let Some(trace) = traces
                    .open
                    .iter_mut()
                    .find(|t| t.conn == *token && t.zxid.is_none() && t.recorded & relayed != 0)
                {
                    trace.zxid = Some(*zxid);
                }
                self.record(&mut traces, Hop::ReplyIn, |t| t.conn == *token && t.zxid == Some(*zxid));
            }
            _ => {}
        }
    }

    /// Data role: the node's effects of one step, before they are carried out. The request
    /// sampled in this step (if any) is a write when they log a txn (leader, standalone) or
    /// relay it (follower); otherwise its trace is dropped.
    pub fn effects(&self, effects: &[Effect]) {
        if self.idle() {
            return;
        }
        let mut traces = self.lock();
        if let Some((conn, xid)) = traces.unclaimed.take() {
            let is_sampled = |t: &Trace| t.conn == conn && t.xid == xid && t.zxid.is_none();
            let claimed = effects.iter().find_map(|e| match e {
                Effect::Append { zxid, .. } => Some(Some(*zxid)),
                Effect::RelaySend { relay: Relay::Forward { token, .. }, .. } if *token == conn => Some(None),
                _ => None,
            });
            match claimed {
                Some(Some(zxid)) => {
                    traces.open.iter_mut().filter(|t| is_sampled(t)).for_each(|t| t.zxid = Some(zxid))
                }
                Some(None) => self.record(&mut traces, Hop::RelayOut, is_sampled),
                None => {
                    traces.open.retain(|t| !is_sampled(t));
                    self.tracing.store(traces.open.len(), Ordering::Relaxed);
                }
            }
        }
        for effect in effects {
            match effect {
                Effect::PeerSend { msg: Msg::Proposal { zxid, .. }, .. } => {
                    self.record(&mut traces, Hop::ProposalSent, |t| t.zxid == Some(*zxid))
                }
                Effect::Committed { zxid } => {
                    self.record(&mut traces, Hop::Commit, |t| t.zxid.is_some_and(|z| z <= *zxid))
                }
                _ => {}
            }
        }
    }

    /// Log role: it starts writing a batch whose last txn is `zxid`.
    pub fn log_append(&self, zxid: i64) {
        self.record_up_to(Hop::LogAppend, zxid);
    }

    /// Log role: every txn up to `zxid` is durable.
    pub fn durable(&self, zxid: i64) {
        self.record_up_to(Hop::Durable, zxid);
    }

    /// Network role: `frame` (length prefix included) goes to `conn`'s writer. True when it
    /// is the reply of a traced write: call [`HopRecorder::reply_written`] once it is written.
    pub fn reply_out(&self, conn: ClientConn, frame: &[u8]) -> bool {
        if self.idle() {
            return false;
        }
        let Some(xid) = frame.get(4..8).map(|x| i32::from_be_bytes(x.try_into().expect("4 bytes"))) else {
            return false;
        };
        let mut traces = self.lock();
        let is_traced = |t: &Trace| t.conn == conn && t.xid == xid && t.zxid.is_some();
        let traced = traces.open.iter().any(is_traced);
        self.record(&mut traces, Hop::ReplyOut, is_traced);
        traced
    }

    /// Network role: the write holding a traced reply of `conn` returned; its trace ends.
    pub fn reply_written(&self, conn: ClientConn) {
        let mut traces = self.lock();
        let out = Hop::ReplyOut.bit();
        let is_written = |t: &Trace| t.conn == conn && t.recorded & out != 0;
        self.record(&mut traces, Hop::ReplyWritten, is_written);
        traces.open.retain(|t| !is_written(t));
        self.tracing.store(traces.open.len(), Ordering::Relaxed);
    }

    /// `srst`: the `mntr` figures start over (the metrics histogram never goes back).
    pub fn reset(&self) {
        self.lock().hops_us.iter_mut().for_each(hdrhistogram::Histogram::reset);
    }

    /// `mntr` lines (without the `zk_` prefix) of each hop with samples: p50, p99 and count.
    pub fn monitor_lines(&self) -> Vec<(String, String)> {
        let traces = self.lock();
        let mut lines = Vec::new();
        for hop in Hop::ALL {
            let h = &traces.hops_us[hop as usize];
            if h.is_empty() {
                continue;
            }
            let name = hop.name();
            lines.push((format!("ringkeeper_hop_{name}_us_p50"), h.value_at_quantile(0.5).to_string()));
            lines.push((format!("ringkeeper_hop_{name}_us_p99"), h.value_at_quantile(0.99).to_string()));
            lines.push((format!("ringkeeper_hop_{name}_us_count"), h.len().to_string()));
        }
        lines
    }

    /// The histogram for the metrics endpoint.
    pub fn metric(&self) -> HistogramVec {
        self.metric.clone()
    }
}
