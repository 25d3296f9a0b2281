#!/usr/bin/env python3
"""kazoo against a ZooKeeper-compatible server, for the Apache <-> ringkeeper migration tests.

Usage:
  apache_migration.py HOST:PORT workload READY_FILE
      Writes a workload of every node kind (persistent, sequential, ephemeral with a live
      session, container, TTL), digest and read-only ACLs, setData/setACL versions, multi
      (committed and failed), failed writes (error txns), deletes, a closed session that owned
      ephemerals, null data (create, setData, TTL, inside a multi; kept apart from empty data)
      both in snapshots and in the logs after the last one, and enough writes to roll several snapshots and log files with a small
      snapCount. Then writes the live session's id and password to READY_FILE and keeps that session open
      until killed.
  apache_migration.py HOST:PORT resume SESSION_ID PASSWORD_HEX
      Reconnects to that session (as a client whose server was replaced would), checks that
      it is the same session and still owns /app/live, prints "resumed", and stays until
      killed without closing the session.
  apache_migration.py HOST:PORT dump
      Prints one JSON line per znode, sorted by path: path, data (hex, null when null), every Stat field,
      ACL list, children. Authenticated as the digest user, so every node is readable.
"""

import json
import os
import sys
import time
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError, BadVersionError
from kazoo.protocol.serialization import Create, Create2, SetData, Transaction, long_struct
from kazoo.security import make_digest_acl, READ_ACL_UNSAFE, OPEN_ACL_UNSAFE

USER, SECRET = "migrant", "s3cret"
SESSION_TIMEOUT_S = 40.0


class CreateContainer(Create2):
    """createContainer (opcode 19, CreateMode.CONTAINER), which kazoo does not offer."""

    type = 19


class CreateTtl(namedtuple("CreateTtl", "path data acl flags ttl")):
    """createTTL (opcode 21, CreateMode.PERSISTENT_WITH_TTL), which kazoo does not offer."""

    type = 21

    def serialize(self):
        b = Create2(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(long_struct.pack(self.ttl))
        return b

    deserialize = Create2.deserialize


def call(zk, request):
    """Sends a request kazoo has no method for and waits for its answer."""
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=10)


def client(hosts):
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, auth_data=[("digest", f"{USER}:{SECRET}")])
    zk.start(timeout=15)
    return zk


def workload(hosts, ready_file):
    zk = client(hosts)
    zk.create("/app", b"application root")
    # Null data early, so that snapshots hold it (jute length -1 in the node record).
    zk.create("/null", None)
    zk.create("/app/nulled", b"not null yet")
    zk.set("/app/nulled", None)
    for i in range(6):
        zk.create("/app/job-", f"job {i}".encode(), sequence=True)
    jobs = sorted(zk.get_children("/app"))
    zk.delete(f"/app/{jobs[1]}")
    zk.delete(f"/app/{jobs[4]}")
    zk.create("/app/counter", b"0")
    for i in range(1, 120):
        zk.set("/app/counter", str(i).encode(), version=i - 1)
    try:
        zk.set("/app/counter", b"stale", version=3)
        raise SystemExit("a stale version was accepted")
    except BadVersionError:
        pass
    try:
        zk.create("/app", b"again")
        raise SystemExit("a duplicate create was accepted")
    except NodeExistsError:
        pass
    secure = make_digest_acl(USER, SECRET, all=True)
    zk.create("/secure", b"only for the digest user", acl=[secure])
    zk.create("/secure/inner", b"x", acl=[secure, READ_ACL_UNSAFE[0]])
    zk.create("/public", b"read only for the world", acl=READ_ACL_UNSAFE + [secure])
    zk.set_acls("/public", [secure, OPEN_ACL_UNSAFE[0]], version=0)
    zk.set_acls("/public", READ_ACL_UNSAFE + [secure], version=1)
    call(zk, CreateContainer("/box", b"container", OPEN_ACL_UNSAFE, 4))
    zk.create("/box/item", b"keeps the container alive")
    call(zk, CreateTtl("/ttl", b"expires in an hour", OPEN_ACL_UNSAFE, 5, 3_600_000))
    zk.create("/empty", b"")
    tx = zk.transaction()
    tx.create("/multi", b"from a multi")
    tx.create("/multi/a", b"a")
    tx.set_data("/app", b"changed by a multi")
    tx.check("/app/counter", 119)
    tx.delete(f"/app/{jobs[5]}")
    results = tx.commit()
    if any(isinstance(r, Exception) for r in results):
        raise SystemExit(f"multi failed: {results}")
    tx = zk.transaction()
    tx.create("/multi/never", b"rolled back")
    tx.check("/app/counter", 5)
    results = tx.commit()
    if not any(isinstance(r, Exception) for r in results):
        raise SystemExit("a failing multi committed")
    # A session that owned ephemerals and closed (its ephemerals go with the closeSession txn).
    other = client(hosts)
    other.create("/app/gone", b"ephemeral of a closed session", ephemeral=True)
    other.stop()
    other.close()
    # Enough writes to roll several snapshots and log files (snapCount is small).
    zk.create("/bulk", b"")
    for i in range(150):
        zk.create(f"/bulk/n{i:03}", f"{i}".encode() * 3)
    for i in range(0, 150, 3):
        zk.delete(f"/bulk/n{i:03}")
    for i in range(1, 150, 3):
        zk.set(f"/bulk/n{i:03}", b"updated")
    # Null data late, so that the logs after the last snapshot hold it (create, setData,
    # createTTL, and both inside a multi, which kazoo's transaction API cannot send).
    zk.create("/late-null", None)
    call(zk, CreateTtl("/ttl-null", None, OPEN_ACL_UNSAFE, 5, 3_600_000))
    results = call(zk, Transaction([Create("/multi/null", None, OPEN_ACL_UNSAFE, 0), SetData("/app", None, -1)]))
    if any(isinstance(r, Exception) for r in results):
        raise SystemExit(f"multi with null data failed: {results}")
    for path in ["/null", "/app/nulled", "/late-null", "/ttl-null", "/multi/null", "/app"]:
        if zk.get(path)[0] is not None:
            raise SystemExit(f"{path}: null data reads back as {zk.get(path)[0]!r}")
    # Ephemerals of the session that stays open through the migration.
    zk.create("/app/live", b"ephemeral of a live session", ephemeral=True)
    zk.create("/app/live-seq-", b"ephemeral sequential", ephemeral=True, sequence=True)
    zk.sync("/")
    with open(ready_file + ".tmp", "w") as f:
        f.write(f"{zk.client_id[0]:#x} {zk.client_id[1].hex()}\n")
    os.rename(ready_file + ".tmp", ready_file)
    print("workload done", flush=True)
    while True:
        time.sleep(1)


