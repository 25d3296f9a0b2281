//! Start-up: turns a [`Config`] into running roles.
//!
//! Recovers the processor from the newest snapshot and the transaction log first (on this thread, before any
//! executor exists; a corrupt log stops start-up with the file and offset), then lays the
//! roles out on glommio executors as `ringkeeper.executors` says ([`Executors::resolve`]):
//! - `one`: the network, data and log roles are tasks of ONE executor (one thread), linked by
//!   local channels: a request costs no cross-thread wake-up on its way through the roles.
//! - `per-role`: one executor per network core, one for the data role and one for the log
//!   role, each on its own thread, linked by bounded shared channels (an eventfd wake-up
//!   whenever the receiving thread sleeps).
//!
//! Executors are placed by the `ringkeeper.*.core` keys (`Placement::Fixed` when
//! `ringkeeper.pin=true`, floating otherwise so that several servers can share cores). Blocks
//! until the roles end.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, Context};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use ringkeeper_engine::request::{Processor, ProcessorConfig};

use crate::coalesce::Coalescer;
use crate::config::{Config, Executors};
use crate::data_files;
use crate::data_role::LogLink;
use crate::link;
use crate::log_role::{LogRecord, LogSettings, LogStats};
use crate::messages::{ToData, ToNet};
use crate::metrics::MetricsSources;
use crate::network::{self, ConnectionCounts, NetworkLimits};
use crate::recovery::LogTail;
use crate::replica::ReplicaSetup;
use crate::request_stats::RequestStats;
use crate::role_stats::{self, Role};
use crate::snapshotter::{SnapshotSettings, Snapshotter};
use crate::status::StatusSource;

/// io_uring registered-buffer memory per executor without file I/O.
pub const EXECUTOR_IO_MEMORY_BYTES: usize = 1 << 20;
/// Bounds of the log executor's registered DMA buffer memory (larger writes use the heap).
const LOG_IO_MEMORY_BYTES_MIN: usize = 1 << 20;
const LOG_IO_MEMORY_BYTES_MAX: usize = 64 << 20;
/// Records the data role keeps in flight to the log per `ringkeeper.queue.depth` slot.
pub const IN_FLIGHT_PER_QUEUE_SLOT: usize = 2;

/// The log executor's registered io_uring memory for a batch limit (twice a batch, bounded):
/// the memlock the log role needs beside [`EXECUTOR_IO_MEMORY_BYTES`] per other executor.
pub fn log_io_memory_bytes(batch_bytes_max: usize) -> usize {
    (2 * batch_bytes_max).clamp(LOG_IO_MEMORY_BYTES_MIN, LOG_IO_MEMORY_BYTES_MAX)
}

/// How long a task queue may run before glommio makes it yield to I/O: far longer than any
/// stretch of our roles' work (they yield at every await), so that the preemption timer in
/// practice never fires. glommio 0.9's run loop had a lost wake-up when it did (a thread
/// descheduled for longer than the timer between the loop's I/O poll and its run of the task
/// queues parked with tasks ready; a `per-role` server under load sometimes never got to
/// listening): the vendored glommio fixes it (`vendor/glommio/RINGKEEPER-PATCHES.md` (e)). The
/// long timer stays for cost: a preemption timer that still has long to run is kept armed
/// across loop turns and sleeps instead of being cancelled and re-armed on every turn (change
/// (a)); glommio's default of 100 ms would be cancelled before every sleep.
const PREEMPT_TIMER: std::time::Duration = std::time::Duration::from_secs(3600);

/// An executor named `name` on `core` (fixed when `ringkeeper.pin=true`, floating otherwise)
/// with `io_memory` bytes of registered io_uring buffers.
fn executor(config: &Config, core: Option<usize>, name: &str, io_memory: usize) -> LocalExecutorBuilder {
    let placement = match core {
        Some(c) if config.pin => Placement::Fixed(c),
        _ => Placement::Unbound,
    };
    executor_builder(placement, name, io_memory)
}

/// Every glommio executor of ours (the roles', the tuning tool's) is built here, with
/// [`PREEMPT_TIMER`].
pub fn executor_builder(placement: Placement, name: &str, io_memory: usize) -> LocalExecutorBuilder {
    LocalExecutorBuilder::new(placement).name(name).io_memory(io_memory).preempt_timer(PREEMPT_TIMER)
}

