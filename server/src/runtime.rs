//! Start-up: turns a [`Config`] into running role executors.
//!
//! Recovers the processor from the newest snapshot and the transaction log first (on this thread, before any
//! executor exists; a corrupt log stops start-up with the file and offset), then creates the
//! bounded channels between roles and starts one glommio executor per network core, one for
//! the data role and one for the log role, each on its own thread, placed by
//! `ringkeeper.*.core` keys (`Placement::Fixed` when `ringkeeper.pin=true`, floating otherwise
//! so that several servers can share cores), and blocks until they end.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, Context};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use ringkeeper_engine::request::{Processor, ProcessorConfig};

use crate::config::Config;
use crate::data_role::LogLink;
use crate::log_role::{LogRecord, LogSettings};
use crate::messages::{ToData, ToNet};
use crate::network::{self, NetworkLimits};
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

fn placement(config: &Config, core: Option<usize>) -> Placement {
    match core {
        Some(c) if config.pin => Placement::Fixed(c),
        _ => Placement::Unbound,
    }
}

/// The processor settings a config implies.
pub fn processor_config(config: &Config) -> ProcessorConfig {
    ProcessorConfig {
        tick_ms: config.tick_time_ms as i64,
        min_session_timeout_ms: config.min_session_timeout_ms as i32,
        max_session_timeout_ms: config.max_session_timeout_ms as i32,
        extended_types_enabled: config.extended_types_enabled,
        super_digest: config.super_digest.clone(),
        server_id: 0,
        container_check_interval_ms: config.container_check_interval_ms as i64,
    }
}

/// The secret session passwords derive from, kept in `dataDir/session.secret` so that a
/// session recovered from the log can be resumed with the password its client holds.
fn session_secret(data_dir: &std::path::Path) -> anyhow::Result<u64> {
    let path = data_dir.join("session.secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return u64::from_str_radix(text.trim(), 16)
            .map_err(|_| anyhow!("{}: not a hex session secret", path.display()));
    }
    let mut bytes = [0u8; 8];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("reading /dev/urandom")?;
    }
    let secret = u64::from_ne_bytes(bytes);
    let tmp = data_dir.join("session.secret.tmp");
    std::fs::write(&tmp, format!("{secret:016x}\n"))
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    // The new name is durable only once the directory is synced (the log's own directory
    // fsyncs do not cover dataDir when dataLogDir is set apart).
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("fsync of {}", data_dir.display()))?;
    Ok(secret)
}

