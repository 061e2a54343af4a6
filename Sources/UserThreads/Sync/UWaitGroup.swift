// Layer 8: wait groups — wait until a count of tasks reaches zero (Go's sync.WaitGroup).
//
// Design essay: a counter and a queue. add(n) raises the counter, done() lowers it; when it
// reaches zero every waiter wakes. A negative counter is a thrown error (a done() too many).
// Waiting when the counter is zero returns at once. Waiters hold nothing, so a timeout or
// cancellation needs no cleanup; a waiter that times out while a zero is being announced
// returns normally (the wake wins: Waiter.swift).
import CUThreads

/// Waits for a collection of user threads (or any tasks) to finish, on one worker or across
/// workers (Go's sync.WaitGroup).
public final class UWaitGroup: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed wait group is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    /// Pending tasks: a `Relaxed` word, readable from any kernel thread (`pending`).
    private let counter = Relaxed(0)
    @exclusivity(unchecked) private var waiters = FIFO<Waiter>()

    /// A wait group with no pending tasks.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Adds `n` pending tasks (n may be negative; the count must stay >= 0); at zero every
    /// waiter is woken, on whatever worker. O(waiters).
    /// - Throws: `UThreadError.invalidArgument` when the count would go negative or overflow.
    public func add(_ n: Int = 1) throws {
        let all = try sync.with { () throws(UThreadError) -> [Waiter] in
            let (sum, overflow) = counter.load().addingReportingOverflow(n)
            guard !overflow, sum >= 0 else {
                throw .invalidArgument("UWaitGroup.add(\(n)): \(label) would go negative (\(counter.load()) pending)")
            }
            counter.store(sum)
            return sum == 0 ? waiters.popAll() : []
        }
        syncWake(all)
    }

    /// Marks one task done.
    /// - Throws: `UThreadError.invalidArgument` when no task is pending.
    public func done() throws { try add(-1) }

    /// Waits until no task is pending.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`.
    public func wait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let result = try syncWait(
            "UWaitGroup.wait", .waitGroup, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline),
            register: { waiter in
                try sync.with { () -> Bool in
                    if counter.load() == 0 { return false }
                    waiters.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked { waiters.remove { $0 == waiter } ? nil : .woken }
            })
        try result?.check()  // woken: the count reached zero (even if it has risen again since)
    }

    /// Tasks added and not yet done (a snapshot, from any kernel thread); `wait` returns once
    /// it is 0. Never negative.
    public var pending: Int { counter.load() }

    /// The same as `pending` (the name Go's users know from the counter).
    public var count: Int { pending }

    var label: String { syncLabel("wait group", name: name, id: id) }

    /// "wait group 'jobs' (3 pending)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(pending) pending)" }

    /// `UWaitGroup(wait group 'jobs', 3 pending)`.
    public var description: String { "UWaitGroup(\(label), \(pending) pending)" }
}
