// Layer 8: condition variables.
//
// Design essay
// ============
//
// A condition variable is a FIFO wait queue used together with a UMutex. wait() enqueues the
// caller on the condition *before* releasing the mutex (so a signal sent right after the
// release cannot be lost: a wake reaches a waiter only once it parked, Waiter.swift), parks, and reacquires the mutex before returning,
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

/// A condition variable for user threads, on one worker or across workers, used with a `UMutex`.
///
/// ```swift
/// let m = UMutex(), nonEmpty = UCondition()
/// // consumer:                                  // producer:
/// try m.lock()                                  try m.withLock { queue.append(x) }
/// try nonEmpty.wait(m, until: { !queue.isEmpty })  nonEmpty.signal()
/// let x = queue.removeFirst(); try m.unlock()
/// ```
public final class UCondition: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed condition is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    @exclusivity(unchecked) private var waiters = FIFO<Waiter>() {
        didSet { queued.store(waiters.count) }  // a simple didSet: the queue is changed in place
    }
    /// The length of `waiters`, readable from any kernel thread (`waiting`).
    private let queued = Relaxed(0)
    @exclusivity(unchecked) private var destroyed = false
    /// The label of the current waiters' mutex (for the wait description).
    @exclusivity(unchecked) private var mutexLabel: String?

    /// A condition variable with no waiters. It is not bound to a mutex: each `wait` names the
    /// `UMutex` it releases.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Atomically releases `mutex` (which the caller must hold) and waits for a signal, then
    /// reacquires `mutex`. Always returns or throws holding `mutex` (deadlock teardown aside).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed` (destroyed),
    ///   `.invalidArgument` if the caller does not hold `mutex`.
    public func wait(_ mutex: UMutex, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        try wait(mutex, deadlineNanoseconds: syncDeadline(timeout: timeout, deadline: deadline))
    }

    /// Waits until `predicate` (evaluated holding `mutex`) is true. Returns at once if it
    /// already is. The timeout and deadline cover the whole wait.
    public func wait(
        _ mutex: UMutex, until predicate: () throws -> Bool,
        timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        let d = syncDeadline(timeout: timeout, deadline: deadline)
        while try !predicate() {
            try wait(mutex, deadlineNanoseconds: d)
        }
    }

    private func wait(_ mutex: UMutex, deadlineNanoseconds d: UInt64?) throws {
        try mutex.requireOwner("UCondition.wait")
        let result = try syncWait(
            "UCondition.wait", .condition, object: id, target: self, deadline: d,
            register: { waiter in
                try sync.with { () throws(UThreadError) in
                    if destroyed { throw .closed("\(label) was destroyed") }
                    mutexLabel = mutex.label
                    waiters.push(waiter)
                    if syncChecking() { checkInvariants() }
                }
                mutex.releaseOwned()  // after enqueueing: a signal from now on finds us
                return true
            },
            withdraw: { waiter in
                sync.locked {
                    defer { if syncChecking() { checkInvariants() } }
                    return waiters.remove { $0 == waiter } ? nil : (destroyed ? .closed : .woken)
                }
            })
        let relock = Result { try mutex.lockUncancellable() }
        try result?.check()
        try relock.get()
    }

    /// Wakes the longest-waiting thread, if any. Returns whether one was woken. O(1).
    ///
    /// Any kernel thread may signal. A condition made inside `run { }` belongs to that runtime:
    /// from another kernel thread (a pthread, a `blocking {}` body, a thread of another runtime)
    /// the signal is posted to it and applied on its kernel thread at its next safe point, in
    /// the order posted, and this call returns false, since whom it wakes is decided there.
    @discardableResult
    public func signal() -> Bool {
        guard let locked = sync.enter(orPost: { [self] in signal() }) else { return false }
        let next = waiters.pop()
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        guard let next else { return false }
        syncWake(next)
        return true
    }

    /// Wakes every waiting thread. Returns how many. O(waiters). From another kernel thread as
    /// `signal()` (posted to the condition's runtime if it belongs to one: then it returns 0).
    @discardableResult
    public func broadcast() -> Int {
        guard let locked = sync.enter(orPost: { [self] in broadcast() }) else { return 0 }
        let all = waiters.popAll()
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        syncWake(all)
        return all.count
    }

    /// Wakes every waiter with `UThreadError.closed`; later waits throw at once. From another
    /// kernel thread as `signal()`.
    public func destroy() {
        guard let locked = sync.enter(orPost: { [self] in destroy() }) else { return }
        destroyed = true
        let all = waiters.popAll()
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        syncWake(all, .closed)
    }

    /// Threads waiting now (a snapshot, from any kernel thread).
    public var waiting: Int { queued.load() }

    var label: String { syncLabel("condition", name: name, id: id) }

    /// "condition 'ready' (with mutex 'db', 3 waiting)", for the thread table; from elsewhere
    /// without the mutex (its label is the runtime's state).
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let mutex = sync.read {
            mutexLabel
        } elsewhere: {
            nil
        }
        return label + " (" + (mutex.map { "with \($0), " } ?? "") + "\(waiting) waiting)"
    }

    /// `UCondition(condition 'ready', 3 waiting)`.
    public var description: String { "UCondition(\(label), \(waiting) waiting)" }

    // MARK: Invariants

    /// The condition's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(1).
    @inline(never)
    func checkInvariants() {
        syncInvariant(!destroyed || waiters.isEmpty, label, "destroyed ⇒ no waiters")
        syncInvariant(waiters.isEmpty || mutexLabel != nil, label, "waiters ⇒ the mutex they released is known")
        syncInvariant(queued.load() == waiters.count, label, "waiting == the waiter queue's length")
    }
}
