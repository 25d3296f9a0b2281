//! The load generator: many sessions, each with up to `inflight` requests pipelined, in
//! closed loop (a new request as soon as a slot frees) or open loop (requests due on a fixed
//! schedule; latency counted from the due time, so a stalled server cannot hide its stall —
//! no coordinated omission).
//!
//! Runs on a tokio runtime of `threads` workers (1 = current-thread). Per session a writer
//! task sends, the session task reads; between them a bounded channel of [`Pending`] entries
//! (capacity `inflight`) is the in-flight window: an entry is queued before its bytes are
//! written and taken when its reply (same xid, in order) is read. Phases on one clock:
//! warm-up, measure (ops whose intended send time falls here are counted), then a drain of at
//! most [`DRAIN_TIMEOUT`]; every session ends with closeSession, whose reply marks the end of
//! its stream. A per-second progress line goes to stderr. The CPU time of the bench and of
//! the given server processes is sampled at the start and the end of the measure window
//! (a [`CpuWatch`] on its own thread, off the load's runtime) and reported per op.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringkeeper_engine::proto::{
    self, DeleteRequest, ErrorCode, GetChildrenResponse, Jute, OpCode, PathWatchRequest,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::timeout_at;

use crate::cpu::{CpuReport, CpuWatch, ServerProcess};
use crate::hosts::ConnectString;
use crate::report::{cdf_of, new_histogram, LatencySummary, LoadReport, Second};
use crate::wire::{
    is_unsolicited, next_xid, push_request, read_frame, split_reply, ClientTls, Session, SessionReader,
    SessionWriter,
};
use crate::workload::{Op, OpMix, SplitMix64, Templates};
use crate::BenchError;

/// How long sessions may take after the measure window to answer what is still in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests a writer puts into one `write` call at most.
const WRITE_BATCH_MAX: usize = 64;
/// Upper bounds on the options, so a typo cannot exhaust the machine.
const CLIENTS_MAX: usize = 10_000;
const INFLIGHT_MAX: usize = 10_000;
const KEYS_MAX: usize = 1_000_000;
/// Largest value size: leaves room for the path and headers under `jute.maxbuffer`.
const SIZE_BYTES_MAX: usize = 1_000_000;
/// Longest warm-up or measure window.
const PHASE_MAX: Duration = Duration::from_secs(24 * 3600);

/// How a run is shaped, apart from where it goes and how many sessions it uses.
#[derive(Debug, Clone)]
pub struct Shape {
    pub warmup: Duration,
    pub measure: Duration,
    pub size_bytes: usize,
    pub keys: usize,
    /// Open-loop target in ops/s over all sessions; `None`: closed loop.
    pub rate_ops_per_s: Option<f64>,
    /// Runtime worker threads; 1 runs everything on the calling thread.
    pub threads: usize,
    pub session_timeout_ms: i32,
    pub seed: u64,
    /// Print the per-second progress line on stderr.
    pub progress: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            size_bytes: 100,
            keys: 1000,
            rate_ops_per_s: None,
            threads: 1,
            session_timeout_ms: 30_000,
            seed: 1,
            progress: true,
        }
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// ZooKeeper connect string; sessions are spread over its hosts.
    pub hosts: String,
    pub clients: usize,
    pub inflight: usize,
    pub mix: OpMix,
    pub shape: Shape,
    /// Server processes whose CPU time the report gives per op (empty: client CPU only).
    pub server_processes: Vec<ServerProcess>,
    /// Connect over TLS (to `secureClientPort` or a `client.portUnification` port).
    pub tls: Option<ClientTls>,
}

impl LoadConfig {
    fn validate(&self) -> Result<(), BenchError> {
        let s = &self.shape;
        let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(BenchError::Config(what)) };
        check((1..=CLIENTS_MAX).contains(&self.clients), format!("--clients must be 1..={CLIENTS_MAX}"))?;
        check((1..=INFLIGHT_MAX).contains(&self.inflight), format!("--inflight must be 1..={INFLIGHT_MAX}"))?;
        check((1..=KEYS_MAX).contains(&s.keys), format!("--keys must be 1..={KEYS_MAX}"))?;
        check(s.size_bytes <= SIZE_BYTES_MAX, format!("--size must be at most {SIZE_BYTES_MAX}"))?;
        check(
            s.measure > Duration::ZERO && s.measure <= PHASE_MAX,
            "--seconds must be > 0 and at most a day".into(),
        )?;
        check(s.warmup <= PHASE_MAX, "--warmup must be at most a day".into())?;
        check((1..=64).contains(&s.threads), "--threads must be 1..=64".into())?;
        check(s.rate_ops_per_s.is_none_or(|r| r.is_finite() && r > 0.0), "--rate must be > 0".into())?;
        self.mix.validate()
    }
}

