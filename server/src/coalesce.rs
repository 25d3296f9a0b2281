//! Wake-up coalescing for an ensemble member whose roles share one executor
//! (`ringkeeper.executors=one`) under concurrent writes (`ringkeeper.coalesceMicros`).
//!
//! At a moderate write rate every message (a client request, a proposal, an ack, a log
//! completion) wakes the executor on its own, and on this runtime a wake-up costs far more
//! than the work it brings: glommio's park and wake (a `membarrier`, timer cancels and
//! re-arms, about ten `io_uring_enter` calls) plus the VM's own sleep/wake. While at least
//! [`CONCURRENT_WRITES_MIN`] writes are in flight on this member (logged or proposed and not
//! yet applied) and fewer than [`CONCURRENT_WRITES_MAX`], a napping task blocks the
//! executor's thread for the configured time before each reactor turn, so the messages and
//! completions that arrive meanwhile are taken in one wake-up: CPU per write falls, latency
//! grows by up to a nap per hop. A lone writer, or a few sequential clients, never naps.
//!
//! In: [`Coalescer::writes_in_flight`] from the data role after each step. Out: the napping
//! task ([`Coalescer::spawn`]), one per executor, idle (not polled) while writes are few or
//! many; [`monitor_lines`] for `mntr` (naps taken).

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use glommio::{Latency, Shares};

/// Writes in flight on a member from which its executor naps before each reactor turn. A
/// nap lengthens every hop of a write, so a few clients that each wait for their last reply
/// (closed loop) lose throughput in proportion: with 2 as the bound, 4 such clients fell from
/// ~3,950 to ~1,100 writes/s at a 500 µs nap (`bench/results/cpu-per-write.md`).
pub const CONCURRENT_WRITES_MIN: i64 = 8;
/// Writes in flight from which it stops napping again: the load already fills its wake-ups
/// (a saturated member) or naps have stretched latency enough (in flight = rate x latency),
/// so napping would only cost throughput.
pub const CONCURRENT_WRITES_MAX: i64 = 64;

/// Naps taken since start (`mntr`: `zk_ringkeeper_coalesce_naps`).
static NAPS: AtomicU64 = AtomicU64::new(0);

/// `mntr` lines: naps taken since start.
pub fn monitor_lines() -> Vec<(String, String)> {
    vec![("ringkeeper_coalesce_naps".to_string(), NAPS.load(Ordering::Relaxed).to_string())]
}

/// The nap and whether it is on now (shared by the data role and the napping task).
pub struct Coalescer {
    nap: Duration,
    napping: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Coalescer {
    /// A coalescer napping `nap` per reactor turn while writes are concurrent; `None` for a zero nap.
    pub fn new(nap: Duration) -> Option<Rc<Coalescer>> {
        (!nap.is_zero())
            .then(|| Rc::new(Coalescer { nap, napping: Cell::new(false), waker: Cell::new(None) }))
    }

    /// Tells how many writes are in flight on this member now; naps start or stop.
    pub fn writes_in_flight(&self, writes: i64) {
        let napping = (CONCURRENT_WRITES_MIN..CONCURRENT_WRITES_MAX).contains(&writes);
        if napping != self.napping.replace(napping) && napping {
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// Starts the napping task in a task queue of its own, which glommio runs only when the
    /// roles' queue has nothing ready: a nap never delays work that is already in.
    pub fn spawn(self: Rc<Self>) {
        let queue =
            glommio::executor().create_task_queue(Shares::Static(1), Latency::NotImportant, "coalesce");
        match glommio::spawn_local_into(self.run(), queue) {
            Ok(task) => {
                task.detach();
            }
            Err(e) => log::warn!(
                "ringkeeper.coalesceMicros: no napping task ({e}); every message wakes the executor"
            ),
        }
    }

    /// The napping task: waits (unpolled) until writes are concurrent, then blocks the thread
    /// for the nap and lets one reactor turn run, until they are not.
    async fn run(self: Rc<Self>) {
        loop {
            poll_fn(|cx| {
                if self.napping.get() {
                    Poll::Ready(())
                } else {
                    self.waker.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            while self.napping.get() {
                std::thread::sleep(self.nap);
                NAPS.fetch_add(1, Ordering::Relaxed);
                // Due at once but fired only when the reactor next processes timers: the
                // turn that takes every completion that arrived during the nap.
                glommio::timer::sleep(Duration::from_micros(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naps_only_between_the_bounds_of_concurrent_writes() {
        assert!(Coalescer::new(Duration::ZERO).is_none(), "0 turns coalescing off");
        let coalescer = Coalescer::new(Duration::from_micros(500)).expect("a nap");
        for (writes, napping) in
            [(0, false), (1, false), (7, false), (8, true), (63, true), (64, false), (1, false)]
        {
            coalescer.writes_in_flight(writes);
            assert_eq!(coalescer.napping.get(), napping, "{writes} writes in flight");
        }
    }
}
