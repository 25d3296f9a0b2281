//! Self-test of the history checker (`ringkeeper_tests::linearizability`): it accepts valid
//! concurrent histories, including ops with unknown outcome, and large generated ones quickly;
//! it rejects hand-made bad ones (stale synced read, two compare-and-sets on one version, a
//! value never written, a lost acknowledged write, a session going back or missing its own
//! write) and says "inconclusive" instead of searching without end. On 20,000 tiny random
//! histories its verdict equals a brute-force search over every order.

use std::time::{Duration, Instant};

use ringkeeper_tests::linearizability::{
    check_history, check_linearizable, with_stale_read, Call, Op, Options, ReadGuarantee, Return, Violation,
};
use ringkeeper_tests::sim::Rng;

const K: &str = "/k";

/// Session `s` calls `call` on [`K`] at `from` and gets `result` at `to`.
fn op(s: u64, from: u64, to: u64, call: Call, result: Return) -> Op {
    Op::invoke(s, K, from, call).returned(to, result)
}

/// Session `s` calls `call` on [`K`] at `from` and never hears back.
fn lost(s: u64, from: u64, call: Call) -> Op {
    Op::invoke(s, K, from, call)
}

fn created(s: u64, from: u64, to: u64, data: &[u8]) -> Op {
    op(s, from, to, Call::create(data), Return::Created)
}

fn not_linearizable(result: Result<(), Violation>) -> Vec<Op> {
    match result {
        Err(Violation::NotLinearizable { history, .. }) => history,
        other => panic!("expected NotLinearizable, got {other:?}"),
    }
}

#[test]
fn accepts_a_sequential_history_of_every_op() {
    let history = [
        op(1, 0, 1, Call::synced_read(), Return::NoNode),
        op(1, 2, 3, Call::write(b"x"), Return::NoNode),
        created(1, 4, 5, b"a"),
        op(2, 6, 7, Call::create(b"b"), Return::NodeExists),
        op(2, 8, 9, Call::write(b"c"), Return::Written { version: 1 }),
        op(1, 10, 11, Call::compare_and_set(b"d", 0), Return::BadVersion),
        op(1, 12, 13, Call::compare_and_set(b"d", 1), Return::Written { version: 2 }),
        op(2, 14, 15, Call::synced_read(), Return::value(b"d", 2)),
        op(3, 16, 17, Call::read(), Return::value(b"d", 2)),
    ];
    check_linearizable(&history).unwrap();
}

#[test]
fn accepts_concurrent_writes_seen_in_either_order() {
    // Two overlapping writes: readers during the overlap may see them in either order, but
    // every synced reader after both agrees on the last one.
    let base = created(1, 0, 1, b"a");
    for (first, second) in [(b"b", b"c"), (b"c", b"b")] {
        let history = [
            base.clone(),
            op(1, 10, 20, Call::write(b"b"), Return::Written { version: if first == b"b" { 1 } else { 2 } }),
            op(2, 11, 21, Call::write(b"c"), Return::Written { version: if first == b"c" { 1 } else { 2 } }),
            op(3, 12, 19, Call::synced_read(), Return::value(first, 1)),
            op(3, 22, 23, Call::synced_read(), Return::value(second, 2)),
            op(4, 24, 25, Call::synced_read(), Return::value(second, 2)),
        ];
        check_linearizable(&history).unwrap();
    }
}

#[test]
fn accepts_unknown_outcomes_that_take_effect_late_or_never() {
    let history = [
        created(1, 0, 1, b"a"),
        // Never answered; seen long after its session gave up on it.
        lost(1, 2, Call::write(b"late")),
        op(2, 10, 11, Call::synced_read(), Return::value(b"a", 0)),
        op(2, 50, 51, Call::synced_read(), Return::value(b"late", 1)),
        // Never answered and never applied.
        lost(3, 60, Call::compare_and_set(b"never", 1)),
        lost(3, 61, Call::create(b"nope")),
        lost(3, 62, Call::synced_read()),
        op(2, 70, 71, Call::compare_and_set(b"z", 1), Return::Written { version: 2 }),
        op(2, 80, 81, Call::synced_read(), Return::value(b"z", 2)),
    ];
    check_linearizable(&history).unwrap();
}

