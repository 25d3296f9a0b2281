//! History checker for client operations on ZooKeeper znodes, for the real-process fault
//! tests (`tests/tests/jepsen.rs`) and the seeded simulator alike. Pure code: no I/O, no clock.
//!
//! # Model
//! Every key (znode path) is an independent register holding either nothing or
//! `(data, version)`; a key starts absent (record the creating op in the history). The ops:
//! - [`Call::Read`] (getData): returns `(data, version)` or `NoNode`. With `synced: true` it
//!   stands for `sync` followed by `getData` on the same session;
//! - [`Call::Write`] (setData, version -1): bumps the version, or `NoNode`;
//! - [`Call::CompareAndSet`] (setData with an expected version): bumps the version when it
//!   matches, else `BadVersion` (or `NoNode`);
//! - [`Call::Create`]: absent -> `(data, 0)`, else `NodeExists`.
//!
//! An op whose outcome is unknown (no reply: timeout, connection loss) has `completion: None`
//! and may take effect at any moment after its invocation, or never. An op that failed with
//! an error proving it did not take effect can be left out of the history.
//!
//! # Checks
//! 1. Per key, a Wing-Gong search with Lowe's memoization of visited (linearized set, state)
//!    pairs (as in Porcupine / Knossos) decides whether the completed writes, compare-and-sets,
//!    creates and - under [`ReadGuarantee::Linearizable`] - synced reads can be put in one
//!    order that respects real time and the register's rules.
//! 2. Per session and key, in invocation order (ZooKeeper runs a session's requests in order):
//!    what the session observes never goes back (versions never decrease, a node seen never
//!    vanishes: the model has no delete) and it sees its own acknowledged writes. Every read
//!    returns a value some write wrote, under the version an acknowledged write got it. These
//!    are the sequential-consistency rules plain reads are held to.
//!
//! # API
//! Build [`Op`]s (times in any unit from any fixed origin, nanoseconds by convention), then
//! [`check_linearizable`] (strict: synced reads linearizable, the ringkeeper promise) or
//! [`check_history`] with [`Options`] (e.g. [`ReadGuarantee::Sequential`] for Apache 3.8,
//! whose `sync` + read may be stale after a leader pause, ZOOKEEPER-1675). A [`Violation`]
//! prints the offending history: for a non-linearizable key, the shortest failing prefix of
//! its history, one op per line. The search is bounded ([`Options::max_ops_per_key`],
//! [`Options::max_steps_per_key`]); past the bound the answer is [`Violation::Inconclusive`],
//! reported only when no key gave a definite violation. [`with_stale_read`] adds one stale
//! synced read to a history, for tests to prove that a verdict on it can fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// getData; `synced`: preceded by `sync` on the same session (linearizable read).
    Read { synced: bool },
    /// setData with version -1.
    Write { data: Vec<u8> },
    /// setData with an expected version.
    CompareAndSet { data: Vec<u8>, expected_version: i32 },
    /// create (persistent).
    Create { data: Vec<u8> },
}

impl Call {
    pub fn read() -> Call {
        Call::Read { synced: false }
    }
    pub fn synced_read() -> Call {
        Call::Read { synced: true }
    }
    pub fn write(data: &[u8]) -> Call {
        Call::Write { data: data.to_vec() }
    }
    pub fn compare_and_set(data: &[u8], expected_version: i32) -> Call {
        Call::CompareAndSet { data: data.to_vec(), expected_version }
    }
    pub fn create(data: &[u8]) -> Call {
        Call::Create { data: data.to_vec() }
    }

