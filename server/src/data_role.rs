//! Data role: owns the engine's [`Processor`] (tree, sessions, watches) on one core, and
//! holds every output until the log says the zxid it depends on is durable.
//!
//! In: `ToData` from every network core (one bounded channel each), "durable up to zxid Z"
//! from the log role, and a timer for session expiry and the container reaper.
//! Snapshots are captured here in bounded slices by a task of their own ([`crate::snapshotter`]).
//! Out: the encoded txn of every write to the log role (bounded channel, zxid order), and
//! `Vec<ToNet>` batches to each network core, in the exact order the processor emitted them
//! (one ordered hold queue per core, released front-first once durable ≥ the output's zxid,
//! then one ordered local queue per core drained by one forwarder task).
//! Invariants: nothing else touches the processor; a message is handled to completion (no
//! await) before the next one, so every request sees all earlier writes; no client observes
//! a write before it is durable (a read's output carries the last zxid, so it waits behind
//! pending writes); txns still awaiting durability and held outputs are bounded: requests
//! are not taken from the network while either bound is reached.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use ringkeeper_engine::request::{Output, Processor};

use crate::log_role::LogRecord;
use crate::messages::{core_of, ToData, ToNet};
use crate::snapshotter::Snapshotter;
use crate::status::StatusSource;

/// Wall-clock milliseconds (ctime/mtime and session deadlines).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How often expiry and reaping are checked.
const TICK_INTERVAL: Duration = Duration::from_millis(50);

/// Channels between the data role and the log role.
pub struct LogLink {
    pub to_log: SharedSender<LogRecord>,
    pub from_log: SharedReceiver<i64>,
    /// The last zxid recovered from the log: durable already.
    pub durable_zxid: i64,
    /// Most txns sent to the log and not yet durable before requests stop being taken.
    pub in_flight_max: usize,
    /// Most outputs held for durability before requests stop being taken.
    pub held_max: usize,
    /// When and how snapshots are taken ([`crate::snapshotter`]).
    pub snapshots: Snapshotter,
}

/// Outputs waiting for durability, per network core, in emission order.
struct Held {
    durable_zxid: i64,
    /// zxids sent to the log and not yet durable (ascending).
    in_flight: VecDeque<i64>,
    per_core: Vec<VecDeque<(i64, ToNet)>>,
    held_count: usize,
    /// Tasks waiting for room (request receivers).
    room_wakers: Vec<Waker>,
}

struct DataRole {
    processor: RefCell<Processor>,
    to_cores: Vec<LocalSender<Vec<ToNet>>>,
    to_log: LocalSender<LogRecord>,
    held: RefCell<Held>,
    in_flight_max: usize,
    held_max: usize,
    status: StatusSource,
    snapshots: RefCell<Snapshotter>,
}

impl DataRole {
    /// Routes processor outputs: txns to the log, the rest to the hold queues of their cores.
    fn route(&self, outputs: Vec<Output>) {
        {
            let mut held = self.held.borrow_mut();
            for output in outputs {
                let (core, zxid, item) = match output {
                    Output::Log { zxid, bytes } => {
                        held.in_flight.push_back(zxid);
                        self.snapshots.borrow_mut().txn_logged();
                        // Unbounded locally, but bounded by `in_flight_max` through `wait_for_room`.
                        let _ = self.to_log.try_send(LogRecord { zxid, bytes });
                        continue;
                    }
                    Output::Send { conn, frame, zxid } => {
                        (core_of(conn), zxid, ToNet::Send { conn, bytes: frame })
                    }
                    Output::Close { conn, zxid } => (core_of(conn), zxid, ToNet::Close { conn }),
                };
                held.per_core[core].push_back((zxid, item));
                held.held_count += 1;
            }
        }
        self.release();
    }

