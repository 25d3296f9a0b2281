#!/usr/bin/env python3
"""kazoo (Python client) against a secured server: ACL-filtered watch events, auth
enforcement, and SASL DIGEST-MD5.

Usage: kazoo_security.py HOST:PORT MODE [args...]

watch-acl: watch events are filtered by READ ACL (Apache 3.8.4+, CVE-2024-23944). An
  owner (digest auth) keeps /w open and creates children readable only by itself; an
  unauthenticated watcher holds a persistent recursive watch on /w (addWatch, sent as a raw
  request since kazoo has no API for it) and a one-shot exists watch on a secret child.
  Every event the server sends the watcher is recorded off the wire: it must see the events
  of the open child and none of the secret ones, while the owner's own recursive watch sees
  both (so the server did fire them).
enforce SCHEME: the server runs with enforce.auth.enabled=true and enforce.auth.schemes=SCHEME
  (digest here): a session that sends a request before authenticating gets
  SessionClosedRequireAuth and is closed; one that authenticated with digest first is served.
sasl USER PASSWORD: the server has the SASL provider and a JAAS Server section with
  user_USER="PASSWORD" (and no other user named USER-wrong): the DIGEST-MD5 exchange
  succeeds, whoami shows sasl:USER, a znode with ACL sasl:USER is readable by this session
  and not by an unauthenticated one; a wrong password and an unknown user are refused
  (the client ends in AUTH_FAILED) and the server keeps serving others.
gssapi ID: the server's JAAS Server section logs in with Kerberos; this client holds a
  ticket (KRB5CCNAME, from the test's KDC) and connects to HOST `localhost`: the GSSAPI
  exchange succeeds, the session is sasl:ID, a znode with ACL sasl:ID is readable by this
  session and not by an unauthenticated one.
gssapi-refused: the GSSAPI exchange of this client is refused by the server (AUTH_FAILED)
  and the server keeps serving others.
"""

import struct

from kazoo.exceptions import NoAuthError
from kazoo.protocol.states import KeeperState
from kazoo.protocol.serialization import write_string
from kazoo.security import OPEN_ACL_UNSAFE, make_acl, make_digest_acl

from compat_common import (CALL_TIMEOUT_S, Recorder, check, check_eq, close, connect, run,
                           step, wait_until)
from kazoo.client import KazooClient

# addWatch's mode for a persistent recursive watch (AddWatchMode.PERSISTENT_RECURSIVE).
PERSISTENT_RECURSIVE = 1
# Event types on the wire (Watcher.Event.EventType).
NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED = 1, 2, 3, 4
# SessionClosedRequireAuth (KeeperException.Code.SESSIONCLOSEDREQUIRESASLAUTH).
SESSION_CLOSED_REQUIRE_AUTH = -124


class AddWatch:
    """The addWatch request (opcode 106), which kazoo 2.11 does not offer."""

    type = 106

    def __init__(self, path, mode):
        self.path = path
        self.mode = mode

    def serialize(self):
        b = bytearray()
        b.extend(write_string(self.path))
        b.extend(struct.pack("!i", self.mode))
        return b

    @classmethod
    def deserialize(cls, buffer, offset):
        return None


def add_recursive_watch(client, path):
    result = client.handler.async_result()
    client._call(AddWatch(path, PERSISTENT_RECURSIVE), result)
    result.get(timeout=CALL_TIMEOUT_S)


def record_wire_events(client):
    """A Recorder of every watch event the server sends `client`, as (type, path), taken
    before kazoo looks for a registered watcher."""
    recorder = Recorder()
    connection = client._connection
    original = connection._read_watch_event

    def read_watch_event(buffer, offset):
        # WatcherEvent: int type, int state, ustring path.
        event_type, _state = struct.unpack_from("!ii", buffer, offset)
        (length,) = struct.unpack_from("!i", buffer, offset + 8)
        path = bytes(buffer[offset + 12:offset + 12 + length]).decode()
        recorder((event_type, path))
        return original(buffer, offset)

    connection._read_watch_event = read_watch_event
    return recorder


