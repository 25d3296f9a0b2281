#!/usr/bin/env bash
# Builds the Debian package (cargo-deb), installs it with dpkg, runs the installed binary
# (--version; a start as the package's user on a spare port with the package's own zoo.cfg
# otherwise unchanged, `ruok` answered, SIGTERM, exit 0) and purges the package again.
#
# Usage: packaging/check-deb.sh [--release]
#   default:   packages the debug binary the test suite builds (no release build: CI time);
#   --release: builds and packages the release binary (what a real package ships).
# Needs root (dpkg -i), cargo-deb (`cargo install --locked cargo-deb --version 3.8.0`) and nc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile=dev
if [[ ${1:-} == --release ]]; then
    profile=release
fi
target_dir=${CARGO_TARGET_DIR:-target}

if [[ $profile == release ]]; then
    cargo deb -p ringkeeper-server --features gssapi --output "$target_dir/debian/"
else
    # The test suite's own build (the same command as its harness: a no-op after the suite).
    cargo build -q --workspace --bins --tests ${RINGKEEPER_CARGO_FEATURES:+--features "$RINGKEEPER_CARGO_FEATURES"}
    cargo deb -p ringkeeper-server --no-build --profile dev --output "$target_dir/debian/"
fi
deb=$(ls -t "$target_dir"/debian/ringkeeper_*.deb | head -1)
echo "built $deb ($(du -h "$deb" | cut -f1))"

work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    dpkg --purge ringkeeper >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

dpkg -i "$deb"
dpkg -L ringkeeper | grep -qx /usr/bin/ringkeeper
test -f /lib/systemd/system/ringkeeper.service || test -f /usr/lib/systemd/system/ringkeeper.service
getent passwd ringkeeper >/dev/null || { echo "FAIL: no ringkeeper user"; exit 1; }
[[ $(stat -c %U /var/lib/ringkeeper) == ringkeeper ]] || { echo "FAIL: /var/lib/ringkeeper not owned by ringkeeper"; exit 1; }

/usr/bin/ringkeeper --version

# The installed zoo.cfg, with only the ports moved to spare ones (2181 and 8080 may be taken).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s/^clientPort=.*/clientPort=$port/" -e "s/^admin.enableServer=.*//" /etc/ringkeeper/zoo.cfg >"$work/zoo.cfg"
echo "admin.enableServer=false" >>"$work/zoo.cfg"
chmod 644 "$work/zoo.cfg"
chmod 755 "$work"
setpriv --reuid=ringkeeper --regid=ringkeeper --init-groups /usr/bin/ringkeeper "$work/zoo.cfg" >"$work/server.log" 2>&1 &
pid=$!
answer=
for _ in $(seq 1 100); do
    answer=$(printf ruok | nc -q 1 127.0.0.1 "$port" 2>/dev/null || true)
    [[ $answer == imok ]] && break
    sleep 0.1
done
if [[ $answer != imok ]]; then
    echo "FAIL: the installed ringkeeper did not answer ruok on port $port"
    cat "$work/server.log"
    exit 1
fi
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [[ $rc -ne 0 ]]; then
    echo "FAIL: exit $rc after SIGTERM"
    cat "$work/server.log"
    exit 1
fi
[[ -n $(ls -A /var/lib/ringkeeper) ]] || { echo "FAIL: nothing written to the dataDir /var/lib/ringkeeper"; exit 1; }
echo "installed package OK: ruok answered on $port as user ringkeeper, clean stop"
