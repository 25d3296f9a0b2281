#!/bin/bash
# usage: run.sh BIN MEMBERS LAYOUT(auto|one|per-role|none) CASE(rate8000|1x1|idle|16x16) TAG
# Starts MEMBERS ringkeeper servers (each with setsid), runs CASE, prints one result line.
BIN=$1; N=$2; LAYOUT=$3; CASE=$4; TAG=$5
B=${B:-target/release/ringkeeper-bench}
base=${TMPDIR:-/tmp}/rk-executors-$$; rm -rf $base; mkdir -p $base
pids=()
hosts=""
for i in $(seq 1 $N); do
  d=$base/s$i; mkdir -p $d/data
  cport=$((23180+i)); 
  {
    echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"
    echo "dataDir=$d/data"; echo "clientPort=$cport"; echo "clientPortAddress=127.0.0.1"
    [ "$LAYOUT" != none ] && echo "ringkeeper.executors=$LAYOUT"
    if [ $N -gt 1 ]; then for j in $(seq 1 $N); do echo "server.$j=127.0.0.1:$((23280+j)):$((23380+j));127.0.0.1:$((23180+j))"; done; fi
  } > $d/zoo.cfg
  echo $i > $d/data/myid
  setsid $BIN $d/zoo.cfg > $d/out.log 2>&1 &
  pids+=($!)
  hosts="$hosts,127.0.0.1:$cport"
done
hosts=${hosts#,}
# wait until every member answers srvr with a mode
for i in $(seq 1 200); do
  ok=0
  for j in $(seq 1 $N); do echo srvr | timeout 1 nc -q1 127.0.0.1 $((23180+j)) 2>/dev/null | grep -q "Mode: \(leader\|follower\|standalone\)" && ok=$((ok+1)); done
  [ $ok = $N ] && break; sleep 0.1
done
cpu() { local t=0; for p in "${pids[@]}"; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
HZ=$(getconf CLK_TCK)
case $CASE in
  idle)
    sleep 3; c0=$(cpu); sleep 10; c1=$(cpu)
    echo "$TAG idle n=$N cpu%=$(echo "scale=2; ($c1-$c0)*100/$HZ/10" | bc)" ;;
  rate8000)
    $B write --hosts $hosts --clients 16 --inflight 16 --rate 8000 --seconds 10 --warmup 3 > $base/bench.out 2>&1 &
    bp=$!; sleep 5; c0=$(cpu); sleep 6; c1=$(cpu); wait $bp
    lat=$(tail -1 $base/bench.out | tr -s " ")
    echo "$TAG rate8000 n=$N cpu_us_per_write=$(echo "scale=1; ($c1-$c0)*1000000/$HZ/6/8000" | bc) | $lat" ;;
  1x1)
    $B write --hosts $hosts --clients 1 --inflight 1 --seconds 6 --warmup 2 --quiet > $base/bench.out 2>&1
    echo "$TAG 1x1 n=$N | $(tail -1 $base/bench.out | tr -s " ")" ;;
  16x16)
    $B write --hosts $hosts --clients 16 --inflight 16 --seconds 6 --warmup 2 --quiet > $base/bench.out 2>&1 &
    bp=$!; sleep 3; c0=$(cpu); sleep 4; c1=$(cpu); wait $bp
    echo "$TAG 16x16 n=$N cpu_ticks=$((c1-c0)) | $(tail -1 $base/bench.out | tr -s " ")" ;;
esac
for p in "${pids[@]}"; do kill $p 2>/dev/null; done
wait 2>/dev/null
cp $base/bench.out ${TMPDIR:-/tmp}/rk-executors-last-$TAG-$CASE-$N.out 2>/dev/null
if grep -q "panicked" $base/bench.out; then cp -r $base ${TMPDIR:-/tmp}/rk-executors-failed-$$; fi; rm -rf $base