/// The processor settings a config implies.
pub fn processor_config(config: &Config) -> ProcessorConfig {
    ProcessorConfig {
        tick_ms: config.tick_time_ms as i64,
        min_session_timeout_ms: config.min_session_timeout_ms as i32,
        max_session_timeout_ms: config.max_session_timeout_ms as i32,
        extended_types_enabled: config.extended_types_enabled,
        enforce_quota: config.enforce_quota,
        super_digest: config.super_digest.clone(),
        server_id: 0,
        container_check_interval_ms: config.container_check_interval_ms as i64,
        read_only_mode_enabled: config.read_only_mode_enabled,
        reconfig_enabled: config.reconfig_enabled,
        skip_acl: config.skip_acl,
        auth_providers: ringkeeper_engine::acl::Providers {
            x509: config.has_auth_provider(crate::config::X509_AUTH_PROVIDER),
            sasl: config.has_auth_provider(crate::config::SASL_AUTH_PROVIDER),
        },
        sasl: config.sasl_digest_users.as_ref().map(|users| ringkeeper_engine::auth::SaslConfig {
            digest_users: users.clone(),
            remove_host_from_principal: config.kerberos_remove_host_from_principal,
            remove_realm_from_principal: config.kerberos_remove_realm_from_principal,
            default_realm: kerberos_default_realm(config),
            super_user: config.sasl_super_user.clone(),
        }),
        sasl_mechanism: None,
        enforcement: config.enforcement(),
        sasl_nonce_key: Vec::new(),
    }
}

/// The Kerberos default realm (`default_realm` of [`Config::krb5_config_path`]), which
/// decides which principals have a short name (Apache's `KerberosName`).
fn kerberos_default_realm(config: &Config) -> Option<String> {
    let text = std::fs::read_to_string(config.krb5_config_path()).ok()?;
    ringkeeper_engine::auth::krb5_default_realm(&text)
}

/// `n` bytes from /dev/urandom.
fn random_bytes(n: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes)
}

/// Bytes of a standalone server's session-password secret (written once, random).
const SESSION_SECRET_BYTES: usize = 32;

/// The secret session passwords derive from, kept in `dataDir/session.secret` (hex) so that
/// a session recovered from the log can be resumed with the password its client holds.
fn session_secret(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(data_files::SESSION_SECRET);
    if let Some(text) = data_files::read_durably(data_dir, data_files::SESSION_SECRET)
        .context("the session secret must be durable before sessions are derived from it")?
    {
        let text = text.trim();
        let hex_byte = |i: usize| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
        return (0..text.len())
            .step_by(2)
            .map(hex_byte)
            .collect::<Option<Vec<u8>>>()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| anyhow!("{}: not a hex session secret", path.display()));
    }
    let bytes = random_bytes(SESSION_SECRET_BYTES)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    data_files::replace_durably(data_dir, data_files::SESSION_SECRET, format!("{hex}\n").as_bytes())
        .context("making the session secret durable")?;
    Ok(bytes.to_vec())
}

/// How long a listener of someone else on the client port may take to go away (a server
/// killed a moment ago).
const PORT_FREE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The client port's listening socket, bound here once for every network executor and shared
/// with none: another live server on it makes this start fail (after [`PORT_FREE_WAIT`], in
/// case it is one killed a moment ago) instead of silently splitting the clients with it.
fn listen_on_client_port(key: &str, addr: SocketAddr) -> anyhow::Result<socket2::Socket> {
    let started = std::time::Instant::now();
    loop {
        match crate::listen::listen(addr) {
            Ok(socket) => return Ok(socket),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && started.elapsed() < PORT_FREE_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(anyhow!(
                    "{key}: {addr} is already taken by another listener ({e}); is another server running?"
                ))
            }
            Err(e) => return Err(anyhow!("{key}: cannot listen on {addr}: {e}")),
        }
    }
}

