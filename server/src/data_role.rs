//! Data role: owns the engine's [`Processor`] (tree, sessions, watches) on one core.
//!
//! In: `ToData` from every network core (one bounded channel each), and a timer for session
//! expiry and the container reaper. Out: `Vec<ToNet>` batches to each network core, in the
//! exact order the processor emitted them (one ordered local queue per core, drained by one
//! forwarder task). Invariant: nothing else touches the processor; a message is handled
//! to completion (no await) before the next one, so every request sees all earlier writes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use ringkeeper_engine::request::{Output, Processor};

use crate::messages::{core_of, ToData, ToNet};
use crate::status::StatusSource;

/// Wall-clock milliseconds (ctime/mtime and session deadlines).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How often expiry and reaping are checked.
const TICK_INTERVAL: Duration = Duration::from_millis(50);

struct DataRole {
    processor: RefCell<Processor>,
    to_cores: Vec<LocalSender<Vec<ToNet>>>,
    status: StatusSource,
}

impl DataRole {
    /// Routes processor outputs to the network cores, preserving order per core.
    fn route(&self, outputs: Vec<Output>) {
        let mut per_core: Vec<Vec<ToNet>> = (0..self.to_cores.len()).map(|_| Vec::new()).collect();
        for output in outputs {
            match output {
                Output::Send { conn, frame, .. } => per_core[core_of(conn)].push(ToNet::Send { conn, bytes: frame }),
                Output::Close { conn, .. } => per_core[core_of(conn)].push(ToNet::Close { conn }),
                // Durable storage (the log role) consumes these; until it exists the tree lives in memory.
                Output::Log { .. } => {}
            }
        }
        for (core, batch) in per_core.into_iter().enumerate() {
            if !batch.is_empty() {
                let _ = self.to_cores[core].try_send(batch);
            }
        }
    }

    fn handle(&self, message: ToData) {
        let now = now_ms();
        let outputs = match message {
            ToData::Connect { conn, client_ip, remote, request } => {
                self.processor.borrow_mut().connect(conn, &client_ip, &remote, &request, now)
            }
            ToData::Request { conn, frame } => {
                let result = self.processor.borrow_mut().request(conn, &frame, now);
                match result {
                    Ok(outputs) => outputs,
                    Err(e) => {
                        log::info!("closing connection {conn:#x}: malformed request: {e}");
                        self.processor.borrow_mut().disconnected(conn);
                        vec![Output::Close { conn, zxid: 0 }]
                    }
                }
            }
            ToData::Disconnected { conn } => {
                self.processor.borrow_mut().disconnected(conn);
                Vec::new()
            }
            ToData::FourLetter { conn, word } => {
                let text = self.status.respond(&mut self.processor.borrow_mut(), &word);
                let mut outputs = Vec::new();
                if let Some(text) = text {
                    outputs.push(Output::Send { conn, frame: text.into_bytes(), zxid: 0 });
                }
                outputs.push(Output::Close { conn, zxid: 0 });
                outputs
            }
        };
        self.route(outputs);
    }
}

/// Runs the data role on the current executor until the process ends.
pub async fn run(processor: Processor, status: StatusSource, from_cores: Vec<SharedReceiver<ToData>>, to_cores: Vec<SharedSender<Vec<ToNet>>>) {
    let mut local_senders = Vec::new();
    for shared in to_cores {
        let (local_tx, local_rx) = local_channel::new_unbounded::<Vec<ToNet>>();
        local_senders.push(local_tx);
        glommio::spawn_local(async move {
            let shared = shared.connect().await;
            while let Some(batch) = local_rx.recv().await {
                if shared.send(batch).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
    let role = Rc::new(DataRole { processor: RefCell::new(processor), to_cores: local_senders, status });
    for receiver in from_cores {
        let role = role.clone();
        glommio::spawn_local(async move {
            let receiver = receiver.connect().await;
            while let Some(message) = receiver.recv().await {
                role.handle(message);
            }
        })
        .detach();
    }
    let started = Instant::now();
    loop {
        glommio::timer::sleep(TICK_INTERVAL).await;
        let outputs = role.processor.borrow_mut().tick(now_ms());
        role.route(outputs);
        let _ = started;
    }
}
