#!/usr/bin/env bash
# The ZooKeeper C client's shell, cli_mt, against a ZooKeeper-compatible server.
#
# Usage: cli_mt.sh HOST:PORT
#
# cli_mt reads commands from stdin and runs each asynchronously; if stdin ends it quits
# before replies arrive. So commands go through a FIFO one at a time: `send` writes one
# command, then `wait_for` polls the output (cli_mt prints everything on stderr) for the
# reply, at most wait_s (10) seconds each, and `expect` checks more lines of that reply. Covers
# create (plain, +e, +s, existing), set, get, ls, ls2, exists (prints only errors),
# wexists + the CREATED watch event, sync, delete (non-empty, missing, ok), and, from a
# second session, that the first session's ephemeral node went away with it. Error
# replies are checked by code (-101 ZNONODE, -110 ZNODEEXISTS, -111 ZNOTEMPTY).
# Env: CLI_MT (default: /usr/lib/zookeeper/bin/cli_mt, else `cli_mt` on PATH).
set -euo pipefail

hostport=${1:?usage: cli_mt.sh HOST:PORT}
cli_mt=${CLI_MT:-/usr/lib/zookeeper/bin/cli_mt}
[[ -x $cli_mt ]] || cli_mt=$(command -v cli_mt || true)
[[ -n $cli_mt && -x $cli_mt ]] ||
    { echo "FAIL: cli_mt not found (apt-get install zookeeper-bin)"; exit 1; }
session_timeout_s=60
wait_s=10

