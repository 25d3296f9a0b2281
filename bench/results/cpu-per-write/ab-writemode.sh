# ab.sh MODES...: one standalone server per writeMode, write 16x16 and 1x1, server CPU per op
BIN=/work/main/target/release/ringkeeper; B=/work/main/target/release/ringkeeper-bench
D=/work/rk-dio
for round in 1 2 3; do for mode in "$@"; do
  rm -rf $D; mkdir -p $D; printf "tickTime=2000\ndataDir=$D/d\nclientPort=45321\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nringkeeper.log.writeMode=$mode\n" > $D/z.cfg
  $BIN $D/z.cfg > $D/log 2>&1 &
  pid=$!; for i in $(seq 50); do grep -q listening $D/log && break; sleep 0.1; done
  cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
  c0=$(cpu); w=$($B write --hosts 127.0.0.1:45321 --clients 16 --inflight 16 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1}'); c1=$(cpu)
  o=$($B write --hosts 127.0.0.1:45321 --clients 1 --inflight 1 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1, $2}'); c2=$(cpu)
  r8=$($B write --hosts 127.0.0.1:45321 --clients 16 --inflight 16 --rate 8000 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1, $2, $4}'); c3=$(cpu)
  echo "round $round $mode: write16x16 $w (cpu ticks $((c1-c0))) write1x1(ops p50) $o (ticks $((c2-c1))) rate8000(ops p50 p99) $r8 (ticks $((c3-c2)))"
  kill $pid; wait $pid 2>/dev/null
done; done
