// Layer 6: earliest deadline first.

/// Earliest deadline first: the ready thread whose deadline is nearest runs; threads without
/// a deadline run only when no thread with one is ready (FIFO among themselves). On one CPU,
/// with switches at safe points fine-grained enough, EDF meets every deadline of any set
/// that any policy could meet (Liu and Layland): a feasible set is scheduled without a miss.
/// A thread waking with an earlier deadline than the running thread's preempts it at the
/// running thread's next safe point. Deadlines: `SchedulingParameters.deadline` at spawn or
/// `UThread.setDeadline(_:)` (relative to now on the runtime's clock).
///
/// awakened, pickNext: O(log n) (a heap keyed by deadline). hasReadyThreads, timeSlice,
/// shouldPreempt: O(1).
public final class EDFPolicy: SchedulingPolicy {
    /// How often the running thread's safe points re-check for an earlier deadline (nil:
    /// only `shouldPreempt` at slow-path checkpoints and blocking calls).
    public let recheckInterval: Duration?
    private var heap = KeyedThreadHeap()

    /// An empty EDF policy.
    ///
    /// - Parameter recheckInterval: how often the running thread's safe points check whether a
    ///   ready thread has an earlier deadline (default 1 ms; it is the time slice this policy
    ///   reports). nil: only blocking calls and slow-path checkpoints check.
    /// - Throws: `UThreadError.invalidArgument` when `recheckInterval` is zero or negative.
    public init(recheckInterval: Duration? = .milliseconds(1)) throws(UThreadError) {
        try recheckInterval?.requirePositive("EDFPolicy: the recheck interval")
        self.recheckInterval = recheckInterval
    }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        // A re-check (preemption) keeps the thread's place among equal deadlines: threads
        // without a deadline then run FIFO, to completion, as documented. policyData.1: that place.
        let keep = reason == .preempted ? thread.policyData.1 : nil
        thread.policyData.1 = heap.insert(thread, key: thread.deadline ?? .max, seq: keep)
    }

    public func pickNext() -> ThreadRef? { heap.popMin()?.thread }
    public var hasReadyThreads: Bool { !heap.isEmpty }
    public func timeSlice(for thread: ThreadRef) -> Duration? { recheckInterval }
    public var readyCount: Int { heap.count }

    /// Gives up the threads with the latest deadlines (threads without one first): the ones it
    /// would run last. The deadline is absolute on the monotonic clock every worker shares and
    /// lives in the row, so it travels as is; the receiver queues the thread by it. O(n log n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        heap.removeLargest(max: max, where: movable).map { Emigrant($0.thread) }
    }

    public func shouldPreempt(_ running: ThreadRef) -> Bool {
        guard let first = heap.min else { return false }
        return first.key < (running.deadline ?? .max)
    }

    public func checkInvariants() { heap.checkInvariants("EDFPolicy") }
}