/// Runs the server until a role fails. Prints `ringkeeper listening on ADDR` once clients can connect.
pub fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating dataDir {}", config.data_dir.display()))?;
    let address = config.effective_client_address();
    let port = config.effective_client_port();
    let bind_addr = socket_address("clientPortAddress", &address, port)?;
    let client_socket = listen_on_client_port("clientPort", bind_addr)?;
    let secure_listener = match config.secure_client_port {
        Some(secure_port) => {
            let (key, address) = match &config.secure_client_port_address {
                Some(a) => ("secureClientPortAddress", a.clone()),
                None => ("clientPortAddress", address.clone()),
            };
            let addr = socket_address(key, &address, secure_port)?;
            Some(listen_on_client_port("secureClientPort", addr)?)
        }
        None => None,
    };
    let (transport, secure_transport) = crate::tls::transports(&config)?;

    let now = crate::data_role::now_ms();
    // Never an empty start beside Apache's data.
    crate::apache_migration::refuse_apache_only(&config.data_dir, config.log_dir())
        .map_err(|e| anyhow!("refusing to start: {e}"))?;
    // An ensemble member first carries out a pending TRUNC, then learns its peers.
    let mut replica = crate::replica::prepare(&config)?;
    let secret = match &replica {
        Some(_) => crate::replica::shared_session_secret(&config)?,
        None => session_secret(&config.data_dir)?,
    };
    let mut processor_cfg = processor_config(&config);
    processor_cfg.server_id = config.my_id.unwrap_or(0) as i64;
    processor_cfg.sasl_nonce_key = random_bytes(SESSION_SECRET_BYTES)?;
    processor_cfg.sasl_mechanism = gssapi_mechanism(&config)?;
    let mut processor = Processor::new(processor_cfg, now, &secret);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let layout = config.executors.resolve(config.pin, cpus);
    let mut log_settings = LogSettings::from_config(&config, layout == Executors::One);
    std::fs::create_dir_all(&log_settings.dir)
        .with_context(|| format!("creating dataLogDir {}", log_settings.dir.display()))?;
    // glommio opens files with openat(-1, ...): paths must be absolute.
    log_settings.dir = std::fs::canonicalize(&log_settings.dir)
        .with_context(|| format!("resolving dataLogDir {}", log_settings.dir.display()))?;
    let started = std::time::Instant::now();
    let recovered = crate::recovery::recover(&config.data_dir, &log_settings.dir, &mut processor, now)
        .map_err(|e| anyhow!("refusing to start: the snapshot or transaction log cannot be trusted: {e}"))?;
    crate::apache_migration::adopt_apache_sessions(&config.data_dir, &mut processor.sessions)?;
    if let Some(setup) = &mut replica {
        crate::replica::adopt_membership(&config, setup, &mut processor);
    }
    log::info!(
        "recovered from {} and {} txns in {} log segment(s) in {} in {:?}; last zxid {:#x}, {} znodes",
        recovered.snapshot.as_ref().map_or("no snapshot".to_string(), |p| p.display().to_string()),
        recovered.records,
        recovered.segments,
        log_settings.dir.display(),
        started.elapsed(),
        recovered.last_zxid,
        processor.tree.node_count()
    );
    let snapshot_settings = SnapshotSettings::from_config(&config, log_settings.dir.clone());
    let snapshot_time_ms = snapshot_settings.write_time_ms.clone();
    let mut snapshots = Snapshotter::new(snapshot_settings, recovered.last_zxid, now as u64)
        .context("starting the snapshot writer thread")?;
    if recovered.records > 0 {
        // As Apache after loading its database: the next start need not replay these again.
        snapshots.request();
    }
    let request_stats = Arc::new(RequestStats::default());
    let log_stats = LogStats::default();
    let mut status = StatusSource::new(&config, request_stats.clone());
    status.monitor_histograms(vec![
        ("log_batch_records", log_stats.batch_records.clone()),
        ("snapshot_ms", snapshot_time_ms.clone()),
    ]);
    if let Some(endpoint) = &config.metrics_endpoint {
        let sources = MetricsSources {
            requests: request_stats.clone(),
            published: status.published(),
            log: log_stats.clone(),
            snapshot_time_ms,
            election_time_ms: status.election_time_ms(),
        };
        let bound = crate::metrics::start(endpoint, sources)?;
        log::info!("serving Prometheus metrics on http://{bound}/metrics");
    }
    if let Some(endpoint) = &config.admin_endpoint {
        // As Apache: an AdminServer that cannot start is a warning, not a reason to stop.
        match crate::admin::start(endpoint, status.admin_queries()) {
            Ok(bound) => log::info!("AdminServer: http://{bound}/commands"),
            Err(e) => log::warn!("AdminServer not started: {e:#}"),
        }
    }
    let queue_depth = config.queue_depth.max(1);
    let roles = Roles {
        processor,
        status,
        snapshots,
        replica,
        log_settings,
        log_stats,
        log_tail: recovered.tail,
        last_zxid: recovered.last_zxid,
        queue_depth,
        clients: ClientListener {
            plain: (Arc::new(client_socket), transport),
            secure: secure_listener
                .zip(secure_transport)
                .map(|(socket, transport)| (Arc::new(socket), transport)),
            limits: NetworkLimits {
                jute_max_buffer: config.jute_max_buffer as usize,
                max_client_cnxns: config.max_client_cnxns,
                sessionless_timeout: std::time::Duration::from_millis(
                    config.sessionless_cnxn_timeout_ms.into(),
                ),
                outbox_bytes_max: config.client_outbox_bytes_max as usize,
                global_outstanding_limit: u64::from(config.global_outstanding_limit),
            },
            counts: Arc::new(Mutex::new(Default::default())),
            stats: request_stats,
        },
    };
    log::info!("executor layout: {layout} (ringkeeper.executors={}, {cpus} CPUs)", config.executors);
    log::info!(
        "log: group commits of at most {} record(s) written inline (ringkeeper.log.inlineMaxRecords)",
        roles.log_settings.inline_max_records
    );
    match layout {
        Executors::PerRole | Executors::Auto => run_per_role(&config, roles),
        Executors::One => run_on_one_executor(&config, roles),
    }
}

