# ab-standalone.sh [BIN] [BENCH]: one standalone server, read and write 16x16, patched glommio path (env unset) vs stock (GLOMMIO_RINGKEEPER_PATCHES=)
BIN=${1:-target/release/ringkeeper}; B=${2:-target/release/ringkeeper-bench}
D=/tmp/rk-ab-standalone
for round in 1 2 3; do for mode in patched stock; do
  rm -rf $D; mkdir -p $D; printf "tickTime=2000\ndataDir=$D/d\nclientPort=45321\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n" > $D/z.cfg
  if [ $mode = stock ]; then GLOMMIO_RINGKEEPER_PATCHES= $BIN $D/z.cfg > $D/log 2>&1 & else $BIN $D/z.cfg > $D/log 2>&1 & fi
  pid=$!; for i in $(seq 50); do grep -q listening $D/log && break; sleep 0.1; done
  r=$($B read --hosts 127.0.0.1:45321 --clients 16 --inflight 16 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1}')
  w=$($B write --hosts 127.0.0.1:45321 --clients 16 --inflight 16 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1}')
  o=$($B write --hosts 127.0.0.1:45321 --clients 1 --inflight 1 --seconds 4 --warmup 1 --quiet 2>&1 | awk 'NR==3{print $1, $2}')
  echo "round $round $mode: read16x16 $r write16x16 $w write1x1(ops p50) $o"
  kill $pid; wait $pid 2>/dev/null
done; done
