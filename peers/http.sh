#!/usr/bin/env bash
# HTTP/1.1 "hello world" servers under wrk, side by side in one run: anchor
# figures for the green-thread library's own hello server.  See README.md,
# section "HTTP hello servers (http.sh)".
#
#   ./http.sh                 full run (~8 min once the Swift package is built;
#                             a clean first build of src/hb takes ~3.5 min more)
#   QUICK=1 ./http.sh         smoke test: 2 s runs, 100 connections only
#   ONLY='epoll|go' ./http.sh only some server families, a regex over the keys
#                             (epoll go nio hummingbird threads uthreads)
#   CONFIGS=pinned ./http.sh  one configuration only (shared, pinned)
#   ROUNDS=3 ./http.sh        every row three times, the order rotated each round, and the
#                             medians printed (drift of a shared machine hits every server alike)
#   UTHREADS=path ./http.sh   also the project's `uthreads serve` (scripts/compare.sh)
#   SWIFT_SCRATCH=dir         SwiftPM scratch path of the Swift servers (default $B/hb/.build)
#
# Environment knobs: DUR (s, default 10), WARM (s, default 2), CONNS (default
# "100 1000 10000"; 10000 is dropped when the fd hard limit is too low),
# THREAD_CONNS (thread-per-connection server, default "100 1000").
#
# Needs (Debian 12): build-essential golang-go wrk curl time iproute2(ss)
# util-linux(taskset), and
# swift on PATH (Swift 6.x; the package in src/hb resolves its dependencies
# from github.com URLs, here served by the local git mirror).
# Every server listens on 127.0.0.1 only; the script kills only the PIDs it started.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/src"
B="${PEERS_BUILD:-$HERE/build}/http"   # PEERS_BUILD: put builds elsewhere when this folder is read-only
mkdir -p "$B"
Q="${QUICK:-0}"
ONLY="${ONLY:-.}"
if [ "$Q" = 1 ]; then DUR="${DUR:-2}"; WARM="${WARM:-1}"; CONNS="${CONNS:-100}"; THREAD_CONNS="${THREAD_CONNS:-100}"; fi
DUR="${DUR:-10}"
WARM="${WARM:-2}"
CONNS="${CONNS:-100 1000 10000}"
THREAD_CONNS="${THREAD_CONNS:-100 1000}"
ROUNDS="${ROUNDS:-1}"
RAW="$B/results.tsv"
: >"$RAW"
SKIPPED=()
NOTES=()
T_START=$(date +%s)

