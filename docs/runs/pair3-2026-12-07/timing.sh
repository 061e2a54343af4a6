#!/bin/bash
# Alternates Go's ping-pong and `uthreads bench sync --json` for main's binary and pair3's.
# usage: timing.sh ROUNDS OUTDIR
R=${1:-3}; OUT=${2:-/tmp/pair3/runs}
mkdir -p $OUT
for r in $(seq 1 $R); do
  for b in main pair3; do
    echo "round $r $b start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $OUT/log.txt
    /tmp/pair3/gobench pingpong 1000000 5 > $OUT/r$r-$b-go-before.txt 2>&1
    /tmp/pair3/uthreads-$b bench sync --json > $OUT/r$r-$b-sync.json 2> $OUT/r$r-$b-sync.txt
    /tmp/pair3/gobench pingpong 1000000 5 > $OUT/r$r-$b-go-after.txt 2>&1
    echo "round $r $b end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $OUT/log.txt
  done
done