def watch_acl(hosts):
    step("owner sets up /w (open) and a watcher with no credentials")
    owner = connect(hosts, auth_data=[("digest", "owner:owner-pw")])
    secret_acl = [make_digest_acl("owner", "owner-pw", all=True)]
    owner.create("/w", b"", acl=OPEN_ACL_UNSAFE)
    owner.create("/w/secret", b"s0", acl=secret_acl)
    watcher = connect(hosts)
    seen = record_wire_events(watcher)
    owner_seen = record_wire_events(owner)
    add_recursive_watch(watcher, "/w")
    add_recursive_watch(owner, "/w")
    check_raises_noauth(lambda: watcher.get("/w/secret"), "the watcher reading /w/secret")
    # exists is not ACL-checked in 3.8: the watcher can leave a one-shot watch on the secret.
    check(watcher.exists("/w/secret", watch=lambda e: None) is not None, "exists /w/secret")

    step("changes to secret nodes, then to an open one")
    owner.set("/w/secret", b"s1")
    owner.create("/w/secret/deeper", b"", acl=secret_acl)
    owner.create("/w/secret2", b"", acl=secret_acl)
    owner.delete("/w/secret/deeper")
    owner.delete("/w/secret")
    owner.create("/w/open", b"", acl=OPEN_ACL_UNSAFE)
    owner.set("/w/open", b"o1")
    owner.delete("/w/open")

    step("the owner heard everything, the watcher only the open node")
    expected_owner = [
        (NODE_DATA_CHANGED, "/w/secret"),
        (NODE_CREATED, "/w/secret/deeper"),
        (NODE_CREATED, "/w/secret2"),
        (NODE_DELETED, "/w/secret/deeper"),
        (NODE_DELETED, "/w/secret"),
        (NODE_CREATED, "/w/open"),
        (NODE_DATA_CHANGED, "/w/open"),
        (NODE_DELETED, "/w/open"),
    ]
    owner_seen.wait(len(expected_owner), CALL_TIMEOUT_S, "the owner's events")
    check_eq(owner_seen.calls, expected_owner, "events the owner's recursive watch got")
    expected_watcher = [
        (NODE_CREATED, "/w/open"),
        (NODE_DATA_CHANGED, "/w/open"),
        (NODE_DELETED, "/w/open"),
    ]
    seen.wait(len(expected_watcher), CALL_TIMEOUT_S, "the watcher's events")
    # A round trip after the last event: anything else sent before it has arrived.
    watcher.exists("/")
    check_eq(seen.calls, expected_watcher, "events the unauthenticated watcher got")
    close(owner, watcher)


def check_raises_noauth(call, what):
    try:
        call()
    except NoAuthError:
        return
    raise AssertionError(f"{what} succeeded")


def enforce(hosts, scheme):
    check_eq(scheme, "digest", "this script authenticates with digest")
    step("a session that authenticated with digest first is served")
    authed = connect(hosts, auth_data=[("digest", "u:p")])
    authed.create("/enforced", b"x")
    check_eq(authed.get("/enforced")[0], b"x", "data read by the authenticated session")

    step("an unauthenticated session's first request closes it")
    bare = KazooClient(hosts=hosts, timeout=CALL_TIMEOUT_S,
                       connection_retry={"max_tries": 0}, command_retry={"max_tries": 0})
    bare.start(timeout=CALL_TIMEOUT_S)
    try:
        bare.get("/enforced")
    except Exception as e:  # kazoo has no class for -124: it drops the connection
        print(f"refused as expected: {type(e).__name__}: {e}", flush=True)
    else:
        raise AssertionError("an unauthenticated request was served")
    bare.stop()
    bare.close()

    step("the authenticated session is still served")
    check_eq(authed.get("/enforced")[0], b"x", "data read after the refusal")
    close(authed)


def sasl_client(hosts, user, password):
    return sasl_options_client(hosts, {"mechanism": "DIGEST-MD5", "username": user,
                                       "password": password})


def sasl_options_client(hosts, sasl_options):
    return KazooClient(hosts=hosts, timeout=CALL_TIMEOUT_S,
                       connection_retry={"max_tries": 0},
                       command_retry={"max_tries": 0},
                       sasl_options=sasl_options)


# What kazoo passes for Kerberos: the service of the server's principal (the host part is
# the host of the connect string).
GSSAPI_OPTIONS = {"mechanism": "GSSAPI", "service": "zookeeper"}


