#!/usr/bin/env python3
"""kazoo (Python client) against a ZooKeeper-compatible server: the plain API.

Usage: kazoo_basic.py HOST:PORT [envi-whitelisted|envi-blocked]

Covers create/get/set/delete/exists/get_children with exact Stat checks, the usual error
replies, ephemeral and sequential nodes, multi (kazoo transactions) including per-op
results of a failing transaction, one-shot watches, DataWatch/ChildrenWatch event counts,
digest ACLs (NoAuthError without credentials), `server_version()` (which sends the `envi`
four-letter word on a separate socket and parses `zookeeper.version=`), and session expiry
seen through a state listener. The second argument says whether the server was started with
`envi` in `4lw.commands.whitelist`; when it is not (envi-blocked), only the
`server_version()` check runs, and it must fail with KazooException.
"""

import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, ZnodeStat
from kazoo.security import make_acl, make_digest_acl, make_digest_acl_credential

from compat_common import (
    CALL_TIMEOUT_S,
    SESSION_TIMEOUT_S,
    Recorder,
    check,
    check_eq,
    check_raises,
    close,
    connect,
    run,
    step,
    wait_event,
    wait_until,
)


def crud(zk):
    step("create/get/exists")
    check_eq(zk.create("/kb", b"v0"), "/kb", "create returns the path")
    data, st = zk.get("/kb")
    check_eq(data, b"v0", "data of /kb")
    check_eq(st.version, 0, "version of a new node")
    check_eq(st.cversion, 0, "cversion of a new node")
    check_eq(st.aversion, 0, "aversion of a new node")
    check_eq(st.dataLength, 2, "dataLength")
    check_eq(st.numChildren, 0, "numChildren of a new node")
    check_eq(st.ephemeralOwner, 0, "ephemeralOwner of a persistent node")
    check_eq(st.mzxid, st.czxid, "mzxid == czxid for a new node")
    check_eq(st.pzxid, st.czxid, "pzxid == czxid for a new node")
    check_eq(st.mtime, st.ctime, "mtime == ctime for a new node")
    check(st.czxid > 0, f"czxid positive, got {st.czxid}")
    check(abs(st.ctime / 1000.0 - time.time()) < 120, f"ctime is wall-clock ms, got {st.ctime}")
    check_eq(zk.exists("/kb"), st, "exists() returns the same Stat as get()")
    check_eq(zk.exists("/kb-missing"), None, "exists() of a missing node")
    check_raises(NodeExistsError, lambda: zk.create("/kb", b"again"), "second create of /kb")
    check_raises(NoNodeError, lambda: zk.get("/kb-missing"), "get of a missing node")
    check_raises(NoNodeError, lambda: zk.create("/kb-missing/child", b""),
                 "create under a missing parent")
    check_eq(zk.get("/")[0], b"", "data of /")
    check("zookeeper" in zk.get_children("/"), "/zookeeper is listed under /")

    step("set with versions")
    st1 = zk.set("/kb", b"value-1")
    check_eq(st1.version, 1, "version after one set")
    check_eq(st1.czxid, st.czxid, "czxid unchanged by set")
    check(st1.mzxid > st.mzxid, f"mzxid grows on set ({st.mzxid} -> {st1.mzxid})")
    check_eq(st1.dataLength, 7, "dataLength after set")
    st2 = zk.set("/kb", b"value-2", version=1)
    check_eq(st2.version, 2, "version after a conditional set")
    check_raises(BadVersionError, lambda: zk.set("/kb", b"stale", version=1),
                 "set with a stale version")
    check_eq(zk.get("/kb")[0], b"value-2", "data unchanged by the failed set")
    st_empty = zk.set("/kb", b"")
    check_eq(st_empty.dataLength, 0, "dataLength of empty data")
    check_eq(zk.get("/kb")[0], b"", "empty data reads back empty")
    big = bytes(range(256)) * 1024  # 256 KiB, binary
    zk.set("/kb", big)
    check_eq(zk.get("/kb")[0], big, "256 KiB binary value round-trips")

    step("children and parent Stat")
    zk.create("/kb/b", b"B")
    zk.create("/kb/a", b"A")
    last = zk.create("/kb/c", b"C")
    check_eq(last, "/kb/c", "create of a child returns its path")
    check_eq(sorted(zk.get_children("/kb")), ["a", "b", "c"], "children of /kb")
    children, pst = zk.get_children("/kb", include_data=True)
    check_eq(sorted(children), ["a", "b", "c"], "children with include_data")
    check_eq(pst.numChildren, 3, "numChildren")
    check_eq(pst.cversion, 3, "cversion after three child creates")
    c_st = zk.exists("/kb/c")
    check_eq(pst.pzxid, c_st.czxid, "parent pzxid == czxid of the newest child")
    check_eq(pst.version, 4, "parent data version not changed by child creates")
    check_raises(NotEmptyError, lambda: zk.delete("/kb"), "delete of a node with children")
    check_raises(BadVersionError, lambda: zk.delete("/kb/a", version=7),
                 "delete with a wrong version")
    zk.delete("/kb/a", version=0)
    pst2 = zk.exists("/kb")
    check_eq(pst2.numChildren, 2, "numChildren after a delete")
    check_eq(pst2.cversion, 4, "cversion counts deletes too")
    check(pst2.pzxid > pst.pzxid, "pzxid moves on child delete")
    check_raises(NoNodeError, lambda: zk.delete("/kb/a"), "delete of a deleted node")
    zk.delete("/kb", recursive=True)
    check_eq(zk.exists("/kb"), None, "recursive delete removed /kb")
    zk.ensure_path("/kb/deep/er/path")
    check(zk.exists("/kb/deep/er/path") is not None, "ensure_path created all levels")
    zk.delete("/kb", recursive=True)


