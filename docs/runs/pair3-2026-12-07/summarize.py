import json,re,sys,glob,statistics as st,os
D=sys.argv[1]
rows_of_interest=["M:N: Channel ping-pong, two unpinned threads, 2 workers","M:N: Channel ping-pong, both threads pinned to worker 0 of 2","Channel ping-pong, run(workers: 1)"]
short={"M:N: Channel ping-pong, two unpinned threads, 2 workers":"unpinned pair","M:N: Channel ping-pong, both threads pinned to worker 0 of 2":"pinned worker 0","Channel ping-pong, run(workers: 1)":"workers: 1"}
def go(f):
    v=[float(m.group(1)) for m in re.finditer(r"GOMAXPROCS=2\s+([\d.]+)", open(f).read())]
    return v
out=[]
rounds=sorted(set(int(re.match(r"r(\d+)-",os.path.basename(f)).group(1)) for f in glob.glob(D+"/r*-sync.json")))
for r in rounds:
    for b in ["main","pair3"]:
        f=f"{D}/r{r}-{b}-sync.json"
        if not os.path.exists(f): continue
        d=json.load(open(f))
        g=go(f"{D}/r{r}-{b}-go-before.txt")+go(f"{D}/r{r}-{b}-go-after.txt")
        gm=st.median(g) if g else float('nan')
        line=f"round {r} {b:5s} (commit {d['commit'][:7]}): Go GOMAXPROCS=2 median of {len(g)} = {gm:.1f} ns"
        for row in d['rows']:
            if row['name'] in rows_of_interest:
                line+=f"; {short[row['name']]} {row['value']:.1f} ns [{row['min']:.1f} .. {row['max']:.1f}]"
                if row['name']==rows_of_interest[0]: line+=f" = {row['value']/gm:.2f}x Go"
        out.append(line)
print("\n".join(out))
