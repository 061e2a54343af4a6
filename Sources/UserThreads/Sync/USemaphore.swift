// Layer 8: counting semaphores.
//
// Design essay: a count of permits and a FIFO queue. signal() with a waiter hands the permit
// directly to the first waiter (the count is not incremented), so a later wait() cannot take
// it first: FIFO, no starvation. wait() takes a permit only when the count is positive *and*
// nobody is queued (otherwise it would barge past the queue). A waiter that times out or is
// cancelled after it was handed a permit keeps it (the wake wins: Waiter.swift), so there is
// never anything to give back.
import CUThreads

/// A counting semaphore for user threads, on one worker or across workers.
public final class USemaphore: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed semaphore is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    /// The permits: a `Relaxed` word, readable from any kernel thread (`value`).
    private let count: Relaxed
    @exclusivity(unchecked) private var waiters = FIFO<Waiter>() {
        didSet { queued.store(waiters.count) }  // a simple didSet: the queue is changed in place
    }
    /// The length of `waiters`, readable from any kernel thread (the description).
    private let queued = Relaxed(0)
    @exclusivity(unchecked) private var destroyed = false

    /// A semaphore holding no permits.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.count = Relaxed(0)
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// The largest initial permit count: 2^62. Each `signal()` adds one, so from here the
    /// count would need 2^62 more signals to overflow (from `Int.max`, the first one would).
    public static let maximumValue = 1 << 62

    /// A semaphore holding `value` permits.
    ///
    /// - Parameters:
    ///   - value: the initial permit count, 0...`maximumValue`.
    ///   - name: shown in wait reasons and deadlock reports ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `value` is negative or above `maximumValue`.
    public init(value: Int, name: String = "") throws(UThreadError) {
        guard value >= 0 else { throw .invalidArgument("USemaphore value must be >= 0, not \(value)") }
        guard value <= USemaphore.maximumValue else {
            throw .invalidArgument("USemaphore value must be <= \(USemaphore.maximumValue), not \(value)")
        }
        self.count = Relaxed(value)
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Takes a permit, waiting while none is available. O(1) (O(waiters) to give up).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed` (destroyed).
    public func wait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let result = try syncWait(
            "USemaphore.wait", .semaphore, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline),
            register: { waiter in
                try sync.with { () throws(UThreadError) -> Bool in
                    if destroyed { throw .closed("\(label) was destroyed") }
                    defer { if syncChecking() { checkInvariants() } }
                    if count.load() > 0 && waiters.isEmpty {
                        count.store(count.load() - 1)
                        return false
                    }
                    waiters.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked {
                    defer { if syncChecking() { checkInvariants() } }
                    return waiters.remove { $0 == waiter } ? nil : (destroyed ? .closed : .woken)
                }
            })
        try result?.check()
    }

    /// Takes a permit if one is available now (and nobody queues).
    public func tryWait() -> Bool {
        (try? sync.with { () -> Bool in
            guard !destroyed, count.load() > 0, waiters.isEmpty else { return false }
            count.store(count.load() - 1)
            if syncChecking() { checkInvariants() }
            return true
        }) ?? false
    }

    /// Returns a permit: to the first waiter if any (woken on its worker), else to the count.
    /// O(1). Any kernel thread may signal (a `blocking {}` body, a pthread, a thread of another
    /// runtime): a shared semaphore under its lock; one bound to an M:1 runtime by a post to
    /// that runtime, which applies it on its kernel thread at its next safe point, in the order
    /// posted (SyncSupport.swift, "Bare or locked").
    public func signal() {
        guard let locked = sync.enter(orPost: { [self] in signal() }) else { return }
        let next = waiters.pop()
        if next == nil { count.store(count.load() + 1) }
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        if let next { syncWake(next) }
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

    /// Permits available now (a snapshot, from any kernel thread).
    public var value: Int { count.load() }

    var label: String { syncLabel("semaphore", name: name, id: id) }

    /// "semaphore 'slots' (value 0, 2 waiting)", for the thread table (from any kernel thread).
    public func waitDescription(kind: WaitReason.Kind) -> String {
        "\(label) (value \(value), \(queued.load()) waiting)"
    }

    /// `USemaphore(semaphore 'slots', value 2)`.
    public var description: String { "USemaphore(\(label), value \(value))" }

    // MARK: Invariants

    /// The semaphore's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(1).
    @inline(never)
    func checkInvariants() {
        syncInvariant(count.load() >= 0, label, "value >= 0")
        syncInvariant(waiters.isEmpty || count.load() == 0, label, "waiters ⇒ value == 0 (a permit goes to a waiter)")
        syncInvariant(!destroyed || waiters.isEmpty, label, "destroyed ⇒ no waiters")
        syncInvariant(queued.load() == waiters.count, label, "waiting == the waiter queue's length")
    }
}
