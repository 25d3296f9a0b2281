#!/usr/bin/env bash
# Apache's zkCli.sh (Java client) against a ZooKeeper-compatible server.
#
# Usage: zkcli.sh HOST:PORT
#
# Two zkCli sessions, each fed a batch of commands on stdin (a JVM start is ~0.5-1 s, so
# commands are batched rather than run one per invocation):
#   1. create (plain, -e, -s), ls, ls -s, get -s, set, set -v (stale), stat, delete (ok,
#      non-empty, missing), deleteall, addauth digest, setAcl/getAcl (auth:: and world:),
#      and a write refused by an ACL;
#   2. a fresh session without credentials: the digest-protected node is refused, the
#      ephemeral of session 1 is gone, the world-readable node is readable; cleanup.
# zkCli prints command results on stdout and "Created ..."/error messages on stderr; each
# stream keeps its own order, so each is checked in order against exact lines.
# Env: ZKCLI (default /usr/share/zookeeper/bin/zkCli.sh), ZKCLI_TIMEOUT_S (default 60).
set -euo pipefail

hostport=${1:?usage: zkcli.sh HOST:PORT}
zkcli=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
call_timeout_s=${ZKCLI_TIMEOUT_S:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[[ -x $zkcli ]] || { echo "FAIL: $zkcli not found (apt-get install zookeeper)"; exit 1; }

# shellcheck source=zkcli_session.sh
source "$(dirname "${BASH_SOURCE[0]}")/zkcli_session.sh"

# run_session NAME: one zkCli session (zkcli_session.sh); its last command must succeed.
run_session() {
    local name=$1 rc=0
    zkcli_session "$name" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "FAIL: zkCli session '$name' exited with $rc (its last command failed)"
        exit 1
    fi
}

# expect_in_order FILE LINE...: each LINE occurs as a whole line in FILE, in this order.
expect_in_order() {
    local file=$1
    shift
    local line_no=0 want found
    for want in "$@"; do
        found=$(awk -v start="$line_no" -v want="$want" \
            'NR > start && $0 == want { print NR; exit }' "$file")
        if [[ -z $found ]]; then
            echo "FAIL: expected line not found in $(basename "$file") after line $line_no:"
            echo "    $want"
            exit 1
        fi
        line_no=$found
    done
}

# expect_match FILE REGEX WHAT: some line of FILE matches the extended REGEX.
expect_match() {
    if ! grep -Eq -- "$2" "$1"; then
        echo "FAIL: $3 (no line of $(basename "$1") matches /$2/)"
        exit 1
    fi
}

digest=$(python3 -c 'import base64, hashlib; print(base64.b64encode(hashlib.sha1(b"alice:secret").digest()).decode())')

cat >"$work/one.in" <<'EOF'
create /zc v0
create -e /zc/eph e
get -s /zc/eph
create -s /zc/seq- s
create -s /zc/seq- s
ls /zc
ls -s /zc
get -s /zc
set /zc v1
set -v 0 /zc stale
stat /zc
delete /zc
delete /zc/seq-0000000001
delete /nope
get /nope
create /zc/tree t
create /zc/tree/a a
create /zc/tree/a/b b
deleteall /zc/tree
ls /zc
addauth digest alice:secret
create /zacl secret-data
setAcl /zacl auth::cdrwa
getAcl /zacl
get /zacl
create /zopen open-data
setAcl /zopen world:anyone:r
getAcl /zopen
set /zopen refused
ls /zopen
quit
EOF
run_session one

expect_in_order "$work/one.out" \
    "e" \
    "dataVersion = 0" \
    "dataLength = 1" \
    "[eph, seq-0000000001, seq-0000000002]" \
    "[eph, seq-0000000001, seq-0000000002]" \
    "cversion = 3" "dataVersion = 0" "dataLength = 2" "numChildren = 3" \
    "v0" \
    "cversion = 3" "dataVersion = 0" "aclVersion = 0" "ephemeralOwner = 0x0" \
    "dataLength = 2" "numChildren = 3" \
    "dataVersion = 1" "dataLength = 2" "numChildren = 3" \
    "[eph, seq-0000000002]" \
    "'digest,'alice:$digest" \
    ": cdrwa" \
    "secret-data" \
    "'world,'anyone" \
    ": r" \
    "[]"
expect_match "$work/one.out" '^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*$' \
    "the ephemeral node has a non-zero ephemeralOwner"
expect_match "$work/one.out" '^cZxid = 0x[0-9a-f]+$' "cZxid printed as hex"
expect_match "$work/one.out" '^mZxid = 0x[0-9a-f]+$' "mZxid printed as hex"
expect_match "$work/one.out" '^WatchedEvent state:SyncConnected type:None path:null$' \
    "connected event"
# The stat after `set` must show a newer mZxid than cZxid.
awk '/^cZxid = /{c=$3} /^mZxid = /{m=$3} /^dataVersion = 1$/{ if (c == m) bad=1; seen=1 }
     END { exit (seen && !bad) ? 0 : 1 }' "$work/one.out" ||
    { echo "FAIL: mZxid did not move past cZxid after set"; exit 1; }

expect_in_order "$work/one.err.clean" \
    "Created /zc" \
    "Created /zc/eph" \
    "Created /zc/seq-0000000001" \
    "Created /zc/seq-0000000002" \
    "version No is not valid : /zc" \
    "Node not empty: /zc" \
    "Node does not exist: /nope" \
    "Node does not exist: /nope" \
    "Created /zc/tree" \
    "Created /zc/tree/a" \
    "Created /zc/tree/a/b" \
    "Created /zacl" \
    "Created /zopen" \
    "Insufficient permission : /zopen"

cat >"$work/two.in" <<'EOF'
get /zacl
getAcl /zacl
ls /zc
get /zopen
deleteall /zc
delete /zopen
delete /zacl
ls /
quit
EOF
run_session two

expect_in_order "$work/two.out" \
    "[seq-0000000002]" \
    "open-data" \
    "[zookeeper]"
expect_in_order "$work/two.err.clean" \
    "Insufficient permission : /zacl" \
    "Insufficient permission : /zacl"
if grep -Fxq "secret-data" "$work/two.out"; then
    echo "FAIL: a session without credentials read the digest-protected node"
    exit 1
fi

echo OK
