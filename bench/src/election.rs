//! `election`: how long an ensemble is without a leader, and without acknowledged writes,
//! when its leader fails.
//!
//! In: a target — an ensemble this harness starts from an [`EnsembleSpec`] (and owns), or a
//! running one given by its client addresses plus a shell command that kills a member (and
//! one that restarts it) — and the trial shape. Per trial:
//! 1. wait until the ensemble has settled (`srvr`: one `Mode: leader`, the rest following);
//! 2. start `writers` sessions, each doing setData on its own znode, one in flight, spread
//!    over the members; a writer whose connection fails or whose write times out opens a new
//!    session on the next member;
//! 3. after `before`, fail the leader: SIGKILL ([`Fault::Kill`]), SIGSTOP ([`Fault::Freeze`]:
//!    the peers see silence; the frozen leader cannot step down itself), a partition
//!    ([`Fault::Partition`]: its peer and election links cut at the harness's proxies, see
//!    [`ringkeeper_tests::proxy::ProxyMesh`]; clients still reach it), or the user's kill command;
//! 4. from the moment the fault is in effect (signal delivered, command finished), poll
//!    `srvr` on the other members every `poll_every` until one says `Mode: leader`, and
//!    wait for the first acknowledged write that was *sent* after that; then `after`
//!    more of writing; then restore the member (restart, SIGCONT, heal or the restart command).
//!
//! Out: per trial the time to the new leader, to the first acknowledged write, the longest
//! gap between consecutive acknowledgements (all writers merged), and medians over trials.
//! Every wait is bounded by `recovery_timeout` / `settle_timeout`; writers stop at a deadline.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ringkeeper_engine::proto::{DeleteRequest, Jute, OpCode, SetDataRequest};
use serde::Serialize;

use crate::four_letter::{modes_of, settled_leader, srvr_mode, Mode};
use crate::report::Spread;
use crate::servers::{self, Ensemble};
use crate::wire::Session;
use crate::workload::Templates;
use crate::BenchError;
use ringkeeper_tests::ensemble::EnsemblePlan;

/// How long one connection attempt of a writer may take.
const WRITER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed connection attempt before the next member is tried.
const WRITER_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// How long a user's kill or restart command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How the leader is failed in a harness-started ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// `kill -9`; restarted with its data after the trial.
    Kill,
    /// `kill -STOP`; `kill -CONT` after the trial.
    Freeze,
    /// Every peer and election link to and from the leader cut (a black hole, through the
    /// harness's proxies); healed after the trial. Clients still reach the old leader.
    Partition,
}

/// What the trials run against.
pub enum Target {
    /// An ensemble started (and removed) by the harness.
    Start(EnsemblePlan),
    /// A running ensemble. `{host}` (host:port), `{port}` and `{index}` (1-based position
    /// in `addresses`) in the commands are replaced by the leader's.
    Running { addresses: Vec<String>, kill_command: String, restart_command: Option<String> },
}

/// The trials.
pub struct ElectionConfig {
    pub target: Target,
    pub fault: Fault,
    pub trials: usize,
    pub writers: usize,
    pub size_bytes: usize,
    /// Writing before the fault.
    pub before: Duration,
    /// Writing after the first acknowledged write that followed the fault.
    pub after: Duration,
    /// Longest wait for a new leader and for the first write after the fault.
    pub recovery_timeout: Duration,
    /// Longest wait for the ensemble to settle before a trial.
    pub settle_timeout: Duration,
    /// `srvr` poll interval while waiting for the new leader.
    pub poll_every: Duration,
    pub write_timeout: Duration,
    pub session_timeout_ms: i32,
}

/// One trial. Times are milliseconds after the fault took effect.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub old_leader: String,
    /// How long failing the leader took (sending SIGKILL, running `kill -STOP`, cutting the
    /// links, or the user's command); the other times count from its end.
    pub fault_ms: f64,
    pub new_leader: Option<String>,
    /// First `srvr` answer `Mode: leader` from another member.
    pub new_leader_ms: Option<f64>,
    /// First acknowledged write among those sent after the fault.
    pub first_write_ms: Option<f64>,
    /// Longest time between consecutive acknowledged writes (all writers) in the trial.
    pub longest_gap_ms: f64,
    /// When that gap began, relative to the fault (negative: before it).
    pub longest_gap_start_ms: f64,
    pub writes_acked: u64,
    /// Failed or timed-out writes and failed connection attempts.
    pub write_errors: u64,
}

