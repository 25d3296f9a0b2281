#!/bin/bash
# single.sh BIN [SECS]: one standalone server of BIN (under chrt -f 20, as fixed.sh RT=1), setData 1x1 closed
# loop (LOAD overrides the load options) for SECS seconds (default 4), after a 1 s warm-up. Prints ops/s,
# p50 and p99 in us, and the server's CPU us per write. Expects ringkeeper-bench at /tmp/rkperf/bench (or BENCH).
BIN=$1; SECS=${2:-4}; B=${BENCH:-/tmp/rkperf/bench}; D=/tmp/rkperf/single; PORT=39711
rm -rf $D; mkdir -p $D
printf "dataDir=$D/data\nclientPort=$PORT\nadmin.enableServer=false\n4lw.commands.whitelist=*\n" > $D/zoo.cfg
chrt -f 20 $BIN $D/zoo.cfg > $D/log 2>&1 & pid=$!
for t in $(seq 1 50); do grep -q listening $D/log && break; sleep 0.1; done
cpu(){ awk '{print $14+$15}' /proc/$1/stat; }
$B write --hosts 127.0.0.1:$PORT --clients 1 --inflight 1 --seconds 1 --warmup 1 --quiet >/dev/null 2>&1
c0=$(cpu $pid)
chrt -f 20 $B write --hosts 127.0.0.1:$PORT ${LOAD:---clients 1 --inflight 1} --seconds $SECS --warmup 0 --quiet > $D/w.out 2>&1
dc=$(( $(cpu $pid) - c0 )); ops=$(awk 'NR==3{print $1}' $D/w.out)
[ -z "$ops" ] && cat $D/w.out
echo "$(sed -n 3p $D/w.out | awk '{print "ops/s",$1,"p50",$2,"p99",$4}') | cpu/op $(echo "scale=1; $dc*10000/($ops*$SECS)" | bc)us"
kill $pid; wait $pid 2>/dev/null
