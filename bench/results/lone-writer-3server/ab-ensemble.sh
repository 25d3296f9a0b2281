#!/bin/bash
# ab-ensemble.sh BIN SECONDS [HOSTPORT|leader] [EXTRA_CFG]: 3 members of BIN (each in a cgroup v1 with 0.5 CPU, period 10 ms;
# RT=1: no quota, servers and bench under chrt -f 20), CL=N: NxN setData (default 1x1) through HOSTPORT (default member 1),
# prints the bench line (ops/s p50 p90 p99 p99.9 max ops errors) with server CPU per op, and every member's mntr hop p50s.
# Expects ringkeeper-bench at /tmp/perfab/bench; kills only the servers it started (pids in /tmp/perfab/pids).
BIN=$1; SECS=${2:-4}; HP=${3:-39401}; EXTRA=$4
trap '' PIPE
[ -f /tmp/perfab/pids ] && kill $(cat /tmp/perfab/pids) 2>/dev/null; sleep 0.3
D=/tmp/perfab/run; rm -rf $D; mkdir -p $D
pids=()
for i in 1 2 3; do
  mkdir -p $D/d$i; echo $i > $D/d$i/myid
  { echo tickTime=2000; echo initLimit=10; echo syncLimit=5; echo dataDir=$D/d$i; echo clientPort=3940$i
    echo 4lw.commands.whitelist=*
    for j in 1 2 3; do echo "server.$j=127.0.0.1:3950$j:3960$j"; done; [ -n "$EXTRA" ] && echo "$EXTRA"; } > $D/z$i.cfg
  G=/sys/fs/cgroup/cpu/perfab$i; mkdir -p $G; echo 10000 > $G/cpu.cfs_period_us; echo 5000 > $G/cpu.cfs_quota_us
  if [ -n "$RT" ]; then chrt -f 20 $BIN $D/z$i.cfg > $D/log$i 2>&1 &
  else sh -c "echo \$\$ > $G/cgroup.procs; exec $BIN $D/z$i.cfg" > $D/log$i 2>&1 &
  fi
  pids+=($!)
done
echo ${pids[@]} > /tmp/perfab/pids
for t in $(seq 1 50); do sleep 0.2; m=$(echo srvr | nc -q1 127.0.0.1 39403 2>/dev/null | grep -c Mode); [ "$m" = 1 ] && break; done
sleep 0.5
if [ "$HP" = leader ]; then for i in 1 2 3; do echo srvr | nc -q1 127.0.0.1 3940$i | grep -q leader && HP=3940$i; done; fi
for i in 1 2 3; do echo srst | nc -q1 127.0.0.1 3940$i >/dev/null 2>&1; done
cpu(){ local t=0; for p in ${pids[@]}; do t=$((t+$(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
c0=$(cpu)
$([ -n "$RT" ] && echo chrt -f 20) /tmp/perfab/bench write --hosts 127.0.0.1:$HP --clients ${CL:-1} --inflight ${CL:-1} --seconds $SECS --warmup 1 --quiet 2>/dev/null | sed -n 3p > /tmp/perfab/w.out
c1=$(cpu); ops=$(awk '{print $1}' /tmp/perfab/w.out)
echo "$(cat /tmp/perfab/w.out)   server cpu us/op (sum of 3, incl. warm-up) $(( (c1-c0)*10000/(ops*(SECS+1)) ))"
for i in 1 2 3; do echo "member $i $(echo srvr | nc -q1 127.0.0.1 3940$i | grep Mode)"; echo mntr | nc -q1 127.0.0.1 3940$i | grep hop_.*p50 | sed 's/zk_ringkeeper_hop_//' | tr '\n' ' '; echo; done
kill ${pids[@]}; wait 2>/dev/null; rm -f /tmp/perfab/pids
