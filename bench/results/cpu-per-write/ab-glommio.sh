#!/bin/bash
# ab-glommio.sh ROUNDS BASE PATCHED [SECS]: interleaved A/B of the vendored glommio's park/wake changes
# (vendor/glommio/RINGKEEPER-PATCHES.md) with fixed.sh (RT=1 PERF=1, 8,000 writes/s unless LOAD says
# otherwise). Each round runs BASE (unpatched glommio), then PATCHED with GLOMMIO_RINGKEEPER_PATCHES set to
# each of $VARIANTS (default: "none a ab abe"; "none" = the empty set, glommio 0.9.0's behaviour).
# One line per run: variant, CPU us/write summed and per member, io_uring_enter and membarrier per write
# (mean of the 3 members), context switches per write (mean), p50/p99 us.
ROUNDS=$1; BASE=$2; PATCHED=$3; SECS=${4:-4}
DIR=$(dirname "$0")
for r in $(seq 1 "$ROUNDS"); do
  for v in base ${VARIANTS:-none a ab abe}; do
    if [ $v = base ]; then bin=$BASE; unset GLOMMIO_RINGKEEPER_PATCHES
    else bin=$PATCHED; export GLOMMIO_RINGKEEPER_PATCHES=$([ $v = none ] || echo $v); fi
    out=$(PERF=1 VERB=1 RT=1 bash "$DIR/fixed.sh" "$bin" "$SECS")
    head=$(echo "$out" | head -1)
    enter=$(echo "$out" | awk '/io_uring_enter/{s+=$2;n++} END{printf "%.2f", s/n}')
    mb=$(echo "$out" | awk '/membarrier/{s+=$2;n++} END{printf "%.2f", s/n}')
    cs=$(echo "$out" | awk '/context-switches/{s+=$2;n++} END{printf "%.2f", s/n}')
    echo "round $r $v | $head | enter/w $enter membarrier/w $mb cs/w $cs"
  done
done