def resume(hosts, session_id, password_hex):
    """Reconnects to an existing session; its ephemerals must be there, owned by it."""
    session_id = int(session_id, 16)
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, client_id=(session_id, bytes.fromhex(password_hex)))
    zk.start(timeout=15)
    if zk.client_id[0] != session_id:
        raise SystemExit(f"got session {zk.client_id[0]:#x}, not {session_id:#x}: the session was not resumed")
    _, stat = zk.get("/app/live")
    if stat.ephemeralOwner != session_id:
        raise SystemExit(f"/app/live is owned by {stat.ephemeralOwner:#x}")
    print(f"resumed {session_id:#x}", flush=True)
    # Leaves without closing the session (the caller kills this process).
    while True:
        time.sleep(1)


def dump(hosts):
    zk = client(hosts)
    zk.sync("/")  # a follower answers only after it has everything committed before now
    lines = []
    stack = ["/"]
    while stack:
        path = stack.pop()
        data, stat = zk.get(path)
        acls, _ = zk.get_acls(path)
        children = sorted(zk.get_children(path))
        lines.append(
            {
                "path": path,
                "data": None if data is None else data.hex(),
                "stat": [
                    stat.czxid,
                    stat.mzxid,
                    stat.ctime,
                    stat.mtime,
                    stat.version,
                    stat.cversion,
                    stat.aversion,
                    stat.ephemeralOwner,
                    stat.dataLength,
                    stat.numChildren,
                    stat.pzxid,
                ],
                "acl": [[a.perms, a.id.scheme, a.id.id] for a in acls],
                "children": children,
            }
        )
        for child in children:
            stack.append(path.rstrip("/") + "/" + child)
    zk.stop()
    zk.close()
    for line in sorted(lines, key=lambda l: l["path"]):
        print(json.dumps(line, sort_keys=True))


def create(hosts, path):
    """Creates `path` and prints its czxid (hex): the epoch it was written in."""
    zk = client(hosts)
    zk.create(path, b"")
    _, stat = zk.get(path)
    zk.stop()
    zk.close()
    print(f"{stat.czxid:#x}", flush=True)


if __name__ == "__main__":
    hosts, command = sys.argv[1], sys.argv[2]
    if command == "workload":
        workload(hosts, sys.argv[3])
    elif command == "dump":
        dump(hosts)
    elif command == "create":
        create(hosts, sys.argv[3])
    elif command == "resume":
        resume(hosts, sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {command}")