/// All trials with medians.
#[derive(Debug, Clone, Serialize)]
pub struct ElectionReport {
    pub target: String,
    pub servers: usize,
    pub fault: String,
    pub writers: usize,
    pub size_bytes: usize,
    pub poll_every_ms: f64,
    pub trials: Vec<Trial>,
    /// Medians (min–max) over the trials that reached the figure.
    pub new_leader_ms: Spread,
    pub first_write_ms: Spread,
    pub longest_gap_ms: Spread,
    /// Trials in which no new leader or no write was seen within the recovery timeout.
    pub trials_not_recovered: usize,
}

impl ElectionReport {
    /// The plain table: one line per trial, then the medians.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        let mut out = format!(
            "election on {} ({} servers), fault {}, {} writers x 1 in flight, {} B setData, srvr polled every {:.0} ms\n",
            self.target, self.servers, self.fault, self.writers, self.size_bytes, self.poll_every_ms
        );
        out += &format!(
            "{:>5} {:>18} {:>8} {:>18} {:>14} {:>15} {:>15} {:>11} {:>9} {:>7}\n",
            "trial",
            "old leader",
            "fault ms",
            "new leader",
            "leader ms",
            "first write ms",
            "longest gap ms",
            "gap from ms",
            "acked",
            "errors"
        );
        for (i, t) in self.trials.iter().enumerate() {
            out += &format!(
                "{:>5} {:>18} {:>8.1} {:>18} {:>14} {:>15} {:>15.0} {:>11.0} {:>9} {:>7}\n",
                i + 1,
                t.old_leader,
                t.fault_ms,
                t.new_leader.as_deref().unwrap_or("-"),
                ms(t.new_leader_ms),
                ms(t.first_write_ms),
                t.longest_gap_ms,
                t.longest_gap_start_ms,
                t.writes_acked,
                t.write_errors
            );
        }
        out += &format!(
            "{:>5} {:>18} {:>8} {:>18} {:>14} {:>15} {:>15}   median (min–max) of {} trials, {} not recovered\n",
            "all",
            "",
            "",
            "",
            self.new_leader_ms.show(),
            self.first_write_ms.show(),
            self.longest_gap_ms.show(),
            self.trials.len(),
            self.trials_not_recovered
        );
        out
    }
}

/// The ensemble under test.
enum Cluster {
    /// With the proxies between its members for a partition trial.
    Started(Box<Ensemble>),
    Running {
        addresses: Vec<String>,
        kill_command: String,
        restart_command: Option<String>,
    },
}

impl Cluster {
    fn addresses(&self) -> Vec<String> {
        match self {
            Cluster::Started(ensemble) => ensemble.client_addresses(),
            Cluster::Running { addresses, .. } => addresses.clone(),
        }
    }

    fn name(&self) -> String {
        match self {
            Cluster::Started(ensemble) => format!(
                "{} started here, isolation {}",
                ensemble.target.name(),
                ensemble.isolation().describe()
            ),
            Cluster::Running { addresses, .. } => addresses.join(","),
        }
    }

    /// Waits until one member leads and the rest follow; returns the leader's index.
    fn wait_settled(&mut self, timeout: Duration, poll_every: Duration) -> Result<usize, BenchError> {
        match self {
            Cluster::Started(ensemble) => servers::wait_ready(ensemble, timeout),
            Cluster::Running { addresses, .. } => {
                let deadline = Instant::now() + timeout;
                loop {
                    let modes = modes_of(addresses);
                    if let Some(leader) = settled_leader(&modes) {
                        return Ok(leader);
                    }
                    if Instant::now() >= deadline {
                        return Err(BenchError::Timeout(format!("ensemble did not settle: modes {modes:?}")));
                    }
                    std::thread::sleep(poll_every);
                }
            }
        }
    }

