"""Shared helpers for the kazoo compatibility scripts in this directory.

Every script takes the server's connect string (``host:port``) as its first argument and
runs under a hard total deadline (SIGALRM), so a server that stops answering makes the
script fail with a clear message instead of hanging the test run. Each blocking kazoo
call in the scripts also carries its own timeout. Checks raise ``AssertionError`` with
the expected and actual values; the script exits non-zero on the first failure.
"""

import logging
import os
import signal
import sys
import threading
import time
import traceback

from kazoo.client import KazooClient

# Per-request timeout for kazoo calls that accept one, in seconds.
CALL_TIMEOUT_S = 10.0
# Session timeout asked of the server, in seconds.
SESSION_TIMEOUT_S = 10.0

_step = "start-up"


def step(name):
    """Names the part of the script now running (printed on failure and as progress)."""
    global _step
    _step = name
    print(f"--- {name}", flush=True)


def check(cond, what):
    """Asserts `cond`; `what` says what was expected."""
    if not cond:
        raise AssertionError(what)


def check_eq(actual, expected, what):
    """Asserts `actual == expected`, printing both on failure."""
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def check_raises(exc_type, call, what):
    """Asserts that `call()` raises `exc_type`; `what` names the call that must not succeed."""
    try:
        call()
    except exc_type:
        return
    raise AssertionError(f"{what} succeeded")


def wait_until(pred, timeout_s, what):
    """Polls `pred` every 20 ms until it is true; fails after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")


def wait_event(event, timeout_s, what):
    """Waits for a threading.Event with a bound."""
    if not event.wait(timeout_s):
        raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")


def connect(hosts, **kwargs):
    """A started KazooClient with bounded connection attempts and request retries."""
    client = KazooClient(
        hosts=hosts,
        timeout=SESSION_TIMEOUT_S,
        connection_retry={"max_tries": 3, "delay": 0.2, "max_delay": 1.0},
        command_retry={"max_tries": 3, "delay": 0.2, "max_delay": 1.0},
        **kwargs,
    )
    client.start(timeout=CALL_TIMEOUT_S)
    return client


def close(*clients):
    """Stops and closes each KazooClient, in order."""
    for client in clients:
        client.stop()
        client.close()


def start_thread(target, *args):
    """A daemon thread (so a stuck recipe never keeps the process alive past the deadline)."""
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def in_background(call):
    """Runs `call()` in a daemon thread; returns a threading.Event set once it returned and
    a list that then holds its result."""
    done = threading.Event()
    result = []

    def target():
        result.append(call())
        done.set()

    start_thread(target)
    return done, result


class Recorder:
    """A callback for kazoo's event threads that records what it is called with; the main
    thread waits for the n-th call with `reached` or `wait`."""

    def __init__(self):
        self.calls = []
        self._cv = threading.Condition()

    def __call__(self, item):
        with self._cv:
            self.calls.append(item)
            self._cv.notify_all()

    def reached(self, n, timeout_s=CALL_TIMEOUT_S):
        """Whether at least `n` calls were recorded within `timeout_s`."""
        with self._cv:
            return self._cv.wait_for(lambda: len(self.calls) >= n, timeout_s)

    def wait(self, n, timeout_s, what):
        """Waits for the `n`-th call; fails after `timeout_s` seconds."""
        if not self.reached(n, timeout_s):
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")


def run(main, total_deadline_s):
    """Runs `main(hosts)` with sys.argv[1] as hosts under a hard deadline; exits 0 or 1."""
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} HOST:PORT [args...]", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    def on_alarm(_signum, _frame):
        print(f"FAIL: total deadline of {total_deadline_s}s exceeded during step '{_step}'",
              flush=True)
        # os._exit: kazoo's threads may hold locks that a normal exit would wait on.
        os._exit(1)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(total_deadline_s)
    try:
        main(sys.argv[1], *sys.argv[2:])
    except Exception:
        print(f"FAIL in step '{_step}':", flush=True)
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        os._exit(1)
    print("OK", flush=True)
    # Skip interpreter shutdown: lingering kazoo worker threads must not delay the exit.
    os._exit(0)
