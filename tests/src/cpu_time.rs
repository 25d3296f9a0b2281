//! CPU time a process (or the calling thread) has used so far, read from `/proc`: the one
//! reader behind the bench's CPU-per-op figures and the tests that bound a server's CPU.
//!
//! Source: the scheduler's on-CPU time of every thread of the process, in ns
//! (`/proc/<pid>/task/*/schedstat`, first field), summed; a thread that exits between two
//! readings loses its share (server threads live as long as the server). Where schedstat
//! cannot be read, `/proc/<pid>/stat` `utime + stime` in clock ticks (`sysconf(_SC_CLK_TCK)`,
//! 10 ms on Linux: too coarse for a cheap client over a short window).

use std::io;
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/<pid>/stat`.
fn ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf only reads a configuration value; it has no memory arguments.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
    })
}

/// `utime + stime` in clock ticks from the text of a `/proc/<pid>/stat` file. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are counted after its `)`.
fn stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 3 (state) .. 13 come first; utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// On-CPU time of every live thread of the process at `/proc/<process>`, in ns.
fn threads_on_cpu_ns(process: &str) -> Option<u64> {
    let mut total = None;
    for task in std::fs::read_dir(format!("/proc/{process}/task")).ok()?.flatten() {
        // A thread that exited since the listing is skipped.
        let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        let on_cpu: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        total = Some(total.unwrap_or(0) + on_cpu);
    }
    total
}

/// On-CPU time of the calling thread so far, in ns (`None` where schedstat cannot be read).
pub fn this_thread_on_cpu_ns() -> Option<u64> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    schedstat.split_whitespace().next()?.parse().ok()
}

/// CPU time (user + system) a process has used so far, in µs; `pid` `None` is this process.
pub fn process_cpu_us(pid: Option<u32>) -> io::Result<u64> {
    let process = pid.map_or("self".to_string(), |pid| pid.to_string());
    if let Some(ns) = threads_on_cpu_ns(&process) {
        return Ok(ns / 1000);
    }
    let path = format!("/proc/{process}/stat");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
    let ticks = stat_ticks(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: no utime/stime")))?;
    Ok(ticks * 1_000_000 / ticks_per_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (java (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 30 0 1 2 3";
        assert_eq!(stat_ticks(stat), Some(300));
        assert_eq!(stat_ticks("42 (short) S 1"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spun: u64 = (0..2_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(spun > 0);
        assert!(process_cpu_us(None).unwrap() > 0);
    }
}
