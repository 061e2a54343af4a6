// Layer 8: cyclic barriers.
//
// Design essay: `parties` threads meet; the last to arrive wakes the others and starts the
// next generation (the barrier is reusable). The last arrival is told it was the last
// (`arriveAndWait` returns true) so one thread can run a per-phase action. A waiter that
// times out or is cancelled withdraws its arrival (the count goes back down), so it leaves no
// trace and the others keep waiting for a full set. destroy() breaks the barrier: waiters and
// later arrivals throw `UThreadError.closed`.
import CUThreads

/// A reusable barrier for a fixed number of user threads.
public final class UBarrier: WaitQueue, WaitTarget, CustomStringConvertible {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed barrier is shown by `id`.
    public let name: String
    public let id: UInt64
    /// How many threads must arrive to release a generation (at least 1).
    public let parties: Int
    /// Threads waiting at the barrier in the current generation (0..<parties); a waiter that times
    /// out or is cancelled is subtracted again.
    @exclusivity(unchecked) public private(set) var arrived = 0
    /// How many times the barrier has released (starts at 0, +1 each time the last party arrives).
    @exclusivity(unchecked) public private(set) var generation = 0
    @exclusivity(unchecked) private var broken = false

    /// A barrier that releases every `parties` arrivals.
    ///
    /// - Parameters:
    ///   - parties: threads per generation, at least 1.
    ///   - name: shown in wait reasons and deadlock reports ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `parties` is less than 1.
    public init(parties: Int, name: String = "") throws(UThreadError) {
        guard parties >= 1 else { throw .invalidArgument("UBarrier needs at least one party, not \(parties)") }
        self.parties = parties
        self.name = name
        self.id = SyncObjectID.allocate()
        super.init()
    }

    /// Arrives and waits for the others. Returns true in exactly one thread per generation
    /// (the last to arrive).
    /// - Throws: `UThreadError.timedOut`, `CancellationError` (the arrival is withdrawn),
    ///   `UThreadError.closed` if the barrier is destroyed.
    @discardableResult
    public func arriveAndWait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> Bool {
        if broken { throw UThreadError.closed("\(label) was destroyed") }
        let s = Scheduler.require("UBarrier.arriveAndWait")
        arrived += 1
        if arrived == parties {
            arrived = 0
            generation += 1
            s.wakeAll(self, .woken)
            return true
        }
        let myGeneration = generation
        do {
            try s.wait(
                on: self, .barrier, object: id, target: self,
                deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
        } catch {
            if generation == myGeneration && !broken { arrived -= 1 }  // withdraw
            throw error
        }
        return false
    }

    /// Breaks the barrier: every waiter throws `UThreadError.closed`.
    public func destroy() {
        broken = true
        if !isEmpty { Scheduler.require("UBarrier.destroy").wakeAll(self, .closed) }
    }

    var label: String { syncLabel("barrier", name: name, id: id) }
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(arrived)/\(parties) arrived)" }
    public var description: String { "UBarrier(\(label), \(arrived)/\(parties))" }
}
