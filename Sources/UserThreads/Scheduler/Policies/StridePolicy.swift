// Layer 6: stride scheduling (Waldspurger and Weihl, 1995).

/// Stride scheduling: the deterministic sibling of lottery. Each thread has a stride =
/// `strideOne / tickets` and a pass value; the ready thread with the smallest pass runs, and
/// its pass advances by its stride per quantum it used (pro rata for a partial quantum). Over
/// any interval a thread's share is within one quantum of its ticket share. A thread that
/// becomes ready after waiting starts at the current global pass (it cannot bank credit while
/// blocked). Pass lives in `policyData.0`.
///
/// awakened, pickNext: O(log n) (a heap keyed by pass). hasReadyThreads, timeSlice: O(1).
public final class StridePolicy: SchedulingPolicy {
    /// The numerator of every stride (2^20): a thread's stride is `strideOne / tickets`, so a
    /// thread with one ticket advances its pass by `strideOne` per quantum it runs.
    public static let strideOne = UInt64(SchedulingParameters.maximumTickets)
    /// The time slice of each pick (default 10 ms). A thread's pass advances by its stride per
    /// full quantum it runs, pro rata for less.
    public let quantum: Duration
    private let quantumNs: UInt64
    private var heap = KeyedThreadHeap()
    /// The pass of the thread last picked: where returning threads start.
    private var globalPass: UInt64 = 0

    /// An empty stride policy.
    ///
    /// - Parameter quantum: the time slice of each pick, and the unit the pass advance is
    ///   measured in (default 10 ms).
    /// - Throws: `UThreadError.invalidArgument` when `quantum` is zero or negative.
    public init(quantum: Duration = .milliseconds(10)) throws(UThreadError) {
        try quantum.requirePositive("StridePolicy: the quantum")
        self.quantum = quantum
        quantumNs = max(1, Deadline.clampedNanoseconds(quantum))
    }

    /// `thread`'s stride: `strideOne / tickets`, the pass it advances per full quantum it runs.
    /// More tickets, smaller stride, more frequent turns; never 0 (a spawn refuses more than
    /// `SchedulingParameters.maximumTickets`, and the floor of 1 guards the rest). O(1).
    public func stride(of thread: ThreadRef) -> UInt64 { max(1, Self.strideOne / UInt64(max(1, thread.tickets))) }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        if reason == .spawned || reason == .woken { thread.policyData.0 = max(thread.policyData.0, globalPass) }
        heap.insert(thread, key: thread.policyData.0)
    }

    public func ran(_ thread: ThreadRef, nanoseconds: UInt64) {
        // Pass advances by stride × (quanta used); at least a sliver so that a thread that
        // yields at once still moves back.
        let used = max(nanoseconds, 1)
        let advance = stride(of: thread).multipliedFullWidth(by: used)
        let (q, _) = quantumNs.dividingFullWidth((advance.high, advance.low))
        thread.policyData.0 &+= max(1, q)
    }

    public func pickNext() -> ThreadRef? {
        guard let e = heap.popMin() else { return nil }
        globalPass = e.key
        return e.thread
    }

    public var hasReadyThreads: Bool { !heap.isEmpty }
    public func timeSlice(for thread: ThreadRef) -> Duration? { quantum }
    public var readyCount: Int { heap.count }

    /// How far a migrating thread's pass is ahead of its old policy's global pass.
    private struct Lag: Sendable { let pass: UInt64 }

    /// Gives up the threads with the largest pass (they would run last); each keeps its lead
    /// over the global pass, so that on the receiver it is as far behind the others as it was
    /// here (passes of two workers are on unrelated scales). O(n log n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        heap.removeLargest(max: max, where: movable).map { e in
            Emigrant(e.thread, state: Lag(pass: e.key &- min(e.key, globalPass)))
        }
    }

    /// Queues a thread from another worker at this global pass plus the lead it had there
    /// (none without state: it starts level with the others). O(log n).
    public func immigrate(_ thread: ThreadRef, state: (any Sendable)?) {
        thread.policyData.0 = globalPass &+ ((state as? Lag)?.pass ?? 0)
        heap.insert(thread, key: thread.policyData.0)
    }
    public func checkInvariants() { heap.checkInvariants("StridePolicy") }
}