    /// Sends every held output whose zxid is durable, front-first per core (order is kept:
    /// an output never overtakes an earlier one of its core).
    fn release(&self) {
        let mut held = self.held.borrow_mut();
        let durable = held.durable_zxid;
        let mut released = 0;
        for (core, queue) in held.per_core.iter_mut().enumerate() {
            let ready = queue.iter().take_while(|(zxid, _)| *zxid <= durable).count();
            if ready > 0 {
                let batch: Vec<ToNet> = queue.drain(..ready).map(|(_, item)| item).collect();
                released += ready;
                let _ = self.to_cores[core].try_send(batch);
            }
        }
        held.held_count -= released;
        if self.has_room(&held) {
            held.room_wakers.drain(..).for_each(Waker::wake);
        }
    }

    /// The log made everything up to `zxid` durable.
    fn durable(&self, zxid: i64) {
        {
            let mut held = self.held.borrow_mut();
            debug_assert!(zxid >= held.durable_zxid, "durability never goes back");
            held.durable_zxid = zxid;
            while held.in_flight.front().is_some_and(|z| *z <= zxid) {
                held.in_flight.pop_front();
            }
        }
        self.snapshots.borrow_mut().durable(zxid);
        self.release();
    }

    fn has_room(&self, held: &Held) -> bool {
        held.in_flight.len() < self.in_flight_max && held.held_count < self.held_max
    }

    /// Resolves once fewer txns and outputs than the bounds await durability.
    async fn wait_for_room(&self) {
        poll_fn(|cx| {
            let mut held = self.held.borrow_mut();
            if self.has_room(&held) {
                Poll::Ready(())
            } else {
                held.room_wakers.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
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
                let text = self.status.respond(&self.processor.borrow(), &word);
                if text.as_deref() == Some(crate::four_letter::SNAPSHOT_REQUESTED) {
                    self.snapshots.borrow_mut().request();
                }
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

/// Forwards a local queue into a bounded shared channel, in order, until either side closes.
fn spawn_forwarder<T: Send + 'static>(shared: SharedSender<T>) -> LocalSender<T> {
    let (local_tx, local_rx) = local_channel::new_unbounded::<T>();
    glommio::spawn_local(async move {
        let shared = shared.connect().await;
        while let Some(item) = local_rx.recv().await {
            if shared.send(item).await.is_err() {
                break;
            }
        }
    })
    .detach();
    local_tx
}

/// Runs the data role on the current executor until the process ends.
pub async fn run(
    processor: Processor,
    status: StatusSource,
    from_cores: Vec<SharedReceiver<ToData>>,
    to_cores: Vec<SharedSender<Vec<ToNet>>>,
    log: LogLink,
) {
    let core_count = to_cores.len();
    let held = Held {
        durable_zxid: log.durable_zxid,
        in_flight: VecDeque::new(),
        per_core: (0..core_count).map(|_| VecDeque::new()).collect(),
        held_count: 0,
        room_wakers: Vec::new(),
    };
    let role = Rc::new(DataRole {
        processor: RefCell::new(processor),
        to_cores: to_cores.into_iter().map(spawn_forwarder).collect(),
        to_log: spawn_forwarder(log.to_log),
        held: RefCell::new(held),
        in_flight_max: log.in_flight_max.max(1),
        held_max: log.held_max.max(1),
        status,
        snapshots: RefCell::new(log.snapshots),
    });
    {
        let role = role.clone();
        glommio::spawn_local(async move { crate::snapshotter::run(&role.snapshots, &role.processor).await })
            .detach();
    }
    {
        let role = role.clone();
        glommio::spawn_local(async move {
            let from_log = log.from_log.connect().await;
            while let Some(zxid) = from_log.recv().await {
                role.durable(zxid);
            }
        })
        .detach();
    }
    for receiver in from_cores {
        let role = role.clone();
        glommio::spawn_local(async move {
            let receiver = receiver.connect().await;
            loop {
                role.wait_for_room().await;
                let Some(message) = receiver.recv().await else { break };
                role.handle(message);
            }
        })
        .detach();
    }
    loop {
        glommio::timer::sleep(TICK_INTERVAL).await;
        let outputs = role.processor.borrow_mut().tick(now_ms());
        role.route(outputs);
    }
}
