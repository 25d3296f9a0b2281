//! Prometheus endpoint: `GET /metrics` in the Prometheus text format, served when zoo.cfg
//! names Apache's provider (`metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`,
//! `metricsProvider.httpHost`, `metricsProvider.httpPort`), so dashboards built for Apache
//! ZooKeeper work unchanged.
//!
//! Names are Apache's wherever a counterpart exists: the `mntr` gauges (`znode_count`,
//! `watch_count`, `ephemerals_count`, `approximate_data_size`, `num_alive_connections`,
//! `outstanding_requests`, `packets_received`/`packets_sent`, `avg/min/max_latency`,
//! `global_sessions`, `uptime`, file descriptors; on a leader `learners`, `synced_followers`,
//! `synced_non_voting_followers`, `synced_observers`, `pending_syncs`) and `fsynctime`
//! `snapshottime` and `election_time` (ms; histograms here, so `_sum`/`_count` match Apache's
//! summaries). Ours:
//! `request_latency_ms` (a histogram of what `avg_latency` averages) and
//! `ringkeeper_log_batch_records` (records per group commit), `ringkeeper_hop_us{hop=...}`
//! (per-hop latency of sampled writes, µs: [`crate::hops`]), and per role (network, data,
//! log) `ringkeeper_role_queue_depth`, `ringkeeper_role_busy_seconds_total` and
//! `ringkeeper_role_items_total` ([`crate::role_stats`]).
//!
//! A plain thread of its own serves HTTP ([`crate::http`]); each scrape reads the
//! numbers the roles publish ([`PublishedStatus`], [`RequestStats`], [`LogStats`]) into a
//! fresh [`prometheus::Registry`] and encodes it: nothing here touches a role's core.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus::{Encoder, Gauge, Histogram, Registry, TextEncoder};

use crate::config::HttpEndpoint;
use crate::http::response;
use crate::log_role::LogStats;
use crate::request_stats::RequestStats;
use crate::status::{fd_counts, leader_monitor_lines, PublishedStatus};

/// Where the numbers come from.
#[derive(Clone)]
pub struct MetricsSources {
    pub requests: Arc<RequestStats>,
    pub published: Arc<Mutex<PublishedStatus>>,
    pub log: LogStats,
    /// Snapshot writes, ms (`snapshottime`).
    pub snapshot_time_ms: Histogram,
    /// Elections, ms (`election_time`).
    pub election_time_ms: Histogram,
}

/// The Prometheus text of the current numbers.
pub fn render(sources: &MetricsSources) -> Result<String, prometheus::Error> {
    let status = sources.published.lock().expect("published status lock").clone();
    let latency = sources.requests.latency();
    let sizes = sources.requests.response_sizes();
    let (open_fds, max_fds) = fd_counts();
    let mut gauges: Vec<(&str, &str, f64)> = vec![
        ("znode_count", "Znodes in the data tree", status.node_count as f64),
        ("watch_count", "Watches set (data and child)", status.watch_count as f64),
        ("ephemerals_count", "Ephemeral znodes", status.ephemerals_count as f64),
        (
            "approximate_data_size",
            "Bytes of paths and data over all znodes",
            status.approximate_data_size as f64,
        ),
        ("num_alive_connections", "Client connections", status.num_alive_connections as f64),
        (
            "outstanding_requests",
            "Requests received and not answered yet",
            sources.requests.outstanding() as f64,
        ),
        ("packets_received", "Packets received from clients", status.packets_received as f64),
        ("packets_sent", "Packets sent to clients", status.packets_sent as f64),
        ("global_sessions", "Sessions", status.global_sessions as f64),
        ("local_sessions", "Read-only (local) sessions", status.local_sessions as f64),
        ("uptime", "Milliseconds since the server started", status.uptime_ms as f64),
        ("avg_latency", "Average request latency, ms", latency.avg_ms()),
        ("min_latency", "Smallest request latency, ms", latency.min() as f64),
        ("max_latency", "Largest request latency, ms", latency.max_ms as f64),
        (
            "last_client_response_size",
            "Size of the last response frame, bytes (-1: none yet)",
            sizes.last as f64,
        ),
        ("min_client_response_size", "Smallest response frame, bytes (-1: none yet)", sizes.min as f64),
        ("max_client_response_size", "Largest response frame, bytes (-1: none yet)", sizes.max as f64),
        (
            "outstanding_tls_handshake",
            "TLS handshakes under way",
            sources.requests.outstanding_tls_handshakes() as f64,
        ),
    ];
    if let Some(open) = open_fds {
        gauges.push(("open_file_descriptor_count", "Open file descriptors", open as f64));
    }
    if let Some(max) = max_fds {
        gauges.push(("max_file_descriptor_count", "File descriptor limit", max as f64));
    }
    let leader_lines = status.leader.as_ref().map(leader_monitor_lines).unwrap_or_default();
    for (name, value) in &leader_lines {
        gauges.push((name, "Leader: learners by state (as Apache's mntr)", *value as f64));
    }
    let registry = Registry::new();
    for (name, help, value) in gauges {
        let gauge = Gauge::new(name, help)?;
        gauge.set(value);
        registry.register(Box::new(gauge))?;
    }
    registry.register(Box::new(sources.requests.histogram.clone()))?;
    registry.register(Box::new(sources.log.fsync_ms.clone()))?;
    registry.register(Box::new(sources.log.batch_records.clone()))?;
    registry.register(Box::new(sources.snapshot_time_ms.clone()))?;
    registry.register(Box::new(sources.election_time_ms.clone()))?;
    registry.register(Box::new(crate::hops::recorder().metric()))?;
    crate::role_stats::register(&registry)?;
    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Ok(String::from_utf8(text).expect("the text encoder writes UTF-8"))
}

/// Binds the endpoint and serves it from a thread of its own. Returns the bound address.
pub fn start(endpoint: &HttpEndpoint, sources: MetricsSources) -> anyhow::Result<SocketAddr> {
    let keys = ("metricsProvider.httpHost", "metricsProvider.httpPort");
    crate::http::serve(endpoint, keys, "rk-metrics", move |path| match path {
        "/metrics" => match render(&sources) {
            Ok(text) => response(200, "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => response(500, "text/plain", format!("{e}\n")),
        },
        _ => response(404, "text/plain", "Not found: the metrics are at /metrics\n".into()),
    })
}