    /// The data this call writes, if it writes.
    fn written_data(&self) -> Option<&[u8]> {
        match self {
            Call::Read { .. } => None,
            Call::Write { data } | Call::CompareAndSet { data, .. } | Call::Create { data } => Some(data),
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Return {
    /// A read's data and version.
    Value {
        data: Vec<u8>,
        version: i32,
    },
    /// A setData (blind or compare-and-set) applied; the node's new version.
    Written {
        version: i32,
    },
    /// A create applied (version 0).
    Created,
    NoNode,
    NodeExists,
    BadVersion,
}

impl Return {
    pub fn value(data: &[u8], version: i32) -> Return {
        Return::Value { data: data.to_vec(), version }
    }
}

/// The reply to an op, and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub at: u64,
    pub result: Return,
}

/// One client operation: who, on which key, when it was sent, what, and its reply if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client session (or process) that issued it; its ops are in invocation order.
    pub session: u64,
    pub key: String,
    pub invoked: u64,
    pub call: Call,
    /// `None`: outcome unknown (no reply), may take effect after `invoked` or never.
    pub completion: Option<Completion>,
}

impl Op {
    /// An op sent at `at`, outcome unknown until [`Op::returned`].
    pub fn invoke(session: u64, key: &str, at: u64, call: Call) -> Op {
        Op { session, key: key.to_string(), invoked: at, call, completion: None }
    }

    /// This op with the reply `result` received at `at`.
    pub fn returned(mut self, at: u64, result: Return) -> Op {
        self.completion = Some(Completion { at, result });
        self
    }

    fn result(&self) -> Option<&Return> {
        self.completion.as_ref().map(|c| &c.result)
    }
}

/// How `sync` + read is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadGuarantee {
    /// Synced reads are linearizable (ringkeeper's promise).
    Linearizable,
    /// Synced reads only sequentially consistent, like plain reads (Apache 3.8's documented
    /// guarantee under leader pauses).
    Sequential,
}

/// Checker settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub synced_reads: ReadGuarantee,
    /// Keys with more ops than this are not searched ([`Violation::Inconclusive`]).
    pub max_ops_per_key: usize,
    /// Search steps per key before giving up ([`Violation::Inconclusive`]).
    pub max_steps_per_key: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            synced_reads: ReadGuarantee::Linearizable,
            max_ops_per_key: 5_000,
            max_steps_per_key: 20_000_000,
        }
    }
}

/// Why a history was rejected (or could not be judged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// No linearization exists; `history` is the shortest failing prefix of the key's ops
    /// (ops still in flight at the cut shown with unknown outcome).
    NotLinearizable { key: String, history: Vec<Op> },
    /// A session observed the key go back (older version, or a node it saw vanish) or missed
    /// its own acknowledged write.
    SessionWentBack { key: String, session: u64, earlier: Box<Op>, later: Box<Op> },
    /// A read returned data no op wrote, or data under a version an acknowledged write gave
    /// other data (`expected`).
    ReadNeverWritten { key: String, read: Box<Op>, expected: Option<Vec<u8>> },
    /// The search hit its bound on this key without deciding.
    Inconclusive { key: String, ops: usize, steps: u64 },
}

impl Violation {
    pub fn is_inconclusive(&self) -> bool {
        matches!(self, Violation::Inconclusive { .. })
    }
}

/// Checks `ops` with the strict model and default bounds (see [`check_history`]).
pub fn check_linearizable(ops: &[Op]) -> Result<(), Violation> {
    check_history(ops, &Options::default())
}

/// Checks `ops` (any order, any mix of keys and sessions). Definite violations win over
/// inconclusive keys; among non-linearizable keys the one with the fewest ops is reported.
pub fn check_history(ops: &[Op], options: &Options) -> Result<(), Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    for key_ops in by_key.values() {
        check_reads_of_written_values(key_ops)?;
        check_sessions(key_ops)?;
    }
    let mut keys: Vec<(&str, Vec<&Op>)> = by_key.into_iter().collect();
    keys.sort_by_key(|(_, key_ops)| key_ops.len());
    let mut inconclusive = None;
    for (key, key_ops) in keys {
        let searched: Vec<Op> = key_ops
            .into_iter()
            .filter(|op| in_linearizability_search(op, options.synced_reads))
            .cloned()
            .collect();
        match search_key(&searched, options) {
            Search::Linearizable => {}
            Search::NotLinearizable => {
                return Err(Violation::NotLinearizable {
                    key: key.to_string(),
                    history: shortest_failing_prefix(&searched, options),
                })
            }
            Search::GaveUp { steps } => {
                inconclusive.get_or_insert(Violation::Inconclusive {
                    key: key.to_string(),
                    ops: searched.len(),
                    steps,
                });
            }
        }
    }
    inconclusive.map_or(Ok(()), Err)
}

