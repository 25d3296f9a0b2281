#!/bin/bash
# ab-binaries.sh ROUNDS A_BIN B_BIN [BENCH]: two ringkeeper binaries, one standalone server at a time on a
# fresh dataDir, interleaved rounds (A then B): getData 16x16, setData 16x16, setData 1x1 (4 s each after
# 1 s warm-up). One line per run: ops/s of each case and the lone writer's p50/p99 in us, and the server's
# CPU us per read of the getData case.
ROUNDS=$1; A=$2; B_BIN=$3; BENCH=${4:-target/release/ringkeeper-bench}
D=/tmp/rk-ab-binaries; PORT=45322
cpu(){ awk '{print $14+$15}' /proc/$1/stat; }
for round in $(seq 1 "$ROUNDS"); do for side in A B; do
  bin=$A; [ $side = B ] && bin=$B_BIN
  rm -rf $D; mkdir -p $D
  printf "tickTime=2000\ndataDir=$D/d\nclientPort=$PORT\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n" > $D/z.cfg
  $bin $D/z.cfg > $D/log 2>&1 & pid=$!
  for i in $(seq 50); do grep -q listening $D/log && break; sleep 0.1; done
  c0=$(cpu $pid)
  $BENCH read --hosts 127.0.0.1:$PORT --clients 16 --inflight 16 --seconds 4 --warmup 1 --quiet > $D/r.out 2>&1
  dc=$(( $(cpu $pid) - c0 )); r=$(awk 'NR==3{print $1}' $D/r.out)
  w=$($BENCH write --hosts 127.0.0.1:$PORT --clients 16 --inflight 16 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1}')
  o=$($BENCH write --hosts 127.0.0.1:$PORT --clients 1 --inflight 1 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1, "p50", $2, "p99", $4}')
  echo "round $round $side: read16x16 $r (server cpu/read $(echo "scale=2; $dc*10000/($r*5)" | bc)us) write16x16 $w write1x1 $o"
  kill $pid; wait $pid 2>/dev/null
done; done