/// Runs one load and returns its report. Creates the keys first and removes them after.
pub fn run_load(config: &LoadConfig) -> Result<LoadReport, BenchError> {
    config.validate()?;
    let runtime = if config.shape.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.shape.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run_async(config))
}

/// One request in flight.
#[derive(Debug, Clone, Copy)]
struct Pending {
    xid: i32,
    intended: Instant,
    /// `None` marks the closeSession that ends the stream.
    op: Option<Op>,
}

/// The clock of a run, shared by every session.
struct Clock {
    start: Instant,
    measure_start: Instant,
    end: Instant,
    drain_deadline: Instant,
}

impl Clock {
    fn measured(&self, intended: Instant) -> bool {
        intended >= self.measure_start && intended < self.end
    }
}

/// What the progress line shows for the current second.
struct Interval {
    histogram: Histogram<u64>,
    ops: u64,
    errors: u64,
}

impl Interval {
    fn new() -> Interval {
        Interval { histogram: new_histogram(), ops: 0, errors: 0 }
    }
}

/// Everything sessions of one run share.
struct RunContext {
    clock: Clock,
    templates: Templates,
    inflight: usize,
    clients: usize,
    pace: Option<Duration>,
    ping_every: Duration,
    seed: u64,
    /// The current second's figures, one per session: a session locks only its own (the
    /// progress loop takes them once a second), so sessions on different threads never
    /// contend.
    intervals: Vec<Mutex<Interval>>,
}

impl RunContext {
    fn record_interval(&self, session: usize, latency_us: u64, ok: bool) {
        let mut interval = self.intervals[session].lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            interval.ops += 1;
            interval.histogram.saturating_record(latency_us);
        } else {
            interval.errors += 1;
        }
    }

    /// Takes every session's figures of the second that ended and merges them.
    fn take_interval(&self) -> Interval {
        let mut merged = Interval::new();
        for interval in &self.intervals {
            let taken =
                std::mem::replace(&mut *interval.lock().unwrap_or_else(|e| e.into_inner()), Interval::new());
            merged.ops += taken.ops;
            merged.errors += taken.errors;
            // Both histograms share bounds, so adding cannot fail.
            let _ = merged.histogram.add(&taken.histogram);
        }
        merged
    }
}

/// What one session measured.
struct SessionResult {
    histogram: Histogram<u64>,
    ops: u64,
    /// Successful measured ops by op name.
    ops_by_op: BTreeMap<Op, u64>,
    /// Watch notifications received during the whole run.
    watch_events: u64,
    errors: BTreeMap<String, u64>,
    note: Option<String>,
}

impl SessionResult {
    fn error(&mut self, kind: String, count: u64) {
        if count > 0 {
            *self.errors.entry(kind).or_default() += count;
        }
    }
}

fn error_name(code: i32) -> String {
    match ErrorCode::from_i32(code) {
        Some(known) => format!("{known:?} ({code})"),
        None => format!("code {code}"),
    }
}

