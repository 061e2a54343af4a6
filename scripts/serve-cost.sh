#!/usr/bin/env bash
# What one request costs `uthreads serve` at 1 and at 2 workers, in figures the machine's noise
# moves little: system calls, epoll_waits, futex calls, context switches and migrations per
# request (perf's software counters and syscall tracepoints on the server process alone), next to
# server CPU per request. Rounds alternate the worker counts, so drift hits both alike.
#
#   UTHREADS=.build/release/uthreads scripts/serve-cost.sh
#   ROUNDS=5 CONNS="100 1000" DUR=5 WORKERS="1 2" scripts/serve-cost.sh
#   PERF=0 ...     no perf (CPU per request only: the tracepoints add a little to every call)
#   EVENTS=1 ...   also events per epoll_wait (perf record of each epoll_wait's return; slower)
#
# Needs wrk, perf (root, or perf_event_paranoid -1, for the syscall tracepoints). Prints one line
# per run and a TSV (OUT, default /tmp/serve-cost.tsv). Loopback only; kills only its own servers.
set -uo pipefail
U="${UTHREADS:-.build/release/uthreads}"
ROUNDS="${ROUNDS:-3}"
CONNS="${CONNS:-100 1000}"
DUR="${DUR:-5}"
WORKERS="${WORKERS:-1 2}"
PERF="${PERF:-1}"
EVENTS="${EVENTS:-0}"
OUT="${OUT:-/tmp/serve-cost.tsv}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ -x "$U" ] || { echo "serve-cost: no uthreads binary at $U (set UTHREADS)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "serve-cost: wrk is not on PATH" >&2; exit 2; }
if [ "$PERF" = 1 ] && ! perf stat -e 'syscalls:sys_enter_epoll_wait' true >/dev/null 2>&1; then
    echo "serve-cost: perf cannot count syscall tracepoints here; running with PERF=0" >&2
    PERF=0
fi
TP='raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,context-switches,cpu-migrations,task-clock'

# CPU ticks (user+system) of a process.
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# Voluntary and involuntary context switches over all its kernel threads.
ctxt() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt/ { v += $2 } /^nonvoluntary_ctxt/ { n += $2 } END { print v + 0, n + 0 }'
}

