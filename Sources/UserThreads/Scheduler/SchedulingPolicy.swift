// Layer 4: the scheduling policy protocol — each process its own scheduling algorithm.
//
// Modelled on Boost.Fiber's `algorithm`: the scheduler owns the mechanism (stacks, switches,
// parking, timers), a policy owns one decision: which ready thread runs next. A policy keeps
// its own run queue; the scheduler tells it when a thread becomes ready and asks it for the
// next one. Policies are per runtime (per kernel thread), so they need no locks.
import CUThreads

/// A reference to a thread's row in the thread table, as a policy sees it. Valid while the
/// thread is ready or running; a policy must forget it once `pickNext` has returned it.
public struct ThreadRef: Hashable, @unchecked Sendable {
    let block: ControlBlock
    init(_ block: ControlBlock) { self.block = block }

    /// The thread's id.
    public var id: ThreadID { ThreadID(rawValue: block.pointee.id) }
    /// Its name as the control block keeps it (at most 23 bytes of UTF-8).
    public var name: String { block.cName }
    /// The priority given at spawn (higher runs first under priority policies).
    public var priority: Int { Int(block.pointee.priority) }
    /// How often it has been switched in.
    public var switches: UInt64 { block.pointee.switches }
    /// Two words a policy may use as it likes (virtual runtime, tickets, level, …).
    public var policyData: (UInt64, UInt64) {
        get { block.pointee.policy_data }
        nonmutating set { block.pointee.policy_data = newValue }
    }
}

/// Why a thread became ready.
public enum ReadyReason: Sendable {
    /// Just created.
    case spawned
    /// Its wait ended (woken, timed out, cancelled).
    case woken
    /// It called `UThread.yield()`.
    case yielded
    /// It ran past its time slice and was switched out at a safe point.
    case preempted
}

/// A scheduling algorithm. Implementations are called only from their runtime's kernel
/// thread. Each states the complexity of its operations in its doc comment.
public protocol SchedulingPolicy: AnyObject {
    /// `thread` became ready; queue it.
    func awakened(_ thread: ThreadRef, reason: ReadyReason)
    /// Removes and returns the thread to run next, or nil when none is ready.
    func pickNext() -> ThreadRef?
    /// Whether any thread is queued.
    var hasReadyThreads: Bool { get }
    /// The running thread parked or finished (for policies that account run time).
    func stopped(_ thread: ThreadRef, finished: Bool)
    /// How long `thread` may run before it should yield at its next safe point; nil: forever.
    func timeSlice(for thread: ThreadRef) -> Duration?
    /// Debug check of the policy's own invariants (called when checks are enabled).
    func checkInvariants()
}

extension SchedulingPolicy {
    public func stopped(_ thread: ThreadRef, finished: Bool) {}
    public func timeSlice(for thread: ThreadRef) -> Duration? { nil }
    public func checkInvariants() {}
}

/// A FIFO queue of ready threads for policies to build on: intrusive (no allocation), O(1).
public struct ReadyQueue {
    var list = ThreadList()
    /// An empty queue.
    public init() {}
    /// Whether no thread is queued.
    public var isEmpty: Bool { list.isEmpty }
    /// Threads queued.
    public var count: Int { list.count }
    /// Queues `t` at the back. It must be on no other queue.
    public mutating func append(_ t: ThreadRef) { list.append(t.block) }
    /// Queues `t` at the front. It must be on no other queue.
    public mutating func prepend(_ t: ThreadRef) { list.prepend(t.block) }
    /// Removes and returns the front thread.
    public mutating func popFirst() -> ThreadRef? { list.popFirst().map(ThreadRef.init) }
    /// Removes `t`, which must be on this queue.
    public mutating func remove(_ t: ThreadRef) { list.remove(t.block) }
    /// The front thread, left queued.
    public var first: ThreadRef? { list.first.map(ThreadRef.init) }
    /// Calls `body` for each queued thread, front to back.
    public func forEach(_ body: (ThreadRef) throws -> Void) rethrows { try list.forEach { try body(ThreadRef($0)) } }
    /// Checks the links and the count (O(n); for debugging a policy).
    public func checkInvariants() { list.checkInvariants() }
}
