# lone-hops.sh EXTRA-line [SECS]: 3 members (fixed.sh, no quota) with one client writing one at a time, then the hop p50s of each member (the client's member has them); expects fixed.sh copied to /tmp/cperf with its paths there (as the coordinator ran it)
cd /tmp/cperf
EXTRA="$1" KEEP=1 NOQ=1 LOAD='--clients 1 --inflight 1' bash fixed.sh /tmp/cperf/rk ${2:-5} | head -1
for i in 1 2 3; do echo mntr | nc -q1 127.0.0.1 4970$i | awk -v m=$i '/server_state/{s=$2} /hop_.*_p50/{sub("zk_ringkeeper_hop_","",$1); sub("_us_p50","",$1); l=l" "$1"="$2} END{print m, s, l}'; done
kill $(cat /tmp/cperf/pids); rm -f /tmp/cperf/pids
