#!/usr/bin/env python3
"""kazoo's dynamic reconfig API, one call per run (tests/tests/reconfig.rs drives the steps).

Usage:
  kazoo_reconfig.py HOSTS config
      prints the data of /zookeeper/config, then "mzxid=<hex>" and "watch=<event>" lines:
      a data watch is left on the node, and the event it gets within 1 s (or "none").
  kazoo_reconfig.py HOSTS reconfig AUTH JOINING LEAVING NEW_MEMBERS FROM_CONFIG
      runs client.reconfig(...) ("-" for an argument not given; AUTH is a digest
      user:password or "-"); prints "ok" and the new configuration, or "error <kazoo
      exception class>".
  kazoo_reconfig.py HOSTS write PATH DATA
      creates PATH with DATA (or sets it if it exists); prints "ok".
  kazoo_reconfig.py HOSTS read PATH
      prints the data of PATH after a sync.
"""

import sys
import threading

from kazoo.exceptions import KazooException, NodeExistsError

from compat_common import close, connect, run


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
    elif command == "read":
        (path,) = args
        client = connect(hosts)
        client.sync(path)
        print(client.get(path)[0].decode())
        close(client)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    run(main, 60)
