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

    /// Whether `t` is the next thread `pickNext` returns (the help-first join, Scheduler+HelpFirstJoin.swift).
    @inline(__always)
    func isFirst(_ t: ControlBlock) -> Bool { queue.first == t }

    /// Takes the first thread off the queue (the caller knows which it is: `isFirst`).
    @inline(__always)
    func removeFirst() { _ = queue.popFirst() }

    public var hasReadyThreads: Bool {
        @inline(__always) get { !queue.isEmpty }
    }

    /// Gives up the threads it would run last (from the back of the queue: the front keeps
    /// its cache affinity). No state travels: a FIFO thread is only its place in line. O(n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        queue.removeFromBack(max: max) { movable(ThreadRef($0)) }.map { Emigrant(ThreadRef($0)) }
    }

    /// Threads on the run queue.
    public var readyCount: Int { queue.count }

    public func checkInvariants() {
        queue.checkInvariants()
        queue.forEach {
            precondition($0.pointee.state == .stateReady, "FIFOPolicy: queued thread #\($0.pointee.id) is not ready")
        }
    }
}