async fn run_async(config: &LoadConfig) -> Result<LoadReport, BenchError> {
    let shape = &config.shape;
    let hosts = ConnectString::parse(&config.hosts)?;
    let run_id = format!(
        "r{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0)
    );
    let root = format!("{}/rk-bench", hosts.chroot);
    let templates = Templates::new(&format!("{root}/{run_id}"), shape.keys, shape.size_bytes, config.mix);
    setup(&hosts, config.tls.as_ref(), &root, &templates, shape.session_timeout_ms).await?;

    let mut sessions = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        sessions.push(
            Session::connect_with(hosts.host_for(index), shape.session_timeout_ms, config.tls.as_ref())
                .await?,
        );
    }
    let ping_every = Duration::from_millis(
        sessions.iter().map(|s| s.timeout_ms).min().unwrap_or(30_000).max(300) as u64 / 3,
    );
    let start = Instant::now();
    let measure_start = start + shape.warmup;
    let end = measure_start + shape.measure;
    let context = Arc::new(RunContext {
        clock: Clock { start, measure_start, end, drain_deadline: end + DRAIN_TIMEOUT },
        templates,
        inflight: config.inflight,
        clients: config.clients,
        pace: shape.rate_ops_per_s.map(|rate| Duration::from_secs_f64(config.clients as f64 / rate)),
        ping_every,
        seed: shape.seed,
        intervals: (0..config.clients).map(|_| Mutex::new(Interval::new())).collect(),
    });
    let cpu_watch = CpuWatch::new(config.server_processes.clone());
    let cpu_samples = {
        let watch = cpu_watch.clone();
        let members = hosts.hosts.clone();
        std::thread::spawn(move || {
            std::thread::sleep(measure_start.saturating_duration_since(Instant::now()));
            let first = watch.sample();
            crate::hops::reset(&members);
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            let last = watch.sample();
            (first, last, crate::hops::read(&members))
        })
    };
    let (stop_progress, progress_stopped) = tokio::sync::oneshot::channel();
    let progress = tokio::spawn(progress_loop(context.clone(), shape.progress, progress_stopped));
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, session)| tokio::spawn(run_session(context.clone(), index, session)))
        .collect();
    let mut histogram = new_histogram();
    let mut ops = 0;
    let mut errors_by_kind = BTreeMap::new();
    let mut ops_by_op = BTreeMap::new();
    let mut watch_events = 0;
    let mut notes = Vec::new();
    for task in tasks {
        let result = task.await.map_err(|e| BenchError::Protocol(format!("session task failed: {e}")))?;
        histogram
            .add(&result.histogram)
            .map_err(|e| BenchError::Protocol(format!("merging histograms: {e}")))?;
        ops += result.ops;
        watch_events += result.watch_events;
        for (op, count) in result.ops_by_op {
            *ops_by_op.entry(op.name().to_string()).or_insert(0) += count;
        }
        for (kind, count) in result.errors {
            *errors_by_kind.entry(kind).or_insert(0) += count;
        }
        notes.extend(result.note);
    }
    // Stopped, not aborted: an aborted task's timeline would be lost.
    let _ = stop_progress.send(());
    let timeline = progress.await.unwrap_or_default();
    // The sampler has finished by now: every session ran past the end of the window.
    let (cpu, hops) = match cpu_samples.join() {
        Ok((start, end, hops)) => (CpuReport::between(&cpu_watch, &start, &end, ops), hops),
        Err(_) => (CpuReport::default(), Vec::new()),
    };

    if let Err(e) = cleanup(&hosts, config.tls.as_ref(), &context.templates, shape.session_timeout_ms).await {
        notes.push(format!("cleanup incomplete: {e}"));
    }
    let measure_s = shape.measure.as_secs_f64();
    Ok(LoadReport {
        workload: config.mix.describe(),
        hosts: config.hosts.clone(),
        clients: config.clients,
        inflight: config.inflight,
        size_bytes: shape.size_bytes,
        keys: shape.keys,
        rate_target: shape.rate_ops_per_s,
        warmup_s: shape.warmup.as_secs_f64(),
        measure_s,
        ops,
        ops_per_s: ops as f64 / measure_s,
        errors: errors_by_kind.values().sum(),
        errors_by_kind,
        ops_by_op,
        watch_events,
        latency: LatencySummary::of(&histogram),
        cdf: cdf_of(&histogram),
        timeline,
        cpu,
        hops,
        notes,
    })
}

/// Creates `<root>`, the run's base, its create directory and the keys.
async fn setup(
    hosts: &ConnectString,
    tls: Option<&ClientTls>,
    root: &str,
    templates: &Templates,
    timeout_ms: i32,
) -> Result<(), BenchError> {
    let mut session = Session::connect_with(hosts.host_for(0), timeout_ms, tls).await?;
    let create =
        |path: &str, data: Vec<u8>| (OpCode::Create, Templates::create_body(path.to_string(), data, 0));
    for path in [root, &templates.base, &templates.create_dir] {
        let (op, body) = create(path, Vec::new());
        let (code, _) = session.call(op, body).await?;
        if code != 0 && !(path == root && code == ErrorCode::NodeExists.code()) {
            return Err(BenchError::Setup { what: format!("create {path}"), code });
        }
    }
    let requests: Vec<_> = templates.key_paths.iter().map(|p| create(p, templates.data().to_vec())).collect();
    for (path, (code, _)) in templates.key_paths.iter().zip(session.pipeline(&requests).await?) {
        if code != 0 {
            return Err(BenchError::Setup { what: format!("create {path}"), code });
        }
    }
    session.close().await
}

