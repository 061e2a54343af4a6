#!/usr/bin/env bash
# UserThreads side by side with its peers, in one run, kept as run files in docs/runs/:
#
#   1. peers/install.sh: the peers' Debian packages (skips with a note what it cannot install)
#   2. swift build -c release (the project; `uthreads` at .build/release unless UTHREADS=)
#   3. bench:  `uthreads bench --json` (every row pinned to one CPU, wall time; the M:N rows
#              free; the pair against Go too when $PEERS_BUILD/gobench exists already)
#              -> docs/runs/bench-DATE.json
#   4. peers:  peers/run.sh (Go, Boost.Context, ucontext, GNU Pth, asm, pthreads, processes,
#              Swift concurrency) -> docs/runs/peers-DATE.txt
#   4b. go:    the unpinned pair against Go's goroutine ping-pong (GOMAXPROCS=2), interleaved in
#              one run: `uthreads bench sync --only go --json --go $PEERS_BUILD/gobench` (gobench
#              built first if missing; GO_PAIRS pairs, default 11) -> docs/runs/pair-go-DATE.json,
#              then its targets table (`uthreads bench figures --table targets`)
#   5. http:   peers/http.sh with `uthreads serve` added: the C epoll server, Go net/http
#              (GOMAXPROCS=1), SwiftNIO (one event loop), C thread-per-connection, under wrk;
#              server on CPU 0, wrk on CPU 1 -> docs/runs/http-DATE.json
#   6. prints the HTTP table (`uthreads bench figures --table http`)
#
#   scripts/compare.sh                          # all steps (~15 min once the peers are built)
#   STEPS="http" CONNS="100 1000" scripts/compare.sh
#   PEERS_BUILD=/tmp/peers SWIFT_SCRATCH=/tmp/peers/hb scripts/compare.sh   # builds outside the tree
#
# Environment: STEPS (default "bench peers go http"), UTHREADS, GO_PAIRS (default 11), PEERS_BUILD (default peers/build),
# CONNS (default "100 1000"), DUR (default 10), ONLY (http.sh's server keys; default
# 'uthreads|epoll|go|nio|threads'), CONFIGS (default pinned), OUT (default docs/runs).
# Point scripts/update-figures.sh's markers at the new run files to put them in the docs.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STEPS="${STEPS:-bench peers go http}"
OUT="${OUT:-$ROOT/docs/runs}"
DATE=$(date -u +%Y-%m-%d)
export PEERS_BUILD="${PEERS_BUILD:-$ROOT/peers/build}"
mkdir -p "$OUT" "$PEERS_BUILD"
say() { echo "[compare] $*" >&2; }

bash "$ROOT/peers/install.sh"

UTHREADS="${UTHREADS:-$ROOT/.build/release/uthreads}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "swift build -c release"
    (cd "$ROOT" && swift build -c release --product uthreads) >&2 || { say "swift build failed"; exit 1; }
fi
[ -x "$UTHREADS" ] || { say "no uthreads at $UTHREADS"; exit 1; }

for step in $STEPS; do
    case "$step" in
    bench)
        say "uthreads bench --json (a few minutes)"
        "$UTHREADS" bench --json >"$OUT/bench-$DATE.json" || say "uthreads bench failed"
        ;;
    peers)
        say "peers/run.sh"
        bash "$ROOT/peers/run.sh" >"$OUT/peers-$DATE.txt" || say "peers/run.sh failed"
        ;;
    go)
        gobench="$PEERS_BUILD/gobench"
        if [ ! -x "$gobench" ]; then
            say "building gobench (peers/src/go)"
            (cd "$ROOT/peers/src/go" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$gobench" .) >&2 ||
                say "could not build gobench: the pair-go run file will say the Go rows were skipped"
        fi
        say "uthreads bench sync --only go (the unpinned pair and Go, interleaved)"
        go_option=()
        [ -x "$gobench" ] && go_option=(--go "$gobench")
        "$UTHREADS" bench sync --only go --json --go-pairs "${GO_PAIRS:-11}" "${go_option[@]}" \
            >"$OUT/pair-go-$DATE.json" || say "uthreads bench sync --only go failed"
        "$UTHREADS" bench figures --table targets "$OUT/pair-go-$DATE.json"
        ;;
    http)
        say "peers/http.sh with uthreads serve"
        UTHREADS="$UTHREADS" ONLY="${ONLY:-uthreads|epoll|go|nio|threads}" CONFIGS="${CONFIGS:-pinned}" \
            CONNS="${CONNS:-100 1000}" THREAD_CONNS="${THREAD_CONNS:-${CONNS:-100 1000}}" \
            bash "$ROOT/peers/http.sh" >"$OUT/http-$DATE.txt" || say "peers/http.sh failed"
        commit=$(cd "$ROOT" && git rev-parse HEAD 2>/dev/null || echo unknown)
        python3 - "$PEERS_BUILD/http/results.tsv" "$OUT/http-$DATE.json" "$commit" "${DUR:-10}" <<'PY'
import json, os, platform, subprocess, sys, time
tsv, out, commit, dur = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def num(v, kind=float):
    try: return kind(v)
    except ValueError: return None
rows = []
for line in open(tsv):
    f = line.rstrip("\n").split("\t")
    if len(f) < 14: continue
    rows.append({"server": f[0], "config": f[1], "connections": int(f[2]), "requestsPerSecond": num(f[3]),
                 "p50ms": num(f[4]), "p99ms": num(f[5]), "rssMiB": num(f[6]), "errors": num(f[7], int),
                 "serverCPUPercent": num(f[11]), "microsecondsPerRequest": num(f[12]), "wrkCPUPercent": num(f[13]),
                 "round": num(f[14], int) if len(f) > 14 else 1})
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
run = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
       "machine": {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
                   "memoryBytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
       "wrk": " ".join((wrk.stdout + wrk.stderr).split()[:2]) + " -t2", "durationSeconds": dur, "rows": rows}
json.dump(run, open(out, "w"), indent=2, sort_keys=True)
PY
        "$UTHREADS" bench figures --table http "$OUT/http-$DATE.json"
        ;;
    *) say "unknown step '$step' (bench, peers, go, http)"; exit 2 ;;
    esac
done
say "run files in $OUT"
