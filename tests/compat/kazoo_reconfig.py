#!/usr/bin/env python3
"""kazoo's dynamic reconfig API, one call per run (tests/tests/reconfig.rs drives the steps).

Usage:
  kazoo_reconfig.py HOSTS config
      prints the data of /zookeeper/config, then its Stat's "mzxid=<hex>", "czxid=<hex>",
      "dataVersion=<n>" and "aclVersion=<n>" lines and a "watch=<event>" line: a data watch
      is left on the node, and the event it gets within 1 s (or "none").
  kazoo_reconfig.py HOSTS reconfig AUTH JOINING LEAVING NEW_MEMBERS FROM_CONFIG
      runs client.reconfig(...) ("-" for an argument not given; AUTH is a digest
      user:password or "-"); prints "ok" and the new configuration, or "error <kazoo
      exception class>".
  kazoo_reconfig.py HOSTS write PATH DATA
      creates PATH with DATA (or sets it if it exists); prints "ok".
  kazoo_reconfig.py HOSTS read PATH
      prints the data of PATH after a sync.
  kazoo_reconfig.py HOSTS children PATH
      prints the children of PATH after a sync, one per line.
  kazoo_reconfig.py HOSTS writer PARENT STOP_FILE
      creates PARENT/n-<i> for i = 0, 1, ... one at a time until STOP_FILE exists, printing
      "acked <i>" for each create the server answered OK (a failed one, e.g. while its
      server leaves the ensemble, is printed as "failed <i>" and not retried: kazoo moves
      to another server of HOSTS).
"""

import os
import sys
import threading
import time

from kazoo.exceptions import KazooException, NodeExistsError

from compat_common import CALL_TIMEOUT_S, close, connect, run


def optional(arg):
    return None if arg == "-" else arg


def main(hosts, command, *args):
    if command == "reconfig":
        auth, joining, leaving, new_members, from_config = args
        auth_data = [("digest", auth)] if auth != "-" else None
        client = connect(hosts, auth_data=auth_data) if auth_data else connect(hosts)
        try:
            data, _stat = client.reconfig(
                joining=optional(joining),
                leaving=optional(leaving),
                new_members=optional(new_members),
                from_config=int(from_config, 16) if from_config != "-" else -1,
            )
            print("ok")
            print(data.decode())
        except KazooException as e:
            print(f"error {type(e).__name__}")
        close(client)
    elif command == "config":
        client = connect(hosts)
        fired = threading.Event()
        events = []

        def watcher(event):
            events.append(event.type)
            fired.set()

        data, stat = client.get("/zookeeper/config", watch=watcher)
        print(data.decode())
        print(f"mzxid={stat.mzxid:x}")
        print(f"czxid={stat.czxid:x}")
        print(f"dataVersion={stat.version}")
        print(f"aclVersion={stat.aversion}")
        fired.wait(float(args[0]) if args else 0.0)
        print(f"watch={events[0] if events else 'none'}")
        close(client)
    elif command == "write":
        path, value = args
        client = connect(hosts)
        try:
            client.create(path, value.encode())
        except NodeExistsError:
            client.set(path, value.encode())
        print("ok")
        close(client)
    elif command == "children":
        (path,) = args
        client = connect(hosts)
        client.sync(path)
        for child in sorted(client.get_children(path)):
            print(child)
        close(client)
    elif command == "writer":
        parent, stop_file = args
        client = connect(hosts)
        i = 0
        while not os.path.exists(stop_file):
            try:
                client.create_async(f"{parent}/n-{i}", str(i).encode()).get(timeout=CALL_TIMEOUT_S)
                print(f"acked {i}", flush=True)
            except Exception as e:  # kazoo's errors and its handler's timeout alike
                print(f"failed {i} {type(e).__name__}", flush=True)
                time.sleep(0.1)
            i += 1
        close(client)
    elif command == "read":
        (path,) = args
        client = connect(hosts)
        client.sync(path)
        print(client.get(path)[0].decode())
        close(client)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    # The writer runs as long as the test reconfigures; every other call is short.
    run(main, 600 if "writer" in sys.argv else 60)