#[test]
fn a_version_gap_is_filled_only_by_an_unanswered_write_that_could_apply() {
    // "y" got version 2: one more write must have applied after the create, before "y".
    let with = |extra: Option<Op>| {
        let mut history =
            vec![created(1, 0, 1, b"a"), op(1, 10, 11, Call::write(b"y"), Return::Written { version: 2 })];
        history.extend(extra);
        check_linearizable(&history)
    };
    with(Some(lost(2, 2, Call::write(b"x")))).unwrap();
    with(Some(lost(2, 2, Call::compare_and_set(b"x", 0)))).unwrap();
    not_linearizable(with(None));
    // Sent after "y" was acknowledged: too late.
    not_linearizable(with(Some(lost(2, 20, Call::write(b"x")))));
    // A compare-and-set on a version the node never had cannot apply.
    not_linearizable(with(Some(lost(2, 2, Call::compare_and_set(b"x", 5)))));
    // Two gaps, two unanswered writes of which only the first was sent in time.
    let history = [
        created(1, 0, 1, b"a"),
        lost(2, 2, Call::write(b"x1")),
        lost(3, 3, Call::write(b"x2")),
        op(1, 10, 11, Call::write(b"y"), Return::Written { version: 3 }),
    ];
    check_linearizable(&history).unwrap();
    let mut late = history.clone();
    late[2].invoked = 12;
    not_linearizable(check_linearizable(&late));
}

#[test]
fn plain_reads_may_be_stale_but_synced_reads_may_not() {
    let history = |synced| {
        [
            created(1, 0, 1, b"a"),
            op(1, 2, 3, Call::write(b"b"), Return::Written { version: 1 }),
            // Another session, after the write was acknowledged, still sees the old value.
            op(2, 4, 5, Call::Read { synced }, Return::value(b"a", 0)),
        ]
    };
    check_linearizable(&history(false)).unwrap();
    let shortest = not_linearizable(check_linearizable(&history(true)));
    assert_eq!(shortest.len(), 3);
    // Apache 3.8's documented guarantee: synced reads only sequentially consistent.
    let sequential = Options { synced_reads: ReadGuarantee::Sequential, ..Options::default() };
    check_history(&history(true), &sequential).unwrap();
}

#[test]
fn rejects_two_compare_and_sets_on_one_version_both_acknowledged() {
    let history = [
        created(1, 0, 1, b"a"),
        op(1, 10, 20, Call::compare_and_set(b"b", 0), Return::Written { version: 1 }),
        op(2, 11, 21, Call::compare_and_set(b"c", 0), Return::Written { version: 1 }),
    ];
    not_linearizable(check_linearizable(&history));
    // Concurrent, one wins and the other sees BadVersion: fine.
    let fine = [
        history[0].clone(),
        history[1].clone(),
        op(2, 11, 21, Call::compare_and_set(b"c", 0), Return::BadVersion),
    ];
    check_linearizable(&fine).unwrap();
}

#[test]
fn rejects_a_read_of_a_value_never_written() {
    for read in [Call::read(), Call::synced_read()] {
        let history = [created(1, 0, 1, b"a"), op(2, 2, 3, read, Return::value(b"ghost", 0))];
        match check_linearizable(&history) {
            Err(Violation::ReadNeverWritten { expected, .. }) => {
                assert_eq!(expected.as_deref(), Some(&b"a"[..]))
            }
            other => panic!("expected ReadNeverWritten, got {other:?}"),
        }
    }
    // Data no op wrote, at a version no acknowledged write reached.
    let history = [created(1, 0, 1, b"a"), op(2, 2, 3, Call::read(), Return::value(b"ghost", 7))];
    assert!(matches!(check_linearizable(&history), Err(Violation::ReadNeverWritten { expected: None, .. })));
    // A value whose write failed with BadVersion was never written either.
    let history = [
        created(1, 0, 1, b"a"),
        op(1, 2, 3, Call::compare_and_set(b"b", 5), Return::BadVersion),
        op(2, 4, 5, Call::read(), Return::value(b"b", 1)),
    ];
    assert!(matches!(check_linearizable(&history), Err(Violation::ReadNeverWritten { .. })));
}

