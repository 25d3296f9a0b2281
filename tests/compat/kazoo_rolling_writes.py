#!/usr/bin/env python3
"""A write workload that runs through a rolling replacement of an ensemble's members (issue #16).

Usage: kazoo_rolling_writes.py HOSTS DIR

Two sessions on the ensemble (HOSTS names every member; kazoo moves to another member when
its member stops):
- a keeper session that only stays connected (kazoo's pings) and owns the ephemeral
  /rolling/alive: it must never expire, whatever member stops, is replaced or is killed;
- a writer session that creates /rolling/w00000000, /rolling/w00000001, ... one at a time. A
  create that fails (connection lost while its member stops, no leader while one is
  elected) is tried again with the same name until it succeeds; NodeExists on a retry means
  the lost attempt had been applied, and counts as the acknowledgement. Every acknowledged
  number and the wall-clock time of its acknowledgement go to DIR/acks ("N UNIX_SECONDS" a
  line, flushed), so the caller can find the longest pause in writes at each step.

DIR/ready appears once both sessions are up (it holds the keeper session's id). The
workload stops when DIR/stop appears; it then checks that neither session expired (no LOST
state, the same session ids) and that /rolling/alive is still owned by the keeper session,
and prints "acked N writes".
"""

import os
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState

from compat_common import check, check_eq, close, run, step

# Long enough that a client whose member stops finds another member in time, short enough
# that a session nobody keeps alive would expire during the test.
SESSION_TIMEOUT_S = 15.0
# Bound on one create attempt (one is retried until it succeeds).
ATTEMPT_TIMEOUT_S = 5.0


class Session:
    """A kazoo session that records whether it was ever lost (expired)."""

    def __init__(self, hosts, name):
        self.name = name
        self.lost = threading.Event()
        self.client = KazooClient(
            hosts=hosts,
            timeout=SESSION_TIMEOUT_S,
            # Reconnect at once to the next member, forever: the workload outlives every step.
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1, "max_delay": 0.2},
        )
        self.client.add_listener(self._on_state)
        self.client.start(timeout=30)
        self.session_id = self.client.client_id[0]

    def _on_state(self, state):
        if state == KazooState.LOST:
            self.lost.set()

    def check_kept(self):
        check(not self.lost.is_set(), f"the {self.name} session {self.session_id:#x} expired")
        check_eq(self.client.client_id[0], self.session_id, f"the {self.name} session id")


def create_until_acknowledged(writer, path, data):
    """Creates `path`, trying again until the ensemble acknowledges it."""
    while True:
        try:
            writer.create_async(path, data).get(timeout=ATTEMPT_TIMEOUT_S)
            return
        except NodeExistsError:
            return  # a lost attempt was applied
        except (KazooException, KazooTimeoutError):
            time.sleep(0.01)


def main(hosts, directory):
    step("sessions")
    keeper = Session(hosts, "keeper")
    keeper.client.ensure_path("/rolling")
    keeper.client.create("/rolling/alive", b"kept alive", ephemeral=True)
    writer = Session(hosts, "writer")
    with open(os.path.join(directory, "ready.tmp"), "w") as f:
        f.write(f"{keeper.session_id:#x}\n")
    os.rename(os.path.join(directory, "ready.tmp"), os.path.join(directory, "ready"))

    step("writes until told to stop")
    stop = os.path.join(directory, "stop")
    acked = 0
    with open(os.path.join(directory, "acks"), "a") as acks:
        while not os.path.exists(stop):
            create_until_acknowledged(writer.client, f"/rolling/w{acked:08d}", b"%d" % acked)
            acks.write(f"{acked} {time.time():.6f}\n")
            acks.flush()
            acked += 1

    step("sessions kept")
    keeper.check_kept()
    writer.check_kept()
    _, stat = keeper.client.get("/rolling/alive")
    check_eq(stat.ephemeralOwner, keeper.session_id, "the owner of /rolling/alive")
    close(writer.client)
    close(keeper.client)
    print(f"acked {acked} writes", flush=True)


if __name__ == "__main__":
    run(main, total_deadline_s=1800)
