//! Four-letter-word answers for the data role: fills a [`ServerStatus`] from the engine's
//! processor and hands it to [`crate::four_letter::respond`] for Apache's exact layout.
//! Runs on the data role's core (it reads the processor directly).
//!
//! The same numbers go to readers on other threads (the metrics endpoint) through
//! [`PublishedStatus`], which the data role refreshes on every tick ([`StatusSource::publish`]):
//! one place computes them, whichever way they are read.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::Histogram;
use ringkeeper_engine::request::{ConnId, Processor};
use ringkeeper_engine::zab::membership::CONFIG_NODE;
use ringkeeper_engine::zab::LearnerCounts;

use crate::config::Config;
use crate::four_letter::{self, ConfStatus, ConnectionStatus, ServerMode, ServerStatus, Whitelist};
use crate::request_stats::{millisecond_histogram, RequestStats};

/// What the data role keeps to answer four-letter words.
pub struct StatusSource {
    whitelist: Whitelist,
    conf: ConfStatus,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    log_dir: PathBuf,
    started: Instant,
    /// Ensemble role and whether clients are served (standalone: always serving).
    role: Cell<(ServerMode, bool)>,
    /// Latency and outstanding requests, measured by the network cores.
    requests: Arc<RequestStats>,
    /// Since when this ensemble member has not been serving (electing or syncing).
    unavailable_since: Cell<Option<Instant>>,
    /// From not serving to serving again, ms (Apache's `election_time`, for metrics).
    election_time_ms: Histogram,
    /// A leader's learners and pending syncs at the last tick (`None` when not leading).
    leader: Cell<Option<LeaderFigures>>,
    /// The gauges as of the last tick, for other threads.
    published: Arc<Mutex<PublishedStatus>>,
    /// Whether anything reads [`Self::published`] (the Prometheus endpoint is its only
    /// reader): without one, ticks do not compute gauges nobody scrapes.
    publishing: bool,
    /// AdminServer questions, answered at the next tick.
    admin_queries: AdminQueries,
    /// Histograms `mntr` summarises as `zk_ringkeeper_<name>_count` and `_sum`.
    monitor_histograms: Vec<(&'static str, Histogram)>,
    /// The processor's packet counters (received, sent) at the last `srst`: the figures
    /// reported count from there, as Apache's `ServerStats.resetRequestCounters`.
    packets_at_reset: Cell<(u64, u64)>,
}

/// A question from the AdminServer thread: everything the four-letter word `word` prints.
pub struct AdminQuery {
    pub word: [u8; 4],
    pub reply: std::sync::mpsc::Sender<ServerStatus>,
}

/// AdminServer questions waiting for the data role's next tick.
pub type AdminQueries = Arc<Mutex<Vec<AdminQuery>>>;

/// The data role's gauges as of its last tick (at most 50 ms old), named as Apache's `mntr`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishedStatus {
    pub mode: ServerMode,
    pub serving: bool,
    pub node_count: u64,
    pub watch_count: u64,
    pub ephemerals_count: u64,
    pub approximate_data_size: u64,
    pub num_alive_connections: u64,
    pub global_sessions: u64,
    /// Read-only sessions (Apache's local sessions).
    pub local_sessions: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub last_zxid: i64,
    pub uptime_ms: u64,
    /// On a leader: its learners and pending syncs.
    pub leader: Option<LeaderFigures>,
}

/// What only a leader reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderFigures {
    pub learners: LearnerCounts,
    /// Learners' syncs waiting for a commit ([`ringkeeper_engine::replica::Node::pending_syncs`]).
    pub pending_syncs: usize,
}

/// A leader's `mntr` lines after the common ones, in Apache 3.8's order
/// (`LeaderZooKeeperServer`).
pub fn leader_monitor_lines(leader: &LeaderFigures) -> Vec<(&'static str, u64)> {
    let learners = &leader.learners;
    vec![
        ("learners", learners.learners as u64),
        ("synced_followers", learners.synced_followers as u64),
        ("synced_non_voting_followers", learners.synced_non_voting_followers as u64),
        ("synced_observers", learners.synced_observers as u64),
        ("pending_syncs", leader.pending_syncs as u64),
    ]
}

