// Layer 6: the default policy.
import CUThreads

/// First in, first out: a thread runs until it blocks, yields or finishes, then goes to the
/// back of the queue. The classic user-level thread package's policy (and Go's local run
/// queue's). awakened, pickNext, hasReadyThreads: O(1).
public final class FIFOPolicy: SchedulingPolicy {
    @exclusivity(unchecked) private var queue = ThreadList()

    /// An empty queue.
    public init() {}

    @inline(__always)
    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        queue.append(thread.block)
    }

    @inline(__always)
    public func pickNext() -> ThreadRef? {
        queue.popFirst().map(ThreadRef.init)
    }

    public var hasReadyThreads: Bool {
        @inline(__always) get { !queue.isEmpty }
    }

    /// Unlinks up to `max` ready threads that satisfy `take`, walking from the back of
    /// the queue (the threads that would run last: the front keeps its cache affinity). O(n).
    func removeFromBack(max: Int, where take: (ControlBlock) -> Bool) -> [ControlBlock] {
        var taken: [ControlBlock] = []
        var t = queue.tail
        while let c = t, taken.count < max {
            t = c.pointee.prev
            if take(c) {
                queue.remove(c)
                taken.append(c)
            }
        }
        return taken
    }

    /// Threads on the run queue.
    var readyCount: Int { queue.count }

    public func checkInvariants() {
        queue.checkInvariants()
        queue.forEach {
            precondition($0.pointee.state == .stateReady, "FIFOPolicy: queued thread #\($0.pointee.id) is not ready")
        }
    }
}
