//! ringkeeper's changes to the park/wake path (see `RINGKEEPER-PATCHES.md` at the crate root).
//!
//! Each change can be switched off at run time for A/B measurement:
//! `GLOMMIO_RINGKEEPER_PATCHES` lists the letters of the changes to apply (default: all of
//! them; an empty value gives glommio 0.9.0's own behaviour).

/// A change of `RINGKEEPER-PATCHES.md`, by its letter.
#[derive(Clone, Copy)]
pub(crate) enum Patch {
    /// (a) armed preemption timers (and the sleep's user-timer timeout) are kept while still valid.
    KeepTimers = 0,
    /// (b) the ring-linking poll is submitted and waited on in one `io_uring_enter`.
    SubmitAndWait = 1,
    /// (e) a run of the task queues cut short by preemption is never followed by a park.
    NoParkAfterPreempt = 2,
}

const LETTERS: [char; 3] = ['a', 'b', 'e'];

lazy_static! {
    static ref ENABLED: [bool; 3] = {
        let chosen = std::env::var("GLOMMIO_RINGKEEPER_PATCHES").ok();
        LETTERS.map(|letter| chosen.as_ref().map_or(true, |c| c.contains(letter)))
    };
}

/// Whether `patch` applies in this process.
#[inline]
pub(crate) fn enabled(patch: Patch) -> bool {
    ENABLED[patch as usize]
}