def ephemeral_and_sequence(hosts, zk):
    step("ephemeral nodes")
    zk.create("/ke", b"")
    other = connect(hosts)
    try:
        path = other.create("/ke/eph", b"mine", ephemeral=True)
        check_eq(path, "/ke/eph", "ephemeral create path")
        st = zk.exists("/ke/eph")
        check(st is not None, "ephemeral visible to another session")
        check_eq(st.ephemeralOwner, other.client_id[0], "ephemeralOwner is the creator's session")
        check_raises(NoChildrenForEphemeralsError, lambda: other.create("/ke/eph/child", b""),
                     "create of a child of an ephemeral")
    finally:
        close(other)
    wait_until(lambda: zk.exists("/ke/eph") is None, CALL_TIMEOUT_S,
               "ephemeral gone after its session closed")

    step("sequential nodes")
    zk.create("/ks", b"")
    made = [zk.create("/ks/n-", str(i).encode(), sequence=True) for i in range(3)]
    check_eq(made, ["/ks/n-0000000000", "/ks/n-0000000001", "/ks/n-0000000002"],
             "sequential names (10-digit, from the parent's cversion)")
    zk.delete("/ks/n-0000000001")
    # Apache 3.8 does not advance the sequence counter on a child delete (the next name
    # here is ...03) although the parent's visible cversion does count deletes; accept
    # any strictly increasing, 10-digit, zero-padded counter shared by all prefixes.
    nxt = zk.create("/ks/n-", b"", sequence=True)
    other_prefix = zk.create("/ks/other", b"", sequence=True)
    es = zk.create("/ks/e-", b"", ephemeral=True, sequence=True)
    numbers = [2]
    for path, prefix in [(nxt, "/ks/n-"), (other_prefix, "/ks/other"), (es, "/ks/e-")]:
        suffix = path[len(prefix):]
        check(path.startswith(prefix) and len(suffix) == 10 and suffix.isdigit(),
              f"sequential name {path!r} is prefix + 10 digits")
        check(int(suffix) > numbers[-1],
              f"sequence numbers increase across prefixes: {path!r} after {numbers[-1]}")
        numbers.append(int(suffix))
    print(f"sequence numbers after a delete: {numbers[1:]}")
    check(int(nxt[-10:]) >= 3, "counter does not go back after a delete")
    zk.create("/ks2", b"")
    check_eq(zk.create("/ks2/n-", b"", sequence=True), "/ks2/n-0000000000",
             "counter is per parent")
    zk.delete("/ks2", recursive=True)
    check_eq(zk.exists(es).ephemeralOwner, zk.client_id[0], "ephemeral sequential owner")
    zk.delete("/ks", recursive=True)
    zk.delete("/ke", recursive=True)


