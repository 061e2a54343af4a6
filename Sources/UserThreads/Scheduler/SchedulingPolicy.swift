// Layer 6: the scheduling policy protocol — each process its own scheduling algorithm.
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
    /// Its nice value, -20...19 (CFS-style weights; default 0).
    public var nice: Int { Int(block.pointee.nice) }
    /// Its tickets (lottery, stride; default 100, at least 1).
    public var tickets: Int { Int(block.pointee.tickets) }
    /// Its deadline on the scheduler's clock (`SchedulingPolicy.now`), nil when it has none.
    public var deadline: UInt64? {
        let d = block.pointee.sched_deadline_ns
        return d == .max ? nil : d
    }
    /// Whether it ran past its last time slice (it is being switched out at a safe point).
    public var isOverQuantum: Bool { block.has(.flagOverQuantum) }
    /// Two words a policy may use as it likes (virtual runtime, tickets, level, …).
    public var policyData: (UInt64, UInt64) {
        get { block.pointee.policy_data }
        nonmutating set { block.pointee.policy_data = newValue }
    }
}

/// Why a thread became ready.
public enum ReadyReason: Sendable {
    /// A new thread.
    case spawned
    /// A parked thread's wait ended.
    case woken
    /// The running thread called `yield()` (it gave up the CPU on its own).
    case yielded
    /// The running thread was switched out at a safe point: its slice was over, or
    /// `shouldPreempt` said so.
    case preempted
}

/// A scheduling algorithm: each process (each runtime) its own. The scheduler owns the
/// mechanism (stacks, switches, parking, timers, safe points); a policy owns the decisions:
/// which ready thread runs next and for how long. Implementations are called only from their
/// runtime's kernel thread, so they need no locks; each states the complexity of its operations.
///
/// The life of a thread as a policy sees it:
///
///     awakened(.spawned) → pickNext → [running] → ran(ns) → awakened(.yielded | .preempted) → …
///                                                → ran(ns) → stopped(finished: false)  (parked)
///     … → awakened(.woken) → pickNext → … → ran(ns) → stopped(finished: true)          (exit)
///
/// A policy written by a user — shortest-job-first from a per-thread estimate kept in the
/// thread's `priority` (smaller first), with a 5 ms quantum:
///
/// ```swift
/// final class ShortestFirst: SchedulingPolicy {
///     private var ready: [ThreadRef] = []
///     func awakened(_ thread: ThreadRef, reason: ReadyReason) { ready.append(thread) }
///     func pickNext() -> ThreadRef? {
///         guard let i = ready.indices.min(by: { ready[$0].priority < ready[$1].priority }) else { return nil }
///         return ready.remove(at: i)
///     }
///     var hasReadyThreads: Bool { !ready.isEmpty }
///     func timeSlice(for thread: ThreadRef) -> Duration? { .milliseconds(5) }
/// }
///
/// try UThreadRuntime.run(policy: ShortestFirst()) {
///     let jobs = [30, 10, 20].map { ms in
///         UThread(name: "job \(ms)", priority: ms) { UThread.simulateWork(for: .milliseconds(ms)) }
///     }
///     for job in jobs { try job.join() }
/// }
/// ```
///
/// Time slices are honoured at safe points only (`UThread.checkpoint()`, `yield()`, any
/// blocking call): see the design essay in Scheduler.swift for why a user thread is never
/// switched out at an arbitrary instruction.
public protocol SchedulingPolicy: AnyObject {
    /// `thread` became ready; queue it.
    func awakened(_ thread: ThreadRef, reason: ReadyReason)
    /// Removes and returns the thread to run next, or nil when none is ready.
    func pickNext() -> ThreadRef?
    /// Whether any thread is queued.
    var hasReadyThreads: Bool { get }
    /// The running thread parked (`finished == false`) or finished.
    func stopped(_ thread: ThreadRef, finished: Bool)
    /// The running thread leaves the CPU after running `nanoseconds` (scheduler clock) since it
    /// was switched in; called before `awakened(.yielded/.preempted)` or `stopped`.
    func ran(_ thread: ThreadRef, nanoseconds: UInt64)
    /// How long `thread` may run before it is switched out at its next safe point; nil: until
    /// it blocks or yields. Asked at every switch-in (never for FIFOPolicy).
    func timeSlice(for thread: ThreadRef) -> Duration?
    /// Asked at a safe point of the running thread, inside its slice, when threads are ready:
    /// whether one of them should run now (e.g. an earlier deadline woke up).
    func shouldPreempt(_ running: ThreadRef) -> Bool
    /// Debug check of the policy's own invariants (called when checks are enabled).
    func checkInvariants()
    /// Threads queued (M:N migration reads it to split ready work evenly with idle workers).
    var readyCount: Int { get }
    /// M:N migration, giving side: removes up to `max` queued threads for which `movable` is
    /// true, preferring the ones it would run last, and returns each with the part of its
    /// policy state that must travel with it (the row's priority, nice, tickets and deadline
    /// travel anyway). The threads then belong to another worker's instance of this policy
    /// type, which receives them in `immigrate`. The default gives none up: a policy that does
    /// not opt in keeps every thread it queued (the scheduler cannot reach into its queues).
    func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant]
    /// M:N migration, receiving side: `thread` arrives ready from another worker, with the
    /// state its policy there gave up (nil: none, or it came from a policy that keeps none).
    /// Express clock-relative state against this instance's own clock base (a virtual
    /// runtime relative to this queue's minimum, a pass relative to this global pass). The
    /// default queues it as a thread whose wait ended (`awakened(thread, reason: .woken)`),
    /// correct for any policy since every policy must accept woken threads.
    func immigrate(_ thread: ThreadRef, state: (any Sendable)?)
}

