#!/bin/bash
# usage: prof.sh BINARY OP tag  -> per-function self instructions per op
set -e
B=$1; OP=$2; TAG=$3
strip --strip-debug -o /tmp/pair3/u-$TAG $B
for n in 20000 40000; do
  UTHREADS_SPIN_NS=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/pair3/cg-$TAG-$OP-$n.out /tmp/pair3/u-$TAG bench loop $OP $n >/dev/null 2>&1
  callgrind_annotate --threshold=100 /tmp/pair3/cg-$TAG-$OP-$n.out 2>/dev/null > /tmp/pair3/ann-$TAG-$OP-$n.txt
done
python3 - "$TAG" "$OP" <<'PY'
import sys,re
tag,op=sys.argv[1],sys.argv[2]
def load(n):
    d={}
    for line in open(f"/tmp/pair3/ann-{tag}-{op}-{n}.txt"):
        m=re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)",line)
        if m:
            v=int(m.group(1).replace(",","")); k=m.group(2).strip()
            d[k]=d.get(k,0)+v
    return d
a=load(20000); b=load(40000)
rows=[]
for k in set(a)|set(b):
    v=(b.get(k,0)-a.get(k,0))/20000
    if abs(v)>=0.5: rows.append((v,k))
rows.sort(reverse=True)
for v,k in rows: print(f"{v:8.1f}  {k[:150]}")
PY
