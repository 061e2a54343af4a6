// Layer 8: counting semaphores.
//
// Design essay: a count of permits and a FIFO queue. signal() with a waiter hands the permit
// directly to the first waiter (the count is not incremented), so a later wait() cannot take
// it first: FIFO, no starvation. wait() takes a permit only when the count is positive *and*
// nobody is queued (otherwise it would barge past the queue). A waiter that times out or is
// cancelled never received a permit, so there is nothing to give back.
import CUThreads

/// A counting semaphore for user threads.
public final class USemaphore: WaitQueue, WaitTarget, CustomStringConvertible {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed semaphore is shown by `id`.
    public let name: String
    public let id: UInt64
    /// Permits available now.
    @exclusivity(unchecked) public private(set) var value: Int
    @exclusivity(unchecked) private var destroyed = false

    /// A semaphore holding no permits.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.value = 0
        self.name = name
        self.id = SyncObjectID.allocate()
        super.init()
    }

    /// A semaphore holding `value` permits.
    ///
    /// - Parameters:
    ///   - value: the initial permit count, not negative.
    ///   - name: shown in wait reasons and deadlock reports ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `value` is negative.
    public convenience init(value: Int, name: String = "") throws(UThreadError) {
        guard value >= 0 else { throw .invalidArgument("USemaphore value must be >= 0, not \(value)") }
        self.init(name: name)
        self.value = value
    }

    /// Takes a permit, waiting while none is available. O(1).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed` (destroyed).
    public func wait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        if destroyed { throw UThreadError.closed("\(label) was destroyed") }
        if value > 0 && isEmpty {
            value -= 1
            return
        }
        let s = Scheduler.require("USemaphore.wait")
        try s.wait(
            on: self, .semaphore, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
    }

    /// Takes a permit if one is available now.
    public func tryWait() -> Bool {
        guard !destroyed, value > 0, isEmpty else { return false }
        value -= 1
        return true
    }

    /// Returns a permit: to the first waiter if any, else to the count. O(1).
    public func signal() {
        if let t = dequeue() {
            Scheduler.require("USemaphore.signal").wake(t, .woken)
        } else {
            value += 1
        }
    }

    /// Wakes every waiter with `UThreadError.closed`; later waits throw at once.
    public func destroy() {
        destroyed = true
        if !isEmpty { Scheduler.require("USemaphore.destroy").wakeAll(self, .closed) }
    }

    var label: String { syncLabel("semaphore", name: name, id: id) }
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (value \(value), \(count) waiting)" }
    public var description: String { "USemaphore(\(label), value \(value))" }
}
