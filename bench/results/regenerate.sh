#!/usr/bin/env bash
# Regenerates every figure of the README's performance table in one run, from the HEAD binary:
# ringkeeper and Apache ZooKeeper 3.8 side by side on this machine, same client, same settings.
#   - floor: fdatasync on the data disk, loopback round trip (compare also measures it itself);
#   - compare, 1 server, shared isolation; 3 servers, equal isolation (each server process in
#     its own cgroup, --cpu-per-server 0.5) and shared: setData 16x16, setData 1x1, getData
#     16x16 (saturating, closed loop) and setData 16x16 open loop at 8000 ops/s; server and
#     client CPU per op in every row; idle CPU of the 3-server ensembles;
#   - leader kill -9 on 3-server ensembles of both, equal and shared isolation.
# Medians of 3 runs (alternating which server goes first). Needs the Debian `zookeeper`
# package, root (cgroups for equal isolation) and about 20 minutes. Results land in
# bench/results/latest/, with commands.txt naming the exact command of every file.
#
#   bench/results/regenerate.sh [--quick]     # --quick: 1 run per case, 2 failover trials
#   RATE=6000 bench/results/regenerate.sh     # another fixed rate, if 8000/s is not sustained
#                                             # by both sides (rows marked BELOW RATE)
#   OUT=/tmp/check bench/results/regenerate.sh --quick   # elsewhere than latest/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

repeat=3 trials=5 seconds=5 idle=10 rate=${RATE:-8000}
if [[ ${1:-} == --quick ]]; then repeat=1 trials=2 seconds=2 idle=3; fi

cargo build --release -p ringkeeper-server -p ringkeeper-bench
out=${OUT:-bench/results/latest}
rm -rf "$out"
mkdir -p "$out"
# Copies of the binaries, so a build elsewhere cannot replace them mid-run.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cp target/release/ringkeeper target/release/ringkeeper-bench "$bin/"
B="$bin/ringkeeper-bench"
RK=(--ringkeeper-bin "$bin/ringkeeper")

{
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ":(exclude)$out" || echo ' (with uncommitted changes)')"
    echo "host: $(nproc) cores, $(uname -r); started $(date -u +%FT%TZ); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ringkeeper-bench and ringkeeper below are release builds of that commit"
} >"$out/commands.txt"

# run FILE-STEM COMMAND...: records the command, runs it, keeps its stdout in FILE-STEM.md.
run() {
    local stem=$1
    shift
    echo "$stem: $*" | sed "s|$bin/||g" >>"$out/commands.txt"
    echo "== $stem (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$@" | tee "$out/$stem.md"
}

run floor "$B" floor --fsyncs 300 --round-trips 10000 --json "$out/floor.json"

cases=(--case write:16x16 --case write:1x1 --case read:16x16 --case "write:16x16@$rate")
for setup in "1 shared" "3 equal" "3 shared"; do
    read -r servers isolation <<<"$setup"
    idle_arg=()
    if ((servers > 1)); then idle_arg=(--idle-seconds "$idle"); fi
    run "compare-${servers}server-$isolation" "$B" compare "${RK[@]}" --servers "$servers" \
        --isolation "$isolation" --cpu-per-server 0.5 "${cases[@]}" "${idle_arg[@]}" \
        --repeat "$repeat" --seconds "$seconds" --warmup 2 --markdown --quiet \
        --json "$out/compare-${servers}server-$isolation.json"
done

for isolation in equal shared; do
    for kind in ringkeeper apache; do
        run "election-$kind-$isolation" "$B" election "${RK[@]}" --start "$kind" --servers 3 \
            --isolation "$isolation" --cpu-per-server 0.5 --trials "$trials" \
            --json "$out/election-$kind-$isolation.json"
    done
done
echo "finished $(date -u +%FT%TZ); load: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/commands.txt"