    fn fail(&mut self, index: usize, fault: Fault) -> Result<(), BenchError> {
        match (self, fault) {
            (Cluster::Started(ensemble), Fault::Kill) => {
                ensemble.send_kill(index);
                Ok(())
            }
            (Cluster::Started(ensemble), Fault::Freeze) => Ok(ensemble.try_signal(index, "STOP")?),
            (Cluster::Started(ensemble), Fault::Partition) => {
                partitionable(ensemble)?.isolate(index);
                Ok(())
            }
            (Cluster::Running { addresses, kill_command, .. }, _) => {
                run_member_command(kill_command, &addresses[index], index)
            }
        }
    }

    fn restore(&mut self, index: usize, fault: Fault) -> Result<(), BenchError> {
        match (self, fault) {
            (Cluster::Started(ensemble), Fault::Kill) => Ok(ensemble.try_launch(index)?),
            (Cluster::Started(ensemble), Fault::Freeze) => Ok(ensemble.try_signal(index, "CONT")?),
            (Cluster::Started(ensemble), Fault::Partition) => {
                partitionable(ensemble)?.heal_and_reconnect();
                Ok(())
            }
            (Cluster::Running { addresses, restart_command: Some(command), .. }, _) => {
                run_member_command(command, &addresses[index], index)
            }
            (Cluster::Running { .. }, _) => Ok(()),
        }
    }
}

/// `ensemble`, if its members reach each other through the harness's proxies.
fn partitionable(ensemble: &Ensemble) -> Result<&Ensemble, BenchError> {
    if ensemble.is_partitionable() {
        Ok(ensemble)
    } else {
        Err(BenchError::Config("a partition trial needs an ensemble started with proxies".into()))
    }
}

