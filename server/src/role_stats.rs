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
//! Busy time: each role's futures, and the tasks they start through [`spawn`], are wrapped in
//! [`Charged`], which adds the wall time of each of their polls to the role's process-wide
//! counter (two clock reads and one relaxed atomic add per poll, not per request: a poll
//! drains every ready message). Every poll is timed: sampling one in N left a role that
//! polls rarely (a log role on its own thread, few writes) at zero busy time. Busy time includes the time the OS took the thread away
//! meanwhile. Every role runs in the executor's one default task queue: under
//! `ringkeeper.executors=one`, a glommio task queue per role made a lone writer ~7% slower
//! (scheduling between queues on every hand-over), so timing is ours rather than glommio's
//! per-queue accounting.
//!
//! Out: [`monitor_lines`] for `mntr` (`zk_ringkeeper_<role>_queue_depth`, `_busy_ms`,
//! `_items`), and [`register`] for the metrics endpoint (`ringkeeper_role_queue_depth`,
//! `ringkeeper_role_busy_seconds_total`, `ringkeeper_role_items_total`, labelled by role).
//! Both read the same counters.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus::{CounterVec, GaugeVec, Opts, Registry};

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
    /// Wall time of the role's polls, ns.
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
    /// Time the role's tasks ran.
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

/// Runs each role's future as a task of its own on the current executor, its busy time
/// charged to its role, and returns once every one has ended.
pub async fn run_roles(roles: Vec<RoleTask>) {
    let tasks: Vec<_> = roles.into_iter().map(|(role, work)| spawn(role, work)).collect();
    for task in tasks {
        task.await;
    }
}

/// Starts `work` as a task on the current executor, the wall time of its polls charged to
/// `role`'s busy time.
pub fn spawn<T: 'static>(role: Role, work: impl Future<Output = T> + 'static) -> glommio::Task<T> {
    glommio::spawn_local(Charged { role, work: Box::pin(work) })
}

/// A future whose polls are timed and added to its role's busy time.
struct Charged<F> {
    role: Role,
    work: Pin<Box<F>>,
}

impl<F: Future> Future for Charged<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        let polled = self.work.as_mut().poll(cx);
        let ns = started.elapsed().as_nanos() as u64;
        counters(self.role).busy_ns.0.fetch_add(ns, Ordering::Relaxed);
        polled
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
    fn busy_time_of_a_role_and_the_tasks_it_spawns_is_counted_and_waiting_is_not() {
        let ex = glommio::LocalExecutorBuilder::default().make().expect("an executor");
        let before = figures()[Role::Network as usize].busy;
        let spin_for = |how_long| {
            let until = Instant::now() + how_long;
            while Instant::now() < until {}
        };
        ex.run(async move {
            // 600 polls of 100 µs each (60 ms), two thirds in the role's own future and one
            // third in a task it spawns, then 1 s asleep.
            let work: Pin<Box<dyn Future<Output = ()>>> = Box::pin(async move {
                let spawned = spawn(Role::Network, async move {
                    for _ in 0..200 {
                        spin_for(Duration::from_micros(100));
                        futures_lite::future::yield_now().await;
                    }
                });
                for _ in 0..400 {
                    spin_for(Duration::from_micros(100));
                    futures_lite::future::yield_now().await;
                }
                spawned.await;
                glommio::timer::sleep(Duration::from_millis(1000)).await;
            });
            run_roles(vec![(Role::Network, work)]).await;
        });
        let busy = figures()[Role::Network as usize].busy - before;
        // About 60 ms, not the 1 s asleep (a loaded machine preempts the spinning, so the
        // upper bound leaves room for that).
        assert!(busy >= Duration::from_millis(40) && busy < Duration::from_millis(500), "{busy:?}");
        let lines = monitor_lines();
        assert!(lines.iter().any(|(k, _)| k == "ringkeeper_network_busy_ms"), "{lines:?}");
        let registry = Registry::new();
        register(&registry).unwrap();
        assert_eq!(registry.gather().len(), 3);
    }
}
