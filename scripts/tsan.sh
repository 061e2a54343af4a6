#!/usr/bin/env bash
# tsan.sh — the library's tests under ThreadSanitizer (CI runs it).
#
#   scripts/tsan.sh [extra swift test arguments]     e.g. --filter 'UserThreadsTests\.MN'
#
# Builds the package with -sanitize=thread in its own scratch directory (.build-tsan, or
# $TSAN_SCRATCH; a first build takes 1-3 minutes on 2 cores) and runs every suite except the
# command-line ones (CommandLineTests, KernelBenchCommandLineTests: they start the `uthreads`
# binary as a child process to run benchmarks, slow under TSan, and its Swift-concurrency
# peers use Synchronization.Mutex as users write them, which TSan cannot see: below) and
# JacketTests (they run jacket-probe, whose read, write, poll, … are the jacket's definitions in
# place of ThreadSanitizer's own interceptors of those calls), and the suites whose tests run
# the `uthreads` binary as a child process (bench output, serve, stack overflows, crash and
# mapping-limit scenarios, the SIGQUIT dump, the kernel view, the scheduling lab): a child's
# reports would not reach this log, its crash reports and memory limits differ under TSan (its
# shadow memory runs out past the mapping limit), and each such test holds one of Swift
# Testing's few worker threads for many seconds, so on 2 CPUs the other tests queued behind
# them ran past their one-minute time limits. `swift test` runs them all. The
# M:N suites (Tests/UserThreadsTests/MN) are the ones with most to find; the bridge to Swift
# concurrency, the offload pool, the kernel-thread backend and the control socket also cross
# kernel threads. ~30 s of tests after the build. Fails if ThreadSanitizer reports anything,
# even when the tests themselves pass (TSAN_OPTIONS halt_on_error=0: every report is printed,
# then the exit code says whether there was one).
#
# What ThreadSanitizer can and cannot see here:
#   * State shared between kernel threads (M:N queues, mailboxes, the offload pool, the
#     executor's inbox, the kernel backend's thread list, the snapshot slot) is guarded by
#     KernelLock, a pthread mutex that TSan intercepts; shared sync objects by a futex word in C
#     (CUThreads/sync_lock.c), whose atomics TSan instruments. Synchronization.Mutex would
#     be reported as racy on this toolchain (its lock is invisible to TSan), which is why the
#     library does not use it for that state.
#   * An inout access to a class's stored property is a write to TSan even when the code only
#     reads through the pointer: state several kernel threads read at once is read with a read
#     access (ThreadObject.peek).
#   * Every user-thread switch is announced to TSan as a fiber switch (uthreads_switch_tsan), so
#     a thread that migrates to another worker is a fiber resumed by another kernel
#     thread, which TSan supports; the handoff through the migrants queue's lock orders it.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp /tmp/uthreads-tsan.XXXXXX)
TSAN_OPTIONS="halt_on_error=0 ${TSAN_OPTIONS:-}" \
    swift test --scratch-path "${TSAN_SCRATCH:-.build-tsan}" --sanitize=thread \
        --skip 'CommandLineTests|KernelBenchCommandLineTests|JacketTests|BenchOutputTests|ServeCommandTests|StackOverflowTests|ChildProcessTests|DumpSignalWorkersTests|KernelCommandLineTests|SchedCommandTests' "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
reports=$(grep -c "WARNING: ThreadSanitizer" "$log" || true)
echo "== tsan: swift test exit $status, ThreadSanitizer reports: $reports (log: $log)"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ]
