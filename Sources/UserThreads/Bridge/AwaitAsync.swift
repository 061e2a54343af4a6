// Layer 12: Swift concurrency from a user thread — `UThread.await { try await … }`.
//
// Design. The async function runs as an unstructured Swift task on the global (cooperative)
// executor; the user thread parks on its runtime's reactor exactly as `blocking { }` does for
// the offload pool, and the task posts its completion to the runtime's mailbox (a
// lock-protected list plus an eventfd), so the runtime's own kernel thread wakes the user
// thread. Nothing ever blocks a cooperative-pool thread: the task suspends and resumes like any
// other, and the runtime's kernel thread is not one of the pool's.
//
// Cancellation goes both ways: cancelling the user thread cancels the task (and the user
// thread still waits for the task's completion, so its result is never lost and the task never
// outlives the call); the task's `CancellationError` then comes back as the thrown error.
//
// Rejected: blocking the user thread's kernel thread on a semaphore until the task finishes
// (stalls every other user thread of the runtime, and deadlocks outright if the task needs
// that kernel thread); running the async function on the runtime's kernel thread with a custom
// executor (the runtime would have to become a Swift executor, and async code could then hold
// the kernel thread across a user-thread switch).
import Synchronization

/// An async call whose completion comes back to a runtime's mailbox.
final class AsyncCallJob<T: Sendable>: OffloadJob, @unchecked Sendable {
    /// Written by the task before `postCompletion()`, read by the runtime after the mailbox's
    /// Mutex handed the job back: the Mutex orders the two.
    var result: Result<T, any Error>?
    /// Touched only on the runtime's kernel thread.
    var task: Task<Void, Never>?
}

extension UThread where Success == Never {
    /// Runs an async function as a Swift task and parks the calling user thread until it
    /// completes; returns its value or rethrows its error. The other user threads of the runtime
    /// keep running meanwhile, and no thread of Swift's cooperative pool is ever blocked.
    ///
    /// ```swift
    /// let page = try UThread.await { try await httpClient.get(url) }
    /// ```
    ///
    /// Run the runtime on a kernel thread of its own (`UThreadExecutor`, or any thread you
    /// created), not inside a Swift task: a runtime started with `UThreadRuntime.run` from
    /// async code occupies one of the cooperative pool's few threads for as long as it runs,
    /// and if every pool thread is so occupied, the task this call waits for can never run.
    ///
    /// - Parameters:
    ///   - timeout: when it passes, the task is cancelled, the user thread waits for it to end,
    ///     and the call throws `UThreadError.timedOut`. nil: no limit.
    ///   - deadline: the same at an instant; given both, the earlier wins. One already due (a
    ///     timeout not above zero, an instant past) still starts the task, cancels it at once,
    ///     waits for it to end and throws `.timedOut`.
    ///   - body: the async work, run on Swift's global executor.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws; `CancellationError` when the user thread is cancelled and
    ///   the task honours the cancellation (the user thread still waits for the task to end);
    ///   `UThreadError.timedOut` after `timeout` or at `deadline`; `.invalidArgument` when called outside a user
    ///   thread.
    public static func `await`<T: Sendable>(
        timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil,
        _ body: @escaping @Sendable () async throws -> T
    ) throws -> T {
        let s = try Scheduler.requireOrThrow("UThread.await")
        if !s.onUserThread { throw Scheduler.outsideUserThread("UThread.await") }
        let reactor = try Reactor.of(s)
        let job = AsyncCallJob<T>()
        let limit = Deadline.earliest(timeout: timeout, deadline: deadline, now: s.now())
        let outcome = reactor.awaitCompletion(
            job,
            start: { _ in
                job.task = Task.detached {
                    do {
                        job.result = .success(try await body())
                    } catch {
                        job.result = .failure(error)
                    }
                    job.postCompletion()
                }
            }, onCancel: { job.task?.cancel() }, kind: .async, deadline: limit)
        if outcome == .timedOut { throw UThreadError.timedOut }
        return try job.result!.get()
    }
}
