#!/bin/bash
# per-thread CPU ticks over 10 s of an idle 3-server ensemble. usage: threads.sh BIN LAYOUT
BIN=$1; LAYOUT=$2; N=3
base=${TMPDIR:-/tmp}/rk-threads-$$; mkdir -p $base; pids=()
for i in $(seq 1 $N); do d=$base/s$i; mkdir -p $d/data
 { echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"; echo "dataDir=$d/data"; echo "clientPort=$((23180+i))"; echo "clientPortAddress=127.0.0.1"
   [ "$LAYOUT" != none ] && echo "ringkeeper.executors=$LAYOUT"
   for j in $(seq 1 $N); do echo "server.$j=127.0.0.1:$((23280+j)):$((23380+j));127.0.0.1:$((23180+j))"; done; } > $d/zoo.cfg
 echo $i > $d/data/myid; setsid $BIN $d/zoo.cfg > $d/out.log 2>&1 & pids+=($!); done
sleep 4
snap() { for p in "${pids[@]}"; do for t in /proc/$p/task/*; do echo "$p $(cat $t/comm) $(cut -d' ' -f14,15 $t/stat)"; done; done; }
snap > $base/a; sleep 10; snap > $base/b
paste $base/a $base/b | awk '{print $1, $2, ($7+$8)-($3+$4)}' | sort -k3 -n -r | head -20
for p in "${pids[@]}"; do kill $p; done; wait 2>/dev/null; rm -rf $base