/// `mntr` lines of a histogram: `ringkeeper_<name>_count` and `ringkeeper_<name>_sum`.
pub fn histogram_monitor_lines(name: &str, histogram: &Histogram) -> [(String, String); 2] {
    let sum = histogram.get_sample_sum();
    [
        (format!("ringkeeper_{name}_count"), histogram.get_sample_count().to_string()),
        (
            format!("ringkeeper_{name}_sum"),
            if sum.fract() == 0.0 { format!("{sum}") } else { format!("{sum:.3}") },
        ),
    ]
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process and their limit (`zk_open/max_file_descriptor_count`).
pub fn fd_counts() -> (Option<u64>, Option<u64>) {
    let open = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let max = (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur);
    (open, max)
}

impl StatusSource {
    pub fn new(config: &Config, requests: Arc<RequestStats>) -> StatusSource {
        let env = four_letter::host_environment();
        StatusSource {
            whitelist: config.four_letter_whitelist.clone(),
            conf: ConfStatus::from_config(config, config.effective_client_port()),
            env,
            data_dir: config.data_dir.clone(),
            log_dir: config.log_dir().to_path_buf(),
            started: Instant::now(),
            role: Cell::new((ServerMode::Standalone, true)),
            requests,
            unavailable_since: Cell::new(None),
            election_time_ms: millisecond_histogram(
                "election_time",
                "Time an ensemble member spent electing and syncing before it served again, ms",
            ),
            leader: Cell::new(None),
            published: Arc::default(),
            publishing: config.metrics_endpoint.is_some(),
            admin_queries: Arc::default(),
            monitor_histograms: Vec::new(),
            packets_at_reset: Cell::new((0, 0)),
        }
    }

    /// Histograms other roles keep (group-commit sizes, snapshot times) that `mntr` shows as
    /// `zk_ringkeeper_<name>_count` and `zk_ringkeeper_<name>_sum`.
    pub fn monitor_histograms(&mut self, histograms: Vec<(&'static str, Histogram)>) {
        self.monitor_histograms = histograms;
    }

    /// Where the AdminServer leaves its questions.
    pub fn admin_queries(&self) -> AdminQueries {
        self.admin_queries.clone()
    }

    /// The gauges the data role publishes, for readers on other threads.
    pub fn published(&self) -> Arc<Mutex<PublishedStatus>> {
        self.published.clone()
    }

    /// Refreshes [`PublishedStatus`] when metrics are served (called by the data role on every
    /// tick: counters the processor keeps, and one pass over connections and ephemeral
    /// owners), and answers the AdminServer's questions.
    pub fn publish(&self, p: &Processor, leader: Option<LeaderFigures>) {
        self.leader.set(leader);
        if self.publishing {
            let status = self.gauges(p);
            *self.published.lock().expect("published status lock") = status;
        }
        let queries = std::mem::take(&mut *self.admin_queries.lock().expect("admin queries lock"));
        for query in queries {
            let mut status = self.snapshot(p, &query.word);
            // The AdminServer's server_stats and stats show the sizes too.
            status.data_dir_size = dir_size(&self.data_dir);
            status.log_dir_size = dir_size(&self.log_dir);
            self.reset_stats_if_asked(&query.word, &status);
            let _ = query.reply.send(status);
        }
    }

    /// `srst` starts the server's latency, response size and packet figures over
    /// (`ServerStats.reset`), `crst` every connection's (on a serving server, as Apache).
    fn reset_stats_if_asked(&self, word: &[u8; 4], status: &ServerStatus) {
        match word {
            b"srst" if status.serving => {
                let (received, sent) = self.packets_at_reset.get();
                self.packets_at_reset.set((received + status.packets_received, sent + status.packets_sent));
                self.requests.reset_latency();
                crate::hops::recorder().reset();
            }
            b"crst" if status.serving => self.requests.reset_connection_latency(),
            _ => {}
        }
    }

    /// The gauges, computed the one way both the four-letter words and metrics report them.
    fn gauges(&self, p: &Processor) -> PublishedStatus {
        let (mode, serving) = self.role.get();
        PublishedStatus {
            mode,
            serving,
            node_count: p.tree.node_count() as u64,
            watch_count: p.watches.watch_count() as u64,
            ephemerals_count: p.tree.ephemeral_count() as u64,
            approximate_data_size: p.tree.approximate_data_size().max(0) as u64,
            num_alive_connections: p.connections().count() as u64,
            global_sessions: (p.sessions.len() - p.local_session_count()) as u64,
            local_sessions: p.local_session_count() as u64,
            packets_received: p.stats.packets_received.saturating_sub(self.packets_at_reset.get().0),
            packets_sent: p.stats.packets_sent.saturating_sub(self.packets_at_reset.get().1),
            last_zxid: p.tree.last_processed_zxid,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            leader: self.leader.get(),
        }
    }

    /// The ensemble role changed (`Mode:` in srvr/stat, `zk_server_state` in mntr).
    /// Also times each election: from the moment the member stops serving until it serves.
    pub fn set_role(&self, mode: ServerMode, serving: bool) {
        self.role.set((mode, serving));
        match (serving, self.unavailable_since.get()) {
            (false, None) => self.unavailable_since.set(Some(Instant::now())),
            (true, Some(since)) => {
                self.unavailable_since.set(None);
                self.election_time_ms.observe(since.elapsed().as_secs_f64() * 1000.0);
            }
            _ => {}
        }
    }

    /// Election times, for the metrics endpoint.
    pub fn election_time_ms(&self) -> Histogram {
        self.election_time_ms.clone()
    }

    /// The reply to a four-letter word, or None when it is not one.
    pub fn respond(&self, processor: &Processor, word: &[u8; 4]) -> Option<String> {
        let status = self.snapshot(processor, word);
        let text = four_letter::respond(word, &self.whitelist, &status);
        if std::str::from_utf8(word).is_ok_and(|w| self.whitelist.allows(w)) {
            self.reset_stats_if_asked(word, &status);
        }
        text
    }

    /// Everything `word` prints. The filesystem reads (directory sizes, open descriptors) are
    /// done only for the words that print them: this runs on the data role's core, and tools
    /// poll `srvr` and `ruok` often.
    fn snapshot(&self, p: &Processor, word: &[u8; 4]) -> ServerStatus {
        let g = self.gauges(p);
        let mut s = ServerStatus::new(self.conf.clone());
        (s.mode, s.serving) = (g.mode, g.serving);
        s.env = self.env.clone();
        s.packets_received = g.packets_received;
        s.packets_sent = g.packets_sent;
        s.latency = self.requests.latency();
        s.outstanding_requests = self.requests.outstanding();
        s.last_zxid = g.last_zxid;
        s.node_count = g.node_count;
        s.approximate_data_size = g.approximate_data_size;
        s.uptime_ms = g.uptime_ms;
        s.num_alive_connections = g.num_alive_connections;
        s.watch_count = g.watch_count;
        s.ephemerals_count = g.ephemerals_count;
        s.global_sessions = g.global_sessions;
        s.local_sessions = g.local_sessions;
        let sizes = self.requests.response_sizes();
        (s.last_client_response_size, s.min_client_response_size, s.max_client_response_size) =
            (sizes.last, sizes.min, sizes.max);
        s.outstanding_tls_handshakes = self.requests.outstanding_tls_handshakes();
        s.auth_failed_count = self.requests.auth_failed_count();
        (s.non_mtls_local_conn_count, s.non_mtls_remote_conn_count) = self.requests.non_mtls_connections();
        let mut conns: Vec<_> = p.connections().collect();
        conns.sort_by_key(|(id, _)| **id);
        s.connections = conns
            .iter()
            .map(|(id, c)| (self.requests.connection(**id), c))
            .map(|(figures, c)| ConnectionStatus {
                remote: c.remote.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                interest_ops: figures.interest_ops,
                outstanding: figures.outstanding,
                received: c.received,
                sent: c.sent,
                session_id: c.session_id,
                last_op: c.last_op.map_or("NA", |op| four_letter::last_op_name(op as i32)).to_string(),
                established_unix_ms: c.connected_at_ms,
                session_timeout_ms: p.sessions.get(c.session_id).map(|x| x.timeout_ms as u32).unwrap_or(0),
                last_cxid: c.last_cxid as i64,
                last_zxid: c.last_zxid,
                last_response_ms: figures.last_response_ms,
                last_latency_ms: figures.last_latency_ms,
                latency: figures.latency,
            })
            .collect();
        let session_of = |w: ConnId| p.connection(w).map_or(0, |c| c.session_id);
        s.watches_by_session =
            p.watches.by_watcher().into_iter().map(|(w, paths)| (session_of(w.0), paths)).collect();
        s.watches_by_path = p
            .watches
            .by_path()
            .into_iter()
            .map(|(path, ws)| (path, ws.into_iter().map(|w| session_of(w.0)).collect()))
            .collect();
        // wchs counts data watches only, as Apache.
        s.watch_total = p.watches.data_table().watch_count() as u64;
        s.watched_paths = p.watches.path_count() as u64;
        s.watching_connections = p.watches.watcher_count() as u64;
        s.ephemerals_by_session = p
            .tree
            .all_ephemerals()
            .map(|(id, paths)| (id, paths.iter().map(|x| x.to_string()).collect()))
            .collect();
        if matches!(word, b"dirs" | b"conf") {
            s.data_dir_size = dir_size(&self.data_dir);
            s.log_dir_size = dir_size(&self.log_dir);
        }
        if word == b"conf" && !s.conf.extra.is_empty() {
            // An ensemble member prints its current configuration, as reconfigs change it.
            let config = p.tree.get(CONFIG_NODE).and_then(|node| node.data.as_deref());
            s.conf.membership = config.map(|text| String::from_utf8_lossy(text).into_owned());
        }
        if word == b"mntr" {
            (s.open_file_descriptor_count, s.max_file_descriptor_count) = fd_counts();
            if let (ServerMode::Leader, Some(leader)) = (s.mode, g.leader) {
                s.extra_monitor = leader_monitor_lines(&leader)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_string()))
                    .collect();
            }
            s.extra_monitor.extend(crate::role_stats::monitor_lines());
            s.extra_monitor.extend(crate::coalesce::monitor_lines());
            for (name, histogram) in &self.monitor_histograms {
                s.extra_monitor.extend(histogram_monitor_lines(name, histogram));
            }
            s.extra_monitor.extend(crate::hops::recorder().monitor_lines());
        }
        s
    }
}
