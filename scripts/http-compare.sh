#!/usr/bin/env bash
# `uthreads serve` (1 and 2 workers) against Go net/http (GOMAXPROCS=2) and
# SwiftNIO (2 event loops) under wrk, side by side in one run, alternating the servers.
#
#   scripts/http-compare.sh                      # 2 rounds x (100, 1000 connections) x 4 servers
#   ROUNDS=3 DUR=10 CONNS="100 1000" scripts/http-compare.sh
#   PEERS_BUILD=/tmp/peers UTHREADS=.build-X/release/uthreads scripts/http-compare.sh
#
# Peers: built by peers/http.sh (ONLY='go|nio' peers/http.sh builds them into peers/build, or
# PEERS_BUILD=dir) or scripts/compare.sh; a missing peer is skipped with a note. For the
# one-kernel-thread comparison with the C servers, pinned, see scripts/compare.sh.
# Method (the peers' http.sh): a fresh server process per row, a response check with curl, a
# WARM-second `wrk -t2 -cN` warm-up, a wait until the server closed those connections, then
# `wrk -t2 -cN -dDURs --timeout 10s --latency`. wrk and the server share the machine's CPUs (no
# pinning: the multi-threaded servers need both). Server CPU is user+system from
# /proc/PID/stat over the measured run; us/req = server CPU microseconds per request.
# Only processes this script started are killed.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS_BUILD="${PEERS_BUILD:-$ROOT/peers/build}"
UTHREADS="${UTHREADS:-$ROOT/.build/release/uthreads}"
DUR="${DUR:-10}"
WARM="${WARM:-2}"
CONNS="${CONNS:-100 1000}"
ROUNDS="${ROUNDS:-2}"
OUT="${OUT:-$(mktemp -d /tmp/http-compare.XXXXXX)}"
mkdir -p "$OUT"
RAW="$OUT/results.tsv"
: >"$RAW"
NOTES=()