/// A copy of `ops` with one more op on `key` by `session` after every reply: a synced read
/// returning the data the key's highest acknowledged write replaced, under the version it
/// replaced. The checker must reject it; tests use it to prove a run's verdict can fail.
/// `None` when no acknowledged write replaced an acknowledged value.
pub fn with_stale_read(ops: &[Op], key: &str, session: u64) -> Option<Vec<Op>> {
    let acked_version = |op: &Op| match op.result() {
        Some(Return::Written { version }) => Some(*version),
        Some(Return::Created) => Some(0),
        _ => None,
    };
    let on_key = || ops.iter().filter(|op| op.key == key);
    let latest = on_key().filter_map(acked_version).max()?;
    let replaced = on_key().find(|op| acked_version(op) == Some(latest - 1))?.call.written_data()?;
    let end = ops.iter().map(|op| op.completion.as_ref().map_or(op.invoked, |c| c.at)).max()?;
    let mut stale = ops.to_vec();
    stale.push(
        Op::invoke(session, key, end + 1, Call::synced_read())
            .returned(end + 2, Return::value(replaced, latest - 1)),
    );
    Some(stale)
}

/// Whether `op` takes part in the linearizability search: writes of every outcome, and
/// completed reads that must be linearizable. Plain reads and unanswered reads do not.
fn in_linearizability_search(op: &Op, synced_reads: ReadGuarantee) -> bool {
    match op.call {
        Call::Read { synced } => {
            synced && synced_reads == ReadGuarantee::Linearizable && op.completion.is_some()
        }
        _ => true,
    }
}

/// Every read's `(data, version)` was written by some op, and matches the data an
/// acknowledged write produced at that version.
fn check_reads_of_written_values(key_ops: &[&Op]) -> Result<(), Violation> {
    let mut acked_at_version: HashMap<i32, &[u8]> = HashMap::new();
    let mut ever_written: HashSet<&[u8]> = HashSet::new();
    for op in key_ops {
        let Some(data) = op.call.written_data() else { continue };
        match op.result() {
            Some(Return::Written { version }) => {
                acked_at_version.insert(*version, data);
            }
            Some(Return::Created) => {
                acked_at_version.insert(0, data);
            }
            _ => {}
        }
        if matches!(op.result(), None | Some(Return::Written { .. }) | Some(Return::Created)) {
            ever_written.insert(data);
        }
    }
    for op in key_ops {
        let Some(Return::Value { data, version }) = op.result() else { continue };
        let expected = acked_at_version.get(version).copied();
        let consistent = match expected {
            Some(acked) => acked == data.as_slice(),
            None => ever_written.contains(data.as_slice()),
        };
        if !consistent {
            return Err(Violation::ReadNeverWritten {
                key: op.key.clone(),
                read: Box::new((*op).clone()),
                expected: expected.map(<[u8]>::to_vec),
            });
        }
    }
    Ok(())
}

