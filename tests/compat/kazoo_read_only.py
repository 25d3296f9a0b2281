#!/usr/bin/env python3
"""kazoo's read-only mode against an ensemble member cut off from its quorum.

Usage: kazoo_read_only.py HOST:PORT EXPECTED_DATA

HOST:PORT is the cut-off member (read-only mode on); the test harness heals the partition
once this script prints "read-only checks passed". Read-only phase: a KazooClient with
read_only=True connects (state CONNECTED_RO), reads EXPECTED_DATA from /ro-data, lists
children, and every write kind (create, set, delete, a transaction) fails with
NotReadOnlyCallError. Then, with the quorum back, the same client must end up connected
read-write (kazoo reconnects by itself when the member closes its read-only connections)
and a create must succeed. Every wait is bounded.
"""

from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

from compat_common import check, check_eq, check_raises, close, connect, run, step, wait_until


def main(hosts, expected):
    step("connect read-only")
    client = connect(hosts, read_only=True)
    check_eq(client.client_state, KeeperState.CONNECTED_RO, "client state on a member without quorum")

    step("reads work")
    data, stat = client.get("/ro-data")
    check_eq(data, expected.encode(), "data of /ro-data")
    check_eq(stat.version, 0, "version of /ro-data")
    check("ro-data" in client.get_children("/"), "/ro-data listed under /")
    check(client.exists("/ro-missing") is None, "exists of a missing node")

    step("writes fail with NotReadOnly")
    check_raises(NotReadOnlyCallError, lambda: client.create("/ro-new", b"x"), "create")
    check_raises(NotReadOnlyCallError, lambda: client.set("/ro-data", b"x"), "set")
    check_raises(NotReadOnlyCallError, lambda: client.delete("/ro-data"), "delete")
    tx = client.transaction()
    tx.create("/ro-tx", b"")
    check_raises(NotReadOnlyCallError, tx.commit, "transaction")
    print("read-only checks passed", flush=True)

    step("quorum back: the client moves to read-write")
    wait_until(lambda: client.client_state == KeeperState.CONNECTED, 60, "a read-write connection")

    def created():
        try:
            client.create("/ro-after", b"rw")
            return True
        except NotReadOnlyCallError:
            return False
        except Exception as e:  # connection churn while the member rejoins
            print(f"create retried after {type(e).__name__}", flush=True)
            return client.connected and client.exists("/ro-after") is not None

    wait_until(created, 30, "a create through the healed member")
    check_eq(client.get("/ro-after")[0], b"rw", "data written after the heal")
    close(client)


if __name__ == "__main__":
    run(main, 150)