say() { echo "[http-compare] $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
have wrk || { say "wrk is not on PATH (apt-get install wrk)"; exit 1; }
have curl || { say "curl is not on PATH"; exit 1; }
[ -x "$UTHREADS" ] || { say "no uthreads binary at $UTHREADS (swift build -c release, or set UTHREADS=)"; exit 1; }

hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true

# name port command...  (one server per line; fields separated by '|')
SERVERS=("uthreads-1w|18091|$UTHREADS serve --port 18091 --workers 1"
         "uthreads-2w|18092|$UTHREADS serve --port 18092 --workers 2")
GO_BIN="$PEERS_BUILD/http/go-hello"
NIO_BIN="${SWIFT_SCRATCH:-$PEERS_BUILD/http/hb/.build}/release/nio-hello"
if [ -x "$GO_BIN" ]; then SERVERS+=("go-net/http-P2|18093|env GOMAXPROCS=2 $GO_BIN 18093")
else NOTES+=("Go peer skipped: no $GO_BIN"); fi
if [ -x "$NIO_BIN" ]; then SERVERS+=("swift-nio-2EL|18094|$NIO_BIN 18094 2")
else NOTES+=("SwiftNIO peer skipped: no $NIO_BIN"); fi

CUR=""; WPID=""
cleanup() {
    if [ -n "$WPID" ] && kill -0 "$WPID" 2>/dev/null; then kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; fi
    WPID=""
    if [ -n "$CUR" ] && kill -0 "$CUR" 2>/dev/null; then kill "$CUR" 2>/dev/null; wait "$CUR" 2>/dev/null; fi
    CUR=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$CUR" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
to_ms() {
    awk -v v="$1" 'BEGIN{ if (v == "") { print "-"; exit }
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}
nfds() { ls -f "/proc/$1/fd" 2>/dev/null | wc -l; }
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

CHECKED=" "
# measure NAME PORT CONNS ROUND COMMAND...
measure() {
    local name=$1 port=$2 c=$3 round=$4
    shift 4
    say "round $round: $name c=$c"
    # shellcheck disable=SC2086
    $* >"$OUT/server.log" 2>&1 &
    CUR=$!
    if ! wait_port "$port"; then
        NOTES+=("$name c=$c: server did not start ($(tail -1 "$OUT/server.log"))"); cleanup; return
    fi
    case "$CHECKED" in *" $name "*) ;; *)
        CHECKED="$CHECKED$name "
        local bytes
        bytes=$(curl -s -i --max-time 5 "http://127.0.0.1:$port/" | tee "$OUT/response-${name//\//_}.txt" | wc -c)
        { echo "--- $name: $bytes bytes"; tr -d '\r' <"$OUT/response-${name//\//_}.txt"; } >>"$OUT/responses.txt"
        grep -qi '^content-length: 14' "$OUT/response-${name//\//_}.txt" || NOTES+=("$name: unexpected response, see $OUT/responses.txt")
        ;;
    esac
    local url="http://127.0.0.1:$port/" out="$OUT/wrk-${name//\//_}-$c-$round.txt" base cpu0 cpu1
    base=$(nfds "$CUR")
    wrk -t2 -c"$c" -d"${WARM}s" --timeout 10s "$url" >/dev/null 2>&1
    for _ in $(seq 50); do [ "$(nfds "$CUR")" -le $((base + 2)) ] && break; sleep 0.1; done
    cpu0=$(cpu_ticks "$CUR")
    wrk -t2 -c"$c" -d"${DUR}s" --timeout 10s --latency "$url" >"$out" 2>&1 &
    WPID=$!
    wait "$WPID"; WPID=""
    cpu1=$(cpu_ticks "$CUR")
    kill -0 "$CUR" 2>/dev/null || NOTES+=("$name c=$c round $round: server died during the run")
    cleanup
    local rps p50 p99 reqs err
    rps=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    reqs=$(awk '/requests in/{print $1}' "$out")
    err=$(awk '/Socket errors:/{gsub(/,/, ""); s += $4 + $6 + $8 + $10} /Non-2xx/{s += $NF} END{print s + 0}' "$out")
    local cpu
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$HZ" -v d="$DUR" -v n="${reqs:-0}" 'BEGIN{
        if (a == "" || b == "" || n == 0) { print "-\t-"; exit }
        s = (b - a) / hz; printf "%.0f\t%.1f\n", 100 * s / d, 1e6 * s / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$c" "$round" "${rps:--}" "$p50" "$p99" "$cpu" "$err" >>"$RAW"
}

for round in $(seq "$ROUNDS"); do
    for c in $CONNS; do
        # Rotate the order each round so that drift of the machine hits every server alike.
        n=${#SERVERS[@]}
        for k in $(seq 0 $((n - 1))); do
            IFS='|' read -r name port cmd <<<"${SERVERS[$(( (k + round - 1) % n ))]}"
            measure "$name" "$port" "$c" "$round" $cmd
        done
    done
done

echo
echo "== http-compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs shared by wrk and the server (no pinning)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}') -t2 -cN, ${WARM} s warm-up + ${DUR} s measured, fresh server per row, $ROUNDS rounds alternating"
F='%-16s %6s %5s %8s %8s %8s %5s %7s %6s\n'
printf "$F" server conns round "req/s" "p50 ms" "p99 ms" "srv%" "us/req" errors
sort -t$'\t' -k2,2n -k1,1 -k3,3n "$RAW" | awk -F'\t' -v f="$F" '{printf f, $1, $2, $3, $4, $5, $6, $7, $8, $9}'
echo "== medians over the rounds (req/s, us/req, p99 ms):"
awk -F'\t' '{k = $2 "\t" $1; r[k] = r[k] " " $4; u[k] = u[k] " " $8; p[k] = p[k] " " $6}
    function med(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    END { for (k in r) { split(k, x, "\t"); printf "%-16s c=%-5s %8.0f req/s %6.1f us/req %8.2f ms p99\n", x[2], x[1], med(r[k]), med(u[k]), med(p[k]) } }' "$RAW" | sort -k2,2 -k3,3nr
echo "== response sizes (bytes incl. headers):"
grep '^--- ' "$OUT/responses.txt" | sed 's/^--- /   /'
echo "== raw: $RAW; wrk outputs and responses: $OUT"
for s in "${NOTES[@]+"${NOTES[@]}"}"; do echo "== note: $s"; done
