//! Per-role figures: how much work waits for each role (network, data, log) and how long each
//! role has been busy, whatever the executor layout (`ringkeeper.executors=one` runs the
//! roles as tasks of one executor; `per-role` gives each its own).
//!
//! Queue depth: items handed to a role and not yet taken by it: `ToData` messages for the
//! data role, txn records for the log role, replies and closes for the network roles. The
//! sender counts an item as it hands it over ([`arrived`]), the role as it takes it
//! ([`taken`]): one relaxed atomic add at each end, on counters of their own cache lines
//! (several network cores may count arrivals for the data role at once).
//!
//! Busy time: each role's tasks run in a glommio task queue of their own ([`run_roles`]),
//! which glommio already times on every run of the queue; a publisher task on each executor
//! adds what its queues ran since its last look to the process-wide totals every
//! [`PUBLISH_INTERVAL`] (so nothing is timed per request here, and an idle executor wakes
//! once per interval for it). Busy time is wall time while the role's tasks ran, including
//! the time the OS took the thread away meanwhile.
//!
//! Out: [`monitor_lines`] for `mntr` (`zk_ringkeeper_<role>_queue_depth`, `_busy_ms`,
//! `_items`), and [`register`] for the metrics endpoint (`ringkeeper_role_queue_depth`,
//! `ringkeeper_role_busy_seconds_total`, `ringkeeper_role_items_total`, labelled by role).
//! Both read the same counters.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use glommio::{Latency, Shares, TaskQueueHandle};
use prometheus::{CounterVec, GaugeVec, Opts, Registry};

/// How often each executor publishes its roles' busy time.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// A role of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Client sockets ([`crate::network`]).
    Network,
    /// The replica node ([`crate::data_role`]).
    Data,
    /// The transaction log ([`crate::log_role`]).
    Log,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Network, Role::Data, Role::Log];

    /// The name in metric labels, `mntr` keys and task queue names.
    pub fn name(self) -> &'static str {
        match self {
            Role::Network => "network",
            Role::Data => "data",
            Role::Log => "log",
        }
    }
}

/// A counter on a cache line of its own: the two ends of a queue count on different threads.
#[repr(align(128))]
struct Padded(AtomicU64);

impl Padded {
    const fn new() -> Padded {
        Padded(AtomicU64::new(0))
    }
}

struct RoleCounters {
    arrived: Padded,
    taken: Padded,
    /// Task queue run time, ns, as of the last publication of each executor.
    busy_ns: Padded,
}

impl RoleCounters {
    const fn new() -> RoleCounters {
        RoleCounters { arrived: Padded::new(), taken: Padded::new(), busy_ns: Padded::new() }
    }
}

static COUNTERS: [RoleCounters; 3] = [RoleCounters::new(), RoleCounters::new(), RoleCounters::new()];

fn counters(role: Role) -> &'static RoleCounters {
    &COUNTERS[role as usize]
}

/// `n` items were handed to `role`.
#[inline]
pub fn arrived(role: Role, n: u64) {
    counters(role).arrived.0.fetch_add(n, Ordering::Relaxed);
}

/// `role` took `n` items.
#[inline]
pub fn taken(role: Role, n: u64) {
    counters(role).taken.0.fetch_add(n, Ordering::Relaxed);
}

/// What one role shows at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleFigures {
    pub role: Role,
    /// Items handed to the role and not yet taken.
    pub queue_depth: u64,
    /// Items the role has taken since start.
    pub items: u64,
    /// Time the role's tasks ran, as last published.
    pub busy: Duration,
}

/// Every role's figures now.
pub fn figures() -> Vec<RoleFigures> {
    Role::ALL
        .iter()
        .map(|&role| {
            let c = counters(role);
            // Taken first: an item counted as taken was counted as arrived before it.
            let items = c.taken.0.load(Ordering::Relaxed);
            let arrived = c.arrived.0.load(Ordering::Relaxed);
            RoleFigures {
                role,
                queue_depth: arrived.saturating_sub(items),
                items,
                busy: Duration::from_nanos(c.busy_ns.0.load(Ordering::Relaxed)),
            }
        })
        .collect()
}

