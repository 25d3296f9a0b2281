#!/usr/bin/env python3
"""Concurrent kazoo writes: one session keeps WINDOW setData calls on one znode in flight
(pipelined, kazoo's async API) until COUNT have been sent.

Usage: kazoo_concurrent_writes.py HOST:PORT COUNT WINDOW

Every reply must succeed, the versions returned must be exactly 1..COUNT (each write applied
once), and the znode must end at version COUNT with the last value. Used to keep many writes
in flight on an ensemble (wake-up coalescing, `ringkeeper.coalesceMicros`).
"""

from compat_common import CALL_TIMEOUT_S, check_eq, close, connect, run, step


def main(hosts, count, window):
    count, window = int(count), int(window)
    zk = connect(hosts)
    path = zk.create("/concurrent-", b"0", sequence=True)
    step(f"{count} setData on {path}, {window} in flight")
    versions = []
    in_flight = []
    for i in range(1, count + 1):
        in_flight.append(zk.set_async(path, b"%d" % i))
        if len(in_flight) >= window:
            versions.append(in_flight.pop(0).get(timeout=CALL_TIMEOUT_S).version)
    versions.extend(r.get(timeout=CALL_TIMEOUT_S).version for r in in_flight)
    check_eq(versions, list(range(1, count + 1)), "versions returned, in order")
    data, stat = zk.get(path)
    check_eq((data, stat.version), (b"%d" % count, count), "last value and version")
    zk.delete(path)
    close(zk)


if __name__ == "__main__":
    run(main, total_deadline_s=120)
