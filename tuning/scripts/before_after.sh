#!/usr/bin/env bash
# Before/after of ringkeeper-tune on this host: one ringkeeper server with the default config
# ("default"), with the config `ringkeeper-tune apply` wrote ("tuned": one server per host, so
# pinned), with `apply --servers-per-host 2` ("tuned-float": same settings, unpinned) and with
# only the layout lines of "tuned" ("layout-only": pinned cores, default batching);
# `ringkeeper-bench write` 16x16 and 1x1 against each, ROUNDS rounds (the order of the four
# rotates every round), a fresh data directory per run. Results (JSON per run, uptime lines,
# the probe, its SVGs, the recommendation and the applied configs) go to OUT.
#
# usage: tuning/scripts/before_after.sh OUT_DIR [ROUNDS] [SECONDS] [WARMUP]
# needs: cargo build --release -p ringkeeper-server -p ringkeeper-bench -p ringkeeper-tune
set -euo pipefail
out=${1:?usage: before_after.sh OUT_DIR [ROUNDS] [SECONDS] [WARMUP]}
rounds=${2:-3}
seconds=${3:-5}
warmup=${4:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /var/tmp/rk-tune-bench.XXXXXX)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out"
# Private copies: other builds in this tree cannot swap the binaries mid-run.
for b in ringkeeper ringkeeper-bench ringkeeper-tune; do cp "$root/target/release/$b" "$work/$b"; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat > "$work/default.cfg" <<CFG
tickTime=2000
dataDir=$work/data
clientPort=$port
clientPortAddress=127.0.0.1
CFG
cp "$work/default.cfg" "$work/tuned.cfg"
cp "$work/default.cfg" "$work/tuned-float.cfg"
mkdir -p "$work/data"
echo "probe: $(uptime)" | tee "$out/uptime.txt"
"$work/ringkeeper-tune" probe --data-dir "$work/data" --out "$out/probe.json" --svg-dir "$out" > "$out/probe.txt"
"$work/ringkeeper-tune" recommend --probe "$out/probe.json" > "$out/recommend.txt"
"$work/ringkeeper-tune" apply --probe "$out/probe.json" "$work/tuned.cfg"
"$work/ringkeeper-tune" apply --servers-per-host 2 --probe "$out/probe.json" "$work/tuned-float.cfg"
grep -v "^ringkeeper.log.batch\|^ringkeeper.queue.depth" "$work/tuned.cfg" > "$work/layout-only.cfg"
for c in default tuned tuned-float layout-only; do
    sed "s|$work|/var/tmp/rk-tune-bench|g" "$work/$c.cfg" > "$out/$c.cfg"
done
"$work/ringkeeper-tune" check --config "$work/tuned.cfg" --probe "$out/probe.json" > "$out/check.txt" || true

mkdir -p "$out/logs"
start_server() {
    local log="$out/logs/server-$1-$2.log"
    rm -rf "$work/data" && mkdir -p "$work/data"
    "$work/ringkeeper" "$work/$1.cfg" > "$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 200); do
        if grep -q "listening on" "$log"; then return 0; fi
        sleep 0.05
    done
    echo "server $1 did not start:"; cat "$log"; exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}
run_config() {
    local config=$1 round=$2
    start_server "$config" "$round"
    for shape in 16x16 1x1; do
        local clients=${shape%x*} inflight=${shape#*x}
        echo "round $round $config $shape: $(uptime)" | tee -a "$out/uptime.txt"
        "$work/ringkeeper-bench" write --hosts "127.0.0.1:$port" --clients "$clients" --inflight "$inflight" \
            --seconds "$seconds" --warmup "$warmup" --quiet --json "$out/$config-$shape-$round.json" > /dev/null \
            || { echo "bench failed; server alive: $(kill -0 "$server_pid" 2>/dev/null && echo yes || echo no)"; \
                 tail -20 "$out/logs/server-$config-$round.log"; exit 1; }
    done
    stop_server
}
configs=(default tuned tuned-float layout-only)
for round in $(seq 1 "$rounds"); do
    for i in 0 1 2 3; do run_config "${configs[$(( (i + round - 1) % 4 ))]}" "$round"; done
done
echo "done: $(uptime)" | tee -a "$out/uptime.txt"