/// Deletes what the run created (children of the create directory, keys, base).
async fn cleanup(
    hosts: &ConnectString,
    tls: Option<&ClientTls>,
    templates: &Templates,
    timeout_ms: i32,
) -> Result<(), BenchError> {
    let mut session = Session::connect_with(hosts.host_for(0), timeout_ms, tls).await?;
    let delete =
        |path: &str| (OpCode::Delete, DeleteRequest { path: path.to_string(), version: -1 }.to_bytes());
    let list = PathWatchRequest { path: templates.create_dir.clone(), watch: false }.to_bytes();
    let (code, body) = session.call(OpCode::GetChildren, list).await?;
    let children = if code == 0 {
        GetChildrenResponse::from_bytes(&body)
            .map_err(|e| BenchError::Protocol(format!("getChildren reply: {e}")))?
            .children
    } else {
        Vec::new()
    };
    let mut requests: Vec<_> =
        children.iter().map(|c| delete(&format!("{}/{c}", templates.create_dir))).collect();
    requests.extend(templates.key_paths.iter().map(|p| delete(p)));
    requests.push(delete(&templates.create_dir));
    requests.push(delete(&templates.base));
    let codes: Vec<i32> =
        session.pipeline(&requests).await?.into_iter().map(|(code, _)| code).filter(|c| *c != 0).collect();
    session.close().await?;
    match codes.first() {
        Some(&code) => {
            Err(BenchError::Setup { what: format!("{} of {} deletes", codes.len(), requests.len()), code })
        }
        None => Ok(()),
    }
}

