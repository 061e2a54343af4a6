#!/usr/bin/env bash
# Builds the libFuzzer harness of the HTTP parser (fuzz/http-parser) with AddressSanitizer and
# runs it from the seed corpus for a bounded time. Exits non-zero on any finding (a crash, a
# sanitizer report or a broken invariant: see the harness); libFuzzer saves the input as
# crash-* in the output directory: turn it into a regression test in the Swift test suite.
#
#   scripts/fuzz-http.sh [seconds]          (default 30; CI runs it with 30)
#   FUZZ_OUT=dir scripts/fuzz-http.sh       (where the binary, new corpus entries and crashes go;
#                                            default .build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
out="${FUZZ_OUT:-.build-fuzz}"
mkdir -p "$out/corpus"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name FuzzHTTPParser \
    fuzz/http-parser/FuzzHTTPParser.swift \
    Sources/UserThreadsHTTP/HTTPParser.swift Sources/UserThreadsHTTP/HTTPRequest.swift \
    -o "$out/fuzz-http-parser"
# New inputs go to $out/corpus (scratch); the seeds in the repository are only read. Swift's
# own crash backtracer is off (libFuzzer and ASan report; the backtracer takes minutes here).
export SWIFT_BACKTRACE=enable=no
"$out/fuzz-http-parser" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" fuzz/http-parser/corpus
echo "fuzz-http: no finding in ${seconds} s"
