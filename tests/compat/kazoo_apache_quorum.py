#!/usr/bin/env python3
"""kazoo through a ringkeeper member of an Apache 3.8 ensemble (issue #16).

Usage: kazoo_apache_quorum.py RINGKEEPER_HOST:PORT APACHE_HOST:PORT[,...] SESSION_ID PASSWORD_HEX

First, a session an Apache member created (SESSION_ID, PASSWORD_HEX, owning the ephemeral
/moved-eph) moves to the ringkeeper member: the same session resumes there (REVALIDATE to the
Apache leader), writes through it (which the leader refuses with SessionMoved unless it
learned the move), and closing it there removes its ephemeral on every Apache member.

A client connected ONLY to the ringkeeper member (which forwards its writes to the Apache
leader and answers them itself once it applies their txns) creates, sets, deletes, makes
sequential nodes, runs a committed and a failing transaction, gets a NodeExists and a
BadVersion error, and creates an ephemeral. Every write is then read back on each Apache
member separately (after a sync). The session is kept for three times its timeout (4 s, the
least Apache allows with tickTime 2000): it must stay connected and keep its ephemeral (the
Apache leader learns of it only through the ringkeeper member's PING replies). Closing it
must remove the ephemeral on every Apache member.
"""

import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError
from kazoo.protocol.states import KazooState

from compat_common import CALL_TIMEOUT_S, check, check_eq, check_raises, close, run, step, wait_until

# The least session timeout an Apache member with tickTime=2000 grants (2 ticks).
SHORT_TIMEOUT_S = 4.0


def on_apache(apache_hosts, check_each):
    """Runs `check_each(client, host)` against every Apache member, each on its own."""
    for host in apache_hosts.split(","):
        client = KazooClient(hosts=host, timeout=10.0, connection_retry={"max_tries": 3, "delay": 0.2})
        client.start(timeout=CALL_TIMEOUT_S)
        try:
            client.sync("/")
            check_each(client, host)
        finally:
            close(client)


def move_session_here(ringkeeper_host, apache_hosts, session_id, password_hex):
    step("a session of an Apache member moves to the ringkeeper member")
    session_id = int(session_id, 16)
    moved = KazooClient(
        hosts=ringkeeper_host,
        timeout=30.0,
        client_id=(session_id, bytes.fromhex(password_hex)),
        connection_retry={"max_tries": 3, "delay": 0.2},
    )
    moved.start(timeout=CALL_TIMEOUT_S)
    check_eq(moved.client_id[0], session_id, "the resumed session")
    check_eq(moved.exists("/moved-eph").ephemeralOwner, session_id, "its ephemeral's owner")
    moved.create("/moved-write", b"written after the move")
    moved.set("/moved-eph", b"set after the move")
    close(moved)

    def moved_session_closed(client, host):
        check_eq(client.get("/moved-write")[0], b"written after the move", f"/moved-write on {host}")
        wait_until(lambda: client.exists("/moved-eph") is None, 10, f"the moved session's ephemeral to go on {host}")

    on_apache(apache_hosts, moved_session_closed)


def main(ringkeeper_host, apache_hosts, moved_session_id, moved_password_hex):
    move_session_here(ringkeeper_host, apache_hosts, moved_session_id, moved_password_hex)

    step("connect to the ringkeeper member only")
    zk = KazooClient(hosts=ringkeeper_host, timeout=SHORT_TIMEOUT_S, connection_retry={"max_tries": 3, "delay": 0.2})
    zk.start(timeout=CALL_TIMEOUT_S)
    states = []
    zk.add_listener(states.append)
    session_id = zk.client_id[0]
    print(f"session {session_id:#x}, negotiated timeout {zk._session_timeout} ms", flush=True)

    step("writes through the ringkeeper member")
    zk.create("/mixed-rk", b"root")
    zk.create("/mixed-rk/a", b"1")
    stat = zk.set("/mixed-rk/a", b"2")
    check_eq(stat.version, 1, "version after one set")
    check_eq(zk.get("/mixed-rk/a")[0], b"2", "read back on the ringkeeper member")
    zk.create("/mixed-rk/gone", b"")
    zk.delete("/mixed-rk/gone")
    seq = [zk.create("/mixed-rk/seq-", b"", sequence=True) for _ in range(3)]
    check(seq == sorted(set(seq)) and all(s.startswith("/mixed-rk/seq-") for s in seq), f"sequential names: {seq}")
    check_raises(NodeExistsError, lambda: zk.create("/mixed-rk/a", b""), "a duplicate create")
    check_raises(BadVersionError, lambda: zk.set("/mixed-rk/a", b"x", version=0), "a stale set")
    tx = zk.transaction()
    tx.create("/mixed-rk/tx", b"from a transaction")
    tx.set_data("/mixed-rk", b"root changed", version=0)
    results = tx.commit()
    check(not any(isinstance(r, Exception) for r in results), f"a committed transaction: {results}")
    tx = zk.transaction()
    tx.create("/mixed-rk/never", b"")
    tx.check("/mixed-rk/a", 0)
    results = tx.commit()
    check(any(isinstance(r, Exception) for r in results), f"a failing transaction: {results}")
    zk.create("/mixed-rk/eph", b"ephemeral", ephemeral=True)
    zk.sync("/")

    def everything_there(client, host):
        check_eq(client.get("/mixed-rk")[0], b"root changed", f"/mixed-rk on {host}")
        check_eq(client.get("/mixed-rk/a")[0], b"2", f"/mixed-rk/a on {host}")
        check(client.exists("/mixed-rk/gone") is None, f"/mixed-rk/gone deleted on {host}")
        check(client.exists("/mixed-rk/never") is None, f"the failed transaction left nothing on {host}")
        check_eq(client.get("/mixed-rk/tx")[0], b"from a transaction", f"/mixed-rk/tx on {host}")
        children = sorted(client.get_children("/mixed-rk"))
        check_eq(children, sorted(["a", "tx", "eph"] + [s.rsplit("/", 1)[1] for s in seq]), f"children on {host}")
        owner = client.exists("/mixed-rk/eph").ephemeralOwner
        check_eq(owner, session_id, f"owner of the ephemeral on {host}")

    step("every write is on every Apache member")
    on_apache(apache_hosts, everything_there)

    step("the session outlives its timeout three times over")
    started = time.monotonic()
    while time.monotonic() - started < 3 * SHORT_TIMEOUT_S:
        time.sleep(0.5)
        check(zk.state == KazooState.CONNECTED, f"still connected after {time.monotonic() - started:.1f} s")
    check_eq(states, [], "connection state changes while kept alive")
    check_eq(zk.client_id[0], session_id, "the same session")
    zk.set("/mixed-rk/a", b"3")
    on_apache(apache_hosts, lambda c, h: check(c.exists("/mixed-rk/eph") is not None, f"the ephemeral on {h}"))

    step("closing the session removes its ephemeral everywhere")
    close(zk)

    def ephemeral_gone(client, host):
        wait_until(lambda: client.exists("/mixed-rk/eph") is None, 10, f"the ephemeral to go on {host}")
        check_eq(client.get("/mixed-rk/a")[0], b"3", f"the last set on {host}")

    on_apache(apache_hosts, ephemeral_gone)


if __name__ == "__main__":
    run(main, 150)
