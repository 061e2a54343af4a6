#!/usr/bin/env bash
# Regenerates the figures tables of README.md and docs/BENCHMARKS.md from the run files their
# markers name (<!-- figures: TABLE RUNFILE --> … <!-- /figures -->; Bench/Figures.swift).
#   scripts/update-figures.sh            rewrite the tables and docs/bench-comparison.svg
#   scripts/update-figures.sh --check    only compare (fails when a table is stale or edited)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
UTHREADS="${UTHREADS:-}"
if [ -z "$UTHREADS" ]; then
    (cd "$ROOT" && swift build --product uthreads >&2)
    UTHREADS="$(cd "$ROOT" && swift build --show-bin-path)/uthreads"
fi
"$UTHREADS" bench figures "$@" "$ROOT/README.md" "$ROOT/docs/BENCHMARKS.md"
# The comparison chart, from the run file the BENCHMARKS comparison table names.
run=$(sed -n 's/^<!-- figures: comparison \([^ ]*\) -->$/\1/p' "$ROOT/docs/BENCHMARKS.md" | head -1)
if [ -n "$run" ] && [ "${1:-}" != --check ]; then
    "$UTHREADS" bench figures --svg "$ROOT/docs/bench-comparison.svg" "$ROOT/docs/$run"
fi