/// Everything the roles start from, recovered on the main thread.
struct Roles {
    processor: Processor,
    status: StatusSource,
    snapshots: Snapshotter,
    replica: Option<ReplicaSetup>,
    log_settings: LogSettings,
    log_stats: LogStats,
    log_tail: Option<LogTail>,
    last_zxid: i64,
    queue_depth: usize,
    clients: ClientListener,
}

/// The data role's links to the log role, with the bounds a queue depth implies.
fn log_link(
    to_log: link::Sender<LogRecord>,
    from_log: link::Receiver<i64>,
    queue_depth: usize,
    durable_zxid: i64,
    snapshots: Snapshotter,
) -> LogLink {
    LogLink {
        to_log,
        from_log,
        durable_zxid,
        in_flight_max: IN_FLIGHT_PER_QUEUE_SLOT * queue_depth,
        held_max: 16 * queue_depth,
        snapshots,
    }
}

/// `address:port` as a socket address; `key` names the address in the error.
/// The address to bind for `address` (an IP, bracketed or not, or a host name resolved now,
/// IPv4 first as Java's `InetAddress.getByName`) and `port`.
fn socket_address(key: &str, address: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = address.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(address);
    let resolved: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| {
            format!("{key}: {address:?} is neither an IP address nor a host name that resolves")
        })?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| anyhow!("{key}: host name {address:?} resolves to no address"))
}

/// The client ports and what every network role shares.
#[derive(Clone)]
struct ClientListener {
    /// The `clientPort` socket (bound on the main thread, shared by every network role) and
    /// how it is served (plain, or either with `client.portUnification`).
    plain: (Arc<socket2::Socket>, crate::tls::Transport),
    /// `secureClientPort`: its socket and TLS transport.
    secure: Option<(Arc<socket2::Socket>, crate::tls::Transport)>,
    limits: NetworkLimits,
    counts: ConnectionCounts,
    stats: Arc<RequestStats>,
}

impl ClientListener {
    /// Listens on the client ports' sockets on this executor, reports the plain port's
    /// address (or why not) on `bound`, then serves clients as network role `index`.
    async fn serve(
        self,
        index: usize,
        bound: mpsc::Sender<Result<SocketAddr, String>>,
        to_data: link::Sender<ToData>,
        from_data: link::Receiver<Vec<ToNet>>,
    ) {
        let mut listeners = Vec::new();
        let secure =
            self.secure.into_iter().map(|(socket, transport)| (socket, transport, "secureClientPort"));
        for (socket, transport, key) in
            std::iter::once((self.plain.0, self.plain.1, "clientPort")).chain(secure)
        {
            match crate::listen::listener_on(&socket) {
                Ok(l) => {
                    if key == "secureClientPort" && index == 0 {
                        let addr = l.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string());
                        log::info!("serving TLS clients on {addr} (secureClientPort)");
                    }
                    listeners.push((l, transport));
                }
                Err(e) => {
                    let _ = bound.send(Err(format!("{key}: cannot accept on its socket: {e}")));
                    return;
                }
            }
        }
        let _ = bound.send(listeners[0].0.local_addr().map_err(|e| e.to_string()));
        network::run(index, listeners, to_data, from_data, self.limits, self.counts, self.stats).await;
    }
}

