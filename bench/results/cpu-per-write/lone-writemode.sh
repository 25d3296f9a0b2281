# lone-writemode.sh MODES...: one standalone server per ringkeeper.log.writeMode, 1x1 writes, 4 s, ROUNDS rounds (default 6): ops/s, p50, p99, server CPU ticks
BIN=/work/main/target/release/ringkeeper; B=/work/main/target/release/ringkeeper-bench
D=/work/rk-dio
for round in $(seq ${ROUNDS:-6}); do for mode in "$@"; do
  rm -rf $D; mkdir -p $D; printf "tickTime=2000\ndataDir=$D/d\nclientPort=45321\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nringkeeper.log.writeMode=$mode\n" > $D/z.cfg
  $BIN $D/z.cfg > $D/log 2>&1 &
  pid=$!; for i in $(seq 50); do grep -q listening $D/log && break; sleep 0.1; done
  c0=$(awk '{print $14+$15}' /proc/$pid/stat)
  o=$($B write --hosts 127.0.0.1:45321 --clients 1 --inflight 1 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1, $2, $4}')
  c1=$(awk '{print $14+$15}' /proc/$pid/stat)
  echo "$round $mode $o ticks $((c1-c0))"
  kill $pid; wait $pid 2>/dev/null
done; done
