// Layer 8: condition variables.
//
// Design essay
// ============
//
// A condition variable is a FIFO wait queue used together with a UMutex. wait() enqueues the
// caller on the condition *before* releasing the mutex (so a signal sent right after the
// release cannot be lost: under M:1 nothing runs between the two steps anyway, and under M:N
// the order is the one that stays correct), parks, and reacquires the mutex before returning,
// whatever the outcome — timeout, cancellation and close included, as pthread_cond_wait does.
// The reacquisition ignores cancellation, otherwise a cancelled waiter could not return
// holding the mutex.
//
// signal() wakes the longest waiter, broadcast() all; they need not hold the mutex. A woken
// waiter queues for the mutex behind its current waiters (FIFO handoff, see UMutex): there is
// no "wait morphing". There are no spurious wake-ups, but another thread may change the state
// between the signal and the reacquisition, so callers test their predicate in a loop — the
// `wait(_:until:)` form does it for them.
//
// destroy() wakes every waiter with `UThreadError.closed`, and later waits throw at once.
import CUThreads

/// A condition variable for user threads, used with a `UMutex`.
public final class UCondition: WaitQueue, WaitTarget, CustomStringConvertible {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed condition is shown by `id`.
    public let name: String
    public let id: UInt64
    @exclusivity(unchecked) private var destroyed = false
    /// The mutex of the current waiters (for the wait description).
    private weak var mutex: UMutex?

    /// A condition variable with no waiters. It is not bound to a mutex: each `wait` names the
    /// `UMutex` it releases.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
        super.init()
    }

    /// Atomically releases `mutex` (which the caller must hold) and waits for a signal, then
    /// reacquires `mutex`. Always returns or throws holding `mutex`.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed` (destroyed),
    ///   `.invalidArgument` if the caller does not hold `mutex`.
    public func wait(_ mutex: UMutex, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let s = Scheduler.require("UCondition.wait")
        try wait(mutex, deadlineNanoseconds: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()), s)
    }

    /// Waits until `predicate` (evaluated holding `mutex`) is true. Returns at once if it
    /// already is.
    public func wait(
        _ mutex: UMutex, until predicate: () throws -> Bool,
        timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        let s = Scheduler.require("UCondition.wait")
        let d = syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
        while try !predicate() {
            try wait(mutex, deadlineNanoseconds: d, s)
        }
    }

    private func wait(_ mutex: UMutex, deadlineNanoseconds d: UInt64?, _ s: Scheduler) throws {
        try mutex.requireOwner(s, "UCondition.wait")
        if destroyed { throw UThreadError.closed("\(label) was destroyed") }
        self.mutex = mutex
        enqueue(s.current)
        mutex.releaseOwned()
        let r = s.park(.condition, object: id, target: self, deadline: d)
        try mutex.lockUncancellable(s)
        try r.check()
    }

    /// Wakes the longest-waiting thread, if any. Returns whether one was woken. O(1).
    @discardableResult
    public func signal() -> Bool {
        guard let t = dequeue() else { return false }
        Scheduler.require("UCondition.signal").wake(t, .woken)
        return true
    }

    /// Wakes every waiting thread. Returns how many. O(waiters).
    @discardableResult
    public func broadcast() -> Int {
        guard !isEmpty else { return 0 }
        return Scheduler.require("UCondition.broadcast").wakeAll(self, .woken)
    }

    /// Wakes every waiter with `UThreadError.closed`; later waits throw at once.
    public func destroy() {
        destroyed = true
        if !isEmpty { Scheduler.require("UCondition.destroy").wakeAll(self, .closed) }
    }

    var label: String { syncLabel("condition", name: name, id: id) }

    public func waitDescription(kind: WaitReason.Kind) -> String {
        label + (mutex.map { " (with \($0.label))" } ?? "")
    }

    public var description: String { "UCondition(\(label), \(count) waiting)" }
}