/// How long a listener of someone else on the client port may take to go away (a server
/// killed a moment ago).
const PORT_FREE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Refuses to share the client port. The network executors bind with SO_REUSEPORT (one
/// listener per core), which the kernel would let any other process doing the same share
/// silently (clients then land on two different servers). A plain test bind cannot tell a
/// live listener from the TIME_WAIT connections a killed server leaves (they also refuse a
/// bind for a minute), so this looks for a socket in LISTEN state on the same address and
/// port in `/proc/net/tcp{,6}`.
fn ensure_port_free(addr: SocketAddr) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while let Some(holder) = listener_on(addr) {
        if started.elapsed() >= PORT_FREE_WAIT {
            return Err(anyhow!("clientPort: {addr} is already taken by another listener ({holder}); is another server running?"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// A listening socket that would share `addr` (same port; same address or a wildcard).
fn listener_on(addr: SocketAddr) -> Option<String> {
    const LISTEN: &str = "0A";
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else { continue };
            let Some((ip_hex, port_hex)) = local.split_once(':') else { continue };
            if *state != LISTEN || u16::from_str_radix(port_hex, 16).ok() != Some(addr.port()) {
                continue;
            }
            let wildcard = ip_hex.chars().all(|c| c == '0');
            let same = match addr.ip() {
                std::net::IpAddr::V4(v4) => {
                    ip_hex.len() == 8
                        && u32::from_str_radix(ip_hex, 16).ok() == Some(u32::from_ne_bytes(v4.octets()))
                }
                std::net::IpAddr::V6(_) => false,
            };
            if wildcard || same || addr.ip().is_unspecified() {
                return Some(format!("{table}: {local}"));
            }
        }
    }
    None
}

/// Runs the server until a role fails. Prints `ringkeeper listening on ADDR` once clients can connect.
pub fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating dataDir {}", config.data_dir.display()))?;
    let network_cores: Vec<Option<usize>> = if config.network_cores.is_empty() {
        vec![None]
    } else {
        config.network_cores.iter().map(|c| Some(*c)).collect()
    };
    let queue_depth = config.queue_depth.max(1);
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

    let address = config.client_port_address.clone().unwrap_or_else(|| "0.0.0.0".to_string());
    let port = config.client_port.unwrap_or(2181);
    let mut bind_addr: SocketAddr = format!("{address}:{port}")
        .parse()
        .or_else(|_| format!("[{address}]:{port}").parse())
        .map_err(|_| anyhow!("clientPortAddress: {address:?} is not an IP address"))?;
    ensure_port_free(bind_addr)?;
    let limits = NetworkLimits {
        jute_max_buffer: config.jute_max_buffer as usize,
        max_client_cnxns: config.max_client_cnxns,
    };
    let counts = Arc::new(Mutex::new(Default::default()));

    let now = crate::data_role::now_ms();
    // An ensemble member first carries out a pending TRUNC, then learns its peers.
    let replica = crate::replica::prepare(&config)?;
    let secret = match &replica {
        Some(_) => crate::replica::shared_session_secret(&config),
        None => session_secret(&config.data_dir)?,
    };
    let mut processor_cfg = processor_config(&config);
    processor_cfg.server_id = config.my_id.unwrap_or(0) as i64;
    let mut processor = Processor::new(processor_cfg, now, secret);
    let mut log_settings = LogSettings::from_config(&config);
    std::fs::create_dir_all(&log_settings.dir)
        .with_context(|| format!("creating dataLogDir {}", log_settings.dir.display()))?;
    // glommio opens files with openat(-1, ...): paths must be absolute.
    log_settings.dir = std::fs::canonicalize(&log_settings.dir)
        .with_context(|| format!("resolving dataLogDir {}", log_settings.dir.display()))?;
    let started = std::time::Instant::now();
    let recovered = crate::recovery::recover(&config.data_dir, &log_settings.dir, &mut processor, now)
        .map_err(|e| anyhow!("refusing to start: the snapshot or transaction log cannot be trusted: {e}"))?;
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
    let mut snapshots = Snapshotter::new(snapshot_settings, recovered.last_zxid, now as u64)
        .context("starting the snapshot writer thread")?;
    if recovered.records > 0 {
        // As Apache after loading its database: the next start need not replay these again.
        snapshots.request();
    }

    let (to_log, from_data) = shared_channel::new_bounded::<LogRecord>(queue_depth);
    let (to_data_durable, from_log) = shared_channel::new_bounded::<i64>(queue_depth);
    let log_io_memory = log_io_memory_bytes(log_settings.batch_bytes_max);
    let (tail, last_zxid) = (recovered.tail, recovered.last_zxid);
    let log_handle = LocalExecutorBuilder::new(placement(&config, config.log_core))
        .name("rk-log")
        .io_memory(log_io_memory)
        .spawn(move || crate::log_role::run(log_settings, tail, last_zxid, from_data, to_data_durable))
        .map_err(|e| anyhow!("starting the log role executor: {e}"))?;

    let status = StatusSource::new(&config);
    let log_link = LogLink {
        to_log,
        from_log,
        durable_zxid: last_zxid,
        in_flight_max: IN_FLIGHT_PER_QUEUE_SLOT * queue_depth,
        held_max: 16 * queue_depth,
        snapshots,
    };
    let data_placement = placement(&config, config.data_core);
    let data_handle = LocalExecutorBuilder::new(data_placement)
        .name("rk-data")
        .io_memory(EXECUTOR_IO_MEMORY_BYTES)
        .spawn(move || {
            crate::data_role::run(processor, status, to_data_receivers, to_net_senders, log_link, replica)
        })
        .map_err(|e| anyhow!("starting the data role executor: {e}"))?;

    let mut handles = Vec::new();
    for (index, ((core, to_data), from_data)) in
        network_cores.into_iter().zip(to_data_senders).zip(to_net_receivers).enumerate()
    {
        let (bound_tx, bound_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let limits = limits.clone();
        let counts = counts.clone();
        let addr = bind_addr;
        let handle = LocalExecutorBuilder::new(placement(&config, core))
            .name(&format!("rk-net-{index}"))
            .io_memory(EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || async move {
                let listener = match glommio::net::TcpListener::bind(addr) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = bound_tx.send(Err(format!("cannot listen on {addr}: {e}")));
                        return;
                    }
                };
                let _ = bound_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                network::run(index, listener, to_data, from_data, limits, counts).await;
            })
            .map_err(|e| anyhow!("starting network executor {index}: {e}"))?;
        let bound = bound_rx
            .recv()
            .map_err(|_| anyhow!("network executor {index} died during start-up"))?
            .map_err(|e| anyhow!(e))?;
        if index == 0 {
            bind_addr = bound;
            println!("ringkeeper listening on {bound}");
        }
        handles.push(handle);
    }
    for handle in handles {
        handle.join().map_err(|e| anyhow!("network role failed: {e}"))?;
    }
    data_handle.join().map_err(|e| anyhow!("data role failed: {e}"))?;
    log_handle.join().map_err(|e| anyhow!("log role failed: {e}"))?;
    Ok(())
}
