// Layer 8: mutex operations used by other primitives (condition variables).
import CUThreads

extension UMutex {
    /// Reacquires the mutex after a condition wait, ignoring cancellation (like
    /// pthread_cond_wait, a waiter always returns holding the mutex). Throws only on deadlock
    /// teardown, when the mutex is not held.
    func lockUncancellable(_ s: Scheduler) throws {
        let me = s.current
        if owner == nil {
            owner = me
            return
        }
        contended = true
        enqueue(me)
        let r = s.park(.mutex, object: id, target: self, deadline: nil, cancellable: false)
        if r != .woken { try r.check() }
    }

    /// Throws unless the calling thread owns the mutex.
    func requireOwner(_ s: Scheduler, _ api: String) throws {
        guard owner == s.current else {
            throw UThreadError.invalidArgument("\(api): \(describeThread(s.current)) does not hold \(label)")
        }
    }
}