def transactions(zk):
    step("transaction that succeeds")
    zk.create("/kt", b"")
    t = zk.transaction()
    t.create("/kt/a", b"1")
    t.create("/kt/b", b"2")
    t.set_data("/kt/a", b"11")
    t.check("/kt/b", 0)
    t.delete("/kt/b")
    results = t.commit()
    check_eq(len(results), 5, "one result per op")
    check_eq(results[0], "/kt/a", "create result is the path")
    check_eq(results[1], "/kt/b", "second create result")
    check(isinstance(results[2], ZnodeStat), f"set_data result is a Stat, got {results[2]!r}")
    check_eq(results[2].version, 1, "set_data result Stat version")
    check_eq(results[3], True, "check result")
    check_eq(results[4], True, "delete result")
    check_eq(zk.get("/kt/a")[0], b"11", "transaction applied")
    check_eq(zk.exists("/kt/b"), None, "node created and deleted in one transaction")
    check_eq(zk.exists("/kt").cversion, 3, "parent cversion after two creates and a delete in a multi")

    step("transaction with a failing op")
    t = zk.transaction()
    t.create("/kt/c", b"3")
    t.set_data("/kt/a", b"changed")
    t.delete("/kt/missing")
    t.create("/kt/d", b"4")
    results = t.commit()
    check_eq([type(r) for r in results],
             [RolledBackError, RolledBackError, NoNodeError, RuntimeInconsistency],
             "per-op results: ops before the failure roll back, the failing op has its "
             "error, later ops are RuntimeInconsistency")
    check_eq(zk.exists("/kt/c"), None, "rolled-back create left nothing")
    check_eq(zk.exists("/kt/d"), None, "op after the failure not applied")
    check_eq(zk.get("/kt/a")[0], b"11", "rolled-back set left the data")

    t = zk.transaction()
    t.check("/kt/a", 0)
    t.create("/kt/e", b"")
    results = t.commit()
    check_eq([type(r) for r in results], [BadVersionError, RuntimeInconsistency],
             "failing version check")
    zk.delete("/kt", recursive=True)


def watches(zk):
    step("one-shot watches")
    zk.create("/kw", b"0")
    fired = Recorder()
    zk.get("/kw", watch=fired)
    zk.set("/kw", b"1")
    fired.wait(1, CALL_TIMEOUT_S, "data watch on set")
    zk.set("/kw", b"2")
    time.sleep(0.3)
    check_eq(len(fired.calls), 1, "a get watch fires once")
    check_eq(fired.calls[0].type, EventType.CHANGED, "event type of a set")
    check_eq(fired.calls[0].path, "/kw", "event path")

    created = Recorder()
    check_eq(zk.exists("/kw/new", watch=created), None, "exists with watch on a missing node")
    zk.create("/kw/new", b"")
    created.wait(1, CALL_TIMEOUT_S, "exists watch on create")
    check_eq(created.calls[0].type, EventType.CREATED, "exists watch sees CREATED")

    kids = Recorder()
    zk.get_children("/kw", watch=kids)
    zk.set("/kw", b"3")  # data change must not fire a child watch
    zk.delete("/kw/new")
    kids.wait(1, CALL_TIMEOUT_S, "child watch on delete of a child")
    check_eq([e.type for e in kids.calls], [EventType.CHILD], "child watch sees CHILD once")

    step("DataWatch")
    seen = Recorder()

    @zk.DataWatch("/kw")
    def data_watch(data, stat, event):
        seen((data, stat.version if stat else None, event.type if event else None))

    check(seen.reached(1), "DataWatch initial call")
    check_eq(seen.calls[0][0], b"3", "DataWatch initial data")
    # Let each change be seen before the next one: DataWatch re-reads on each event.
    zk.set("/kw", b"4")
    check(seen.reached(2), "DataWatch call after first set")
    zk.set("/kw", b"5")
    check(seen.reached(3), "DataWatch call after second set")
    check_eq([s[0] for s in seen.calls], [b"3", b"4", b"5"], "DataWatch data sequence")
    check_eq([s[2] for s in seen.calls], [None, EventType.CHANGED, EventType.CHANGED],
             "DataWatch event types")

    step("ChildrenWatch")
    listed = Recorder()

    @zk.ChildrenWatch("/kw")
    def children_watch(children):
        listed(sorted(children))

    check(listed.reached(1), "ChildrenWatch initial call")
    check_eq(listed.calls[0], [], "ChildrenWatch initial children")
    zk.create("/kw/x", b"")
    check(listed.reached(2), "ChildrenWatch after create x")
    zk.create("/kw/y", b"")
    check(listed.reached(3), "ChildrenWatch after create y")
    zk.set("/kw/x", b"data")  # must not trigger the children watch
    zk.delete("/kw/x")
    check(listed.reached(4), "ChildrenWatch after delete x")
    time.sleep(0.3)
    check_eq(listed.calls, [[], ["x"], ["x", "y"], ["y"]], "ChildrenWatch calls")

    step("DataWatch sees delete")
    zk.delete("/kw", recursive=True)
    check(seen.reached(4), "DataWatch call after delete")
    check_eq(seen.calls[3][:2], (None, None), "DataWatch after delete: no data, no stat")
    check_eq(seen.calls[3][2], EventType.DELETED, "DataWatch event after delete")


