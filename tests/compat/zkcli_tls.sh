#!/usr/bin/env bash
# Apache's zkCli.sh (Java client, Netty socket) over TLS with a client certificate.
#
# Usage: zkcli_tls.sh HOST:PORT CERT_DIR SUBJECT_DN
#
# CERT_DIR holds client.pem (the client's certificate and unencrypted key, a PEM key store
# as Apache reads it) and ca.pem (the CA that signed the server's certificate). zkCli runs
# with -Dzookeeper.client.secure=true, ClientCnxnSocketNetty and the ssl.* properties in
# CLIENT_JVMFLAGS, as Apache documents; its `whoami` must list `x509: SUBJECT_DN` (the
# subject as Java's X500Principal.getName() prints it), and create/get/delete must work.
# Env: ZKCLI (default /usr/share/zookeeper/bin/zkCli.sh), ZKCLI_TIMEOUT_S (default 60).
set -euo pipefail

hostport=${1:?usage: zkcli_tls.sh HOST:PORT CERT_DIR SUBJECT_DN}
cert_dir=${2:?cert dir}
dn=${3:?subject DN}
zkcli=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[[ -x $zkcli ]] || { echo "FAIL: $zkcli not found (apt-get install zookeeper)"; exit 1; }

# Debian's zookeeper.jar names netty-buffer/common/handler/transport in its Class-Path but
# not netty-resolver and netty-codec, which ClientCnxnSocketNetty needs: zkCli's class path
# (set by zkEnv.sh) is given again with them (the java launcher takes the last -cp).
netty_cp="/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar"
export CLIENT_JVMFLAGS="-cp $netty_cp -Dzookeeper.client.secure=true \
 -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
 -Dzookeeper.ssl.keyStore.location=$cert_dir/client.pem -Dzookeeper.ssl.keyStore.type=PEM \
 -Dzookeeper.ssl.trustStore.location=$cert_dir/ca.pem -Dzookeeper.ssl.trustStore.type=PEM"

cat >"$work/in" <<'EOF'
whoami
create /zkcli-tls hello
get /zkcli-tls
delete /zkcli-tls
quit
EOF
rc=0
timeout -k 5 "${ZKCLI_TIMEOUT_S:-60}" "$zkcli" -server "$hostport" \
    <"$work/in" >"$work/out" 2>"$work/err" || rc=$?
echo "=== zkCli exit $rc; stdout:"
cat "$work/out"
echo "=== stderr:"
grep -v -e '^SLF4J:' "$work/err" || true
[[ $rc -eq 0 ]] || { echo "FAIL: zkCli exited with $rc"; exit 1; }

for want in "Auth scheme: User" "x509: $dn" "hello"; do
    grep -Fxq -- "$want" "$work/out" || { echo "FAIL: no line '$want' in zkCli's output"; exit 1; }
done
grep -Fxq -- "Created /zkcli-tls" "$work/err" "$work/out" ||
    { echo "FAIL: zkCli did not report the create"; exit 1; }
echo OK