/// Per session, in invocation order: observed versions never decrease, a node seen never
/// vanishes, and the session's own acknowledged writes are seen.
fn check_sessions(key_ops: &[&Op]) -> Result<(), Violation> {
    let mut sessions: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in key_ops {
        sessions.entry(op.session).or_default().push(op);
    }
    for (session, mut session_ops) in sessions {
        session_ops.sort_by_key(|op| op.invoked);
        // The op that established the lowest version the node must now have, if any.
        let mut floor: Option<(i32, &Op)> = None;
        for op in session_ops {
            let Some(result) = op.result() else { continue };
            let (observed, goes_back) = match result {
                Return::Value { version, .. } => (Some(*version), floor.is_some_and(|(f, _)| *version < f)),
                Return::Written { version } => (Some(*version), floor.is_some_and(|(f, _)| *version <= f)),
                Return::Created => (Some(0), floor.is_some()),
                Return::NodeExists | Return::BadVersion => (Some(0), false),
                Return::NoNode => (None, floor.is_some()),
            };
            if goes_back {
                return Err(Violation::SessionWentBack {
                    key: op.key.clone(),
                    session,
                    earlier: Box::new(floor.map(|(_, earlier)| earlier.clone()).expect("a floor was set")),
                    later: Box::new(op.clone()),
                });
            }
            if let Some(version) = observed {
                if floor.is_none_or(|(f, _)| version > f) {
                    floor = Some((version, op));
                }
            }
        }
    }
    Ok(())
}

/// A key's register: absent, or (interned data, version).
type Register = Option<(u32, i32)>;

/// Outcome of one key's search.
enum Search {
    Linearizable,
    NotLinearizable,
    GaveUp { steps: u64 },
}

