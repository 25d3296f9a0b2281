#!/bin/bash
# fixed.sh BIN [SECS] [RATE]: 3 members of BIN, each in a cgroup v1 with 0.5 CPU (period 10 ms; NOQ=1: no quota),
# setData 16x16 open loop at RATE (default 8000) over all 3 members; per-member CPU us/op, context switches/op
# (voluntary+involuntary, all threads), io_uring_enter/membarrier per op (PERF=1: perf stat syscalls on each member,
# VERB=1 prints them). RT=1: no quota, servers and bench under chrt -f 20 (shields them from compile jobs).
# LOAD='--clients 4 --inflight 1': another load shape; EXTRA='ringkeeper.coalesceMicros=1000': a zoo.cfg line.
# KEEP=1 leaves the servers running (pids in /tmp/rkperf/pids). Expects ringkeeper-bench at /tmp/rkperf/bench (or BENCH).
BIN=$1; SECS=${2:-5}; RATE=${3:-8000}; B=${BENCH:-/tmp/rkperf/bench}
trap '' PIPE
[ -f /tmp/rkperf/pids ] && kill $(cat /tmp/rkperf/pids) 2>/dev/null; sleep 0.3
D=/tmp/rkperf/run; rm -rf $D; mkdir -p $D
pids=()
for i in 1 2 3; do
  mkdir -p $D/d$i; echo $i > $D/d$i/myid
  { echo tickTime=2000; echo initLimit=10; echo syncLimit=5; echo dataDir=$D/d$i; echo clientPort=3970$i
    echo 4lw.commands.whitelist=*
    for j in 1 2 3; do echo "server.$j=127.0.0.1:3980$j:3990$j"; done; [ -n "$EXTRA" ] && echo -e "$EXTRA"; } > $D/z$i.cfg
  G=/sys/fs/cgroup/cpu/rkperf$i; mkdir -p $G; echo 10000 > $G/cpu.cfs_period_us; echo $([ -n "$NOQ" ] && echo -1 || echo 5000) > $G/cpu.cfs_quota_us
  if [ -n "$RT" ]; then chrt -f 20 $BIN $D/z$i.cfg > $D/log$i 2>&1 &
  else sh -c "echo \$\$ > $G/cgroup.procs; exec $BIN $D/z$i.cfg" > $D/log$i 2>&1 &
  fi
  pids+=($!)
done
echo ${pids[@]} > /tmp/rkperf/pids
for t in $(seq 1 50); do sleep 0.2; n=0; for i in 1 2 3; do echo srvr | nc -q1 127.0.0.1 3970$i 2>/dev/null | grep -q Mode && n=$((n+1)); done; [ $n = 3 ] && break; done
sleep 0.5
roles=""; for i in 1 2 3; do roles="$roles $(echo srvr | nc -q1 127.0.0.1 3970$i | awk '/Mode/{print $2}')"; done
cpu(){ awk '{print $14+$15}' /proc/$1/stat; }
cs(){ cat /proc/$1/task/*/status | awk '/ctxt_switches/{s+=$2} END{print s}'; }
# warm-up run (also creates keys)
$B write --hosts 127.0.0.1:39701,127.0.0.1:39702,127.0.0.1:39703 --clients 16 --inflight 16 --rate $RATE --seconds 1 --warmup 1 --quiet >/dev/null 2>&1
for p in ${pids[@]}; do c0[$p]=$(cpu $p); s0[$p]=$(cs $p); done
perfpids=(); if [ -n "$PERF" ]; then for p in ${pids[@]}; do perf stat -e 'syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_membarrier,syscalls:sys_enter_futex,syscalls:sys_enter_write,syscalls:sys_enter_pwrite64,syscalls:sys_enter_nanosleep,syscalls:sys_enter_clock_nanosleep,context-switches,cpu-migrations,task-clock' -p $p -o $D/perfstat.$p -- sleep $SECS & perfpids+=($!); done; fi
$([ -n "$RT" ] && echo chrt -f 20) $B write --hosts 127.0.0.1:39701,127.0.0.1:39702,127.0.0.1:39703 ${LOAD:---clients 16 --inflight 16 --rate $RATE} --seconds $SECS --warmup 0 --quiet > $D/w.out 2>&1
[ ${#perfpids[@]} -gt 0 ] && wait ${perfpids[@]} 2>/dev/null
ops=$(awk 'NR==3{print $1}' $D/w.out)
[ -z "$ops" ] && { cat $D/w.out; }
line="$(sed -n 3p $D/w.out | awk '{print "ops/s",$1,"p50",$2,"p99",$4}')"
tot=0; out=""
for k in 0 1 2; do p=${pids[$k]}; r=$(echo $roles | cut -d' ' -f$((k+1)))
  dc=$(( $(cpu $p) - ${c0[$p]} )); ds=$(( $(cs $p) - ${s0[$p]} ))
  us=$(( dc*10000*1000/(ops*SECS) )); tot=$((tot+us))
  out="$out ${r:0:1}:$((us/1000)).$(( (us%1000)/100 ))us,cs$(echo "scale=2; $ds/($ops*$SECS)" | bc)"
done
echo "$line | cpu/op sum $((tot/1000)).$(( (tot%1000)/100 )) |$out"
if [ -n "$PERF" ] && [ -n "$VERB" ]; then for k in 0 1 2; do p=${pids[$k]}; echo "== member $((k+1)) $(echo $roles | cut -d' ' -f$((k+1))) per op:"; awk -v n=$((ops*SECS)) '/syscalls|context|migr|task-clock/{gsub(",","",$1); printf "  %s %.2f\n", $2, $1/n}' $D/perfstat.$p; done; fi
[ -n "$KEEP" ] && { echo "kept running: ${pids[@]}"; exit 0; }
kill ${pids[@]}; wait 2>/dev/null; rm -f /tmp/rkperf/pids
