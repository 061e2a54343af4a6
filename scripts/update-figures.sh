#!/usr/bin/env bash
# Regenerates the figures tables of README.md and docs/BENCHMARKS.md from the run files their
# markers name (<!-- figures: TABLE RUNFILE --> … <!-- /figures -->; Bench/Figures.swift).
#   scripts/update-figures.sh            rewrite the tables
#   scripts/update-figures.sh --check    only compare (fails when a table is stale or edited)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
UTHREADS="${UTHREADS:-}"
if [ -z "$UTHREADS" ]; then
    (cd "$ROOT" && swift build --product uthreads >&2)
    UTHREADS="$(cd "$ROOT" && swift build --show-bin-path)/uthreads"
fi
"$UTHREADS" bench figures "$@" "$ROOT/README.md" "$ROOT/docs/BENCHMARKS.md"
