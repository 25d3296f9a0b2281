#!/bin/bash
# startloop.sh BIN [N] [BASEPORT]: starts a standalone `ringkeeper.executors=per-role` server N times (default 30);
# each must print "listening" within 10 s, then is killed. Prints HUNG (with every thread's state) for one that
# does not: the glommio lost wake-up of stop 23 (vendor/glommio/RINGKEEPER-PATCHES.md (e)). Ends with a count.
bin=$1; n=${2:-30}; base=${3:-21000}; hung=0
for i in $(seq 1 "$n"); do
  d=$(mktemp -d /tmp/sl.XXXX); port=$((base + i))
  printf "dataDir=$d/data\nclientPort=$port\nadmin.enableServer=false\nringkeeper.executors=per-role\n" > $d/zoo.cfg
  $bin $d/zoo.cfg > $d/out 2> $d/err & pid=$!
  ok=0
  for t in $(seq 1 100); do grep -q listening $d/out && { ok=1; break; }; sleep 0.1; done
  if [ $ok = 0 ]; then
    hung=$((hung + 1)); echo "HUNG $i pid $pid dir $d"
    for tid in /proc/$pid/task/*; do echo "  $(cat $tid/comm) $(cut -d' ' -f3,14,15 $tid/stat) wchan=$(cat $tid/wchan)"; done
    kill -9 $pid
  else kill -9 $pid; rm -rf $d; fi
  wait $pid 2>/dev/null
done
echo "hung $hung of $n"
