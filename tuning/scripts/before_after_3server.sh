#!/usr/bin/env bash
# 3-server before/after for the tuning tool (results: bench/results/tuning/3server/): same ensemble layout, default ringkeeper.* keys vs
# the lines `ringkeeper-tune recommend --servers-per-host 3` gives for this host's probe.
set -euo pipefail
root=${1:-/tmp/ba3}; rm -rf $root; mkdir -p $root
T=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release
$T/ringkeeper-tune recommend --probe "$(dirname "$T")/../bench/results/tuning/final/probe.json" --servers-per-host 3 > $root/recommend.txt
grep '^ringkeeper\.' $root/recommend.txt > $root/tuned.lines
: > $root/default.lines
run_case() { # name lines-file
  local name=$1 lines=$2
  for i in 1 2 3; do
    d=$root/$name/s$i; mkdir -p $d; echo $i > $d/myid
    { echo tickTime=2000; echo initLimit=10; echo syncLimit=5; echo dataDir=$d; echo clientPort=$((47810+i)); echo clientPortAddress=127.0.0.1
      for j in 1 2 3; do echo "server.$j=127.0.0.1:$((48880+j)):$((49880+j))"; done; cat $lines; } > $d/zoo.cfg
    RUST_LOG=warn $T/ringkeeper $d/zoo.cfg > $d/out.log 2>&1 &
    echo $! >> $root/pids
  done
  sleep 3
  hosts=127.0.0.1:47811,127.0.0.1:47812,127.0.0.1:47813
  for c in 16x16 1x1; do
    for r in 1 2 3; do
      $T/ringkeeper-bench write --hosts $hosts --clients ${c%x*} --inflight ${c#*x} --seconds 4 --warmup 1 --json $root/$name-$c-$r.json > /dev/null 2>&1
    done
  done
  kill $(cat $root/pids); rm $root/pids; sleep 1
}
uptime > $root/load-before.txt
run_case default $root/default.lines
run_case tuned $root/tuned.lines
uptime > $root/load-after.txt
