//! Jepsen-style checks on real processes: an ensemble (3 or 5 members, every member reached
//! through proxies the test controls), client sessions on every member running a seeded mix
//! of `sync`+getData, plain getData, blind setData, compare-and-set (setData with the version
//! last read), unique persistent-sequential creates and ephemeral-sequential creates, while a
//! seeded schedule of faults hits the ensemble:
//! - kill -9 of the leader, of a follower, of a majority (then restarted);
//! - SIGSTOP of the leader for longer than the failure timeout, then SIGCONT;
//! - partitions: the leader isolated, the ensemble split in halves, one-way cuts (the leader
//!   cannot send to the others, or cannot hear them).
//!
//! Verdict:
//! - the register history (every op with its invocation and reply times; no reply or a
//!   connection error: unknown outcome) is judged by `ringkeeper_tests::linearizability`:
//!   ringkeeper by the strict model (every `sync` + read linearizable), Apache ZooKeeper 3.8
//!   by its documented one (writes linearizable, reads sequentially consistent: ZOOKEEPER-1675);
//! - every acknowledged sequential create is present at the end on every member, no two
//!   acknowledged creates got the same name, and one session's names increase;
//! - every acknowledged ephemeral of a session still open at the end is present on every
//!   member; once every session is closed, no ephemeral is left;
//! - liveness: after each fault heals (process resumed, links restored, killed members
//!   restarted) every member must serve again (`srvr` reports a mode) within
//!   [`LIVENESS_BOUND`]; the time is printed per fault.
//!
//! Besides the 3- and 5-member ensembles of one kind, a mixed one (issue #16): two Apache 3.8
//! members and a ringkeeper member speaking Apache's quorum protocol, under the 3-member
//! faults, judged by Apache's model.
//!
//! A failing run prints its seed and the command that replays its op choices and fault order
//! (the processes' timing is not replayable).
//!
//! Environment: `RINGKEEPER_JEPSEN_SEED=<n>` fixes the seed; `RINGKEEPER_JEPSEN_ROUNDS=<n>`
//! runs the test's fault list n times (reshuffled each round; default 1, the CI version);
//! `RINGKEEPER_TEST_TARGET=apache` runs against Apache ZooKeeper 3.8 (with tickTime 400 ms so
//! that its failure timeout, syncLimit x tickTime = 2 s, is shorter than a fault).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::linearizability::{
    check_history, with_stale_read, Call, Op, Options, ReadGuarantee, Return,
};
use ringkeeper_tests::sim::Rng;
use ringkeeper_tests::Target;
use zookeeper_client as zk;

const KEYS: [&str; 3] = ["/j0", "/j1", "/j2"];
/// Parent of the persistent-sequential creates.
const SEQUENTIAL_PARENT: &str = "/seq";
/// Parent of the ephemeral-sequential creates.
const EPHEMERAL_PARENT: &str = "/eph";
/// A worker's n-th op starts no earlier than n * PACE after the load starts.
const PACE: Duration = Duration::from_millis(20);
/// Bound on one request; past it the op's outcome is unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Client session timeout.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Load before each fault.
const LOAD_BEFORE_FAULT: Duration = Duration::from_millis(1500);
/// How long a fault lasts: longer than ringkeeper's failure timeout (ringkeeper.zab.
/// peerTimeoutMs, 800 ms) and Apache's here (syncLimit x tickTime = 2 s).
const FAULT_HOLD: Duration = Duration::from_secs(3);
/// Every member serves again within this after a fault heals. Generous (the machine is
/// shared), but below initLimit x tickTime (20 s), the time a leader stuck in an epoch that
/// cannot gather a quorum used to sit out.
const LIVENESS_BOUND: Duration = Duration::from_secs(15);
/// Apache's bound: its election after a partition heals takes longer (the election
/// connections back off).
const LIVENESS_BOUND_APACHE: Duration = Duration::from_secs(40);
/// zoo.cfg lines for Apache (see the module header).
const APACHE_TIMING: &str = "tickTime=400\n";