/// One op prepared for the search: call and result with data interned.
struct SearchOp {
    call: InternedCall,
    result: Option<InternedReturn>,
    /// For an unanswered op: the previous-invoked unanswered op it is interchangeable with
    /// (same call, data no read returns). Such twins are used in invocation order only:
    /// any linearization using some of them can use the earliest ones instead, so the
    /// search need not try every subset of them.
    earlier_twin: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum InternedCall {
    Read,
    Write(u32),
    CompareAndSet(u32, i32),
    Create(u32),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum InternedReturn {
    Value(u32, i32),
    Written(i32),
    Created,
    NoNode,
    NodeExists,
    BadVersion,
}

impl SearchOp {
    /// Whether an unanswered op can no longer change the register from `state` on (versions
    /// only grow and nothing is deleted): a compare-and-set on a version already passed, a
    /// create of a node that exists.
    fn is_dead_at(&self, state: Register) -> bool {
        match (self.call, state) {
            (InternedCall::CompareAndSet(_, expected), Some((_, version))) => version > expected,
            (InternedCall::Create(_), Some(_)) => true,
            _ => false,
        }
    }

    /// The register after this op at `state`, `None` if the op cannot happen there with its
    /// result. Unknown results take the effect the call would have.
    fn step(&self, state: Register) -> Option<Register> {
        use InternedCall as C;
        use InternedReturn as R;
        let Some(result) = self.result else {
            return Some(match (self.call, state) {
                (C::Read, s) => s,
                (C::Write(data), Some((_, v))) => Some((data, v + 1)),
                (C::CompareAndSet(data, expected), Some((_, v))) if v == expected => Some((data, v + 1)),
                (C::Create(data), None) => Some((data, 0)),
                (_, s) => s,
            });
        };
        match (self.call, result, state) {
            (C::Read, R::Value(data, version), Some(current)) => {
                (current == (data, version)).then_some(state)
            }
            (_, R::NoNode, None) if !matches!(self.call, C::Create(_)) => Some(None),
            (C::Write(data), R::Written(version), Some((_, v))) => {
                (version == v + 1).then_some(Some((data, version)))
            }
            (C::CompareAndSet(data, expected), R::Written(version), Some((_, v))) => {
                (v == expected && version == v + 1).then_some(Some((data, version)))
            }
            (C::CompareAndSet(_, expected), R::BadVersion, Some((_, v))) => (v != expected).then_some(state),
            (C::Create(data), R::Created, None) => Some(Some((data, 0))),
            (C::Create(_), R::NodeExists, Some(_)) => Some(state),
            _ => None,
        }
    }
}

/// Interns byte strings to small ids, so states hash cheaply. Written data that no read
/// returns all share [`UNOBSERVED`]: no read can tell such values apart.
struct Interner<'a> {
    ids: HashMap<&'a [u8], u32>,
    observed: HashSet<&'a [u8]>,
}

/// The id of written data that no read returns.
const UNOBSERVED: u32 = 0;

impl<'a> Interner<'a> {
    fn new(ops: &'a [Op]) -> Interner<'a> {
        let observed = ops
            .iter()
            .filter_map(|op| match op.result() {
                Some(Return::Value { data, .. }) => Some(data.as_slice()),
                _ => None,
            })
            .collect();
        Interner { ids: HashMap::new(), observed }
    }

    fn id(&mut self, data: &'a [u8]) -> u32 {
        if !self.observed.contains(data) {
            return UNOBSERVED;
        }
        let next = self.ids.len() as u32 + 1;
        *self.ids.entry(data).or_insert(next)
    }
}

fn prepare(ops: &[Op]) -> Vec<SearchOp> {
    let mut interner = Interner::new(ops);
    let mut search_ops: Vec<SearchOp> = ops
        .iter()
        .map(|op| {
            let call = match &op.call {
                Call::Read { .. } => InternedCall::Read,
                Call::Write { data } => InternedCall::Write(interner.id(data)),
                Call::CompareAndSet { data, expected_version } => {
                    InternedCall::CompareAndSet(interner.id(data), *expected_version)
                }
                Call::Create { data } => InternedCall::Create(interner.id(data)),
            };
            let result = op.result().map(|r| match r {
                Return::Value { data, version } => InternedReturn::Value(interner.id(data), *version),
                Return::Written { version } => InternedReturn::Written(*version),
                Return::Created => InternedReturn::Created,
                Return::NoNode => InternedReturn::NoNode,
                Return::NodeExists => InternedReturn::NodeExists,
                Return::BadVersion => InternedReturn::BadVersion,
            });
            SearchOp { call, result, earlier_twin: None }
        })
        .collect();
    let mut by_invocation: Vec<usize> = (0..ops.len()).collect();
    by_invocation.sort_by_key(|&i| (ops[i].invoked, i));
    let mut last_of_kind: HashMap<InternedCall, usize> = HashMap::new();
    for i in by_invocation {
        let op = &search_ops[i];
        let unobserved = match op.call {
            InternedCall::Read => false,
            InternedCall::Write(data) | InternedCall::CompareAndSet(data, _) | InternedCall::Create(data) => {
                data == UNOBSERVED
            }
        };
        if op.result.is_none() && unobserved {
            search_ops[i].earlier_twin = last_of_kind.insert(op.call, i);
        }
    }
    search_ops
}

/// End of the entry list.
const NIL: usize = usize::MAX;
/// The list's head sentinel.
const HEAD: usize = 0;

/// The time-ordered list of call and return entries, unlinked and relinked in place
/// ("dancing links") as the search linearizes and backtracks ops.
struct EntryList {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each entry (index >= 1): the op it belongs to, and whether it is the call.
    entry_op: Vec<(usize, bool)>,
    call_entry: Vec<usize>,
    return_entry: Vec<Option<usize>>,
}

impl EntryList {
    /// Calls sort before returns at equal times: ops touching at an instant count as
    /// concurrent. Unanswered ops get no return entry: they never have to be linearized.
    fn new(ops: &[Op]) -> EntryList {
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoked, false, i));
            if let Some(c) = &op.completion {
                events.push((c.at, true, i));
            }
        }
        events.sort();
        let count = events.len() + 1;
        let mut list = EntryList {
            next: (1..=count).map(|n| if n == count { NIL } else { n }).collect(),
            prev: (0..count).map(|n| if n == 0 { NIL } else { n - 1 }).collect(),
            entry_op: vec![(usize::MAX, false); count],
            call_entry: vec![NIL; ops.len()],
            return_entry: vec![None; ops.len()],
        };
        for (n, &(_, is_return, op)) in events.iter().enumerate() {
            let entry = n + 1;
            list.entry_op[entry] = (op, !is_return);
            if is_return {
                list.return_entry[op] = Some(entry);
            } else {
                list.call_entry[op] = entry;
            }
        }
        list
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        if next != NIL {
            self.prev[next] = entry;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_entry[op]);
        if let Some(ret) = self.return_entry[op] {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(ret) = self.return_entry[op] {
            self.relink(ret);
        }
        self.relink(self.call_entry[op]);
    }
}

