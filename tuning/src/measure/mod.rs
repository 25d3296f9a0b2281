//! Measurements of the host: the log disk ([`disk`]) and cross-core messaging ([`cores`]).
//!
//! Every measurement is bounded by a sample count AND a wall-clock budget (whichever ends
//! first), reports progress on stderr, and removes what it created, also on error.

pub mod cores;
pub mod disk;

use std::time::{Duration, Instant};

/// Stops a measurement loop after `samples_max` samples or `budget`, whichever comes first,
/// printing progress on stderr about once a second.
pub struct Bounds {
    label: String,
    samples_max: usize,
    deadline: Instant,
    next_progress: Instant,
    quiet: bool,
}

impl Bounds {
    pub fn new(label: impl Into<String>, samples_max: usize, budget: Duration, quiet: bool) -> Bounds {
        let now = Instant::now();
        Bounds {
            label: label.into(),
            samples_max,
            deadline: now + budget,
            next_progress: now + Duration::from_secs(1),
            quiet,
        }
    }

    /// Whether sample number `done` (0-based) may be taken.
    pub fn more(&mut self, done: usize) -> bool {
        let now = Instant::now();
        if !self.quiet && now >= self.next_progress {
            eprintln!("  {}: {done}/{} samples", self.label, self.samples_max);
            self.next_progress = now + Duration::from_secs(1);
        }
        done < self.samples_max && now < self.deadline
    }
}