/// History session of the final synced reads (one more per member).
const FINAL_READER: u64 = 100_000;

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillLeader,
    KillFollower,
    /// The leader and followers up to a majority.
    KillMajority,
    /// SIGSTOP for [`FAULT_HOLD`], then SIGCONT.
    PauseLeader,
    IsolateLeader,
    /// The leader's half (the smaller one) cut from the rest.
    SplitHalves,
    /// What the leader sends is lost; it still hears the others.
    LeaderCannotSend,
    /// What the others send the leader is lost; it still reaches them.
    LeaderCannotHear,
}

/// How a fault is undone.
enum Heal {
    Resume(usize),
    Links,
    Restart(Vec<usize>),
}

/// The recorded history, times in nanoseconds since `origin`.
struct Recorder {
    origin: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
    fn record(&self, op: Op) {
        self.ops.lock().unwrap().push(op);
    }
}

/// An acknowledged sequential or ephemeral create.
#[derive(Debug, Clone)]
struct AckedCreate {
    /// History session that made it.
    session: u64,
    path: String,
    sequence: i64,
}

/// What a worker hands back at the end.
struct WorkerEnd {
    sequential: Vec<AckedCreate>,
    /// Ephemerals created by the session still open at the end.
    live_ephemerals: Vec<AckedCreate>,
    /// That session (dropped once its ephemerals were checked).
    client: Option<zk::Client>,
}

/// A number from the environment, `default` when unset.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

/// Prints how to replay this run if the test fails (on drop while panicking).
struct ReplayHint {
    test: &'static str,
    seed: u64,
    rounds: u64,
}

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "jepsen: FAILED with seed {}; replay the op choices and fault order with:\n  \
                 RINGKEEPER_JEPSEN_SEED={} RINGKEEPER_JEPSEN_ROUNDS={}{} cargo nextest run -p ringkeeper-tests \
                 --test jepsen -E 'test({})'",
                self.seed,
                self.seed,
                self.rounds,
                if Target::from_env() == Target::Apache { " RINGKEEPER_TEST_TARGET=apache" } else { "" },
                self.test
            );
        }
    }
}

/// The checker's view of a reply: a result, or `None` when the outcome is unknown.
fn outcome<T>(
    reply: Result<Result<T, zk::Error>, tokio::time::error::Elapsed>,
    ok: impl FnOnce(T) -> Return,
) -> Option<Return> {
    match reply {
        Ok(Ok(value)) => Some(ok(value)),
        Ok(Err(zk::Error::NoNode)) => Some(Return::NoNode),
        Ok(Err(zk::Error::NodeExists)) => Some(Return::NodeExists),
        Ok(Err(zk::Error::BadVersion)) => Some(Return::BadVersion),
        // Connection loss, session expiry, timeouts: may or may not have taken effect.
        _ => None,
    }
}

fn open_acl(mode: zk::CreateMode) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all())
}

/// Runs one register call on `client` and records it as session `session`; `None` when the
/// outcome was unknown (the caller then drops this session).
async fn run_op(
    client: &zk::Client,
    recorder: &Recorder,
    session: u64,
    key: &str,
    call: Call,
) -> Option<Return> {
    let invoked = recorder.now();
    let result = match &call {
        Call::Read { synced } => {
            let read = async {
                if *synced {
                    client.sync(key).await?;
                }
                client.get_data(key).await
            };
            outcome(tokio::time::timeout(OP_TIMEOUT, read).await, |(data, stat)| Return::Value {
                data,
                version: stat.version,
            })
        }
        Call::Write { data } => {
            outcome(tokio::time::timeout(OP_TIMEOUT, client.set_data(key, data, None)).await, |stat| {
                Return::Written { version: stat.version }
            })
        }
        Call::CompareAndSet { data, expected_version } => outcome(
            tokio::time::timeout(OP_TIMEOUT, client.set_data(key, data, Some(*expected_version))).await,
            |stat| Return::Written { version: stat.version },
        ),
        Call::Create { data } => outcome(
            tokio::time::timeout(OP_TIMEOUT, client.create(key, data, &open_acl(zk::CreateMode::Persistent)))
                .await,
            |_| Return::Created,
        ),
    };
    let op = Op::invoke(session, key, invoked, call);
    recorder.record(match &result {
        Some(r) => op.returned(recorder.now(), r.clone()),
        None => op,
    });
    result
}