work=$(mktemp -d)
cli_pid=""
cleanup() {
    exec 3>&- 2>/dev/null || true
    if [[ -n $cli_pid ]]; then kill "$cli_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

log=""
mark=0

# start_session NAME: runs cli_mt reading $work/NAME.fifo, output to $work/NAME.log.
start_session() {
    log="$work/$1.log"
    mkfifo "$work/$1.fifo"
    : >"$log"
    timeout -k 5 "$session_timeout_s" "$cli_mt" "$hostport" <"$work/$1.fifo" >"$log" 2>&1 &
    cli_pid=$!
    exec 3>"$work/$1.fifo"
    mark=0
    wait_for '^Got a new session id: 0x[0-9a-f]+$' "session established"
}

# end_session: sends quit, waits for cli_mt to exit, prints its output.
end_session() {
    echo quit >&3
    exec 3>&-
    local rc=0
    wait "$cli_pid" || rc=$?
    cli_pid=""
    echo "=== cli_mt session $(basename "$log" .log): exit $rc"
    cat "$log"
    [[ $rc -eq 0 ]] || { echo "FAIL: cli_mt exited with $rc"; exit 1; }
}

fail() {
    echo "FAIL: $*"
    echo "=== cli_mt output so far:"
    cat "$log"
    exit 1
}

# since_mark: the output printed since the last `send`.
since_mark() { tail -n "+$((mark + 1))" "$log"; }

send() {
    mark=$(wc -l <"$log")
    echo ">>> $1"
    echo "$1" >&3
}

# wait_for REGEX WHAT: a line printed since the last send matches REGEX within wait_s.
wait_for() {
    local deadline=$((SECONDS + wait_s))
    while ((SECONDS < deadline)); do
        if since_mark | grep -Eq -- "$1"; then return 0; fi
        if [[ -n $cli_pid ]] && ! kill -0 "$cli_pid" 2>/dev/null; then
            fail "cli_mt exited while waiting for: $2"
        fi
        sleep 0.05
    done
    fail "no line matching /$1/ within ${wait_s}s: $2"
}

# expect REGEX WHAT: a line printed since the last send matches REGEX (no waiting).
expect() {
    since_mark | grep -Eq -- "$1" || fail "no line matching /$1/: $2"
}

# expect_not REGEX WHAT: no line printed since the last send matches REGEX.
expect_not() {
    if since_mark | grep -Eq -- "$1"; then fail "unexpected line matching /$1/: $2"; fi
}

start_session one
# The hex digits after "0x" (the last grep cannot match across the "x").
session_hex=$(grep -Eo '^Got a new session id: 0x[0-9a-f]+$' "$log" | grep -Eo '[0-9a-f]+$')
echo "session id: $session_hex"

send "create /cm"
wait_for '^\[/cm\]: rc = 0$' "create /cm"
expect $'^\tname = /cm$' "create returns the path"

send "create /cm"
wait_for '^\[/cm\]: rc = -110$' "second create of /cm is ZNODEEXISTS"

send "set /cm hello"
wait_for $'^\tephemeralOwner = 0$' "set reply Stat"
expect '^/cm: rc = 0 Stat:$' "set succeeds"
expect $'^\tversion=1\taversion=0$' "version 1 after one set"

send "get /cm"
wait_for $'^\tephemeralOwner = 0$' "get reply Stat"
expect '^/cm: rc = 0$' "get succeeds"
expect '^ value_len = 5$' "value length"
expect '^hello$' "value"
expect $'^\tversion=1\taversion=0$' "get Stat version"
czxid=$(since_mark | grep -Eo $'^\tczxid=[0-9a-f]+$' | cut -d= -f2)
mzxid=$(since_mark | grep -Eo $'^\tmzxid=[0-9a-f]+$' | cut -d= -f2)
[[ -n $czxid && -n $mzxid ]] || fail "czxid/mzxid in get Stat"
((16#$mzxid > 16#$czxid)) || fail "mzxid ($mzxid) > czxid ($czxid) after set"

send "create /cm/a"
wait_for '^\[/cm/a\]: rc = 0$' "create /cm/a"

send "create +e /cm/e"
wait_for '^\[/cm/e\]: rc = 0$' "create ephemeral /cm/e"

# `exists` prints nothing when the node exists (only errors), so read the Stat with `get`.
send "get /cm/e"
wait_for $'^\tephemeralOwner = ' "get Stat of the ephemeral"
expect '^new$' "cli_mt creates nodes with the data \"new\""
expect "^"$'\t'"ephemeralOwner = $session_hex\$" "ephemeralOwner is this session"

send "create +s /cm/s-"
wait_for $'^\tname = /cm/s-[0-9]{10}$' "create sequential"
expect $'^\tname = /cm/s-0000000002$' "sequence number = parent's cversion (2 creates before)"

send "ls /cm"
wait_for '^/cm: rc = 0$' "ls /cm"
wait_for '^time = ' "ls /cm finished"
for child in a e s-0000000002; do
    wait_for "^"$'\t'"$child\$" "ls lists $child"
done
[[ $(since_mark | grep -c $'^\t') -eq 3 ]] || fail "ls /cm lists exactly 3 children"

send "ls2 /cm"
wait_for $'^\tephemeralOwner = 0$' "ls2 Stat"
for child in a e s-0000000002; do expect "^"$'\t'"$child\$" "ls2 lists $child"; done

send "ls /nope"
wait_for '^/nope: rc = -101$' "ls of a missing node is ZNONODE"

send "get /nope"
wait_for '^/nope: rc = -101$' "get of a missing node is ZNONODE"

send "exists /nope"
wait_for '^Error -101 for /nope$' "exists of a missing node"

send "wexists /cm/w"
wait_for '^Error -101 for /cm/w$' "wexists of a missing node"
send "create /cm/w"
wait_for '^Watcher CREATED_EVENT state = CONNECTED_STATE for path /cm/w$' \
    "exists watch fires CREATED for /cm/w"
wait_for '^\[/cm/w\]: rc = 0$' "create /cm/w"

send "sync /cm"
wait_for '^\[/cm\]: rc = 0$' "sync"

send "delete /cm"
wait_for '^/cm: rc = -111$' "delete of a non-empty node is ZNOTEMPTY"

send "delete /cm/missing"
wait_for '^/cm/missing: rc = -101$' "delete of a missing node is ZNONODE"

send "delete /cm/w"
wait_for '^/cm/w: rc = 0$' "delete /cm/w"

send "exists /cm/w"
wait_for '^Error -101 for /cm/w$' "deleted node is gone"

end_session

start_session two
send "ls /cm"
wait_for '^/cm: rc = 0$' "ls /cm from a second session"
wait_for '^time = ' "ls finished"
wait_for $'^\ts-0000000002$' "persistent sequential node still there"
expect $'^\ta$' "persistent node still there"
expect_not $'^\te$' "ephemeral of the closed session is gone"

send "get /cm"
wait_for '^hello$' "data survives the session"
end_session

echo OK
