#!/bin/bash
# leader-under-writes.sh BIN [pause]: a 3-member ensemble of BIN on 127.0.0.1 (ports 3918x/3928x/3938x),
# setData 16x16 of 1 KiB values on the leader for 6 s (release ringkeeper-bench of this workspace);
# with "pause", one follower is SIGSTOPped for those 6 s and resumed after. Prints the leader's
# anonymous and file RSS before and after, the bench's summary line, and both members' zxids once the
# follower caught up.
BIN=$1; PAUSE=${2:-}; D=/tmp/rk-leader-memory; B=$(dirname "$0")/../../../target/release/ringkeeper-bench
rm -rf $D; mkdir -p $D
for i in 1 2 3; do
  mkdir -p $D/$i/d; echo $i > $D/$i/d/myid
  printf "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=$D/$i/d\nclientPort=3918$i\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\nserver.1=127.0.0.1:39281:39381\nserver.2=127.0.0.1:39282:39382\nserver.3=127.0.0.1:39283:39383\n" > $D/$i/z.cfg
  $BIN $D/$i/z.cfg > $D/$i/log 2>&1 & echo $! > $D/$i/pid
done
sleep 4
L=; F=
for i in 1 2 3; do
  case "$(echo srvr | nc -q1 127.0.0.1 3918$i | grep Mode)" in *leader*) L=$i;; *follower*) F=$i;; esac
done
rss(){ grep -E "RssAnon|RssFile" /proc/$1/status | tr -s ' \t' ' ' | tr '\n' ' '; }
LP=$(cat $D/$L/pid)
echo "leader $L before: $(rss $LP)"
[ "$PAUSE" = pause ] && kill -STOP $(cat $D/$F/pid)
$B write --hosts 127.0.0.1:3918$L --clients 16 --inflight 16 --size 1024 --seconds 6 --warmup 0 --quiet 2>&1 | sed -n 2,3p
echo "leader $L after 6 s: $(rss $LP)"
[ "$PAUSE" = pause ] && kill -CONT $(cat $D/$F/pid)
sleep 3
echo "follower $F: $(echo srvr | nc -q1 127.0.0.1 3918$F | grep Zxid); leader: $(echo srvr | nc -q1 127.0.0.1 3918$L | grep Zxid)"
for i in 1 2 3; do kill $(cat $D/$i/pid); done
