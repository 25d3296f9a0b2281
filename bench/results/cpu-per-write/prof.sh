#!/bin/bash
# prof.sh BIN: fixed.sh with KEEP=1, then perf record -a -g during a second load run (RT= NOQ=1: perf's cpu-clock
# sampling does not see SCHED_FIFO threads on this VM); member roles and pids in /tmp/rkperf/prof.roles
BIN=$1
RT=${RT-1} KEEP=1 ./fixed.sh $BIN 3 > /tmp/rkperf/prof.first 2>&1
pids=($(cat /tmp/rkperf/pids))
perf record -F 2999 -a -g -o /tmp/rkperf/perf.all.data -- sleep 4 >/dev/null 2>&1 & pp=($!)
$([ -n "$RT" ] && echo chrt -f 20) /tmp/rkperf/bench write --hosts 127.0.0.1:39701,127.0.0.1:39702,127.0.0.1:39703 --clients 16 --inflight 16 --rate ${RATE:-8000} --seconds 4 --warmup 0 --quiet > /tmp/rkperf/prof.w 2>&1
wait ${pp[@]}
for i in 1 2 3; do echo "$i $(echo srvr | nc -q1 127.0.0.1 3970$i | awk '/Mode/{print $2}') ${pids[$((i-1))]}"; done > /tmp/rkperf/prof.roles
kill ${pids[@]}; wait 2>/dev/null; rm -f /tmp/rkperf/pids
cat /tmp/rkperf/prof.roles
