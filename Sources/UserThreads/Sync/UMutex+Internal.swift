// Layer 8: mutex operations used by other primitives (condition variables).
import CUThreads

extension UMutex {
    /// Reacquires the mutex after a condition wait, ignoring cancellation (like
    /// pthread_cond_wait, a waiter always returns holding the mutex). Throws only on deadlock
    /// teardown, when the mutex is not held.
    func lockUncancellable() throws {
        let r = try lock(deadline: nil, cancellable: false)
        if r != .woken { try r.check() }
    }

    /// Throws unless the calling thread owns the mutex.
    func requireOwner(_ api: String) throws {
        let me = uthreads_get_current()
        guard let me, holderID == me.pointee.id else {  // exact: only the caller changes it
            let who = me.map(describeThread) ?? "code outside a user thread"
            throw UThreadError.invalidArgument("\(api): \(who) does not hold \(label)")
        }
    }
}