/// Waits for network role `index` to listen; the first one announces the address.
fn await_listening(index: usize, bound: &mpsc::Receiver<Result<SocketAddr, String>>) -> anyhow::Result<()> {
    let addr = bound
        .recv()
        .map_err(|_| anyhow!("network executor {index} died during start-up"))?
        .map_err(|e| anyhow!(e))?;
    if index == 0 {
        println!("ringkeeper listening on {addr}");
    }
    Ok(())
}

/// `ringkeeper.executors=one`: the network, data and log roles as tasks of one executor on
/// one thread, linked by local channels (placed on `ringkeeper.data.core` when pinned).
fn run_on_one_executor(config: &Config, roles: Roles) -> anyhow::Result<()> {
    if config.network_cores.len() > 1 {
        log::info!("ringkeeper.executors=one: one network role serves every client (ringkeeper.network.cores lists more)");
    }
    let (bound_tx, bound_rx) = mpsc::channel::<Result<SocketAddr, String>>();
    let io_memory = EXECUTOR_IO_MEMORY_BYTES + log_io_memory_bytes(roles.log_settings.batch_bytes_max);
    let core = config.data_core.or(config.network_cores.first().copied());
    let coalesce_nap = std::time::Duration::from_micros(config.coalesce_micros);
    let handle = executor(config, core, "rk-server", io_memory)
        .spawn(move || async move {
            let depth = roles.queue_depth;
            let (to_data, from_network) = link::local_bounded::<ToData>(depth);
            let (to_network, from_data) = link::local_unbounded::<Vec<ToNet>>();
            let (to_log, from_data_to_log) = link::local_unbounded::<LogRecord>();
            let (to_data_durable, from_log) = link::local_bounded::<i64>(depth);
            let log_link = log_link(to_log, from_log, depth, roles.last_zxid, roles.snapshots);
            let log = crate::log_role::run(
                roles.log_settings,
                roles.log_tail,
                roles.last_zxid,
                from_data_to_log,
                to_data_durable,
                roles.log_stats,
            );
            let network = roles.clients.serve(0, bound_tx, to_data, from_data);
            // Only an ensemble member naps: a standalone server has no peer hops to share a wake-up.
            let coalescer = roles.replica.as_ref().and(Coalescer::new(coalesce_nap));
            if let Some(coalescer) = &coalescer {
                coalescer.clone().spawn();
            }
            let data = crate::data_role::run(
                roles.processor,
                roles.status,
                vec![from_network],
                vec![to_network],
                log_link,
                roles.replica,
                coalescer,
            );
            role_stats::run_roles(vec![
                (Role::Log, Box::pin(log)),
                (Role::Network, Box::pin(network)),
                (Role::Data, Box::pin(data)),
            ])
            .await
        })
        .map_err(|e| anyhow!("starting the server executor: {e}"))?;
    await_listening(0, &bound_rx)?;
    handle.join().map_err(|e| anyhow!("server executor failed: {e}"))?;
    Ok(())
}

