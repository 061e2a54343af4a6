#!/usr/bin/env bash
# Builds the DocC documentation of UserThreads and fails on any docc warning or on a public
# symbol without a doc comment. Not part of `swift test`: the plugin build takes ~20-60 s.
#
#   scripts/check-docs.sh [scratch-path]      (default: .build-docs)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${1:-.build-docs}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
swift package --scratch-path "$scratch" generate-documentation --target UserThreads 2>&1 | tee "$log"
if grep -q "warning:" "$log"; then
    echo "check-docs: docc printed warnings (above)" >&2
    exit 1
fi
graph="$(find "$scratch" -path '*extracted-symbols*' -name 'UserThreads.symbols.json' | head -1)"
if [ -z "$graph" ]; then
    echo "check-docs: no symbol graph found under $scratch" >&2
    exit 1
fi
if ! python3 scripts/undocumented-symbols.py "$graph"; then
    echo "check-docs: the public symbols above have no doc comment" >&2
    exit 1
fi
echo "check-docs: documentation builds without warnings; every public symbol is documented"
