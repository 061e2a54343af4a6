import json,glob,statistics,re,sys
D=sys.argv[1]
for r in range(1,10):
  for b in ['main','pair3']:
    try: j=json.load(open(f"{D}/r{r}-{b}-sync.json"))
    except Exception: continue
    row=[x for x in j['rows'] if x['name'].startswith('M:N: Channel ping-pong, two unpinned')][0]
    go=[]
    for f in ['before','after']:
      for l in open(f"{D}/r{r}-{b}-go-{f}.txt"):
        if 'GOMAXPROCS=2' in l: go.append(float(l.split('\t')[2]))
    g=statistics.median(go)
    name={'main':'base 2489ac5','pair3':'pair4 9ff7c06'}[b]
    print(f"round {r} {name:14s} pair {row['value']:.1f} ns [{row['min']:.1f} .. {row['max']:.1f}]  Go {g:.0f} ns  ratio {row['value']/g:.2f}x  min/Go {row['min']/g:.2f}x")
