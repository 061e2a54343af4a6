// Layer 11: M:N condition variables — used with an MNMutex, across workers.
//
// Design: a FIFO of waiters behind the object's KernelLock. wait() checks that the caller
// holds the mutex, enqueues itself on the condition, and only then releases the mutex (both
// inside the park's registration, before the thread is switched out), so a signal sent right
// after the release cannot be lost: a remote signal is applied by the waiter's worker only
// after the waiter is parked. It then parks and, whatever the outcome, reacquires the mutex
// (ignoring cancellation, as pthread_cond_wait and UCondition do) before returning or
// throwing. A waiter whose wait ends by timeout or cancellation just as it is signalled keeps
// the signal and returns normally (the wake wins): the signal is never lost to a thread that
// leaves. There are no spurious wake-ups, but the state may change between the signal and the
// reacquisition: test the predicate in a loop (`wait(_:until:)` does).
import CUThreads

/// A condition variable for M:N threads on any worker, used with an `MNMutex`.
///
/// ```swift
/// let m = MNMutex(), nonEmpty = MNCondition()
/// // consumer:                                  // producer:
/// try m.lock()                                  try m.withLock { queue.append(x) }
/// try nonEmpty.wait(m, until: { !queue.isEmpty })  nonEmpty.signal()
/// let x = queue.removeFirst(); try m.unlock()
/// ```
public final class MNCondition: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var waiters = MNFIFO<MNWaiter>()
        var destroyed = false
    }
    private let state = KernelLock(State())
    /// Shown in wait reasons and `description` ("" for none).
    public let name: String
    /// A process-wide id, shown when the condition has no name.
    public let id: UInt64

    /// A condition variable with no waiters; each `wait` names the `MNMutex` it releases.
    /// - Parameter name: shown in wait reasons ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Atomically releases `mutex` (which the caller must hold) and waits for a signal, then
    /// reacquires `mutex`. Always returns or throws holding `mutex` (deadlock teardown aside).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed`
    ///   (destroyed), `.invalidArgument` if the caller does not hold `mutex`.
    public func wait(_ mutex: MNMutex, timeout: Duration? = nil) throws {
        try wait(mutex, deadline: mnDeadline(timeout))
    }

    /// Waits until `predicate` (evaluated holding `mutex`) is true; returns at once if it is.
    /// - Throws: as `wait(_:timeout:)`; the timeout covers the whole wait.
    public func wait(_ mutex: MNMutex, until predicate: () throws -> Bool, timeout: Duration? = nil) throws {
        let deadline = mnDeadline(timeout)
        while try !predicate() {
            try wait(mutex, deadline: deadline)
        }
    }

    private func wait(_ mutex: MNMutex, deadline: UInt64?) throws {
        let me = mnCurrentThread("MNCondition.wait")
        guard mutex.isHeld(by: me) else {
            throw UThreadError.invalidArgument("MNCondition.wait: thread #\(me) does not hold \(mutex.label)")
        }
        let result = try mnWait(
            "MNCondition.wait", .condition, object: id, target: self, deadline: deadline,
            register: { waiter in
                try state.withLock { st throws(UThreadError) in
                    if st.destroyed { throw .closed("\(label) was destroyed") }
                    st.waiters.push(waiter)
                }
                mutex.unlockOwned()  // after enqueueing: a signal from now on finds us
                return true
            },
            withdraw: { waiter in
                state.withLock { st in st.waiters.remove { $0 == waiter } ? nil : (st.destroyed ? .closed : .woken) }
            })
        let relock = Result { try mutex.lockUncancellable(me) }
        try result?.check()
        try relock.get()
    }

    /// Wakes the longest-waiting thread, if any. Returns whether one was woken. O(1).
    @discardableResult
    public func signal() -> Bool {
        guard let w = state.withLock({ $0.waiters.pop() }) else { return false }
        mnWake(CollectionOfOne(w))
        return true
    }

    /// Wakes every waiting thread, on every worker. Returns how many. O(waiters).
    @discardableResult
    public func broadcast() -> Int {
        let all = state.withLock { $0.waiters.popAll() }
        mnWake(all)
        return all.count
    }

    /// Wakes every waiter with `UThreadError.closed`; later waits throw at once.
    public func destroy() {
        let all = state.withLock { st in
            st.destroyed = true
            return st.waiters.popAll()
        }
        mnWake(all, .closed)
    }

    /// Threads waiting now (a snapshot).
    public var waiting: Int { state.withLock { $0.waiters.count } }

    var label: String { syncLabel("condition", name: name, id: id) }

    /// "condition 'ready' (3 waiting)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(waiting) waiting)" }

    public var description: String { "MNCondition(\(label), \(waiting) waiting)" }
}
