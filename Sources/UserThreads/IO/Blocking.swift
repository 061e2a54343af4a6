// Layer 9: `blocking { }` — run a call that can never be non-blocking on the offload pool.
//
// The wait has a timeout, a deadline and cancellation like every other wait (the earlier of
// timeout and deadline wins: `Deadline.earliest`), but the call itself cannot be stopped: a
// kernel thread running arbitrary code cannot be interrupted. So the *waiter* stops waiting
// (Java's `Future.get(timeout)`, Go's `select` on a context beside a result channel) and the
// call is abandoned to the pool, which drops it unrun if no pool thread has taken it yet, or
// finishes it and releases its result (OffloadPool.swift, "Abandoned calls"). The jacket's C
// calls point into their caller's frame and must never outlive the wait: they use
// `blockingToCompletion`, which is not cancellable.
//
// Rejected: keeping `blocking {}` uncancellable and telling callers to check
// `UThread.isCancelled` afterwards (the old rule: a hung resolver or NFS mount then hung its
// user thread for good, with no way to give up); cancelling the body cooperatively (a
// `blocking {}` body is arbitrary blocking code with no cancellation points of ours to check);
// running the body again or elsewhere on a timeout (calls with side effects would happen twice).
import Glibc

/// Runs `body` on a kernel thread of the offload pool while the calling user thread parks
/// (the runtime keeps running its other threads), and returns its value or rethrows its error.
///
/// Use it for regular files (open, read, write, fsync, stat), `getaddrinfo`, and any library
/// call that blocks. The thread table shows the thread as "blocking call".
///
/// The wait ends at `timeout`, at `deadline` (given both, the earlier wins) or when the thread
/// is cancelled, but the call cannot be interrupted: it is *abandoned*. If no pool thread has
/// started it yet, it never runs; otherwise it runs on to its end in the background and its
/// result is released there (so return values that own something — a descriptor, a buffer —
/// as a class whose `deinit` frees it). A call that had already returned when the wait ended is
/// not abandoned: its result is returned. A timeout not above zero, a past deadline or a thread
/// already cancelled throw at once and the call never runs (a call on the pool cannot be
/// "tried once" without waiting), so cleanup in a cancelled thread's `defer` cannot offload.
///
/// An abandoned call still occupies its pool thread until it returns. The pool then starts one
/// more thread per abandoned call still running, up to twice ``UThreadRuntime/blockingPoolSize``;
/// beyond that new calls queue, the runtime log warns once, and
/// ``UThreadRuntime/blockingPoolStatistics`` counts the abandoned calls.
///
/// ```swift
/// let bytes = try blocking(timeout: .seconds(2)) { try readWholeFile("/etc/hostname") }
/// ```
///
/// - Parameters:
///   - timeout: how long to wait for the call. nil: no limit.
///   - deadline: the instant the wait ends. nil: no limit.
///   - body: the blocking call, run on a pool thread.
/// - Throws: what `body` throws; `UThreadError.timedOut` at the timeout or deadline;
///   `CancellationError` when the thread is cancelled; `UThreadError.invalidArgument` when called
///   outside a user thread (a `blocking {}` body included: it runs on a pool thread).
public func blocking<T: Sendable>(
    timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil,
    _ body: @escaping @Sendable () throws -> T
) throws -> T {
    let s = try Scheduler.requireOrThrow("blocking { }")
    let reactor = try Reactor.of(s)
    let job = TypedOffloadJob(body)
    let limit = Deadline.earliest(timeout: timeout, deadline: deadline, now: s.now())
    try reactor.offload(job, deadline: limit).check()
    return try job.result!.get()
}

/// `blocking { }` whose wait cannot time out or be cancelled: for bodies that point into the
/// caller's frame (the jacket's C calls), which must not run on after the caller returns.
func blockingToCompletion<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let s = try Scheduler.requireOrThrow("blocking { }")
    let reactor = try Reactor.of(s)
    let job = TypedOffloadJob(body)
    reactor.offloadToCompletion(job)
    return try job.result!.get()
}

extension UThreadRuntime {
    /// The most kernel threads the offload pool behind `blocking { }` starts for calls that
    /// are waited for (default 4; they are started one at a time, only when all are busy).
    /// Threads running abandoned calls do not count, up to as many again (see ``blocking(timeout:deadline:_:)``).
    /// Shared by every runtime in the process. At least 1: a smaller value sets 1 (with none,
    /// every `blocking {}` would wait forever). Lowering it stops no thread already started.
    public static var blockingPoolSize: Int {
        get { OffloadPool.shared.maximumThreads }
        set { OffloadPool.shared.maximumThreads = newValue }
    }

    /// Kernel threads the offload pool has started so far.
    public static var blockingPoolThreads: Int { OffloadPool.shared.threadCount }

    /// The offload pool's figures (shared by every runtime in the process), read at one moment.
    public static var blockingPoolStatistics: BlockingPoolStatistics {
        let f = OffloadPool.shared.statistics
        return BlockingPoolStatistics(
            threads: f.threads, maximumThreads: f.maximumThreads, queued: f.queued,
            abandonedRunning: f.abandonedRunning, abandonedTotal: f.abandonedTotal)
    }

    /// The offload pool behind `blocking { }` at one moment.
    public struct BlockingPoolStatistics: Sendable, Hashable {
        /// Kernel threads started so far (they live until the process exits).
        public var threads: Int
        /// ``UThreadRuntime/blockingPoolSize``.
        public var maximumThreads: Int
        /// Calls waiting for a pool thread.
        public var queued: Int
        /// Calls whose waiter stopped waiting (timed out or cancelled) and that still occupy a
        /// pool thread until they return.
        public var abandonedRunning: Int
        /// Calls abandoned in the process's life, queued (never run) or running.
        public var abandonedTotal: UInt64
    }
}