def acls(hosts, zk):
    step("digest ACLs")
    acl = make_digest_acl("alice", "secret", all=True)
    world_read = make_acl("world", "anyone", read=True)
    expected_id = make_digest_acl_credential("alice", "secret")
    check(expected_id.startswith("alice:"), "digest id format")

    owner = connect(hosts, auth_data=[("digest", "alice:secret")])
    stranger = connect(hosts)
    try:
        owner.create("/ka", b"secret-data", acl=[acl])
        owner.create("/ka-read", b"public", acl=[acl, world_read])
        acls_, st = owner.get_acls("/ka")
        check_eq(len(acls_), 1, "one ACL entry")
        check_eq(acls_[0].id.scheme, "digest", "ACL scheme")
        check_eq(acls_[0].id.id, expected_id, "digest ACL id is user:base64(sha1(user:pw))")
        check_eq(acls_[0].perms, 31, "ALL perms")
        check_eq(st.aversion, 0, "aversion of a new node")
        # In 3.8 getACL needs READ or ADMIN (it used to be open), so it is refused too.
        for what, call in [
            ("get_acls", lambda: stranger.get_acls("/ka")),
            ("get", lambda: stranger.get("/ka")),
            ("set", lambda: stranger.set("/ka", b"x")),
            ("create child", lambda: stranger.create("/ka/child", b"")),
            ("set on read-only", lambda: stranger.set("/ka-read", b"x")),
        ]:
            check_raises(NoAuthError, call, f"{what} without credentials")
        check_eq(stranger.get("/ka-read")[0], b"public", "world:anyone read allowed")
        check_eq(stranger.exists("/ka") is not None, True, "exists needs no permission")

        step("add_auth")
        stranger.add_auth("digest", "alice:wrong")
        check_raises(NoAuthError, lambda: stranger.get("/ka"), "get with a wrong password")
        stranger.add_auth("digest", "alice:secret")
        check_eq(stranger.get("/ka")[0], b"secret-data", "get after add_auth")
        stranger.set("/ka", b"by-stranger")
        check_eq(owner.get("/ka")[0], b"by-stranger", "set after add_auth")

        step("set_acls")
        check_raises(BadVersionError, lambda: owner.set_acls("/ka", [world_read], version=5),
                     "set_acls with a wrong aversion")
        st = owner.set_acls("/ka", [world_read], version=0)
        check_eq(st.aversion, 1, "aversion after set_acls")
        check_eq(st.version, 1, "data version untouched by set_acls")
        check_raises(NoAuthError, lambda: owner.set_acls("/ka", [acl]),
                     "set_acls without ADMIN permission")
        check_raises(NoAuthError, lambda: owner.set("/ka", b"no-write"), "set on a read-only node")
        check_eq(owner.get_acls("/ka")[0][0].perms, 1, "READ perm only")
        # Deleting a child needs DELETE on the parent (world:anyone ALL on /), so this works.
        owner.delete("/ka")
        owner.delete("/ka-read")
    finally:
        close(owner, stranger)


