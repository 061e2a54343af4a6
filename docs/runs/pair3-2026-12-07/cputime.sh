#!/bin/bash
# CPU time (user+sys) of `bench loop OP 20000000`, main and pair3 alternated; ns per handoff.
R=${1:-5}; OUT=${2:-/tmp/pair3/cpu-time.txt}
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); UTHREADS_SPIN_NS=0 /usr/bin/time -f '%U %S %e' uthreads bench loop OP 20000000" >> $OUT
for r in $(seq 1 $R); do
  for op in channel-pair channel-shared channel; do
    for b in main pair3; do
      UTHREADS_SPIN_NS=0 /usr/bin/time -o /tmp/pair3/t.out -f "%U %S %e" /tmp/pair3/uthreads-$b bench loop $op 20000000 >/dev/null 2>/dev/null; t=$(tail -1 /tmp/pair3/t.out)
      echo "round $r $op $b $t $(echo $t | awk '{printf "cpu %.1f ns/handoff wall %.1f ns/handoff", ($1+$2)*1e9/20000000, $3*1e9/20000000}') load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT
    done
  done
done
