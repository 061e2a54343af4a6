// Layer 6: a fair-share policy in the style of Linux CFS.

/// Completely-fair-scheduler style fair share. Every thread has a weight from its nice value
/// (Linux's table: 1024 at nice 0, about ×1.25 per step, so each nice step is ~10 % of CPU
/// between two competitors) and a virtual runtime that advances by `ran × 1024 / weight`: a
/// heavy thread's clock runs slow. The ready thread with the smallest virtual runtime runs,
/// for a slice of `targetLatency × weight / total ready weight` (at least `minGranularity`).
/// A new thread starts at the current minimum virtual runtime; a thread waking from a wait
/// gets at most `targetLatency / 2` of credit (sleepers cannot bank CPU). vruntime lives in
/// `policyData.0`.
///
/// awakened, pickNext: O(log n) (a heap keyed by virtual runtime); ran, timeSlice,
/// hasReadyThreads: O(1). (Linux uses a red-black tree for the same ordering.)
public final class FairSharePolicy: SchedulingPolicy {
    /// The period in which every ready thread should run once, split among them by weight
    /// (default 20 ms).
    public let targetLatency: Duration
    /// The shortest slice a thread is given, however many threads are ready (default 1 ms).
    public let minGranularity: Duration
    private let latencyNs: UInt64
    private let granularityNs: UInt64
    private var heap = KeyedThreadHeap()
    private var readyWeight: UInt64 = 0
    private var minVruntime: UInt64 = 0

    /// Linux's sched_prio_to_weight, nice -20 … 19.
    public static let weights: [UInt64] = [
        88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
        9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
        1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
        110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
    ]

    /// The weight of a thread with nice value `nice`, from `weights` (1024 at nice 0). Values
    /// outside -20...19 are clamped to that range. O(1).
    public static func weight(nice: Int) -> UInt64 { weights[min(39, max(0, nice + 20))] }

    /// - Parameters:
    ///   - targetLatency: the period in which every ready thread should run once (20 ms).
    ///   - minGranularity: the shortest slice (1 ms).
    /// - Throws: `UThreadError.invalidArgument` when a duration is zero or negative.
    public init(targetLatency: Duration = .milliseconds(20), minGranularity: Duration = .milliseconds(1))
        throws(UThreadError)
    {
        try targetLatency.requirePositive("FairSharePolicy: the target latency")
        try minGranularity.requirePositive("FairSharePolicy: the minimum granularity")
        self.targetLatency = targetLatency
        self.minGranularity = minGranularity
        latencyNs = max(1, Deadline.clampedNanoseconds(targetLatency))
        granularityNs = max(1, Deadline.clampedNanoseconds(minGranularity))
    }

    /// `thread`'s virtual runtime (ns at weight 1024).
    public func virtualRuntime(_ thread: ThreadRef) -> UInt64 { thread.policyData.0 }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        switch reason {
        case .spawned: thread.policyData.0 = minVruntime
        case .woken: thread.policyData.0 = max(thread.policyData.0, minVruntime &- min(minVruntime, latencyNs / 2))
        case .yielded, .preempted: break
        }
        heap.insert(thread, key: thread.policyData.0)
        readyWeight += Self.weight(nice: thread.nice)
    }

    public func ran(_ thread: ThreadRef, nanoseconds: UInt64) {
        thread.policyData.0 &+= nanoseconds &* 1024 / Self.weight(nice: thread.nice)
    }

    public func pickNext() -> ThreadRef? {
        guard let e = heap.popMin() else { return nil }
        readyWeight -= Self.weight(nice: e.thread.nice)
        minVruntime = max(minVruntime, min(e.key, heap.min?.key ?? e.key))
        return e.thread
    }

    public var hasReadyThreads: Bool { !heap.isEmpty }
    public var readyCount: Int { heap.count }

    /// A migrating thread's virtual runtime relative to its old queue's minimum (negative: a
    /// woken thread's credit).
    private struct Lag: Sendable { let vruntime: Int64 }

    /// Gives up the threads with the largest virtual runtime (they would run last). As Linux
    /// does when it moves a task between run queues, the virtual runtime travels relative to
    /// the old queue's minimum and is rebased on the receiver's: two workers' clocks are
    /// unrelated, and an absolute value would make the thread starve or hog there. O(n log n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        heap.removeLargest(max: max, where: movable).map { e in
            readyWeight -= Self.weight(nice: e.thread.nice)
            return Emigrant(e.thread, state: Lag(vruntime: Int64(bitPattern: e.key &- minVruntime)))
        }
    }

    /// Queues a thread from another worker at this queue's minimum virtual runtime plus the
    /// lag it had there; a credit is capped at `targetLatency / 2`, as for any woken thread
    /// (no state: it starts at the minimum, as a new thread). O(log n).
    public func immigrate(_ thread: ThreadRef, state: (any Sendable)?) {
        let lag = max((state as? Lag)?.vruntime ?? 0, -Int64(latencyNs / 2))
        thread.policyData.0 =
            lag >= 0 ? minVruntime &+ UInt64(lag) : minVruntime &- min(minVruntime, UInt64(-lag))
        heap.insert(thread, key: thread.policyData.0)
        readyWeight += Self.weight(nice: thread.nice)
    }

    public func timeSlice(for thread: ThreadRef) -> Duration? {
        let w = Self.weight(nice: thread.nice)
        let slice = max(granularityNs, latencyNs &* w / (readyWeight + w))
        return .nanoseconds(Int64(slice))
    }

    public func checkInvariants() {
        heap.checkInvariants("FairSharePolicy")
        var sum: UInt64 = 0
        for e in heap.items { sum += Self.weight(nice: e.thread.nice) }
        precondition(sum == readyWeight, "FairSharePolicy: ready weight \(readyWeight) but queued threads weigh \(sum)")
    }
}