/// `mntr` lines (without the `zk_` prefix).
pub fn monitor_lines() -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for f in figures() {
        let role = f.role.name();
        lines.push((format!("ringkeeper_{role}_queue_depth"), f.queue_depth.to_string()));
        lines.push((format!("ringkeeper_{role}_busy_ms"), f.busy.as_millis().to_string()));
        lines.push((format!("ringkeeper_{role}_items"), f.items.to_string()));
    }
    lines
}

/// Registers the current figures with `registry` (a fresh one per scrape).
pub fn register(registry: &Registry) -> Result<(), prometheus::Error> {
    let depth = GaugeVec::new(
        Opts::new("ringkeeper_role_queue_depth", "Items handed to a role and not yet taken by it"),
        &["role"],
    )?;
    let busy = CounterVec::new(
        Opts::new("ringkeeper_role_busy_seconds_total", "Time a role's tasks ran, seconds"),
        &["role"],
    )?;
    let items = CounterVec::new(Opts::new("ringkeeper_role_items_total", "Items a role took"), &["role"])?;
    for f in figures() {
        let role = [f.role.name()];
        depth.with_label_values(&role).set(f.queue_depth as f64);
        busy.with_label_values(&role).inc_by(f.busy.as_secs_f64());
        items.with_label_values(&role).inc_by(f.items as f64);
    }
    registry.register(Box::new(depth))?;
    registry.register(Box::new(busy))?;
    registry.register(Box::new(items))?;
    Ok(())
}

/// The work of one role on this executor.
pub type RoleTask = (Role, Pin<Box<dyn Future<Output = ()>>>);

/// Runs each role's future in a glommio task queue of its own on the current executor (tasks
/// they spawn stay in it), publishes their busy time every [`PUBLISH_INTERVAL`], and returns
/// once every role's future has ended.
pub async fn run_roles(roles: Vec<RoleTask>) {
    let executor = glommio::executor();
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for (role, work) in roles {
        let queue = executor.create_task_queue(Shares::default(), Latency::NotImportant, role.name());
        queues.push((role, queue));
        tasks.push(glommio::spawn_local_into(work, queue).expect("the task queue was just created"));
    }
    glommio::spawn_local(publish_busy_time(queues)).detach();
    for task in tasks {
        task.await;
    }
}

/// Adds what this executor's role queues ran to the process-wide totals, every interval.
async fn publish_busy_time(queues: Vec<(Role, TaskQueueHandle)>) {
    let mut published = vec![Duration::ZERO; queues.len()];
    loop {
        glommio::timer::sleep(PUBLISH_INTERVAL).await;
        for ((role, queue), last) in queues.iter().zip(published.iter_mut()) {
            let Ok(stats) = glommio::executor().task_queue_stats(*queue) else { continue };
            let runtime = stats.runtime();
            let delta = runtime.saturating_sub(*last);
            *last = runtime;
            counters(*role).busy_ns.0.fetch_add(delta.as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_depth_is_what_arrived_and_was_not_taken() {
        let before = figures()[Role::Log as usize];
        arrived(Role::Log, 5);
        taken(Role::Log, 3);
        let after = figures()[Role::Log as usize];
        assert_eq!(after.queue_depth, before.queue_depth + 2);
        assert_eq!(after.items, before.items + 3);
        taken(Role::Log, 2);
        assert_eq!(figures()[Role::Log as usize].queue_depth, before.queue_depth);
    }

    #[test]
    fn busy_time_of_a_role_queue_is_published() {
        let ex = glommio::LocalExecutorBuilder::default().make().expect("an executor");
        let before = figures()[Role::Network as usize].busy;
        ex.run(async {
            let spin: Pin<Box<dyn Future<Output = ()>>> = Box::pin(async {
                let until = std::time::Instant::now() + Duration::from_millis(30);
                while std::time::Instant::now() < until {}
            });
            run_roles(vec![(Role::Network, spin)]).await;
            glommio::timer::sleep(PUBLISH_INTERVAL + Duration::from_millis(200)).await;
        });
        let busy = figures()[Role::Network as usize].busy - before;
        assert!(busy >= Duration::from_millis(30), "{busy:?}");
        let lines = monitor_lines();
        assert!(lines.iter().any(|(k, _)| k == "ringkeeper_network_busy_ms"), "{lines:?}");
        let registry = Registry::new();
        register(&registry).unwrap();
        assert_eq!(registry.gather().len(), 3);
    }
}