echo -e "round\tconns\tworkers\treq\treq_s\tcpu_us_req\tsyscalls_req\tepoll_req\tfutex_req\tread_req\tsendto_req\teventfd_write_req\tctx_req\tmigr_req\tvol_req\tinvol_req\tevents_per_wait\twrk_cpu_us_req\tload1" >"$OUT"
HZ=$(getconf CLK_TCK)
# wrk's own CPU (user+system seconds) goes to $TMP/wrk.cpu: the load generator shares the CPUs,
# and a server that answers in smaller batches can cost wrk more per request.
WRKTIME=""
[ -x /usr/bin/time ] && WRKTIME="/usr/bin/time -f %U+%S -o $TMP/wrk.cpu"
for round in $(seq 1 "$ROUNDS"); do
    for c in $CONNS; do
        order="$WORKERS"
        # Alternate which worker count goes first.
        if [ $((round % 2)) = 0 ]; then order=$(echo "$WORKERS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
        for w in $order; do
            "$U" serve --port 0 --workers "$w" --max-connections 20000 >"$TMP/serve.out" 2>"$TMP/serve.err" &
            pid=$!
            port=""
            for _ in $(seq 1 100); do
                port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/serve.out" | head -1)
                [ -n "$port" ] && break
                sleep 0.05
            done
            [ -n "$port" ] || { echo "serve-cost: the server did not start" >&2; kill "$pid"; exit 1; }
            url="http://127.0.0.1:$port/"
            wrk -t2 -c"$c" -d1s "$url" >/dev/null 2>&1  # warm-up: connections, stacks, buffers
            t0=$(ticks "$pid")
            read -r v0 n0 < <(ctxt "$pid")
            load=$(cut -d' ' -f1 /proc/loadavg)
            if [ "$PERF" = 1 ] && [ "$EVENTS" = 1 ]; then
                perf record -q -o "$TMP/perf.data" -e syscalls:sys_exit_epoll_wait -p "$pid" -- \
                    $WRKTIME wrk -t2 -c"$c" -d"${DUR}s" "$url" >"$TMP/wrk.out" 2>/dev/null
            elif [ "$PERF" = 1 ]; then
                perf stat -x, -o "$TMP/perf.txt" -e "$TP" -p "$pid" -- \
                    $WRKTIME wrk -t2 -c"$c" -d"${DUR}s" "$url" >"$TMP/wrk.out" 2>/dev/null
            else
                $WRKTIME wrk -t2 -c"$c" -d"${DUR}s" "$url" >"$TMP/wrk.out" 2>/dev/null
            fi
            t1=$(ticks "$pid")
            read -r v1 n1 < <(ctxt "$pid")
            kill -TERM "$pid"
            wait "$pid" 2>/dev/null
            req=$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$TMP/wrk.out")
            rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.out")
            [ -n "$req" ] && [ "$req" -gt 0 ] || { echo "serve-cost: wrk gave no result" >&2; cat "$TMP/wrk.out" >&2; continue; }
            get() { [ -f "$TMP/perf.txt" ] && awk -F, -v e="$1" '$3 == e { print $1 }' "$TMP/perf.txt" || true; }
            per() { awk -v x="${1:-}" -v r="$req" 'BEGIN { if (x == "" || x ~ /not/) print "-"; else printf "%.3f", x / r }'; }
            events="-"
            if [ "$EVENTS" = 1 ] && [ -f "$TMP/perf.data" ]; then
                # Each epoll_wait's return value (events, in hex), averaged (mawk has no strtonum).
                events=$(perf script -i "$TMP/perf.data" 2>/dev/null |
                    python3 -c 'import sys, re; v = [int(m.group(1), 16) for m in (re.search(r"0x([0-9a-f]+)\s*$", l) for l in sys.stdin) if m]; print("%.2f" % (sum(v) / len(v)) if v else "-")')
                rm -f "$TMP/perf.data"
            fi
            cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v r="$req" 'BEGIN { printf "%.2f", (b - a) / hz / r * 1e6 }')
            line="$round\t$c\t$w\t$req\t$rps\t$cpu\t$(per "$(get raw_syscalls:sys_enter)")\t$(per "$(get syscalls:sys_enter_epoll_wait)")\t$(per "$(get syscalls:sys_enter_futex)")"
            # Sockets are read with read(2) (recvfrom counted too) and answered with sendto(2);
            # write(2) is then the eventfds: doorbells and the offload mailbox.
            rd=$(awk -v a="$(get syscalls:sys_enter_read)" -v b="$(get syscalls:sys_enter_recvfrom)" 'BEGIN { if (a == "") print ""; else print a + b }')
            line="$line\t$(per "$rd")\t$(per "$(get syscalls:sys_enter_sendto)")\t$(per "$(get syscalls:sys_enter_write)")"
            line="$line\t$(per "$(get context-switches)")\t$(per "$(get cpu-migrations)")"
            wcpu="-"
            [ -s "$TMP/wrk.cpu" ] && wcpu=$(awk -F+ -v r="$req" 'END { printf "%.2f", ($1 + $2) / r * 1e6 }' "$TMP/wrk.cpu")
            line="$line\t$(per $((v1 - v0)))\t$(per $((n1 - n0)))\t$events\t$wcpu\t$load"
            rm -f "$TMP/perf.txt"
            echo -e "$line" >>"$OUT"
            echo -e "$line"
        done
    done
done
# Per connection count: each column's median per worker count, and the median of the per-round
# ratios of CPU per request (2 workers over 1, both measured in the same round).
python3 - "$OUT" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cols = [c for c in rows[0] if c not in ("round", "conns", "workers", "req", "load1")] if rows else []
def num(x):
    try: return float(x)
    except ValueError: return None
for c in sorted({r["conns"] for r in rows}, key=int):
    print(f"conns {c}: medians over the rounds")
    print("  workers  " + "  ".join(f"{k:>10.10}" for k in cols))
    for w in sorted({r["workers"] for r in rows}, key=int):
        mine = [r for r in rows if r["conns"] == c and r["workers"] == w]
        vals = []
        for k in cols:
            xs = [v for v in (num(r[k]) for r in mine) if v is not None]
            vals.append(f"{statistics.median(xs):>10.3f}" if xs else f"{'-':>10}")
        print(f"  {w:>7}  " + "  ".join(vals))
    by = {(r["round"], r["workers"]): num(r["cpu_us_req"]) for r in rows if r["conns"] == c}
    ratios = sorted(by[(q, "2")] / by[(q, "1")] for (q, w) in by if w == "1" and (q, "2") in by and by[(q, "1")])
    if ratios:
        print(f"  server CPU per request, 2 workers / 1: median of {len(ratios)} rounds {statistics.median(ratios):.2f}x "
              f"[{ratios[0]:.2f} .. {ratios[-1]:.2f}]; rounds: " + " ".join(f"{x:.2f}" for x in ratios))
PY
echo "TSV: $OUT"
