// Layer 6: strict priority with aging.

/// Strict priority with aging: the ready thread with the highest *effective* priority runs;
/// equal priorities run in FIFO order, round-robin within the quantum. A thread's effective
/// priority is its `priority` plus one for every `agingInterval` it has waited ready, so a
/// low-priority thread waiting behind a stream of high-priority work eventually outranks it:
/// no starvation (a thread of priority p waits at most (pmax − p + 1) × agingInterval plus
/// one quantum per thread ahead of it). Running resets the age. With `agingInterval: nil` the
/// policy is strict and can starve. A thread that becomes ready with a higher effective
/// priority than the running thread's preempts it at the running thread's next safe point.
///
/// awakened, hasReadyThreads, timeSlice: O(1). pickNext, shouldPreempt: O(n) in ready threads
/// (one scan computing effective priorities; aging makes priorities change with time, which a
/// heap keyed at insertion cannot follow).
public final class PriorityPolicy: SchedulingPolicy {
    /// The time slice among threads of equal effective priority (default 10 ms).
    public let quantum: Duration
    /// Waiting ready this long raises a thread's effective priority by one (default 20 ms); nil:
    /// no aging, so the policy is strict and low priorities can starve.
    public let agingInterval: Duration?
    private let agingNs: UInt64
    private var queue = ReadyQueue()

    /// - Parameters:
    ///   - quantum: the time slice among equal priorities (default 10 ms).
    ///   - agingInterval: waiting this long raises the effective priority by one (default
    ///     20 ms); nil: no aging (strict priority, starvation possible).
    /// - Throws: `UThreadError.invalidArgument` when a duration is zero or negative.
    public init(quantum: Duration = .milliseconds(10), agingInterval: Duration? = .milliseconds(20))
        throws(UThreadError)
    {
        try quantum.requirePositive("PriorityPolicy: the quantum")
        try agingInterval?.requirePositive("PriorityPolicy: the aging interval")
        self.quantum = quantum
        self.agingInterval = agingInterval
        agingNs = agingInterval.map { max(1, Deadline.clampedNanoseconds($0)) } ?? 0
    }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        thread.policyData.0 = now  // ready since
        queue.append(thread)
    }

    /// `thread`'s priority raised by its age at `now`.
    public func effectivePriority(_ thread: ThreadRef, now: UInt64) -> Int {
        guard agingNs > 0 else { return thread.priority }
        let waited = now &- min(now, thread.policyData.0)
        return thread.priority &+ Int(min(waited / agingNs, 1 << 30))
    }

    private func best() -> (ThreadRef, Int)? {
        let t = now
        var found: (ThreadRef, Int)?
        queue.forEach { r in
            let p = effectivePriority(r, now: t)
            if found == nil || p > found!.1 { found = (r, p) }  // strict >: FIFO among equals
        }
        return found
    }

    public func pickNext() -> ThreadRef? {
        guard let (t, _) = best() else { return nil }
        queue.remove(t)
        return t
    }

    public var hasReadyThreads: Bool { !queue.isEmpty }
    public var readyCount: Int { queue.count }

    /// How long a migrating thread had waited ready (its age: aging must not restart).
    private struct Waited: Sendable { let nanoseconds: UInt64 }

    /// Gives up the threads of lowest effective priority, the later queued first among equals
    /// (the ones it would run last); each keeps its age. O(n log n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        guard max > 0 else { return [] }
        let t = now
        var candidates: [(thread: ThreadRef, priority: Int, place: Int)] = []
        var place = 0
        queue.forEach { r in
            if movable(r) { candidates.append((r, effectivePriority(r, now: t), place)) }
            place += 1
        }
        candidates.sort { $0.priority != $1.priority ? $0.priority < $1.priority : $0.place > $1.place }
        return candidates.prefix(max).map { c in
            queue.remove(c.thread)
            return Emigrant(c.thread, state: Waited(nanoseconds: t &- min(t, c.thread.policyData.0)))
        }
    }

    /// Queues a thread from another worker with the age it had there (the clock is the same
    /// monotonic one on every worker, but "ready since" is kept as an age, not an instant). O(1).
    public func immigrate(_ thread: ThreadRef, state: (any Sendable)?) {
        let t = now
        thread.policyData.0 = t &- min(t, (state as? Waited)?.nanoseconds ?? 0)
        queue.append(thread)
    }
    public func timeSlice(for thread: ThreadRef) -> Duration? { quantum }

    public func shouldPreempt(_ running: ThreadRef) -> Bool {
        guard let (_, p) = best() else { return false }
        return p > running.priority
    }

    public func checkInvariants() {
        queue.checkInvariants()
        queue.forEach {
            precondition($0.block.pointee.state == .stateReady, "PriorityPolicy: queued thread \($0.id) is not ready")
        }
    }
}