/// Prints a line per second and keeps the timeline; ends when told to stop (every session
/// has finished) or past the drain, and returns the timeline.
async fn progress_loop(
    context: Arc<RunContext>,
    print: bool,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Second> {
    let clock = &context.clock;
    let mut ticker =
        tokio::time::interval_at((clock.start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut timeline = Vec::new();
    loop {
        let now = tokio::select! {
            tick = ticker.tick() => Instant::from(tick),
            _ = &mut stop => return timeline,
        };
        if now > clock.drain_deadline + Duration::from_secs(1) {
            return timeline;
        }
        let interval = context.take_interval();
        let measuring = now > clock.measure_start && now <= clock.end + Duration::from_secs(1);
        let second = Second {
            t_s: (now - clock.start).as_secs_f64().round() as u64,
            measuring,
            ops: interval.ops,
            errors: interval.errors,
            p50_us: interval.histogram.value_at_quantile(0.5),
            p99_us: interval.histogram.value_at_quantile(0.99),
            max_us: interval.histogram.max(),
        };
        if print {
            let phase = if now <= clock.measure_start {
                "warmup "
            } else if now <= clock.end {
                "measure"
            } else {
                "drain  "
            };
            eprintln!(
                "[{:>4}s] {phase} {:>9} ops/s  p50 {:>8} us  p99 {:>8} us  max {:>8} us  errors {}",
                second.t_s, second.ops, second.p50_us, second.p99_us, second.max_us, second.errors
            );
        }
        timeline.push(second);
    }
}

/// One session: a writer task sends, this task reads and measures.
async fn run_session(context: Arc<RunContext>, index: usize, session: Session) -> SessionResult {
    let (reader, writer, first_xid) = session.into_parts();
    let (tx, rx) = mpsc::channel(context.inflight);
    let writer_context = context.clone();
    let write_task = tokio::spawn(async move {
        let mut writer = writer;
        let outcome = write_loop(&writer_context, index, &mut writer, tx, first_xid).await;
        // The write half is handed back, not dropped: dropping it shuts the socket's sending
        // side, and a server may then skip the closeSession reply the reader waits for.
        (writer, outcome)
    });
    let mut result = read_loop(&context, index, reader, rx).await;
    match write_task.await {
        Ok((_, Ok(()))) => {}
        Ok((_, Err(e))) => {
            result.note = result.note.or(Some(format!("session {index}: writer stopped: {e}")))
        }
        Err(e) => result.note = result.note.or(Some(format!("session {index}: writer failed: {e}"))),
    }
    result
}

async fn read_loop(
    context: &RunContext,
    session: usize,
    mut reader: SessionReader,
    mut rx: mpsc::Receiver<Pending>,
) -> SessionResult {
    let clock = &context.clock;
    let mut result = SessionResult {
        histogram: new_histogram(),
        ops: 0,
        ops_by_op: BTreeMap::new(),
        watch_events: 0,
        errors: BTreeMap::new(),
        note: None,
    };
    let mut frame = Vec::new();
    let lost = loop {
        match timeout_at(clock.drain_deadline.into(), read_frame(&mut reader, &mut frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result.note = Some(e.to_string());
                break Some("connection");
            }
            Err(_) => {
                result.note = Some("no reply before the drain deadline".to_string());
                break Some("timeout");
            }
        }
        let now = Instant::now();
        let header = match split_reply(&frame) {
            Ok((header, _)) => header,
            Err(e) => {
                result.note = Some(e.to_string());
                break Some("protocol");
            }
        };
        if is_unsolicited(header.xid) {
            result.watch_events += u64::from(header.xid == proto::xid::NOTIFICATION);
            continue;
        }
        let pending = match rx.try_recv() {
            Ok(p) if p.xid == header.xid => p,
            other => {
                result.note = Some(format!(
                    "reply xid {} does not match the request in flight ({other:?})",
                    header.xid
                ));
                break Some("protocol");
            }
        };
        let Some(op) = pending.op else {
            break None;
        };
        let latency_us = now.saturating_duration_since(pending.intended).as_micros() as u64;
        let ok = header.err == 0;
        context.record_interval(session, latency_us, ok);
        if clock.measured(pending.intended) {
            if ok {
                result.ops += 1;
                *result.ops_by_op.entry(op).or_insert(0) += 1;
                result.histogram.saturating_record(latency_us);
            } else {
                result.error(error_name(header.err), 1);
            }
        }
    };
    if let Some(kind) = lost {
        rx.close();
        let mut count = 0;
        while let Ok(p) = rx.try_recv() {
            count += u64::from(p.op.is_some() && clock.measured(p.intended));
        }
        result.error(kind.to_string(), count.max(1));
    }
    result
}

async fn write_loop(
    context: &RunContext,
    index: usize,
    writer: &mut SessionWriter,
    tx: mpsc::Sender<Pending>,
    first_xid: i32,
) -> Result<(), BenchError> {
    let clock = &context.clock;
    let templates = &context.templates;
    let mut rng = SplitMix64::new(context.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut xid = first_xid;
    let mut serial = 0u64;
    // Open loop: sessions' schedules are offset so their sends interleave evenly.
    let mut next_due =
        clock.start + context.pace.map(|p| p * index as u32 / context.clients as u32).unwrap_or_default();
    let mut last_write = Instant::now();
    loop {
        if context.pace.is_some() {
            if next_due >= clock.end {
                break;
            }
            wait_until_due(context, writer, next_due, &mut last_write).await?;
        } else if Instant::now() >= clock.end {
            break;
        }
        let mut permit = match timeout_at(clock.end.into(), tx.reserve()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Ok(()), // the reader has gone; it reports why
            Err(_) => break,
        };
        buf.clear();
        let mut batch = 0;
        loop {
            let now = Instant::now();
            let intended = match context.pace {
                Some(pace) => {
                    let due = next_due;
                    next_due += pace;
                    due
                }
                None => now,
            };
            let op = templates.push_next(&mut buf, xid, &mut rng, index, serial);
            permit.send(Pending { xid, intended, op: Some(op) });
            xid = next_xid(xid);
            serial += 1;
            batch += 1;
            let behind = context.pace.is_none() || (next_due <= now && next_due < clock.end);
            if batch >= WRITE_BATCH_MAX || !behind {
                break;
            }
            permit = match tx.try_reserve() {
                Ok(p) => p,
                Err(_) => break,
            };
        }
        writer.write_all(&buf).await?;
        last_write = Instant::now();
    }
    // closeSession: its reply tells the reader that every earlier reply has arrived.
    let permit = match timeout_at(clock.drain_deadline.into(), tx.reserve()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => return Ok(()),
        Err(_) => return Err(BenchError::Timeout("requests still in flight at the drain deadline".into())),
    };
    buf.clear();
    push_request(&mut buf, xid, OpCode::CloseSession as i32, &[]);
    permit.send(Pending { xid, intended: Instant::now(), op: None });
    writer.write_all(&buf).await?;
    Ok(())
}

/// Open loop: sleeps until `due`, pinging whenever the connection has been quiet for
/// `ping_every`, so a slow schedule cannot let the session expire.
async fn wait_until_due(
    context: &RunContext,
    writer: &mut SessionWriter,
    due: Instant,
    last_write: &mut Instant,
) -> Result<(), BenchError> {
    while Instant::now() < due {
        let ping_due = *last_write + context.ping_every;
        tokio::time::sleep_until(due.min(ping_due).into()).await;
        if Instant::now() >= ping_due {
            let mut ping = Vec::new();
            push_request(&mut ping, proto::xid::PING, OpCode::Ping as i32, &[]);
            writer.write_all(&ping).await?;
            *last_write = Instant::now();
        }
    }
    Ok(())
}
