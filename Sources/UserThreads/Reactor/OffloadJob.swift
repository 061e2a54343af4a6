// Layer 7: one call handed to the offload pool.
//
// Ownership across kernel threads: the runtime fills `waiter` and `mailbox` before submitting
// (the pool's lock publishes them); the pool thread runs `execute()`, which stores the result,
// then posts the job to the mailbox (whose lock publishes the result back). Neither side
// touches the job in between, hence @unchecked Sendable.
//
// Abandoning (a `blocking {}` wait that timed out or was cancelled): `poolState`, read and
// written only under the offload pool's lock, says who owns the job's result. The pool thread
// finishes the call and, seeing `.abandoned`, drops the result and the mailbox itself and posts
// nothing, so the runtime never hears of the job again (its waiter may have finished, its
// runtime may have ended). OffloadPool.swift's essay has the rules.
import Synchronization

class OffloadJob: @unchecked Sendable {
    /// Where a pool job is (guarded by the offload pool's lock; unused by other completions).
    enum PoolState {
        /// In the pool's queue: no pool thread has taken it.
        case queued
        /// A pool thread runs it.
        case running
        /// It returned; its completion is posted (or about to be) to `mailbox`.
        case finished
        /// Its waiter stopped waiting: nothing is posted, the result is released where the call
        /// returns (a queued job is dropped unrun).
        case abandoned
    }

    /// The parked thread's control block, as bits (a pointer is not Sendable; only the runtime
    /// that owns it ever turns it back into one).
    var waiter: UInt = 0
    var mailbox: CompletionMailbox?
    /// Guarded by `OffloadPool`'s lock.
    var poolState = PoolState.queued

    /// Hands the finished job back to its runtime (any kernel thread, once).
    final func postCompletion() {
        let box = mailbox
        mailbox = nil
        box?.post(self)
    }

    /// An abandoned job's leftovers, dropped on the pool thread: its result (a value whose
    /// deinit frees what it owns) and its mailbox. Nothing is posted.
    final func discard() {
        mailbox = nil
        discardResult()
    }

    func execute() {}

    /// Releases the result (and the body if it never ran). Called on the pool thread, which
    /// then owns the abandoned job alone.
    func discardResult() {}
}

/// A job returning `T` or an error.
final class TypedOffloadJob<T: Sendable>: OffloadJob, @unchecked Sendable {
    private var body: (@Sendable () throws -> T)?
    private(set) var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        self.body = body
    }

    override func execute() {
        result = Result(catching: body!)
        body = nil  // release captures on the pool thread, before the hand-back
    }

    override func discardResult() {
        body = nil
        result = nil
    }
}