/// `ringkeeper.executors=per-role`: one executor per network core, one for the data role and
/// one for the log role, each on its own thread, linked by shared channels.
fn run_per_role(config: &Config, roles: Roles) -> anyhow::Result<()> {
    let network_cores: Vec<Option<usize>> = if config.network_cores.is_empty() {
        vec![None]
    } else {
        config.network_cores.iter().map(|c| Some(*c)).collect()
    };
    let queue_depth = roles.queue_depth;
    let mut to_data_senders = Vec::new();
    let mut to_data_receivers = Vec::new();
    let mut to_net_senders = Vec::new();
    let mut to_net_receivers = Vec::new();
    for _ in &network_cores {
        let (tx, rx) = shared_channel::new_bounded::<ToData>(queue_depth);
        to_data_senders.push(tx);
        to_data_receivers.push(rx);
        let (tx, rx) = shared_channel::new_bounded::<Vec<ToNet>>(queue_depth);
        to_net_senders.push(tx);
        to_net_receivers.push(rx);
    }

    let (to_log, from_data) = shared_channel::new_bounded::<LogRecord>(queue_depth);
    let (to_data_durable, from_log) = shared_channel::new_bounded::<i64>(queue_depth);
    let Roles {
        processor,
        status,
        snapshots,
        replica,
        log_settings,
        log_stats,
        log_tail,
        last_zxid,
        clients,
        ..
    } = roles;
    let log_io_memory = log_io_memory_bytes(log_settings.batch_bytes_max);
    let log_handle = executor(config, config.log_core, "rk-log", log_io_memory)
        .spawn(move || async move {
            let from_data = link::connect_receiver(from_data).await;
            let to_data = link::connect_sender(to_data_durable).await;
            let log = crate::log_role::run(log_settings, log_tail, last_zxid, from_data, to_data, log_stats);
            role_stats::run_roles(vec![(Role::Log, Box::pin(log))]).await
        })
        .map_err(|e| anyhow!("starting the log role executor: {e}"))?;

    let data_handle = executor(config, config.data_core, "rk-data", EXECUTOR_IO_MEMORY_BYTES)
        .spawn(move || async move {
            let to_log = link::connect_sender(to_log).await;
            let from_log = link::connect_receiver(from_log).await;
            let log_link = log_link(to_log, from_log, queue_depth, last_zxid, snapshots);
            let mut from_cores = Vec::new();
            for receiver in to_data_receivers {
                from_cores.push(link::connect_receiver(receiver).await);
            }
            let mut to_cores = Vec::new();
            for sender in to_net_senders {
                to_cores.push(link::connect_sender(sender).await);
            }
            let data =
                crate::data_role::run(processor, status, from_cores, to_cores, log_link, replica, None);
            role_stats::run_roles(vec![(Role::Data, Box::pin(data))]).await
        })
        .map_err(|e| anyhow!("starting the data role executor: {e}"))?;

    // Every network executor is started before any is waited for: the data role connects its
    // links to all of them in turn, so none listens until all are running.
    let mut handles = Vec::new();
    let mut bound = Vec::new();
    for (index, ((core, to_data), from_data)) in
        network_cores.into_iter().zip(to_data_senders).zip(to_net_receivers).enumerate()
    {
        let (bound_tx, bound_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        bound.push(bound_rx);
        let clients = clients.clone();
        let handle = executor(config, core, &format!("rk-net-{index}"), EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || async move {
                let to_data = link::connect_sender(to_data).await;
                let from_data = link::connect_receiver(from_data).await;
                let network = clients.serve(index, bound_tx, to_data, from_data);
                role_stats::run_roles(vec![(Role::Network, Box::pin(network))]).await
            })
            .map_err(|e| anyhow!("starting network executor {index}: {e}"))?;
        handles.push(handle);
    }
    for (index, bound_rx) in bound.iter().enumerate() {
        await_listening(index, bound_rx)?;
    }
    for handle in handles {
        handle.join().map_err(|e| anyhow!("network role failed: {e}"))?;
    }
    data_handle.join().map_err(|e| anyhow!("data role failed: {e}"))?;
    log_handle.join().map_err(|e| anyhow!("log role failed: {e}"))?;
    Ok(())
}

/// The SASL GSSAPI mechanism the config asks for ([`crate::sasl_gssapi`]).
#[cfg(feature = "gssapi")]
fn gssapi_mechanism(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<dyn ringkeeper_engine::auth::SaslMechanism>>> {
    crate::sasl_gssapi::from_config(config)
}

/// Without the `gssapi` feature, a config asking for Kerberos is refused, naming the fix.
#[cfg(not(feature = "gssapi"))]
fn gssapi_mechanism(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<dyn ringkeeper_engine::auth::SaslMechanism>>> {
    if config.has_auth_provider(crate::config::SASL_AUTH_PROVIDER) && config.sasl_kerberos.is_some() {
        anyhow::bail!(
            "the JAAS Server section logs in with Kerberos (Krb5LoginModule), but this ringkeeper was built without SASL GSSAPI: build it with `--features gssapi` (needs libkrb5-dev and libclang-dev)"
        );
    }
    Ok(None)
}
