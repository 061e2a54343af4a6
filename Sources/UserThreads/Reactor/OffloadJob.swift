// Layer 7: one call handed to the offload pool.
//
// Ownership across kernel threads: the runtime fills `waiter` and `mailbox` before submitting
// (the pool's Mutex publishes them); the pool thread runs `execute()`, which stores the result,
// then posts the job to the mailbox (whose Mutex publishes the result back). Neither side
// touches the job in between, hence @unchecked Sendable.
import Synchronization

class OffloadJob: @unchecked Sendable {
    /// The parked thread's control block, as bits (a pointer is not Sendable; only the runtime
    /// that owns it ever turns it back into one).
    var waiter: UInt = 0
    var mailbox: CompletionMailbox?

    /// Runs on a pool thread.
    final func runAndPost() {
        execute()
        postCompletion()
    }

    /// Hands the finished job back to its runtime (any kernel thread, once).
    final func postCompletion() {
        let box = mailbox
        mailbox = nil
        box?.post(self)
    }

    func execute() {}
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
}
