// Layer 6: round-robin.

/// Round-robin: FIFO order, but a thread that uses up its quantum is switched out at its next
/// safe point and goes to the back of the queue. The textbook's time-sharing policy: response
/// time is bounded by (ready threads − 1) × quantum.
///
/// awakened, pickNext, hasReadyThreads, timeSlice: O(1).
public final class RoundRobinPolicy: SchedulingPolicy {
    /// The time slice after which the running thread goes to the back of the queue at its next
    /// safe point (default 10 ms; always positive).
    public let quantum: Duration
    private var queue = ReadyQueue()

    /// - Parameter quantum: the time slice (default 10 ms).
    /// - Throws: `UThreadError.invalidArgument` when `quantum` is zero or negative.
    public init(quantum: Duration = .milliseconds(10)) throws(UThreadError) {
        try quantum.requirePositive("RoundRobinPolicy: the quantum")
        self.quantum = quantum
    }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) { queue.append(thread) }
    public func pickNext() -> ThreadRef? { queue.popFirst() }
    public var hasReadyThreads: Bool { !queue.isEmpty }
    public func timeSlice(for thread: ThreadRef) -> Duration? { quantum }
    public var readyCount: Int { queue.count }

    /// Gives up the threads at the back of the queue (they would run last). Nothing travels:
    /// every switch-in starts a full quantum. O(n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        queue.removeFromBack(max: max, where: movable).map { Emigrant($0) }
    }

    public func checkInvariants() {
        queue.checkInvariants()
        queue.forEach {
            precondition($0.block.pointee.state == .stateReady, "RoundRobinPolicy: queued thread \($0.id) is not ready")
        }
    }
}
