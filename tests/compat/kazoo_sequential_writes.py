#!/usr/bin/env python3
"""A lone kazoo writer: one session sets one znode's data COUNT times, one call at a time.

Usage: kazoo_sequential_writes.py HOST:PORT COUNT

Every setData must return the next version of the znode (so every write was applied once,
in order). Used to give a server's per-hop latency sampling (1 request in 64 per
connection) a known number of sampled writes.
"""

from compat_common import CALL_TIMEOUT_S, check_eq, close, connect, run, step


def main(hosts, count):
    count = int(count)
    zk = connect(hosts)
    path = zk.create("/hops-", b"0", sequence=True)
    step(f"{count} sequential setData on {path}")
    for i in range(1, count + 1):
        stat = zk.set_async(path, b"%d" % i).get(timeout=CALL_TIMEOUT_S)
        check_eq(stat.version, i, "version after setData")
    zk.delete(path)
    close(zk)


if __name__ == "__main__":
    run(main, total_deadline_s=120)
