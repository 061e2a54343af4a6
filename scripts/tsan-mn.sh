#!/usr/bin/env bash
# tsan-mn.sh — the M:N tests under ThreadSanitizer.
#
#   scripts/tsan-mn.sh [extra swift test arguments]
#
# Builds the package with -sanitize=thread in its own scratch directory (.build-tsan, or $TSAN_SCRATCH; a first
# build takes a few minutes on 2 cores, so CI does not run it) and runs the MN suite
# (Tests/UserThreadsTests/MN: every MN...Tests suite). Fails if ThreadSanitizer reports anything, even when the tests
# themselves pass (TSAN_OPTIONS halt_on_error=0: every report is printed, then the exit code
# says whether there was one).
#
# What ThreadSanitizer can and cannot see here:
#   * State shared between kernel threads (M:N queues, mailboxes, sync objects, the offload
#     pool) is guarded by KernelLock, a pthread mutex that TSan intercepts. Synchronization.Mutex
#     would be reported as racy on this toolchain (its lock is invisible to TSan), which is why
#     it is not used for that state.
#   * User-thread switches are invisible to TSan (our assembly switches stacks); that is sound
#     here because a started user thread never changes kernel thread: TSan sees each worker as
#     one thread that runs many stacks one after another, which is what it is.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp /tmp/uthreads-tsan.XXXXXX)
TSAN_OPTIONS="halt_on_error=0 ${TSAN_OPTIONS:-}" \
    swift test --scratch-path "${TSAN_SCRATCH:-.build-tsan}" --sanitize=thread --filter 'MN[A-Za-z]*Tests' "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
reports=$(grep -c "WARNING: ThreadSanitizer" "$log" || true)
echo "== tsan-mn: swift test exit $status, ThreadSanitizer reports: $reports (log: $log)"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ]
