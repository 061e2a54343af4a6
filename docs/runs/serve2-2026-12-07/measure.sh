#!/bin/bash
# The runs of this folder, in this order (16:58-17:09 UTC); the second `bench parallel` run
# (17:10) was started by hand with the same command. `run KIND PASS ROUNDS DUR PERF EVENTS`
# runs scripts/serve-cost.sh once per side, before first.
cd /work/wt-serve2
D=docs/runs/serve2-2026-12-07
B=/tmp/serve2-base-uthreads
N=/tmp/serve2-v2-uthreads
log() { echo "$(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) $*" >> $D/log.txt; }
run() {
  local kind=$1 pass=$2 rounds=$3 dur=$4 perf=$5 events=$6
  for tag in before after; do
    bin=$B; [ $tag = after ] && bin=$N
    log "$kind $tag pass $pass"
    UTHREADS=$bin ROUNDS=$rounds DUR=$dur PERF=$perf EVENTS=$events OUT=$D/$kind-$tag$pass.tsv \
      scripts/serve-cost.sh > $D/$kind-$tag$pass.txt 2>&1
  done
}
log "start; before = main b125529 ($B), after = serve2 da0b6b8 runtime ($N)"
run counts -1 2 4 1 0
run counts -2 2 4 1 0
run events "" 1 3 1 1
run cpu -1 3 5 0 0
run cpu -2 3 5 0 0
log "bench parallel http after"
$N bench parallel --only http --repeat 5 --json > $D/bench-parallel-http-after.json 2> $D/bench-parallel-http-after.err
log "end"
