// Layer 8: wait groups — wait until a count of tasks reaches zero (Go's sync.WaitGroup).
//
// Design essay: a counter and a queue. add(n) raises the counter, done() lowers it; when it
// reaches zero every waiter wakes. A negative counter is a thrown error (a done() too many).
// Waiting when the counter is zero returns at once. Waiters hold nothing, so a timeout or
// cancellation needs no cleanup.
import CUThreads

/// Waits for a collection of user threads (or any tasks) to finish.
public final class UWaitGroup: WaitQueue, WaitTarget, CustomStringConvertible {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed wait group is shown by `id`.
    public let name: String
    public let id: UInt64
    /// Tasks added and not yet done; `wait` returns once it is 0. Never negative.
    @exclusivity(unchecked) public private(set) var pending = 0

    /// A wait group with no pending tasks.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
        super.init()
    }

    /// Adds `n` pending tasks (n may be negative; the count must stay >= 0).
    public func add(_ n: Int = 1) throws {
        guard pending + n >= 0 else {
            throw UThreadError.invalidArgument("UWaitGroup.add(\(n)): \(label) would go negative (\(pending) pending)")
        }
        pending += n
        if pending == 0 && !isEmpty { Scheduler.require("UWaitGroup.done").wakeAll(self, .woken) }
    }

    /// Marks one task done.
    public func done() throws { try add(-1) }

    /// Waits until no task is pending.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`.
    public func wait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        guard pending > 0 else { return }
        let s = Scheduler.require("UWaitGroup.wait")
        try s.wait(
            on: self, .waitGroup, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
    }

    var label: String { syncLabel("wait group", name: name, id: id) }
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(pending) pending)" }
    public var description: String { "UWaitGroup(\(label), \(pending) pending)" }
}