#[test]
fn rejects_a_lost_acknowledged_write() {
    // "b" was acknowledged at version 1, then "c" got version 1 too: "b" was lost.
    let history = [
        created(1, 0, 1, b"a"),
        op(1, 2, 3, Call::write(b"b"), Return::Written { version: 1 }),
        op(2, 10, 11, Call::write(b"c"), Return::Written { version: 1 }),
    ];
    not_linearizable(check_linearizable(&history));
    // An acknowledged create, then a synced read finds nothing.
    let history = [created(1, 0, 1, b"a"), op(2, 5, 6, Call::synced_read(), Return::NoNode)];
    not_linearizable(check_linearizable(&history));
}

#[test]
fn rejects_a_session_going_back_or_missing_its_own_write() {
    // Plain reads of one session: version 2, then version 1.
    let history = [
        created(1, 0, 1, b"a"),
        op(1, 2, 3, Call::write(b"b"), Return::Written { version: 1 }),
        op(1, 4, 5, Call::write(b"c"), Return::Written { version: 2 }),
        op(2, 6, 7, Call::read(), Return::value(b"c", 2)),
        op(2, 8, 9, Call::read(), Return::value(b"b", 1)),
    ];
    match check_linearizable(&history) {
        Err(Violation::SessionWentBack { session: 2, earlier, later, .. }) => {
            assert_eq!((earlier.invoked, later.invoked), (6, 8));
        }
        other => panic!("expected SessionWentBack, got {other:?}"),
    }
    // A session's own acknowledged write, then its plain read of the older value.
    let history = [
        created(1, 0, 1, b"a"),
        op(2, 2, 3, Call::write(b"b"), Return::Written { version: 1 }),
        op(2, 4, 5, Call::read(), Return::value(b"a", 0)),
    ];
    assert!(matches!(check_linearizable(&history), Err(Violation::SessionWentBack { .. })));
    // A node the session saw, then NoNode (there are no deletes).
    let history = [created(1, 0, 1, b"a"), op(1, 2, 3, Call::read(), Return::NoNode)];
    assert!(matches!(check_linearizable(&history), Err(Violation::SessionWentBack { .. })));
}

#[test]
fn the_report_is_the_shortest_failing_prefix_printed_one_op_a_line() {
    let mut history = vec![
        created(1, 0, 1, b"a"),
        op(1, 2, 3, Call::write(b"b"), Return::Written { version: 1 }),
        op(2, 4, 5, Call::synced_read(), Return::value(b"a", 0)),
    ];
    for n in 0..50u64 {
        history.push(op(
            1,
            10 + 2 * n,
            11 + 2 * n,
            Call::write(b"x"),
            Return::Written { version: 2 + n as i32 },
        ));
    }
    // Other keys, fine or longer, do not hide it.
    history.push(Op::invoke(9, "/other", 0, Call::create(b"o")).returned(1, Return::Created));
    let violation = check_linearizable(&history).unwrap_err();
    let shown = violation.to_string();
    assert_eq!(not_linearizable(Err(violation)).len(), 3, "{shown}");
    assert!(shown.starts_with("/k: not linearizable"), "{shown}");
    assert!(shown.contains("sync+getData -> \"a\" version 0"), "{shown}");
    assert_eq!(shown.lines().count(), 4, "{shown}");
}