/// A sequential create under `parent`; the acknowledged create, or `Err(())` when the outcome
/// is unknown.
async fn create_sequential(
    client: &zk::Client,
    session: u64,
    parent: &str,
    mode: zk::CreateMode,
) -> Result<AckedCreate, ()> {
    let prefix = format!("{parent}/s{session}-");
    let created = tokio::time::timeout(OP_TIMEOUT, client.create(&prefix, b"", &open_acl(mode)))
        .await
        .map_err(|_| ())?;
    let (_, sequence) = created.map_err(|_| ())?;
    Ok(AckedCreate { session, path: format!("{prefix}{sequence}"), sequence: sequence.into_i64() })
}

/// One worker: a session on the member at `addr`, random ops until `stop`; after an unknown
/// outcome the session is dropped and a new one opened (a new history session).
async fn worker(
    addr: String,
    worker_id: u64,
    seed: u64,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) -> WorkerEnd {
    let mut rng = Rng(seed ^ worker_id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let started = Instant::now();
    let mut issued = 0u32;
    let mut incarnation = 0u64;
    let mut end = WorkerEnd { sequential: Vec::new(), live_ephemerals: Vec::new(), client: None };
    while !stop.load(Ordering::Relaxed) {
        let connector = zk::Client::connector().with_session_timeout(SESSION_TIMEOUT);
        let Ok(Ok(client)) =
            tokio::time::timeout(OP_TIMEOUT, connector.with_connection_timeout(OP_TIMEOUT).connect(&addr))
                .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        incarnation += 1;
        let session = worker_id * 1000 + incarnation;
        let mut last_version = [0i32; KEYS.len()];
        let mut ephemerals = Vec::new();
        let mut healthy = true;
        while healthy && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep_until((started + PACE * issued).into()).await;
            issued += 1;
            let k = rng.below(KEYS.len() as u64) as usize;
            let data = format!("w{worker_id}-{issued}").into_bytes();
            let call = match rng.below(6) {
                0 => Call::synced_read(),
                1 => Call::read(),
                2 => Call::Write { data },
                3 => Call::CompareAndSet { data, expected_version: last_version[k] },
                4 => {
                    match create_sequential(
                        &client,
                        session,
                        SEQUENTIAL_PARENT,
                        zk::CreateMode::PersistentSequential,
                    )
                    .await
                    {
                        Ok(acked) => end.sequential.push(acked),
                        Err(()) => healthy = false,
                    }
                    continue;
                }
                _ => {
                    match create_sequential(
                        &client,
                        session,
                        EPHEMERAL_PARENT,
                        zk::CreateMode::EphemeralSequential,
                    )
                    .await
                    {
                        Ok(acked) => ephemerals.push(acked),
                        Err(()) => healthy = false,
                    }
                    continue;
                }
            };
            match run_op(&client, &recorder, session, KEYS[k], call).await {
                Some(Return::Value { version, .. } | Return::Written { version }) => {
                    last_version[k] = version
                }
                Some(_) => {}
                None => healthy = false,
            }
        }
        if healthy {
            end.live_ephemerals = ephemerals;
            end.client = Some(client);
        }
    }
    end
}

