#!/usr/bin/env bash
# Apache's zkCli.sh (Java client) authenticating with SASL DIGEST-MD5.
#
# Usage: zkcli_sasl.sh HOST:PORT USER PASSWORD
#
# The server has the SASL provider and a JAAS Server section with user_USER="PASSWORD".
# The Java client reads its credentials from a JAAS Client section named by
# CLIENT_JVMFLAGS=-Djava.security.auth.login.config=FILE, as Apache documents it.
#   1. the right password: whoami shows sasl USER; a znode with ACL sasl:USER:cdrwa is
#      created, read back and its ACL shown;
#   2. a wrong password: the server refuses the exchange (AuthFailed) and the znode's data
#      is never printed.
# Env: ZKCLI (default /usr/share/zookeeper/bin/zkCli.sh), ZKCLI_TIMEOUT_S (default 60).
set -euo pipefail

hostport=${1:?usage: zkcli_sasl.sh HOST:PORT USER PASSWORD}
user=${2:?user}
password=${3:?password}
zkcli=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
call_timeout_s=${ZKCLI_TIMEOUT_S:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[[ -x $zkcli ]] || { echo "FAIL: $zkcli not found (apt-get install zookeeper)"; exit 1; }

# client_jaas NAME PASSWORD: a JAAS file with a Client section for USER.
client_jaas() {
    cat >"$work/$1.jaas" <<EOF
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="$user"
    password="$2";
};
EOF
}

# shellcheck source=zkcli_session.sh
source "$(dirname "${BASH_SOURCE[0]}")/zkcli_session.sh"

# run_session NAME: one zkCli session with $work/NAME.jaas as its JAAS file; a refused
# exchange is an expected outcome, so zkCli's exit status is not checked.
run_session() {
    CLIENT_JVMFLAGS="-Djava.security.auth.login.config=$work/$1.jaas" zkcli_session "$1" || true
}

expect_line() {
    grep -Fxq -- "$2" "$1" || { echo "FAIL: expected line not in $(basename "$1"): $2"; exit 1; }
}

client_jaas good "$password"
cat >"$work/good.in" <<EOF
whoami
create /zk-sasl sasl-data sasl:$user:cdrwa
get /zk-sasl
getAcl /zk-sasl
quit
EOF
run_session good
expect_line "$work/good.out" "sasl: $user"
expect_line "$work/good.out" "sasl-data"
expect_line "$work/good.out" "'sasl,'$user"
expect_line "$work/good.out" ": cdrwa"
grep -q "SaslAuthenticated" "$work/good.out" "$work/good.err" ||
    { echo "FAIL: the client never reported SaslAuthenticated"; exit 1; }

client_jaas bad "$password-wrong"
cat >"$work/bad.in" <<EOF
get /zk-sasl
quit
EOF
run_session bad
if grep -Fxq "sasl-data" "$work/bad.out"; then
    echo "FAIL: a client with a wrong password read the sasl-protected node"
    exit 1
fi
grep -q "AuthFailed" "$work/bad.out" "$work/bad.err" ||
    { echo "FAIL: the wrong password was not answered AuthFailed"; exit 1; }

echo OK
