//! Start-up: turns a [`Config`] into running role executors.
//!
//! Creates the bounded channels between roles, starts one glommio executor per network core
//! and one for the data role, each on its own thread, placed by `ringkeeper.*.core` keys
//! (`Placement::Fixed` when `ringkeeper.pin=true`, floating otherwise so that several servers
//! can share cores), and blocks until they end.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, Context};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use ringkeeper_engine::request::{Processor, ProcessorConfig};

use crate::config::Config;
use crate::messages::{ToData, ToNet};
use crate::network::{self, NetworkLimits};
use crate::status::StatusSource;

/// io_uring registered-buffer memory per executor; small, since we do no DMA file I/O here.
const EXECUTOR_IO_MEMORY_BYTES: usize = 1 << 20;

fn placement(config: &Config, core: Option<usize>) -> Placement {
    match core {
        Some(c) if config.pin => Placement::Fixed(c),
        _ => Placement::Unbound,
    }
}

/// The processor settings a config implies.
pub fn processor_config(config: &Config) -> ProcessorConfig {
    let container_check_interval_ms = config
        .raw
        .iter()
        .rev()
        .find(|(k, _)| k == "znode.container.checkIntervalMs" || k == "zookeeper.znode.container.checkIntervalMs")
        .and_then(|(_, v)| v.trim().parse::<i64>().ok())
        .unwrap_or(60_000);
    ProcessorConfig {
        tick_ms: config.tick_time_ms as i64,
        min_session_timeout_ms: config.min_session_timeout_ms as i32,
        max_session_timeout_ms: config.max_session_timeout_ms as i32,
        extended_types_enabled: config.extended_types_enabled,
        super_digest: config.super_digest.clone(),
        server_id: 0,
        container_check_interval_ms,
    }
}

fn random_secret() -> u64 {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    u64::from_ne_bytes(bytes) ^ (crate::data_role::now_ms() as u64)
}

/// Runs the server until a role fails. Prints `ringkeeper listening on ADDR` once clients can connect.
pub fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating dataDir {}", config.data_dir.display()))?;
    let network_cores: Vec<Option<usize>> = if config.network_cores.is_empty() { vec![None] } else { config.network_cores.iter().map(|c| Some(*c)).collect() };
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
    let mut bind_addr: SocketAddr = format!("{address}:{port}").parse().or_else(|_| format!("[{address}]:{port}").parse()).map_err(|_| anyhow!("clientPortAddress: {address:?} is not an IP address"))?;
    let limits = NetworkLimits { jute_max_buffer: config.jute_max_buffer as usize, max_client_cnxns: config.max_client_cnxns };
    let counts = Arc::new(Mutex::new(Default::default()));

    let now = crate::data_role::now_ms();
    let processor = Processor::new(processor_config(&config), now, random_secret());
    let status = StatusSource::new(&config);
    let data_placement = placement(&config, config.data_core);
    let data_handle = LocalExecutorBuilder::new(data_placement)
        .name("rk-data")
        .io_memory(EXECUTOR_IO_MEMORY_BYTES)
        .spawn(move || crate::data_role::run(processor, status, to_data_receivers, to_net_senders))
        .map_err(|e| anyhow!("starting the data role executor: {e}"))?;

    let mut handles = Vec::new();
    for (index, ((core, to_data), from_data)) in network_cores.into_iter().zip(to_data_senders).zip(to_net_receivers).enumerate() {
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
        let bound = bound_rx.recv().map_err(|_| anyhow!("network executor {index} died during start-up"))?.map_err(|e| anyhow!(e))?;
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
    Ok(())
}