/// Runs a user's command through `sh -c` with the member's placeholders filled in.
fn run_member_command(template: &str, address: &str, index: usize) -> Result<(), BenchError> {
    let port = address.rsplit(':').next().unwrap_or_default();
    let command = template
        .replace("{host}", address)
        .replace("{port}", port)
        .replace("{index}", &(index + 1).to_string());
    let mut child = Command::new("sh").arg("-c").arg(&command).spawn()?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(BenchError::Server(format!("`{command}` failed: {status}")))
            };
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Timeout(format!("`{command}` ran longer than {COMMAND_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the trials.
pub fn run_election(config: &ElectionConfig) -> Result<ElectionReport, BenchError> {
    if config.trials == 0 || config.writers == 0 {
        return Err(BenchError::Config("--trials and --writers must be >= 1".into()));
    }
    let servers = match &config.target {
        Target::Start(plan) => plan.members.len(),
        Target::Running { addresses, .. } => addresses.len(),
    };
    if servers < 3 {
        return Err(BenchError::Config(format!("an election needs an ensemble of 3 or more, not {servers}")));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut cluster = match &config.target {
        Target::Start(plan) => {
            let plan = EnsemblePlan { proxied: config.fault == Fault::Partition, ..plan.clone() };
            Cluster::Started(Box::new(servers::start(&plan)?))
        }
        Target::Running { addresses, kill_command, restart_command } => {
            if config.trials > 1 && restart_command.is_none() {
                return Err(BenchError::Config("more than one trial needs --restart-command".into()));
            }
            Cluster::Running {
                addresses: addresses.clone(),
                kill_command: kill_command.clone(),
                restart_command: restart_command.clone(),
            }
        }
    };
    let addresses = cluster.addresses();
    let leader = cluster.wait_settled(config.settle_timeout, config.poll_every)?;
    let keys = runtime.block_on(create_keys(&addresses[leader], config))?;
    let mut trials = Vec::new();
    let mut outcome = Ok(());
    for number in 1..=config.trials {
        match run_trial(&runtime, &mut cluster, &addresses, &keys, config) {
            Ok(trial) => {
                eprintln!(
                    "trial {number}/{}: new leader after {:?} ms, first write after {:?} ms, longest gap {:.0} ms",
                    config.trials, trial.new_leader_ms, trial.first_write_ms, trial.longest_gap_ms
                );
                trials.push(trial);
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let cleanup = cluster
        .wait_settled(config.settle_timeout, config.poll_every)
        .and_then(|leader| runtime.block_on(delete_keys(&addresses[leader], &keys, config)));
    outcome?;
    if let Err(e) = cleanup {
        eprintln!("note: election znodes not removed: {e}");
    }
    let figure =
        |f: &dyn Fn(&Trial) -> Option<f64>| Spread::of(&trials.iter().filter_map(f).collect::<Vec<_>>());
    Ok(ElectionReport {
        target: cluster.name(),
        servers,
        fault: match (&config.target, config.fault) {
            (Target::Running { kill_command, .. }, _) => format!("command `{kill_command}`"),
            (Target::Start(_), Fault::Kill) => "kill -9 of the leader".into(),
            (Target::Start(_), Fault::Freeze) => "kill -STOP of the leader (peers see silence)".into(),
            (Target::Start(_), Fault::Partition) => {
                "leader cut off from its peers (proxied black hole)".into()
            }
        },
        writers: config.writers,
        size_bytes: config.size_bytes,
        poll_every_ms: config.poll_every.as_secs_f64() * 1000.0,
        new_leader_ms: figure(&|t| t.new_leader_ms),
        first_write_ms: figure(&|t| t.first_write_ms),
        longest_gap_ms: figure(&|t| Some(t.longest_gap_ms)),
        trials_not_recovered: trials
            .iter()
            .filter(|t| t.new_leader_ms.is_none() || t.first_write_ms.is_none())
            .count(),
        trials,
    })
}

/// The writers' znodes, one each, under a base named after this process.
fn key_paths(config: &ElectionConfig) -> (String, Vec<String>) {
    let base = format!("/rk-bench-election-{}", std::process::id());
    let keys = (0..config.writers).map(|i| format!("{base}/w{i}")).collect();
    (base, keys)
}

async fn create_keys(address: &str, config: &ElectionConfig) -> Result<Vec<String>, BenchError> {
    let (base, keys) = key_paths(config);
    let mut session = Session::connect(address, config.session_timeout_ms).await?;
    let requests: Vec<_> = std::iter::once(&base)
        .chain(&keys)
        .map(|path| (OpCode::Create, Templates::create_body(path.clone(), Vec::new(), 0)))
        .collect();
    for (request, (code, _)) in requests.iter().zip(session.pipeline(&requests).await?) {
        if code != 0 {
            return Err(BenchError::Setup { what: format!("create ({:?})", request.0), code });
        }
    }
    session.close().await?;
    Ok(keys)
}

async fn delete_keys(address: &str, keys: &[String], config: &ElectionConfig) -> Result<(), BenchError> {
    let (base, _) = key_paths(config);
    let mut session = Session::connect(address, config.session_timeout_ms).await?;
    let requests: Vec<_> = keys
        .iter()
        .chain(std::iter::once(&base))
        .map(|path| (OpCode::Delete, DeleteRequest { path: path.clone(), version: -1 }.to_bytes()))
        .collect();
    let failed = session.pipeline(&requests).await?.into_iter().find(|(code, _)| *code != 0);
    session.close().await?;
    match failed {
        Some((code, _)) => Err(BenchError::Setup { what: "delete of the election znodes".into(), code }),
        None => Ok(()),
    }
}

/// What the writers of one trial share.
struct TrialState {
    stop: AtomicBool,
    deadline: Instant,
    fault_at: OnceLock<Instant>,
    acked: AtomicU64,
    acked_after_fault: AtomicBool,
}

/// What one writer saw: (sent, acknowledged) of every acknowledged write, and errors.
#[derive(Default)]
struct WriterLog {
    acks: Vec<(Instant, Instant)>,
    errors: u64,
}

fn run_trial(
    runtime: &tokio::runtime::Runtime,
    cluster: &mut Cluster,
    addresses: &[String],
    keys: &[String],
    config: &ElectionConfig,
) -> Result<Trial, BenchError> {
    let leader = cluster.wait_settled(config.settle_timeout, config.poll_every)?;
    let start = Instant::now();
    let state = Arc::new(TrialState {
        stop: AtomicBool::new(false),
        deadline: start + config.before + config.recovery_timeout + config.after,
        fault_at: OnceLock::new(),
        acked: AtomicU64::new(0),
        acked_after_fault: AtomicBool::new(false),
    });
    let data = vec![b'e'; config.size_bytes];
    let writers: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| {
            let body = SetDataRequest { path: key.clone(), data: Some(data.clone()), version: -1 }.to_bytes();
            runtime.spawn(write_loop(state.clone(), index, addresses.to_vec(), body, config.clone_timing()))
        })
        .collect();
    std::thread::sleep(config.before);
    let stop_writers = |state: &TrialState| -> Result<Vec<WriterLog>, BenchError> {
        state.stop.store(true, Ordering::Relaxed);
        runtime.block_on(async {
            let mut logs = Vec::new();
            for writer in writers {
                logs.push(writer.await.map_err(|e| BenchError::Protocol(format!("writer failed: {e}")))?);
            }
            Ok(logs)
        })
    };
    if state.acked.load(Ordering::Relaxed) == 0 {
        stop_writers(&state)?;
        return Err(BenchError::Server(format!(
            "no write acknowledged in the {:?} before the fault",
            config.before
        )));
    }
    let fault_started = Instant::now();
    cluster.fail(leader, config.fault)?;
    // Times count from when the fault is in effect (the signal delivered, the command done):
    // a write sent before then may still have been answered by the old leader.
    let fault_at = Instant::now();
    let _ = state.fault_at.set(fault_at);
    let recovery_deadline = fault_at + config.recovery_timeout;
    let mut new_leader = None;
    while new_leader.is_none() && Instant::now() < recovery_deadline {
        new_leader = (0..addresses.len())
            .filter(|&i| i != leader)
            .find(|&i| srvr_mode(&addresses[i]).is_ok_and(|m| m == Mode::Leader))
            .map(|i| (i, fault_at.elapsed()));
        if new_leader.is_none() {
            std::thread::sleep(config.poll_every);
        }
    }
    while !state.acked_after_fault.load(Ordering::Relaxed) && Instant::now() < recovery_deadline {
        std::thread::sleep(config.poll_every);
    }
    if state.acked_after_fault.load(Ordering::Relaxed) {
        std::thread::sleep(config.after);
    }
    let end = Instant::now();
    let logs = stop_writers(&state)?;
    cluster.restore(leader, config.fault)?;
    let mut trial = summarise(&logs, fault_at, (start, end), addresses, leader, new_leader);
    trial.fault_ms = millis(fault_at - fault_started);
    Ok(trial)
}

/// Milliseconds with one decimal.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn summarise(
    logs: &[WriterLog],
    fault_at: Instant,
    (start, end): (Instant, Instant),
    addresses: &[String],
    leader: usize,
    new_leader: Option<(usize, Duration)>,
) -> Trial {
    let mut acked: Vec<Instant> = logs.iter().flat_map(|l| l.acks.iter().map(|(_, a)| *a)).collect();
    acked.sort();
    // From the first acknowledgement (the writers' start when there is none: sessions take a
    // while to open, which is not a gap) through every one to when the writers were told to
    // stop, so a trial that never recovers shows the whole silence.
    let first = acked.first().copied().unwrap_or(start);
    let points: Vec<Instant> =
        std::iter::once(first).chain(acked.iter().copied().filter(|a| *a <= end)).chain([end]).collect();
    let (gap_start, longest_gap) = points
        .windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .max_by_key(|(_, gap)| *gap)
        .unwrap_or((first, Duration::ZERO));
    // Negative when the gap began before the fault.
    let gap_start_ms =
        if gap_start >= fault_at { millis(gap_start - fault_at) } else { -millis(fault_at - gap_start) };
    let first_write = logs
        .iter()
        .flat_map(|l| l.acks.iter())
        .filter(|(sent, _)| *sent >= fault_at)
        .map(|(_, acked)| *acked - fault_at)
        .min();
    Trial {
        old_leader: addresses[leader].clone(),
        new_leader: new_leader.map(|(i, _)| addresses[i].clone()),
        fault_ms: 0.0,
        new_leader_ms: new_leader.map(|(_, d)| millis(d)),
        first_write_ms: first_write.map(millis),
        longest_gap_ms: millis(longest_gap),
        longest_gap_start_ms: gap_start_ms,
        writes_acked: acked.len() as u64,
        write_errors: logs.iter().map(|l| l.errors).sum(),
    }
}

/// The timing a writer needs (cheap to send into its task).
#[derive(Clone, Copy)]
struct WriterTiming {
    write_timeout: Duration,
    session_timeout_ms: i32,
}

impl ElectionConfig {
    fn clone_timing(&self) -> WriterTiming {
        WriterTiming { write_timeout: self.write_timeout, session_timeout_ms: self.session_timeout_ms }
    }
}

/// One writer: setData on its key, one in flight; on any failure a new session on the next
/// member. Ends when told to stop or at the trial's deadline.
async fn write_loop(
    state: Arc<TrialState>,
    index: usize,
    addresses: Vec<String>,
    body: Vec<u8>,
    timing: WriterTiming,
) -> WriterLog {
    let mut log = WriterLog::default();
    let running = |state: &TrialState| !state.stop.load(Ordering::Relaxed) && Instant::now() < state.deadline;
    let mut member = index;
    while running(&state) {
        let address = &addresses[member % addresses.len()];
        member += 1;
        let connect = Session::connect(address, timing.session_timeout_ms);
        let mut session = match tokio::time::timeout(WRITER_CONNECT_TIMEOUT, connect).await {
            Ok(Ok(session)) => session,
            _ => {
                log.errors += 1;
                tokio::time::sleep(WRITER_RETRY_PAUSE).await;
                continue;
            }
        };
        while running(&state) {
            let sent = Instant::now();
            match tokio::time::timeout(timing.write_timeout, session.call(OpCode::SetData, body.clone()))
                .await
            {
                Ok(Ok((0, _))) => {
                    log.acks.push((sent, Instant::now()));
                    state.acked.fetch_add(1, Ordering::Relaxed);
                    if state.fault_at.get().is_some_and(|fault_at| sent >= *fault_at) {
                        state.acked_after_fault.store(true, Ordering::Relaxed);
                    }
                }
                _ => {
                    log.errors += 1;
                    break;
                }
            }
        }
        if !running(&state) {
            let _ = tokio::time::timeout(WRITER_CONNECT_TIMEOUT, session.close()).await;
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_write_counts_only_writes_sent_after_the_fault_and_gap_spans_writers() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let fault_at = at(1000);
        let logs = [
            // Sent before the fault, acknowledged after it: not the first write after the fault.
            WriterLog { acks: vec![(at(100), at(150)), (at(990), at(1100))], errors: 0 },
            WriterLog {
                acks: vec![(at(900), at(950)), (at(1200), at(1500)), (at(1500), at(1510))],
                errors: 3,
            },
        ];
        let addresses = ["a:1".to_string(), "b:2".to_string()];
        let window = (start, at(1600));
        let trial = summarise(&logs, fault_at, window, &addresses, 0, Some((1, Duration::from_millis(420))));
        assert_eq!(trial.first_write_ms, Some(500.0));
        assert_eq!(trial.longest_gap_ms, 800.0, "acks at 150, 950, 1100, 1500, 1510 ms");
        assert_eq!(trial.longest_gap_start_ms, -850.0);
        assert_eq!((trial.writes_acked, trial.write_errors), (5, 3));
        assert_eq!((trial.old_leader.as_str(), trial.new_leader.as_deref()), ("a:1", Some("b:2")));
        assert_eq!(trial.new_leader_ms, Some(420.0));
        let silent = summarise(&logs[..1], fault_at, (start, at(4000)), &addresses, 0, None);
        assert_eq!(silent.longest_gap_ms, 2900.0, "the silence after the last ack runs to the end");
        assert_eq!(silent.longest_gap_start_ms, 100.0);
        assert_eq!((silent.first_write_ms, silent.new_leader_ms), (None, None));
    }
}