/// A ready thread a policy gave up for another M:N worker (`SchedulingPolicy.emigrate`), with
/// the policy state that travels with it.
public struct Emigrant: Sendable {
    /// The thread, removed from the policy's queues.
    public let thread: ThreadRef
    /// What the receiving policy needs beyond the row (nil: nothing).
    public let state: (any Sendable)?
    /// An emigrant with `state` (default none).
    public init(_ thread: ThreadRef, state: (any Sendable)? = nil) {
        self.thread = thread
        self.state = state
    }
}

extension SchedulingPolicy {
    public func stopped(_ thread: ThreadRef, finished: Bool) {}
    public func ran(_ thread: ThreadRef, nanoseconds: UInt64) {}
    public func timeSlice(for thread: ThreadRef) -> Duration? { nil }
    public func shouldPreempt(_ running: ThreadRef) -> Bool { false }
    public func checkInvariants() {}
    public var readyCount: Int { hasReadyThreads ? 1 : 0 }
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] { [] }
    public func immigrate(_ thread: ThreadRef, state: (any Sendable)?) { awakened(thread, reason: .woken) }

    /// The runtime's clock in nanoseconds (virtual in simulation mode): the time base of
    /// deadlines, aging and boosts. Call it only from the policy's methods.
    public var now: UInt64 { Scheduler.active?.now() ?? uthreads_monotonic_ns() }
}

/// A thread's parameters for the scheduling policies (each policy reads the ones it uses).
public struct SchedulingParameters: Sendable, Hashable {
    /// Higher runs first under `PriorityPolicy`.
    public var priority: Int
    /// -20...19, as Unix: lower is a larger share under `FairSharePolicy` (weight 1024 at 0,
    /// ×1.25 per step).
    public var nice: Int
    /// The share under `LotteryPolicy` and `StridePolicy`: 1...`maximumTickets` (a spawn with
    /// more throws `UThreadError.invalidArgument`; fewer than 1 counts as 1).
    public var tickets: Int
    /// Finish within this long after spawn (`EDFPolicy`); nil: no deadline.
    public var deadline: Duration?

    /// The tickets a thread gets when it is given none (lottery and stride shares).
    public static let defaultTickets = 100

    /// The most tickets a thread may have: 2^20, `StridePolicy.strideOne`. A stride is
    /// `strideOne / tickets`, so more would give a stride of 0: a pass that never advances, a
    /// thread that runs forever and starves every other. Ratios up to 2^20 : 1 are expressible.
    public static let maximumTickets = 1 << 20

    /// Parameters with neutral defaults: every policy treats threads created this way alike.
    /// When applied to a thread, `nice` is clamped to -20...19 and `tickets` to at least 1;
    /// tickets above `maximumTickets` make the spawn fail with `UThreadError.invalidArgument`.
    ///
    /// - Parameters:
    ///   - priority: the priority under `PriorityPolicy`; higher runs first (default 0).
    ///   - nice: the nice value under `FairSharePolicy`, -20...19; lower gets more CPU (default 0).
    ///   - tickets: the share under `LotteryPolicy` and `StridePolicy` (default 100).
    ///   - deadline: under `EDFPolicy`, finish within this long after spawn (default nil: none).
    public init(
        priority: Int = 0, nice: Int = 0, tickets: Int = SchedulingParameters.defaultTickets, deadline: Duration? = nil
    ) {
        self.priority = priority
        self.nice = nice
        self.tickets = tickets
        self.deadline = deadline
    }
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
    /// Removes up to `max` threads for which `take` is true, walking from the back (the
    /// threads that would run last), and returns them back to front. O(n).
    public mutating func removeFromBack(max: Int, where take: (ThreadRef) -> Bool) -> [ThreadRef] {
        list.removeFromBack(max: max) { take(ThreadRef($0)) }.map(ThreadRef.init)
    }
}