/// A set of op indices (the ops linearized so far), hashable for the memo.
#[derive(Clone, PartialEq, Eq, Hash)]
struct OpSet(Vec<u64>);

impl OpSet {
    fn new(ops: usize) -> OpSet {
        OpSet(vec![0; ops.div_ceil(64)])
    }
    fn insert(&mut self, op: usize) {
        self.0[op / 64] |= 1 << (op % 64);
    }
    fn remove(&mut self, op: usize) {
        self.0[op / 64] &= !(1 << (op % 64));
    }
    fn contains(&self, op: usize) -> bool {
        self.0[op / 64] & (1 << (op % 64)) != 0
    }
}

/// Wing-Gong search with Lowe's memoization over one key's ops.
fn search_key(ops: &[Op], options: &Options) -> Search {
    if ops.len() > options.max_ops_per_key {
        return Search::GaveUp { steps: 0 };
    }
    let search_ops = prepare(ops);
    let mut list = EntryList::new(ops);
    let mut answered_left = ops.iter().filter(|op| op.completion.is_some()).count();
    let mut linearized = OpSet::new(ops.len());
    // Unanswered compare-and-sets and creates: once the register is past them they can only
    // be no-ops, so the memo counts them as linearized (whether they are or not).
    let mortal: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            search_ops[i].result.is_none()
                && matches!(search_ops[i].call, InternedCall::CompareAndSet(..) | InternedCall::Create(_))
        })
        .collect();
    let memo_key = |linearized: &OpSet, state: Register| {
        let mut key = linearized.clone();
        for &op in &mortal {
            if search_ops[op].is_dead_at(state) {
                key.insert(op);
            }
        }
        (key, state)
    };
    let mut visited: HashSet<(OpSet, Register)> = HashSet::new();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state: Register = None;
    // Each scan of the candidates (calls before the first return) tries answered ops first,
    // then (`trying_unanswered`) the unanswered ones, which are never required: a valid
    // history is then found without guessing at ops nobody saw.
    let mut entry = list.next[HEAD];
    let mut trying_unanswered = false;
    let mut steps = 0u64;
    while answered_left > 0 {
        steps += 1;
        if steps > options.max_steps_per_key {
            return Search::GaveUp { steps };
        }
        let is_call = entry != NIL && list.entry_op[entry].1;
        if is_call {
            let op = list.entry_op[entry].0;
            let search_op = &search_ops[op];
            let skipped = search_op.result.is_none() != trying_unanswered
                || search_op.earlier_twin.is_some_and(|twin| !linearized.contains(twin));
            if !skipped {
                if let Some(next_state) = search_op.step(state) {
                    linearized.insert(op);
                    if visited.insert(memo_key(&linearized, next_state)) {
                        stack.push((op, state));
                        state = next_state;
                        list.lift(op);
                        if search_op.result.is_some() {
                            answered_left -= 1;
                        }
                        entry = list.next[HEAD];
                        trying_unanswered = false;
                        continue;
                    }
                    linearized.remove(op);
                }
            }
            entry = list.next[entry];
        } else if !trying_unanswered {
            entry = list.next[HEAD];
            trying_unanswered = true;
        } else {
            // A return (or the end): some op called before it must be linearized first.
            let Some((op, previous)) = stack.pop() else { return Search::NotLinearizable };
            linearized.remove(op);
            state = previous;
            list.unlift(op);
            trying_unanswered = search_ops[op].result.is_none();
            if !trying_unanswered {
                answered_left += 1;
            }
            entry = list.next[list.call_entry[op]];
        }
    }
    Search::Linearizable
}

