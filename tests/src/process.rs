//! One server process a harness started: the tests' [`crate::TestServer`] and
//! [`crate::ensemble::Ensemble`] members, and the bench's ensemble members. Spawned with no
//! stdin and its stdout and stderr appended to a log file; killed with SIGKILL and reaped,
//! signalled, waited for; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A server process (or the place of one not running) and its log file.
pub struct ServerChild {
    child: Option<Child>,
    log: PathBuf,
}

impl ServerChild {
    /// None running yet; its output will go to `log`.
    pub fn new(log: PathBuf) -> ServerChild {
        ServerChild { child: None, log }
    }

    /// Kills the process if one runs, then spawns `command` with its output appended to the
    /// log (created if missing).
    pub fn spawn(&mut self, mut command: Command) -> std::io::Result<()> {
        self.kill();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, from spawn until it is reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it was spawned and not reaped since (cheap: no system call).
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    /// Whether it runs now.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// Its exit status if it has exited (not reaped from here: a later call says it again).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().expect("wait for a server process"))
    }

    /// SIGKILL (kill -9), and reaped at once; a frozen (SIGSTOP) process dies of it too.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL without waiting for the process to be reaped (a large JVM takes tens of
    /// milliseconds to be torn down after it has stopped running); [`ServerChild::kill`],
    /// a new spawn or drop reaps it.
    pub fn send_kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
    }

    /// Sends `signal` (a name for kill(1): `STOP`, `CONT`, `TERM`, ...); an error when no
    /// process runs or kill(1) fails.
    pub fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.pid().ok_or_else(|| format!("no process to send {signal} to"))?;
        match Command::new("kill").args(["-s", signal, &pid.to_string()]).status() {
            Ok(status) if status.success() => Ok(()),
            outcome => Err(format!("kill -s {signal} {pid} failed: {outcome:?}")),
        }
    }

    /// Waits up to `limit` for the process to exit on its own; its exit status (and reaped),
    /// or `None` if it still runs (or none was started).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = crate::wait_exit(self.child.as_mut()?, limit);
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Sends `signal` and waits up to `limit` for the process to exit; its exit status, or
    /// `None` if it is still running then.
    pub fn stop_with_signal(&mut self, signal: &str, limit: Duration) -> Option<ExitStatus> {
        self.signal(signal).unwrap_or_else(|e| panic!("{e}"));
        self.wait_exit(limit)
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything in the log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `bytes` of the log (cut at a character boundary).
    pub fn log_tail(&self, bytes: usize) -> String {
        let log = self.log();
        let cut = log.len().saturating_sub(bytes);
        let cut = (cut..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(log.len());
        log[cut..].to_string()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.kill();
    }
}
