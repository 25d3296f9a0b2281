//! The hold gate: outputs for client connections wait here until the zxid they depend on may
//! be seen (locally durable standalone, committed by a quorum in an ensemble).
//!
//! In: outputs with the zxid they depend on, per network core, in emission order; "zxids up
//! to Z may be seen"; txns sent to the log and the log's "durable up to Z". Out: per core, the
//! batch of outputs now releasable ([`Effect::Deliver`]), front-first.
//! Invariants: an output never overtakes an earlier one of its core; nothing goes out before
//! the gate is open to its zxid; [`HoldGate::has_room`] is false while either bound is reached
//! (the server stops taking requests then).

use std::collections::VecDeque;

use super::{Delivery, Effect};

/// Bounds on work waiting for durability (the server's back-pressure).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most txns sent to the log and not yet durable.
    pub in_flight_max: usize,
    /// Most outputs held.
    pub held_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { in_flight_max: usize::MAX, held_max: usize::MAX }
    }
}

/// Outputs waiting for their zxid, per network core, in emission order.
#[derive(Debug)]
pub struct HoldGate {
    /// Outputs up to this zxid may go out.
    open_to: i64,
    /// zxids sent to the log and not yet durable (ascending).
    in_flight: VecDeque<i64>,
    per_core: Vec<VecDeque<(i64, Delivery)>>,
    held: usize,
    limits: Limits,
}

impl HoldGate {
    /// A gate already open up to `open_to` (what the log recovered is durable).
    pub fn new(open_to: i64, limits: Limits) -> HoldGate {
        HoldGate {
            open_to,
            in_flight: VecDeque::new(),
            per_core: Vec::new(),
            held: 0,
            limits: Limits { in_flight_max: limits.in_flight_max.max(1), held_max: limits.held_max.max(1) },
        }
    }

    /// Outputs up to this zxid may go out.
    pub fn open_to(&self) -> i64 {
        self.open_to
    }

    /// Outputs held right now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// A txn went to the log.
    pub fn logged(&mut self, zxid: i64) {
        self.in_flight.push_back(zxid);
    }

    /// The log is durable up to `zxid`.
    pub fn durable(&mut self, zxid: i64) {
        while self.in_flight.front().is_some_and(|z| *z <= zxid) {
            self.in_flight.pop_front();
        }
    }

    /// Outputs up to `zxid` may go out (never closes again).
    pub fn open(&mut self, zxid: i64) {
        self.open_to = self.open_to.max(zxid);
    }

    /// Holds `delivery` for network core `core` until `zxid` may be seen.
    pub fn hold(&mut self, core: u32, zxid: i64, delivery: Delivery) {
        let core = core as usize;
        if self.per_core.len() <= core {
            self.per_core.resize_with(core + 1, VecDeque::new);
        }
        self.per_core[core].push_back((zxid, delivery));
        self.held += 1;
    }

    /// Emits, per core, every held output the gate lets through (front-first: an output
    /// behind a closed one waits with it).
    pub fn release(&mut self, out: &mut Vec<Effect>) {
        for (core, queue) in self.per_core.iter_mut().enumerate() {
            let ready = queue.iter().take_while(|(zxid, _)| *zxid <= self.open_to).count();
            if ready > 0 {
                let batch: Vec<Delivery> = queue.drain(..ready).map(|(_, d)| d).collect();
                self.held -= ready;
                out.push(Effect::Deliver { core: core as u32, batch });
            }
        }
    }

    /// Drops every held output (their connections are being closed).
    pub fn drop_held(&mut self) {
        self.per_core.iter_mut().for_each(VecDeque::clear);
        self.held = 0;
    }

    /// Whether fewer txns and outputs than the bounds await durability.
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.limits.in_flight_max && self.held < self.limits.held_max
    }
}