def server_version(zk, envi_mode):
    step(f"server_version ({envi_mode})")
    if envi_mode == "envi-whitelisted":
        version = zk.server_version()
        print(f"server_version() = {version}")
        check(isinstance(version, tuple) and len(version) >= 2,
              f"version tuple with major.minor, got {version!r}")
        check_eq(version[0], 3, "major version")
        check(version[1] >= 5, f"minor version >= 5, got {version!r}")
        envi = zk.command(b"envi")
        check("zookeeper.version=" in envi, f"envi lists zookeeper.version: {envi!r}")
        check_eq(zk.command(b"ruok"), "imok", "ruok")
    else:
        try:
            version = zk.server_version(retries=1)
            raise AssertionError(f"server_version() succeeded without envi: {version!r}")
        except KazooException as e:
            print(f"server_version() failed as expected: {e}")
        reply = zk.command(b"envi")
        check("not in the whitelist" in reply or reply == "",
              f"envi refused when not whitelisted, got {reply!r}")


def session_expiry(hosts):
    step("session expiry via a state listener")
    zk = connect(hosts)
    states = []
    lost = threading.Event()
    reconnected = threading.Event()

    def listener(state):
        states.append(state)
        if state == KazooState.LOST:
            lost.set()
        elif state == KazooState.CONNECTED and lost.is_set():
            reconnected.set()

    zk.add_listener(listener)
    try:
        old_id = zk.client_id[0]
        zk.create("/kx-eph", b"", ephemeral=True)
        # Closing a second connection that reuses the session id and password closes the
        # session on the server; the first connection then hears SessionExpired.
        session_id, password = zk.client_id
        twin = KazooClient(hosts=hosts, client_id=(session_id, password),
                           timeout=SESSION_TIMEOUT_S)
        twin.start(timeout=CALL_TIMEOUT_S)
        check_eq(twin.client_id[0], session_id, "reattached to the same session id")
        close(twin)
        wait_event(lost, 2 * CALL_TIMEOUT_S, "state listener sees LOST")
        wait_event(reconnected, 2 * CALL_TIMEOUT_S, "kazoo reconnects with a new session")
        check(zk.client_id[0] != old_id, "new session id after expiry")
        wait_until(lambda: zk.exists("/kx-eph") is None, CALL_TIMEOUT_S,
                   "ephemeral of the expired session is gone")
        print(f"listener states: {states}")
        # Apache drops the old connection when the session is closed elsewhere, so kazoo
        # goes SUSPENDED first and learns of the expiry on reconnect: SUSPENDED, LOST,
        # CONNECTED. A server that sends the expiry event first would skip SUSPENDED.
        lost_at = states.index(KazooState.LOST)
        check(all(s == KazooState.SUSPENDED for s in states[:lost_at]),
              f"only SUSPENDED before LOST: {states}")
        check_eq(states[lost_at + 1:], [KazooState.CONNECTED], "states after LOST")
    finally:
        zk.remove_listener(listener)
        close(zk)


def main(hosts, envi_mode="envi-whitelisted"):
    check(envi_mode in ("envi-whitelisted", "envi-blocked"), f"bad mode {envi_mode}")
    step("connect")
    zk = connect(hosts)
    check(zk.connected, "connected")
    check(zk.client_id[0] != 0, "non-zero session id")
    try:
        if envi_mode == "envi-blocked":
            # The server runs the default whitelist: only the server_version() check.
            server_version(zk, envi_mode)
            return
        crud(zk)
        ephemeral_and_sequence(hosts, zk)
        transactions(zk)
        watches(zk)
        acls(hosts, zk)
        server_version(zk, envi_mode)
    finally:
        close(zk)
    session_expiry(hosts)


if __name__ == "__main__":
    run(main, total_deadline_s=90)