say() { echo "[http.sh] $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# ------------------------------------------------------------ limits
# Each of wrk and the server needs one fd per connection (+ a few).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || true
NOFILE=$(ulimit -n)
say "ulimit -n = $NOFILE (hard $hard)"
conns_ok() { [ "$1" -le $((NOFILE - 100)) ]; }
for c in $CONNS $THREAD_CONNS; do
    conns_ok "$c" || NOTES+=("$c connections skipped: ulimit -n is $NOFILE")
done

# ------------------------------------------------------------ build
say "building into $B"
BUILD_SWIFT_S=-; BUILD_GO_S=-
HAVE_C=0; HAVE_GO=0; HAVE_SWIFT=0
if have gcc; then
    gcc -O2 -Wall -o "$B/epoll_hello" "$SRC/http/epoll_hello.c" &&
        gcc -O2 -Wall -pthread -o "$B/threads_hello" "$SRC/http/threads_hello.c" && HAVE_C=1
else
    SKIPPED+=("C servers: gcc missing (apt-get install build-essential)")
fi
if have go; then
    t0=$(date +%s.%N)
    (cd "$SRC/http/go" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$B/go-hello" .) && HAVE_GO=1
    BUILD_GO_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
else
    SKIPPED+=("Go server: apt-get install golang-go")
fi
if have swift; then
    # SwiftPM sometimes recompiles Hummingbird (~40 s) even when nothing
    # changed, so skip `swift build` while both binaries are newer than every
    # source file of the package (SWIFT_BUILD=1 forces it).
    # Build a copy of the package under $B, so this folder may be read-only.
    mkdir -p "$B/hb" && cp -r "$SRC/hb/Package.swift" "$SRC/hb/Sources" "$B/hb/"
    SCRATCH="${SWIFT_SCRATCH:-$B/hb/.build}"
    SWIFT_BIN="$SCRATCH/release"
    # Only the products ONLY asks for (Hummingbird alone takes minutes to build).
    PRODUCTS=()
    [[ nio =~ $ONLY ]] && PRODUCTS+=(nio-hello)
    [[ hummingbird =~ $ONLY ]] && PRODUCTS+=(hb-hello)
    stale() { # BINARY SOURCES_DIR: binary missing or older than its sources or the manifest
        [ ! -x "$1" ] || [ -n "$(find "$2" "$SRC/hb/Package.swift" \
            -newer "$1" 2>/dev/null | head -1)" ]
    }
    any_stale=0
    for p in "${PRODUCTS[@]+"${PRODUCTS[@]}"}"; do stale "$SWIFT_BIN/$p" "$SRC/hb/Sources/$p" && any_stale=1; done
    if [ "${SWIFT_BUILD:-0}" != 1 ] && [ $any_stale = 0 ]; then
        HAVE_SWIFT=1; BUILD_SWIFT_S="up to date, not rerun"
    else
        t0=$(date +%s.%N)
        HAVE_SWIFT=1
        for p in "${PRODUCTS[@]}"; do
            swift build -c release --package-path "$B/hb" --scratch-path "$SCRATCH" --product "$p" >>"$B/swift-build.log" 2>&1 ||
                { HAVE_SWIFT=0; SKIPPED+=("Swift servers: swift build of $p failed, see $B/swift-build.log"); }
        done
        BUILD_SWIFT_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}')
    fi
else
    SKIPPED+=("Swift servers: swift not on PATH")
fi
have wrk || { say "wrk missing: apt-get install wrk"; exit 1; }
have taskset || SKIPPED+=("pinned configuration: taskset missing (util-linux)")
T_BUILT=$(date +%s)

# ------------------------------------------------------------ run
CUR=""                                 # PID of the server now running (ours)
WPID=""                                # PID of the measuring wrk (ours), while it runs
cleanup() {
    if [ -n "$WPID" ] && kill -0 "$WPID" 2>/dev/null; then   # /usr/bin/time and its wrk
        # shellcheck disable=SC2046
        kill $(cat /proc/"$WPID"/task/*/children 2>/dev/null) "$WPID" 2>/dev/null
        wait "$WPID" 2>/dev/null
    fi
    WPID=""
    if [ -n "$CUR" ] && kill -0 "$CUR" 2>/dev/null; then
        kill "$CUR" 2>/dev/null; wait "$CUR" 2>/dev/null
    fi
    CUR=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# wait_port PORT: until a TCP connect succeeds (10 s at most)
wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$CUR" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# to_ms "1.23ms" -> 1.230
to_ms() {
    awk -v v="$1" 'BEGIN{
        if (v == "") { print "-"; exit }
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# nfds PID: open file descriptors of the process (ls -f: unsorted, cheap at 10k)
nfds() { ls -f "/proc/$1/fd" 2>/dev/null | wc -l; }

HZ=$(getconf CLK_TCK)
# cpu_ticks PID: user+system CPU ticks of the whole process (exited threads included)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

CHECKED=" "
# measure SERVER CONFIG PORT CONNS -- server command...
# CONFIG "shared": no pinning; "pinned": server on CPU 0, wrk on CPU 1.
measure() {
    local name=$1 cfg=$2 port=$3 c=$4
    shift 5
    local spin=() wpin=()
    if [ "$cfg" = pinned ]; then spin=(taskset -c 0); wpin=(taskset -c 1); fi
    conns_ok "$c" || return 0
    say "$name [$cfg] c=$c"
    "${spin[@]}" "$@" >"$B/server.log" 2>&1 &
    CUR=$!
    if ! wait_port "$port"; then
        say "FAILED to start: $name"; SKIPPED+=("$name [$cfg] c=$c: server did not start ($(tail -1 "$B/server.log"))")
        cleanup; return 0
    fi
    # One response check per server: status, Content-Length, body (its case aside: `uthreads serve`
    # answers "Hello, World!", the peers "Hello, world!").
    case "$CHECKED" in *" $name "*) ;; *)
        CHECKED="$CHECKED$name "
        local r
        r=$(curl -s -i --max-time 5 "http://127.0.0.1:$port/" | tr -d '\r')
        if printf '%s' "$r" | grep -qi '^content-length: 14$' && printf '%s' "$r" | grep -qi '^Hello, world!$' &&
            printf '%s' "$r" | head -1 | grep -q '^HTTP/1.1 200'; then
            echo "--- $name" >>"$B/responses.txt"; printf '%s\n' "$r" >>"$B/responses.txt"
        else
            NOTES+=("$name: unexpected response: $(printf '%s' "$r" | head -3 | tr '\n' '|')")
        fi ;;
    esac
    local url="http://127.0.0.1:$port/" out="$B/wrk-${name//\//_}-$cfg-$c-r$ROUND.txt"
    local base cpu0 cpu1 wpid t0 el hwm thr=- est=- ramp="" rps p50 p99 err reqs scpu wcpu
    base=$(nfds "$CUR")
    "${wpin[@]}" wrk -t2 -c"$c" -d"${WARM}s" --timeout 10s "$url" >/dev/null 2>&1
    # Let the server close the warm-up connections first (5 s at most).
    for _ in $(seq 50); do [ "$(nfds "$CUR")" -le $((base + 2)) ] && break; sleep 0.1; done
    cpu0=$(cpu_ticks "$CUR")
    t0=${EPOCHREALTIME/./}                            # microseconds
    /usr/bin/time -f '%e %U %S' -o "$B/wrk.time" \
        "${wpin[@]}" wrk -t2 -c"$c" -d"${DUR}s" --timeout 10s --latency "$url" >"$out" 2>&1 &
    wpid=$!; WPID=$wpid
    # While wrk runs: "ramp" = seconds until the server holds all c connections
    # (open fds >= base + c; polled every 0.1 s, then 0.5 s after 2 s), and at
    # half time the server's thread count and the established server-side sockets.
    while kill -0 "$wpid" 2>/dev/null; do
        el=$((${EPOCHREALTIME/./} - t0))
        if [ -z "$ramp" ] && [ "$(nfds "$CUR")" -ge $((base + c)) ]; then
            printf -v ramp '%d.%d' $((el / 1000000)) $((el % 1000000 / 100000))
        fi
        if [ "$thr" = - ] && [ $el -ge $((DUR * 500000)) ]; then
            thr=$(awk '/^Threads/{print $2}' "/proc/$CUR/status" 2>/dev/null)
            est=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
        fi
        if [ -n "$ramp" ] && [ "$thr" != - ]; then break; fi
        if [ $el -lt 2000000 ]; then sleep 0.1; else sleep 0.5; fi
    done
    wait "$wpid"; WPID=""
    [ -n "$ramp" ] || ramp=">$DUR"
    cpu1=$(cpu_ticks "$CUR")
    hwm=$(awk '/^VmHWM/{printf "%.1f", $2/1024}' "/proc/$CUR/status" 2>/dev/null)
    kill -0 "$CUR" 2>/dev/null || NOTES+=("$name [$cfg] c=$c: server died during the run")
    cleanup
    rps=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    err=$(awk '/Socket errors:/{gsub(/,/, ""); s += $4 + $6 + $8 + $10}
               /Non-2xx/{s += $NF} END{print s + 0}' "$out")
    reqs=$(awk '/requests in/{print $1}' "$out")
    # server CPU: % of one CPU over the measured run, and CPU microseconds per request
    scpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$HZ" -v d="$DUR" -v n="${reqs:-0}" 'BEGIN{
        if (a == "" || b == "") { print "-\t-"; exit }
        s = (b - a) / hz; u = (n > 0) ? sprintf("%.1f", 1e6 * s / n) : "-"
        printf "%.0f\t%s\n", 100 * s / d, u }')
    # wrk CPU: % of one CPU (user+sys over its wall time)
    wcpu=$(awk 'NF == 3 && $1 > 0 {printf "%.0f", 100 * ($2 + $3) / $1}' "$B/wrk.time" 2>/dev/null)
    [ -n "$rps" ] || { SKIPPED+=("$name [$cfg] c=$c: wrk gave no result, see $out"); rps=-; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$cfg" "$c" "$rps" "$p50" \
        "$p99" "${hwm:--}" "$err" "${thr:--}" "$est" "$ramp" "$scpu" "${wcpu:--}" "$ROUND" >>"$RAW"
}

: >"$B/responses.txt"
# The rows are collected first (job), then measured ROUNDS times, the order rotated by one
# each round.
JOBS=()
job() { local IFS=$'\x1f'; JOBS+=("$*"); }
# CONFIGS="pinned" (or "shared") runs one configuration only.
if [ -n "${CONFIGS:-}" ]; then read -r -a CONFIGS <<<"$CONFIGS"; else CONFIGS=(shared); have taskset && CONFIGS+=(pinned); fi
for cfg in "${CONFIGS[@]}"; do
    # UTHREADS=path/to/uthreads adds the project's own server (scripts/compare.sh sets it):
    # one worker (M:1) in both configurations, two workers (M:N) in the shared one.
    if [ -n "${UTHREADS:-}" ] && [ -x "$UTHREADS" ] && [[ uthreads =~ $ONLY ]]; then
        for c in $CONNS; do job "uthreads-serve" "$cfg" 18090 "$c" -- "$UTHREADS" serve --port 18090 --workers 1; done
        if [ "$cfg" = shared ]; then
            for c in $CONNS; do job "uthreads-serve-2w" "$cfg" 18091 "$c" -- "$UTHREADS" serve --port 18091 --workers 2; done
        fi
    fi
    # Multi-threaded variants only in the shared configuration: pinned, they
    # would just time-slice one core.
    if [ $HAVE_C = 1 ] && [[ epoll =~ $ONLY ]]; then
        for c in $CONNS; do job "c-epoll" "$cfg" 18084 "$c" -- "$B/epoll_hello" 18084; done
    fi
    if [ $HAVE_GO = 1 ] && [[ go =~ $ONLY ]]; then
        for c in $CONNS; do
            job "go-net/http-P1" "$cfg" 18081 "$c" -- env GOMAXPROCS=1 "$B/go-hello" 18081
        done
        if [ "$cfg" = shared ]; then
            for c in $CONNS; do
                job "go-net/http-P2" "$cfg" 18086 "$c" -- env GOMAXPROCS=2 "$B/go-hello" 18086
            done
        fi
    fi
    if [ $HAVE_SWIFT = 1 ] && [[ nio =~ $ONLY ]]; then
        for c in $CONNS; do job "swift-nio-1EL" "$cfg" 18083 "$c" -- "$SWIFT_BIN/nio-hello" 18083 1; done
        # Same server accepting up to 256 connections per wakeup of the listening
        # socket instead of NIO's default 4 (only where the accept ramp matters).
        for c in $CONNS; do
            [ "$c" -ge 1000 ] || continue
            job "swift-nio-1EL-acc256" "$cfg" 18089 "$c" -- "$SWIFT_BIN/nio-hello" 18089 1 256
        done
        if [ "$cfg" = shared ]; then
            for c in $CONNS; do job "swift-nio-2EL" "$cfg" 18087 "$c" -- "$SWIFT_BIN/nio-hello" 18087 2; done
        fi
    fi
    if [ $HAVE_SWIFT = 1 ] && [[ hummingbird =~ $ONLY ]]; then
        # shared: NIO's default of one event loop per CPU; pinned: one event loop.
        if [ "$cfg" = shared ]; then
            for c in $CONNS; do job "hummingbird-2EL" "$cfg" 18082 "$c" -- "$SWIFT_BIN/hb-hello" 18082 2; done
        else
            for c in $CONNS; do job "hummingbird-1EL" "$cfg" 18088 "$c" -- "$SWIFT_BIN/hb-hello" 18088 1; done
        fi
    fi
    if [ $HAVE_C = 1 ] && [[ threads =~ $ONLY ]]; then
        for c in $THREAD_CONNS; do job "c-thread-per-conn" "$cfg" 18085 "$c" -- "$B/threads_hello" 18085; done
    fi
done
ROUND=1
while [ "$ROUND" -le "$ROUNDS" ]; do
    n=${#JOBS[@]}
    for ((k = 0; k < n; k++)); do
        IFS=$'\x1f' read -r -a args <<<"${JOBS[$(( (k + ROUND - 1) % n ))]}"
        measure "${args[@]}"
    done
    ROUND=$((ROUND + 1))
done
T_END=$(date +%s)

# ------------------------------------------------------------ table
echo
echo "== http hello servers: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)"
echo "== $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), -t2, ${WARM} s warm-up + ${DUR} s measured," \
    "fresh server process per row; gcc $(gcc -dumpfullversion 2>/dev/null)," \
    "$(go version 2>/dev/null | awk '{print $3}'), $(swift --version 2>/dev/null | head -1 | sed 's/ (.*//')"
echo "== shared: server and wrk float over both CPUs; pinned: server on CPU 0, wrk on CPU 1"
[ "$Q" = 1 ] && echo "== QUICK=1: smoke-test durations, the figures are NOT meaningful"
[ "$ROUNDS" -gt 1 ] && echo "== $ROUNDS rounds, the order of the rows rotated by one each round"
F='%-20s %-6s %6s %5s %8s %8s %9s %7s %6s %5s %6s %5s %5s %6s %5s\n'
printf "$F" server config conns round "req/s" "p50 ms" "p99 ms" "RSS MiB" errors thr est "ramp" "srv%" "us/req" "wrk%"
sort -t$'\t' -s -k2,2 -k3,3n -k1,1 -k15,15n "$RAW" |
    awk -F'\t' -v f="$F" '{printf f, $1, $2, $3, $15, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14}'
if [ "$ROUNDS" -gt 1 ]; then
    echo "== medians over the rounds:"
    awk -F'\t' '{k = $1 "\t" $2 "\t" $3; r[k] = r[k] " " $4; u[k] = u[k] " " $13; p[k] = p[k] " " $6}
        function med(s,   a, n, i, j, t) { n = split(s, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        END { for (k in r) { split(k, x, "\t")
            printf "%-20s %-6s c=%-5s %8.0f req/s %6.1f us/req %9.3f ms p99\n", x[1], x[2], x[3], med(r[k]), med(u[k]), med(p[k]) } }' "$RAW" |
        sort -k2,2 -k3,3 -k4,4nr
fi
echo "== RSS MiB: VmHWM (peak resident set) of the server process (user memory only: kernel socket"
echo "   buffers and thread kernel stacks are not in it).  thr: server threads and est: established"
echo "   server-side TCP connections, both sampled mid-run.  ramp: seconds from wrk's start until the"
echo "   server had accepted all connections (wrk 4 adds coordinated-omission samples for every long"
echo "   wait, so a slow ramp shows up as a p99 of seconds).  srv%: server CPU time / run time (100 = one"
echo "   CPU); us/req: server CPU microseconds per request.  wrk%: wrk's CPU (pinned: 100 = its one CPU"
echo "   is saturated, the row is client-bound).  errors: wrk socket errors + non-2xx responses."
echo "== build: swift build -c release: ${BUILD_SWIFT_S}; go build ${BUILD_GO_S} s;" \
    "runs $((T_END - T_BUILT)) s; raw: $RAW, wrk outputs: $B/wrk-*.txt"
for s in "${NOTES[@]+"${NOTES[@]}"}"; do echo "== note: $s"; done
for s in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do echo "== skipped/failed: $s"; done