/// The members a fault hits, chosen from the current leader, and how to heal it.
fn inject(ensemble: &mut Ensemble, fault: Fault) -> (String, Heal) {
    let n = ensemble.members.len();
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    let others: Vec<usize> = (0..n).filter(|&i| i != leader).collect();
    let name = |members: &[usize]| members.iter().map(|i| format!("{}", i + 1)).collect::<Vec<_>>().join(",");
    match fault {
        Fault::KillLeader | Fault::KillFollower | Fault::KillMajority => {
            let victims = match fault {
                Fault::KillLeader => vec![leader],
                Fault::KillFollower => vec![others[0]],
                _ => std::iter::once(leader).chain(others.iter().copied().take(n / 2)).collect(),
            };
            for &v in &victims {
                ensemble.kill(v);
            }
            (
                format!("kill -9 of server(s) {} (leader {})", name(&victims), leader + 1),
                Heal::Restart(victims),
            )
        }
        Fault::PauseLeader => {
            ensemble.pause(leader);
            (format!("SIGSTOP of leader {}", leader + 1), Heal::Resume(leader))
        }
        Fault::IsolateLeader => {
            ensemble.isolate(leader);
            (format!("leader {} isolated", leader + 1), Heal::Links)
        }
        Fault::SplitHalves => {
            let small: Vec<usize> =
                std::iter::once(leader).chain(others.iter().copied()).take(n / 2).collect();
            let large: Vec<usize> = (0..n).filter(|i| !small.contains(i)).collect();
            ensemble.partition(&[&small, &large]);
            (
                format!("split {{{}}} | {{{}}} (leader {})", name(&small), name(&large), leader + 1),
                Heal::Links,
            )
        }
        Fault::LeaderCannotSend => {
            for &o in &others {
                ensemble.cut(leader, o);
            }
            (format!("leader {} cannot send", leader + 1), Heal::Links)
        }
        Fault::LeaderCannotHear => {
            for &o in &others {
                ensemble.cut(o, leader);
            }
            (format!("leader {} cannot hear", leader + 1), Heal::Links)
        }
    }
}

fn heal(ensemble: &mut Ensemble, heal: Heal) {
    match heal {
        Heal::Resume(i) => ensemble.resume(i),
        Heal::Links => ensemble.heal_all(),
        Heal::Restart(members) => {
            for i in members {
                ensemble.relaunch(i);
            }
        }
    }
}