def sasl_refused(hosts, user, password, what):
    sasl_options_refused(hosts, {"mechanism": "DIGEST-MD5", "username": user,
                                 "password": password}, what)


def sasl_options_refused(hosts, sasl_options, what):
    """kazoo reports CONNECTED before its SASL exchange, so start() may return: the refusal
    shows as the AUTH_FAILED state (the server's AuthFailed reply, or the dropped
    connection), after which every call fails."""
    client = sasl_options_client(hosts, sasl_options)
    states = []
    session_callback = client._session_callback

    def record_state(state):
        states.append(state)
        return session_callback(state)

    client._session_callback = record_state
    try:
        client.start(timeout=4)
    except Exception as e:  # start() stops the client once it saw no live session
        print(f"start() failed: {type(e).__name__}", flush=True)
    try:
        wait_until(lambda: KeeperState.AUTH_FAILED in states, CALL_TIMEOUT_S,
                   f"AUTH_FAILED after {what}")
        print(f"refused as expected: {what} (states {states})", flush=True)
        try:
            data = client.get("/sasl-only")
        except Exception as e:
            print(f"and calls fail: {type(e).__name__}", flush=True)
        else:
            raise AssertionError(f"{what}: read {data!r}")
    finally:
        client.stop()
        client.close()


def owns_sasl_znode(client, hosts, path, sasl_id):
    """The SASL-authenticated `client` creates `path` under ACL sasl:`sasl_id` and reads it;
    an unauthenticated client (returned, still open) cannot."""
    client.create(path, b"for " + sasl_id.encode(), acl=[make_acl("sasl", sasl_id, all=True)])
    check_eq(client.get(path)[0], b"for " + sasl_id.encode(), "data under sasl ACL")
    acl, _ = client.get_acls(path)
    check_eq([(a.id.scheme, a.id.id) for a in acl], [("sasl", sasl_id)], "the znode's ACL")

    step("an unauthenticated client cannot read the sasl znode")
    bare = connect(hosts)
    check_raises_noauth(lambda: bare.get(path), f"reading {path} without SASL")
    return bare


def sasl(hosts, user, password):
    step("DIGEST-MD5 with the right password")
    client = sasl_client(hosts, user, password)
    client.start(timeout=CALL_TIMEOUT_S)
    who = [(i.auth_scheme, i.user) for i in client.client_info()] if hasattr(
        client, "client_info") else None
    if who is not None:
        check(("sasl", user) in who, f"whoami lists sasl:{user}: {who}")
    bare = owns_sasl_znode(client, hosts, "/sasl-only", user)

    step("a wrong password and an unknown user are refused")
    sasl_refused(hosts, user, password + "-wrong", "a wrong password")
    # Not `password`: Apache 3.8.0's shared SaslServerCallbackHandler keeps the last known
    # user's name, so an unknown user sending that user's password is let in there.
    sasl_refused(hosts, user + "-unknown", "unknown-pw", "an unknown user")

    step("the server keeps serving the others")
    check_eq(client.get("/sasl-only")[0], b"for " + user.encode(), "data after the refusals")
    check(bare.exists("/") is not None, "the bare client still works")
    close(client, bare)


def gssapi(hosts, sasl_id):
    step(f"GSSAPI with a Kerberos ticket, expecting sasl:{sasl_id}")
    client = sasl_options_client(hosts, dict(GSSAPI_OPTIONS))
    client.start(timeout=CALL_TIMEOUT_S)
    bare = owns_sasl_znode(client, hosts, "/kerberos-only", sasl_id)
    close(client, bare)


def gssapi_refused(hosts):
    step("a GSSAPI exchange the server refuses")
    sasl_options_refused(hosts, dict(GSSAPI_OPTIONS), "a ticket the server cannot accept")
    step("the server keeps serving the others")
    bare = connect(hosts)
    check(bare.exists("/") is not None, "a bare client is served")
    close(bare)


def main(hosts, mode, *args):
    {"watch-acl": watch_acl, "enforce": enforce, "sasl": sasl, "gssapi": gssapi,
     "gssapi-refused": gssapi_refused}[mode](hosts, *args)


if __name__ == "__main__":
    run(main, 120)