/// The history up to time `cut`: ops invoked by then, those answered later made unknown.
/// A linearizable history stays linearizable when cut, so failing cuts are monotone.
fn cut_at(ops: &[Op], cut: u64) -> Vec<Op> {
    ops.iter()
        .filter(|op| op.invoked <= cut)
        .map(|op| {
            let mut op = op.clone();
            if op.completion.as_ref().is_some_and(|c| c.at > cut) {
                op.completion = None;
            }
            op
        })
        .collect()
}

/// The shortest prefix (cut at a completion time) of a non-linearizable `ops` that is still
/// not linearizable, by binary search; inconclusive cuts count as passing.
fn shortest_failing_prefix(ops: &[Op], options: &Options) -> Vec<Op> {
    let mut cuts: Vec<u64> = ops.iter().filter_map(|op| op.completion.as_ref().map(|c| c.at)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let fails = |cut: u64| matches!(search_key(&cut_at(ops, cut), options), Search::NotLinearizable);
    // The full history fails; find the first failing cut.
    let first_failing = cuts.partition_point(|&cut| !fails(cut));
    let mut prefix = match cuts.get(first_failing) {
        Some(&cut) => cut_at(ops, cut),
        None => ops.to_vec(),
    };
    prefix.sort_by_key(|op| (op.invoked, op.session));
    prefix
}

/// Up to 24 bytes, as text when printable.
struct ShortData<'a>(&'a [u8]);

impl fmt::Display for ShortData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(24)];
        let more = if shown.len() < self.0.len() { "..." } else { "" };
        match std::str::from_utf8(shown) {
            Ok(text) if text.chars().all(|c| !c.is_control()) => write!(f, "{text:?}{more}"),
            _ => write!(f, "0x{}{more}", shown.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Read { synced: true } => write!(f, "sync+getData"),
            Call::Read { synced: false } => write!(f, "getData"),
            Call::Write { data } => write!(f, "setData({})", ShortData(data)),
            Call::CompareAndSet { data, expected_version } => {
                write!(f, "setData({}, version {expected_version})", ShortData(data))
            }
            Call::Create { data } => write!(f, "create({})", ShortData(data)),
        }
    }
}

impl fmt::Display for Return {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Return::Value { data, version } => write!(f, "{} version {version}", ShortData(data)),
            Return::Written { version } => write!(f, "ok, version {version}"),
            Return::Created => write!(f, "created"),
            Return::NoNode => write!(f, "NoNode"),
            Return::NodeExists => write!(f, "NodeExists"),
            Return::BadVersion => write!(f, "BadVersion"),
        }
    }
}

/// Times printed in milliseconds (nanosecond inputs).
fn millis(nanos: u64) -> String {
    format!("{:.3}", nanos as f64 / 1e6)
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.completion.as_ref().map_or("?".to_string(), |c| millis(c.at));
        let result = self.completion.as_ref().map_or("? (no reply)".to_string(), |c| c.result.to_string());
        write!(
            f,
            "session {:<4} [{:>12} .. {:>12} ms] {} -> {}",
            self.session,
            millis(self.invoked),
            end,
            self.call,
            result
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotLinearizable { key, history } => {
                writeln!(f, "{key}: not linearizable; shortest failing history ({} ops):", history.len())?;
                for op in history {
                    writeln!(f, "  {op}")?;
                }
                Ok(())
            }
            Violation::SessionWentBack { key, session, earlier, later } => {
                writeln!(f, "{key}: session {session} went back in time:")?;
                writeln!(f, "  {earlier}")?;
                writeln!(f, "  {later}")
            }
            Violation::ReadNeverWritten { key, read, expected } => {
                write!(f, "{key}: read a value never written")?;
                if let Some(expected) = expected {
                    write!(f, " at that version (acknowledged write wrote {})", ShortData(expected))?;
                }
                writeln!(f, ":\n  {read}")
            }
            Violation::Inconclusive { key, ops, steps } => {
                writeln!(f, "{key}: inconclusive: search bound hit ({ops} ops, {steps} steps)")
            }
        }
    }
}