/// A history of `ops` ops by `sessions` sessions on one key, made by a real register: each
/// op takes effect at a random instant inside its [invoked, completed] interval; one in
/// `lost_one_in` gets no reply (applied or not at random).
fn generated_history(seed: u64, sessions: u64, ops: usize, lost_one_in: u64) -> Vec<Op> {
    let mut rng = Rng(seed);
    let mut register: Option<(Vec<u8>, i32)> = None;
    let mut free_at = vec![0u64; sessions as usize];
    // (effect time, session, invoked, completed, call); effects applied in time order.
    let mut planned = Vec::new();
    for n in 0..ops {
        let s = rng.below(sessions);
        let invoked = free_at[s as usize] + rng.below(5);
        let effect = invoked + 1 + rng.below(20);
        let completed = effect + 1 + rng.below(20);
        free_at[s as usize] = completed + 1;
        let data = format!("v{n}").into_bytes();
        let call = match rng.below(5) {
            0 => Call::synced_read(),
            1 => Call::read(),
            2 => Call::write(&data),
            3 => Call::compare_and_set(&data, 0),
            _ => Call::create(&data),
        };
        planned.push((effect, s, invoked, completed, call));
    }
    planned.sort_by_key(|p| p.0);
    let mut history = Vec::new();
    for (_, s, invoked, completed, mut call) in planned {
        // Compare-and-sets expect the current version half the time, an old one otherwise.
        if let (Call::CompareAndSet { expected_version, .. }, Some((_, v))) = (&mut call, &register) {
            *expected_version = v - rng.below(2) as i32;
        }
        let lost = rng.below(lost_one_in) == 0;
        if lost && rng.below(2) == 0 {
            history.push(Op::invoke(s, K, invoked, call));
            continue; // never took effect
        }
        let result = match (&call, &register) {
            // Plain reads: the current value too (a stale one would also be allowed).
            (Call::Read { .. }, Some((d, v))) => Return::Value { data: d.clone(), version: *v },
            (Call::Read { .. }, None) => Return::NoNode,
            (Call::Create { data }, None) => {
                register = Some((data.clone(), 0));
                Return::Created
            }
            (Call::Create { .. }, Some(_)) => Return::NodeExists,
            (_, None) => Return::NoNode,
            (Call::CompareAndSet { expected_version, .. }, Some((_, v))) if expected_version != v => {
                Return::BadVersion
            }
            (Call::Write { data } | Call::CompareAndSet { data, .. }, Some((_, v))) => {
                let version = v + 1;
                register = Some((data.clone(), version));
                Return::Written { version }
            }
        };
        let op = Op::invoke(s, K, invoked, call);
        history.push(if lost { op } else { op.returned(completed, result) });
    }
    history
}

#[test]
fn accepts_generated_concurrent_histories_of_hundreds_of_ops_quickly() {
    let started = Instant::now();
    for seed in 0..20 {
        let history = generated_history(seed, 5, 400, 15);
        if let Err(violation) = check_linearizable(&history) {
            panic!("seed {seed}: valid history rejected:\n{violation}");
        }
    }
    let took = started.elapsed();
    eprintln!("20 histories of 400 ops (5 sessions) checked in {took:?}");
    assert!(took < Duration::from_secs(20), "checker too slow: {took:?}");
}

#[test]
fn a_generated_history_with_one_stale_synced_read_is_rejected() {
    let started = Instant::now();
    let mut rejected = 0;
    for seed in 0..20 {
        let Some(history) = with_stale_read(&generated_history(seed, 4, 300, 20), K, 99) else { continue };
        assert!(
            matches!(check_linearizable(&history), Err(Violation::NotLinearizable { .. })),
            "seed {seed}: stale synced read accepted: {:?}",
            check_linearizable(&history)
        );
        rejected += 1;
    }
    eprintln!("{rejected} generated histories with a stale read rejected in {:?}", started.elapsed());
    assert!(rejected >= 10, "only {rejected} of 20 seeds made a stale read to test");
}

#[test]
fn a_search_past_its_bound_is_inconclusive_not_a_verdict() {
    let history = generated_history(7, 6, 300, 10);
    let tight = Options { max_steps_per_key: 10, ..Options::default() };
    match check_history(&history, &tight) {
        Err(violation @ Violation::Inconclusive { .. }) => {
            assert!(violation.is_inconclusive());
            assert!(violation.to_string().contains("inconclusive"), "{violation}");
        }
        other => panic!("expected Inconclusive, got {other:?}"),
    }
    let few_ops = Options { max_ops_per_key: 100, ..Options::default() };
    assert!(check_history(&history, &few_ops).unwrap_err().is_inconclusive());
    // A definite violation on another key still wins over an inconclusive one.
    let mut both = history;
    both.push(Op::invoke(1, "/bad", 0, Call::synced_read()).returned(1, Return::value(b"x", 0)));
    assert!(!check_history(&both, &tight).unwrap_err().is_inconclusive());
}