/// A new session on member `member` for the checks after the faults. Each attempt has
/// [`OP_TIMEOUT`]; a member may still be finishing a re-election or a resync the faults caused
/// (Apache's members take seconds), so attempts go on for up to `within` (the test's liveness
/// bound), and every attempt that failed is printed with the members' modes.
async fn connect_for_checks(ensemble: &Ensemble, member: usize, within: Duration) -> zk::Client {
    let started = Instant::now();
    loop {
        let address = ensemble.address(member);
        let attempt = zk::Client::connector().with_connection_timeout(OP_TIMEOUT).connect(&address);
        let error = match tokio::time::timeout(OP_TIMEOUT * 2, attempt).await {
            Ok(Ok(client)) => return client,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer".to_owned(),
        };
        let modes: Vec<String> = (0..ensemble.members.len())
            .map(|i| format!("server {}: {:?}", i + 1, ensemble.mode(i)))
            .collect();
        eprintln!(
            "connecting to server {} for the checks, after {:?}: {error} ({})",
            member + 1,
            started.elapsed(),
            modes.join(", ")
        );
        assert!(started.elapsed() < within, "no session on server {} within {within:?}: {error}", member + 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The children of `parent` as member `member` sees them after a `sync`.
/// (`within`: how long the member may take to take a session, [`connect_for_checks`]).
async fn synced_children(
    ensemble: &Ensemble,
    member: usize,
    parent: &str,
    within: Duration,
) -> BTreeSet<String> {
    let client = connect_for_checks(ensemble, member, within).await;
    client.sync(parent).await.expect("sync");
    let children = client.list_children(parent).await.expect("list children");
    children.into_iter().map(|c| format!("{parent}/{c}")).collect()
}

/// Checks the sequential creates: unique names, increasing per session, all present.
async fn check_sequential_creates(ensemble: &Ensemble, acked: &[AckedCreate], within: Duration) {
    let mut seen = BTreeMap::new();
    for create in acked {
        if let Some(other) = seen.insert(create.path.clone(), create.session) {
            panic!("two acknowledged creates got {}: sessions {other} and {}", create.path, create.session);
        }
    }
    let mut last_by_session: BTreeMap<u64, i64> = BTreeMap::new();
    for create in acked {
        let last = last_by_session.entry(create.session).or_insert(i64::MIN);
        assert!(create.sequence > *last, "session {}: sequence went back at {}", create.session, create.path);
        *last = create.sequence;
    }
    for member in 0..ensemble.members.len() {
        let present = synced_children(ensemble, member, SEQUENTIAL_PARENT, within).await;
        let missing: Vec<&str> =
            acked.iter().map(|c| c.path.as_str()).filter(|p| !present.contains(*p)).collect();
        assert!(
            missing.is_empty(),
            "server {}: acknowledged sequential creates lost: {missing:?}",
            member + 1
        );
    }
}

/// Runs the whole test: `voters` members of the target's kind, `faults` (shuffled by the
/// seed) per round.
async fn jepsen(test: &'static str, voters: usize, faults: &[Fault]) {
    jepsen_of(test, &vec![Target::from_env(); voters], faults).await
}

/// Runs the whole test on members of these kinds (member i is `members[i]`; a ringkeeper
/// member among Apache members speaks Apache's quorum protocol). With any Apache member the
/// history is judged by Apache's model (its members serve reads as Apache does) and Apache's
/// timing and liveness bound apply.
async fn jepsen_of(test: &'static str, members: &[Target], faults: &[Fault]) {
    let voters = members.len();
    let rounds = env_number("RINGKEEPER_JEPSEN_ROUNDS", 1);
    let seed = env_number(
        "RINGKEEPER_JEPSEN_SEED",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos().into(),
    );
    let _hint = ReplayHint { test, seed, rounds };
    let test_started = Instant::now();
    let target = if members.contains(&Target::Apache) { Target::Apache } else { Target::Ringkeeper };
    eprintln!(
        "jepsen {test}: {voters} members ({members:?}), {rounds} round(s), seed {seed} (RINGKEEPER_JEPSEN_SEED to \
         reuse)"
    );
    let extra = if target == Target::Apache { APACHE_TIMING } else { "" };
    let mut ensemble = tokio::task::block_in_place(|| Ensemble::start_partitionable_as(members, extra));
    eprintln!("ensemble serving after {:?}", test_started.elapsed());
    let recorder = Arc::new(Recorder { origin: Instant::now(), ops: Mutex::new(Vec::new()) });
    // The keys are created by a setup session, as part of the history.
    let setup = zk::Client::connector()
        .with_connection_timeout(OP_TIMEOUT)
        .connect(&ensemble.connect_string())
        .await
        .expect("connect setup session");
    for key in KEYS {
        let created = run_op(&setup, &recorder, 0, key, Call::create(b"init")).await;
        assert_eq!(created, Some(Return::Created), "create {key}");
    }
    for parent in [SEQUENTIAL_PARENT, EPHEMERAL_PARENT] {
        setup.create(parent, b"", &open_acl(zk::CreateMode::Persistent)).await.expect("create parent");
    }
    drop(setup);

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..voters.max(5))
        .map(|w| {
            let addr = ensemble.address(w % voters);
            tokio::spawn(worker(addr, w as u64 + 1, seed, recorder.clone(), stop.clone()))
        })
        .collect();
    let liveness_bound = if target == Target::Apache { LIVENESS_BOUND_APACHE } else { LIVENESS_BOUND };
    let mut rng = Rng(seed);
    let mut first_fault_ns = u64::MAX;
    let mut recoveries = Vec::new();
    for round in 0..rounds {
        let mut schedule = faults.to_vec();
        for i in (1..schedule.len()).rev() {
            schedule.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for fault in schedule {
            tokio::time::sleep(LOAD_BEFORE_FAULT).await;
            let leader_wait = Instant::now();
            let (what, healing) = tokio::task::block_in_place(|| inject(&mut ensemble, fault));
            let leader_wait = leader_wait.elapsed();
            first_fault_ns = first_fault_ns.min(recorder.now());
            tokio::time::sleep(FAULT_HOLD).await;
            let recovered = tokio::task::block_in_place(|| {
                heal(&mut ensemble, healing);
                ensemble.time_until_all_serve(Duration::from_secs(60))
            });
            let Some(recovered) = recovered else {
                let modes: Vec<String> =
                    (0..voters).map(|i| format!("server {}: {:?}", i + 1, ensemble.mode(i))).collect();
                panic!(
                    "round {round}, {what}: not every member serves within 60 s of the heal ({})",
                    modes.join(", ")
                )
            };
            eprintln!(
                "round {round} (at {:?}, leader found in {leader_wait:?}): {what} for {FAULT_HOLD:?}; every member \
                 serves {recovered:?} after the heal",
                test_started.elapsed()
            );
            recoveries.push((what, recovered));
        }
    }
    tokio::time::sleep(LOAD_BEFORE_FAULT).await;
    stop.store(true, Ordering::Relaxed);
    let faults_done = test_started.elapsed();
    let mut ends = Vec::new();
    for w in workers {
        ends.push(
            tokio::time::timeout(Duration::from_secs(20), w)
                .await
                .expect("worker stops")
                .expect("worker task"),
        );
    }

    // Final synced reads of every key on every member, also judged.
    for member in 0..voters {
        let client = connect_for_checks(&ensemble, member, liveness_bound).await;
        for key in KEYS {
            let read =
                run_op(&client, &recorder, FINAL_READER + member as u64, key, Call::synced_read()).await;
            assert!(
                matches!(read, Some(Return::Value { .. })),
                "final read of {key} on server {}: {read:?}",
                member + 1
            );
        }
    }

    let sequential: Vec<AckedCreate> = ends.iter().flat_map(|e| e.sequential.iter().cloned()).collect();
    check_sequential_creates(&ensemble, &sequential, liveness_bound).await;
    let live_ephemerals: Vec<AckedCreate> =
        ends.iter().flat_map(|e| e.live_ephemerals.iter().cloned()).collect();
    for member in 0..voters {
        let present = synced_children(&ensemble, member, EPHEMERAL_PARENT, liveness_bound).await;
        let missing: Vec<&str> =
            live_ephemerals.iter().map(|c| c.path.as_str()).filter(|p| !present.contains(*p)).collect();
        assert!(missing.is_empty(), "server {}: ephemerals of open sessions lost: {missing:?}", member + 1);
    }
    // Every session closes (or was dropped earlier and expires): no ephemeral may remain.
    drop(ends);
    let closed_at = Instant::now();
    let deadline = Instant::now() + SESSION_TIMEOUT * 3;
    let leftover = loop {
        let left = synced_children(&ensemble, 0, EPHEMERAL_PARENT, liveness_bound).await;
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(leftover.is_empty(), "ephemerals of closed or expired sessions remain: {leftover:?}");
    eprintln!(
        "faults done after {:?}; every ephemeral gone {:?} after the sessions closed",
        faults_done,
        closed_at.elapsed()
    );

    let history = recorder.ops.lock().unwrap().clone();
    let answered = history.iter().filter(|op| op.completion.is_some()).count();
    let acked_writes_at = |op: &Op| match &op.completion {
        Some(c) if matches!(c.result, Return::Written { .. }) => Some(c.at),
        _ => None,
    };
    let acked_writes = history.iter().filter_map(acked_writes_at).count();
    let acked_after_fault =
        history.iter().filter_map(acked_writes_at).filter(|&at| at > first_fault_ns).count();
    let options = Options {
        synced_reads: match target {
            Target::Ringkeeper => ReadGuarantee::Linearizable,
            Target::Apache => ReadGuarantee::Sequential,
        },
        max_ops_per_key: Options::default().max_ops_per_key.max(2_000 * rounds as usize),
        ..Options::default()
    };
    let started = Instant::now();
    let verdict = check_history(&history, &options);
    eprintln!(
        "{} register ops ({answered} answered, {acked_writes} acknowledged writes, {acked_after_fault} after the \
         first fault), {} sequential and {} live ephemeral creates; checked in {:?}",
        history.len(),
        sequential.len(),
        live_ephemerals.len(),
        started.elapsed()
    );
    if let Err(violation) = verdict {
        panic!("history rejected:\n{violation}");
    }
    if target == Target::Apache {
        // For calibration: Apache does not promise linearizable synced reads
        // (ZOOKEEPER-1675); say whether this run happened to keep them anyway.
        let strict = Options { synced_reads: ReadGuarantee::Linearizable, ..options };
        match check_history(&history, &strict) {
            Ok(()) => eprintln!("Apache's history also passes the strict model"),
            Err(violation) => {
                eprintln!("Apache's history fails the strict model (allowed by its own):\n{violation}")
            }
        }
    }
    // The same history with one stale synced read added, by the session that read the latest
    // value at the end (so a violation in either model), must fail: the verdict can fail.
    let stale =
        with_stale_read(&history, KEYS[0], FINAL_READER).expect("an acknowledged write replaced another");
    assert!(
        matches!(check_history(&stale, &options), Err(v) if !v.is_inconclusive()),
        "a stale synced read was accepted"
    );
    assert!(acked_writes > 50, "too little load to judge: {acked_writes} acknowledged writes");
    assert!(
        acked_after_fault > 20,
        "too little load after the first fault: {acked_after_fault} acknowledged writes"
    );
    assert!(!sequential.is_empty(), "no sequential create was acknowledged");
    for (what, recovered) in &recoveries {
        assert!(
            recovered <= &liveness_bound,
            "{what}: every member served again only {recovered:?} after the heal (bound {liveness_bound:?})"
        );
    }
}

/// The faults of a 3-member ensemble's test (one of each that 3 members survive).
const THREE_MEMBER_FAULTS: [Fault; 5] = [
    Fault::PauseLeader,
    Fault::IsolateLeader,
    Fault::LeaderCannotSend,
    Fault::KillLeader,
    Fault::KillFollower,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_under_kills_pauses_and_partitions() {
    jepsen("three_members_under_kills_pauses_and_partitions", 3, &THREE_MEMBER_FAULTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_under_split_halves_one_way_cuts_and_a_majority_kill() {
    let faults = [Fault::SplitHalves, Fault::LeaderCannotHear, Fault::KillMajority, Fault::PauseLeader];
    jepsen("five_members_under_split_halves_one_way_cuts_and_a_majority_kill", 5, &faults).await;
}

/// A mixed ensemble (issue #16): two Apache 3.8 members and a ringkeeper member speaking
/// Apache's quorum protocol (it follows an Apache leader or leads the Apache followers, as
/// the election goes), under the faults of the 3-member test; judged by Apache's model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_apache_and_ringkeeper_ensemble_under_kills_pauses_and_partitions() {
    let members = [Target::Apache, Target::Apache, Target::Ringkeeper];
    jepsen_of(
        "a_mixed_apache_and_ringkeeper_ensemble_under_kills_pauses_and_partitions",
        &members,
        &THREE_MEMBER_FAULTS,
    )
    .await;
}
