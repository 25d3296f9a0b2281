//! Clean stop on SIGTERM and SIGINT.
//!
//! A thread of its own waits for either signal ([`signal_hook`]). On one, it closes the gate
//! the log role passes before each group commit, waits for the commit already in flight to
//! finish (its write and fdatasync), logs one line and exits with status 0. Exiting closes
//! every socket: clients see their connections end and move to another server; in an
//! ensemble the peers see the links drop at once and a stopped leader is replaced without
//! waiting for a timeout.
//!
//! Invariant: no log write is cut in the middle by a stop. Every write a client was told
//! succeeded is already durable (replies wait for the fdatasync), so nothing acknowledged
//! can be lost; a batch the gate kept out was never acknowledged.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The longest a stop waits for the group commit in flight (a stuck disk must not keep the
/// process from exiting).
const COMMIT_WAIT_MAX: Duration = Duration::from_secs(10);

/// Set once a stop begins: no group commit starts after it.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Group commits in flight.
static COMMITS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Held by the log role while one group commit is written and synced.
pub struct CommitPermit(());

impl Drop for CommitPermit {
    fn drop(&mut self) {
        COMMITS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A permit to write one group commit, or `None` once the process is stopping. (The count
/// goes up before the flag is read and the stopper sets the flag before reading the count,
/// both sequentially consistent: either the stopper waits for this commit or this commit
/// sees the flag.)
pub fn commit_permit() -> Option<CommitPermit> {
    COMMITS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let permit = CommitPermit(());
    (!STOPPING.load(Ordering::SeqCst)).then_some(permit)
}

/// Starts the thread that stops the process on SIGTERM or SIGINT.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new().name("rk-stop".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            stop(if signal == SIGTERM { "SIGTERM" } else { "SIGINT" });
        }
    })?;
    Ok(())
}

fn stop(signal: &str) -> ! {
    let started = Instant::now();
    STOPPING.store(true, Ordering::SeqCst);
    while COMMITS_IN_FLIGHT.load(Ordering::SeqCst) > 0 && started.elapsed() < COMMIT_WAIT_MAX {
        std::thread::sleep(Duration::from_micros(200));
    }
    let unfinished = COMMITS_IN_FLIGHT.load(Ordering::SeqCst);
    if unfinished > 0 {
        log::warn!(
            "stopping on {signal}: a log commit is still unfinished after {COMMIT_WAIT_MAX:?} (it was never \
             acknowledged; recovery drops a torn tail); exiting"
        );
    } else {
        log::info!(
            "stopping on {signal}: log commits finished ({:?}); closing client and peer connections; exiting",
            started.elapsed()
        );
    }
    std::process::exit(0)
}