/// The register model by brute force, for tiny histories: some order of all answered ops and
/// any subset of the unanswered ones that respects real time and every result.
fn linearizable_by_brute_force(ops: &[Op]) -> bool {
    fn extend(ops: &[Op], used: &mut Vec<bool>, register: Option<(Vec<u8>, i32)>) -> bool {
        if ops.iter().zip(used.iter()).all(|(op, &u)| u || op.completion.is_none()) {
            return true;
        }
        for i in 0..ops.len() {
            // Next only if no unused answered op completed before this one was sent.
            let blocked = ops
                .iter()
                .zip(used.iter())
                .any(|(other, &u)| !u && other.completion.as_ref().is_some_and(|c| c.at < ops[i].invoked));
            if used[i] || blocked {
                continue;
            }
            let op = &ops[i];
            let current = register.as_ref().map(|(_, v)| *v);
            let applies = match &op.call {
                Call::Read { .. } => false,
                Call::Write { .. } => current.is_some(),
                Call::CompareAndSet { expected_version, .. } => current == Some(*expected_version),
                Call::Create { .. } => current.is_none(),
            };
            let after = match (&op.call, applies) {
                (Call::Create { data }, true) => Some((data.clone(), 0)),
                (Call::Write { data } | Call::CompareAndSet { data, .. }, true) => {
                    Some((data.clone(), current.unwrap() + 1))
                }
                _ => register.clone(),
            };
            let consistent = match op.completion.as_ref().map(|c| &c.result) {
                None => true,
                Some(Return::Value { data, version }) => register == Some((data.clone(), *version)),
                Some(Return::Written { version }) => applies && after.as_ref().map(|a| a.1) == Some(*version),
                Some(Return::Created) => applies,
                Some(Return::NoNode) => current.is_none() && !matches!(op.call, Call::Create { .. }),
                Some(Return::NodeExists) => !applies && matches!(op.call, Call::Create { .. }),
                Some(Return::BadVersion) => {
                    !applies && current.is_some() && matches!(op.call, Call::CompareAndSet { .. })
                }
            };
            if consistent {
                used[i] = true;
                let found = extend(ops, used, after);
                used[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    extend(ops, &mut vec![false; ops.len()], None)
}

#[test]
fn agrees_with_brute_force_on_thousands_of_tiny_random_histories() {
    let mut rng = Rng(2024);
    let (mut accepted, mut rejected) = (0, 0);
    for case in 0..20_000 {
        let mut history = Vec::new();
        let mut free_at = [0u64; 3];
        for n in 0..(3 + rng.below(5)) {
            let s = rng.below(3) as usize;
            let invoked = free_at[s] + rng.below(4);
            let completed = invoked + 1 + rng.below(6);
            free_at[s] = completed + 1;
            let data = [b'a' + rng.below(5) as u8]; // d and e are never read back
            let call = match rng.below(4) {
                0 => Call::synced_read(),
                1 => Call::write(&data),
                2 => Call::compare_and_set(&data, rng.below(3) as i32),
                _ => Call::create(&data),
            };
            let version = rng.below(3) as i32;
            let result = match (&call, rng.below(3)) {
                (Call::Read { .. }, 0) => Return::NoNode,
                (Call::Read { .. }, _) => Return::value(&[b'a' + rng.below(3) as u8], version),
                (Call::Create { .. }, 0) => Return::NodeExists,
                (Call::Create { .. }, _) => Return::Created,
                (Call::CompareAndSet { .. }, 0) => Return::BadVersion,
                (_, 1) => Return::NoNode,
                _ => Return::Written { version },
            };
            let op = Op::invoke(s as u64 + 10 * n, K, invoked, call);
            history.push(if rng.below(5) == 0 { op } else { op.returned(completed, result) });
        }
        let expected = linearizable_by_brute_force(&history);
        let verdict = check_linearizable(&history);
        assert_eq!(
            verdict.is_ok(),
            expected,
            "case {case}: checker {verdict:?}, brute force {expected}\n{history:#?}"
        );
        if expected {
            accepted += 1
        } else {
            rejected += 1
        }
    }
    eprintln!("brute force agreed: {accepted} linearizable, {rejected} not");
    assert!(accepted > 1000 && rejected > 1000, "{accepted} accepted, {rejected} rejected: too one-sided");
}
