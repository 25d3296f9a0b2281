"""Quotas through Apache's zkCli.sh (setquota / listquota / delquota) and kazoo.

Usage: kazoo_quota.py HOST:PORT soft|enforced

zkCli's `setquota` writes the limits node under /zookeeper/quota; the server keeps the
usage in the `zookeeper_stats` node next to it, read here with kazoo's get(). In `soft` mode
(the server runs without enforceQuota) writes past any limit succeed; in `enforced` mode (the
server runs with enforceQuota=true) a create or setData past a hard limit (-N / -B) fails with
QuotaExceeded, a soft limit (-n) still lets it through. The caller checks the server log for
Apache's "Quota exceeded" warning.
Env: ZKCLI (default /usr/share/zookeeper/bin/zkCli.sh).
"""

import os
import subprocess

from kazoo.exceptions import QuotaExceededError

from compat_common import check, connect, run, step

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")


def zkcli(hostport, *commands):
    """Runs zkCli.sh with `commands` on stdin; its stdout and stderr, SLF4J noise dropped."""
    result = subprocess.run(
        [ZKCLI, "-server", hostport],
        input="\n".join(commands) + "\nquit\n",
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = "\n".join(
        line for line in (result.stdout + result.stderr).splitlines() if not line.startswith("SLF4J:")
    )
    print(out, flush=True)
    return out


def stats(zk, path):
    data, _ = zk.get(f"/zookeeper/quota{path}/zookeeper_stats")
    return data.decode()


def main(hostport, mode):
    zk = connect(hostport)

    step("setquota -n 5 and -B 10 on two existing nodes")
    zk.create("/app", b"")
    zk.create("/app/existing", b"abc")
    zk.create("/blob", b"12345")
    out = zkcli(hostport, "setquota -n 5 /app", "setquota -B 10 /blob", "listquota /app", "listquota /blob")
    check("Output quota for /app count=5,bytes=-1" in out, f"listquota /app shows the limit: {out}")
    check("Output stat for /app count=2,bytes=3" in out, f"listquota /app shows the usage: {out}")
    check("Output quota for /blob count=-1,bytes=-1=;byteHardLimit=10" in out, f"listquota /blob: {out}")
    check(stats(zk, "/app") == "count=2,bytes=3", f"stats at setquota: {stats(zk, '/app')}")

    step("creates and deletes under /app move its stats")
    for i in range(3):
        zk.create(f"/app/n{i}", b"xy")
    zk.delete("/app/n2")
    zk.create("/app/n2", b"")
    check(stats(zk, "/app") == "count=5,bytes=7", f"stats after creates: {stats(zk, '/app')}")
    zk.set("/app/existing", b"a")
    check(stats(zk, "/app") == "count=5,bytes=5", f"stats after set: {stats(zk, '/app')}")

    step("past the soft count limit: allowed in both modes")
    zk.create("/app/over-soft", b"")
    check(stats(zk, "/app") == "count=6,bytes=5", f"stats past soft limit: {stats(zk, '/app')}")

    step("past the hard byte limit of /blob")
    try:
        zk.set("/blob", b"x" * 11)
        refused = False
    except QuotaExceededError:
        refused = True
    check(refused == (mode == "enforced"), f"setData past byteHardLimit refused={refused} in {mode} mode")
    want = "count=1,bytes=5" if refused else "count=1,bytes=11"
    check(stats(zk, "/blob") == want, f"/blob stats {stats(zk, '/blob')}, want {want}")

    step("a hard count limit on /app (setquota -N 7)")
    zkcli(hostport, "setquota -N 7 /app")
    zk.create("/app/seventh", b"")
    try:
        zk.create("/app/eighth", b"")
        refused = False
    except QuotaExceededError:
        refused = True
    check(refused == (mode == "enforced"), f"create past countHardLimit refused={refused} in {mode} mode")
    if refused:
        tx = zk.transaction()
        tx.create("/app/in-multi", b"")
        results = tx.commit()
        check(isinstance(results[0], QuotaExceededError), f"multi create past the limit: {results}")

    step("delquota removes the limits; writes are no longer checked")
    out = zkcli(hostport, "delquota /app", "listquota /app")
    check("Output quota for /app" not in out, f"listquota after delquota: {out}")
    zk.create("/app/after-delquota", b"")
    check(zk.exists("/app/after-delquota") is not None, "create after delquota")
    zk.stop()


if __name__ == "__main__":
    run(main, 150)
