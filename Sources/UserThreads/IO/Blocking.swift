// Layer 9: `blocking { }` — run a call that can never be non-blocking on the offload pool.
import Glibc

/// Runs `body` on a kernel thread of the offload pool while the calling user thread parks
/// (the runtime keeps running its other threads), and returns its value or rethrows its error.
///
/// Use it for regular files (open, read, write, fsync, stat), `getaddrinfo`, and any library
/// call that blocks. The wait cannot be cancelled (a kernel thread running arbitrary code
/// cannot be interrupted): check `UThread.isCancelled` afterwards if that matters. The thread
/// table shows the thread as "blocking call".
///
/// ```swift
/// let bytes = try blocking { try readWholeFile("/etc/hostname") }
/// ```
///
/// - Throws: what `body` throws; `UThreadError.invalidArgument` when called outside a user
///   thread (a `blocking {}` body included: it runs on a pool thread).
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let s = try Scheduler.requireOrThrow("blocking { }")
    let reactor = try Reactor.of(s)
    let job = TypedOffloadJob(body)
    reactor.offload(job)
    return try job.result!.get()
}

extension UThreadRuntime {
    /// The most kernel threads the offload pool behind `blocking { }` starts (default 4; they
    /// are started one at a time, only when all are busy). Shared by every runtime in the process.
    /// At least 1: a smaller value sets 1 (with none, every `blocking {}` would wait forever).
    /// Lowering it stops no thread already started.
    public static var blockingPoolSize: Int {
        get { OffloadPool.shared.maximumThreads }
        set { OffloadPool.shared.maximumThreads = newValue }
    }

    /// Kernel threads the offload pool has started so far.
    public static var blockingPoolThreads: Int { OffloadPool.shared.threadCount }
}
