#!/usr/bin/env python3
"""kazoo's recipes against a ZooKeeper-compatible server, each with two real sessions.

Usage: kazoo_recipes.py HOST:PORT

Lock: two clients contend; the second gets it only after the first releases.
Election: two candidates; one leads, and when it steps down the other leads.
Counter: concurrent increments from two clients add up exactly (versioned set retries).
Queue: FIFO order across clients, priorities, empty queue.
Barrier: a waiter in another session is released when the barrier node is removed.
These recipes lean on sequential ephemeral nodes, child and exists watches, and
conditional sets, so they fail if any of those misbehave. Every wait is bounded.
"""

import threading
import time

from compat_common import (
    CALL_TIMEOUT_S,
    check,
    check_eq,
    close,
    connect,
    in_background,
    run,
    start_thread,
    step,
    wait_event,
)


def lock(zk1, zk2):
    step("Lock")
    first = zk1.Lock("/rl", "first")
    second = zk2.Lock("/rl", "second")
    check(first.acquire(timeout=CALL_TIMEOUT_S), "first client takes the free lock")
    check_eq(second.acquire(blocking=False), False, "non-blocking acquire of a held lock")

    acquired, outcome = in_background(lambda: second.acquire(timeout=3 * CALL_TIMEOUT_S))
    time.sleep(0.5)
    check(not acquired.is_set(), "second client must wait while the first holds the lock")
    check_eq(sorted(first.contenders()), ["first", "second"], "both contenders listed")
    first.release()
    wait_event(acquired, 2 * CALL_TIMEOUT_S, "second client acquires after release")
    check_eq(outcome, [True], "second acquire succeeded")
    check_eq(first.contenders(), ["second"], "only the holder remains")
    second.release()
    check_eq(zk1.get_children("/rl"), [], "lock nodes cleaned up")


def election(zk1, zk2):
    step("Election")
    leading = {"c1": threading.Event(), "c2": threading.Event()}
    step_down = {"c1": threading.Event(), "c2": threading.Event()}
    e1 = zk1.Election("/re", "c1")
    e2 = zk2.Election("/re", "c2")

    def lead(name):
        leading[name].set()
        step_down[name].wait(3 * CALL_TIMEOUT_S)

    t1 = start_thread(e1.run, lead, "c1")
    wait_event(leading["c1"], CALL_TIMEOUT_S, "c1 leads")
    t2 = start_thread(e2.run, lead, "c2")
    # c2's contender node appears once its run() has queued behind c1.
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while len(e1.contenders()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    check_eq(e1.contenders(), ["c1", "c2"], "contenders in order, leader first")
    time.sleep(0.3)
    check(not leading["c2"].is_set(), "c2 must not lead while c1 leads")

    step_down["c1"].set()
    t1.join(CALL_TIMEOUT_S)
    check(not t1.is_alive(), "c1's run() returns after stepping down")
    wait_event(leading["c2"], CALL_TIMEOUT_S, "c2 leads after c1 stepped down")
    check_eq(e2.contenders(), ["c2"], "only c2 left")
    step_down["c2"].set()
    t2.join(CALL_TIMEOUT_S)
    check(not t2.is_alive(), "c2's run() returns")
    check_eq(zk1.get_children("/re"), [], "election nodes cleaned up")


def counter(zk1, zk2):
    step("Counter")
    per_client = 25
    c1 = zk1.Counter("/rc")
    c2 = zk2.Counter("/rc")
    check_eq(c1.value, 0, "counter starts at the default")
    errors = []

    def bump(c):
        try:
            for _ in range(per_client):
                c += 1
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [start_thread(bump, c1), start_thread(bump, c2)]
    for t in threads:
        t.join(3 * CALL_TIMEOUT_S)
        check(not t.is_alive(), "increments finished in time")
    check_eq(errors, [], "no errors while incrementing")
    check_eq(zk1.Counter("/rc").value, 2 * per_client, "increments from two clients add up")
    c1 -= 7
    check_eq(c1.pre_value, 2 * per_client, "pre_value")
    check_eq(c1.post_value, 2 * per_client - 7, "post_value")
    data, st = zk2.get("/rc")
    check_eq(data, str(2 * per_client - 7).encode(), "counter is stored as ASCII digits")
    check(st.version >= 2 * per_client + 1, f"every increment was a versioned set ({st.version})")

    f = zk1.Counter("/rcf", default=0.0)
    f += 2.5
    check_eq(zk2.Counter("/rcf", default=0.0).value, 2.5, "float counter")


def queue(zk1, zk2):
    step("Queue")
    producer = zk1.Queue("/rq")
    consumer = zk2.Queue("/rq")
    for item in [b"one", b"two", b"three"]:
        producer.put(item)
    check_eq(len(consumer), 3, "queue length seen by the other client")
    check_eq([consumer.get() for _ in range(3)], [b"one", b"two", b"three"], "FIFO order")
    check_eq(consumer.get(), None, "empty queue")
    producer.put(b"low", priority=200)
    producer.put(b"high", priority=1)
    producer.put(b"mid-a", priority=50)
    producer.put(b"mid-b", priority=50)
    check_eq([consumer.get() for _ in range(4)], [b"high", b"mid-a", b"mid-b", b"low"],
             "priority order, FIFO within a priority")
    check_eq(len(producer), 0, "queue drained")


def barrier(zk1, zk2):
    step("Barrier")
    holder = zk1.Barrier("/rb")
    waiter = zk2.Barrier("/rb")
    holder.create()
    check(zk2.exists("/rb") is not None, "barrier node exists")
    check_eq(waiter.wait(timeout=0.3), False, "wait times out while the barrier stands")
    released, result = in_background(lambda: waiter.wait(timeout=3 * CALL_TIMEOUT_S))
    time.sleep(0.5)
    check(not released.is_set(), "waiter blocks while the barrier stands")
    check(holder.remove(), "remove() reports it removed the barrier")
    wait_event(released, 2 * CALL_TIMEOUT_S, "waiter released by remove()")
    check_eq(result, [True], "wait() returns True once the barrier is gone")
    check_eq(waiter.wait(timeout=0.1), True, "no barrier, no wait")


def main(hosts):
    step("connect two clients")
    zk1 = connect(hosts)
    zk2 = connect(hosts)
    check(zk1.client_id[0] != zk2.client_id[0], "two distinct sessions")
    try:
        lock(zk1, zk2)
        election(zk1, zk2)
        counter(zk1, zk2)
        queue(zk1, zk2)
        barrier(zk1, zk2)
    finally:
        close(zk1, zk2)


if __name__ == "__main__":
    run(main, total_deadline_s=90)
