#!/bin/bash
cd /work/wt-serve2
D=docs/runs/serve2-2026-12-07
B=/tmp/serve2-base-uthreads
N=/tmp/serve2-v2-uthreads
log() { echo "$(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) $*" >> $D/log.txt; }
log "start; before = main b125529 ($B), after = serve2 da0b6b8 runtime ($N)"
for pass in 1 2; do
  for tag in before after; do
    bin=$B; [ $tag = after ] && bin=$N
    log "counts $tag pass $pass"
    UTHREADS=$bin ROUNDS=2 DUR=4 PERF=1 OUT=$D/counts-$tag-$pass.tsv scripts/serve-cost.sh > $D/counts-$tag-$pass.txt 2>&1
  done
done
for tag in before after; do
  bin=$B; [ $tag = after ] && bin=$N
  log "events $tag"
  UTHREADS=$bin ROUNDS=1 DUR=3 EVENTS=1 OUT=$D/events-$tag.tsv scripts/serve-cost.sh > $D/events-$tag.txt 2>&1
done
for pass in 1 2; do
  for tag in before after; do
    bin=$B; [ $tag = after ] && bin=$N
    log "cpu $tag pass $pass"
    UTHREADS=$bin ROUNDS=3 DUR=5 PERF=0 OUT=$D/cpu-$tag-$pass.tsv scripts/serve-cost.sh > $D/cpu-$tag-$pass.txt 2>&1
  done
done
log "bench parallel http after"
$N bench parallel --only http --repeat 5 --json > $D/bench-parallel-http-after.json 2> $D/bench-parallel-http-after.err
log "end"
