#!/usr/bin/env bash
# Regenerates the headline figures of bench/results in one run: ringkeeper and Apache ZooKeeper
# 3.8 side by side on this machine (1 and 3 servers: setData 16x16 and 1x1, getData 16x16, with
# the fdatasync/loopback floor measured in the same run), then leader kill -9 on 3-server
# ensembles of both. Needs the Debian `zookeeper` package (as .ci/run installs) and about
# 15 minutes; results land in bench/results/latest/ (compare the tables with the README's).
#
#   bench/results/regenerate.sh [--quick]     # --quick: 1 run per case, 3 failover trials
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

repeat=3 trials=5 seconds=5
if [[ ${1:-} == --quick ]]; then repeat=1 trials=3 seconds=3; fi

cargo build --release -p ringkeeper-server -p ringkeeper-bench
B=target/release/ringkeeper-bench
out=bench/results/latest
mkdir -p "$out"
uptime | tee "$out/load-before.txt"
for servers in 1 3; do
    $B compare --servers "$servers" --repeat "$repeat" --seconds "$seconds" --warmup 2 --markdown --quiet \
        --json "$out/compare-${servers}server.json" | tee "$out/compare-${servers}server.md"
done
for kind in ringkeeper apache; do
    $B election --start "$kind" --servers 3 --trials "$trials" --json "$out/election-$kind.json" \
        | tee "$out/election-$kind.txt"
done
uptime | tee "$out/load-after.txt"
