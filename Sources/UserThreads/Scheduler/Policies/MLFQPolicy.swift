// Layer 6: the multi-level feedback queue (Corbató's CTSS; rules as in Arpaci-Dusseau's OSTEP).

/// Multi-level feedback queue. Rules:
///  1. A higher level (0 is highest) runs before a lower one; round-robin within a level.
///  2. A new thread enters at level 0.
///  3. A thread that has used up its level's allotment (the level's quantum, summed over
///     however many times it ran there — so yielding just before the end does not game it)
///     moves down one level.
///  4. Every `boostInterval` all threads go back to level 0 (no starvation of CPU-bound threads
///     behind a stream of interactive ones, and a thread that became interactive recovers).
/// Interactive threads that block before their allotment is used stay high and get the CPU
/// soon after they wake; CPU-bound threads sink to the long quanta at the bottom. A thread
/// that becomes ready at a higher level than the running thread's preempts it at the running
/// thread's next safe point.
///
/// policyData.0: level | boost epoch << 8 (a boost moves parked threads too, lazily, by
/// bumping the epoch); policyData.1: time used at the current level (ns).
///
/// awakened, ran, timeSlice: O(1); pickNext, shouldPreempt: O(levels); a boost: O(ready).
public final class MLFQPolicy: SchedulingPolicy {
    /// The quantum (allotment) of each level, top level first: a thread that uses up its level's
    /// allotment moves down one level. One to 255 levels (default 5, 10, 20 ms).
    public let quanta: [Duration]
    /// How often every thread is moved back to the top level (default 100 ms); nil: never, so
    /// CPU-bound threads at the bottom can starve behind interactive ones.
    public let boostInterval: Duration?
    private let quantaNs: [UInt64]
    private let boostNs: UInt64
    private var queues: [ReadyQueue]
    private var epoch: UInt64 = 0
    private var lastBoost: UInt64?
    /// Threads queued, over every level.
    public private(set) var readyCount = 0

    /// - Parameters:
    ///   - quanta: the quantum (allotment) of each level, top first (default 5, 10, 20 ms).
    ///   - boostInterval: how often every thread returns to the top (default 100 ms; nil: never).
    /// - Throws: `UThreadError.invalidArgument` unless there are 1...255 levels, every quantum is
    ///   positive and the boost interval (if any) is positive.
    public init(
        quanta: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(20)],
        boostInterval: Duration? = .milliseconds(100)
    ) throws(UThreadError) {
        guard !quanta.isEmpty && quanta.count < 256 else {
            throw .invalidArgument("MLFQPolicy: 1...255 levels, not \(quanta.count)")
        }
        for q in quanta { try q.requirePositive("MLFQPolicy: every quantum") }
        try boostInterval?.requirePositive("MLFQPolicy: the boost interval (nil for none)")
        self.quanta = quanta
        self.boostInterval = boostInterval
        quantaNs = quanta.map { max(1, Deadline.clampedNanoseconds($0)) }
        boostNs = boostInterval.map { max(1, Deadline.clampedNanoseconds($0)) } ?? 0
        queues = Array(repeating: ReadyQueue(), count: quanta.count)
    }

    /// The level of `thread` now (0 = top).
    public func level(of thread: ThreadRef) -> Int {
        let d = thread.policyData.0
        return d >> 8 == epoch ? Int(d & 0xFF) : 0
    }

    private func setLevel(_ thread: ThreadRef, _ level: Int, used: UInt64) {
        thread.policyData = (UInt64(level) | epoch << 8, used)
    }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        if lastBoost == nil { lastBoost = now }
        if reason == .spawned { setLevel(thread, 0, used: 0) }
        let l = level(of: thread)
        if thread.policyData.0 >> 8 != epoch { setLevel(thread, l, used: 0) }
        queues[l].append(thread)
        readyCount += 1
    }

    public func ran(_ thread: ThreadRef, nanoseconds: UInt64) {
        let l = level(of: thread)
        let used = (thread.policyData.0 >> 8 == epoch ? thread.policyData.1 : 0) &+ nanoseconds
        if used >= quantaNs[l] {
            setLevel(thread, min(l + 1, quanta.count - 1), used: 0)  // rule 3: demote
        } else {
            setLevel(thread, l, used: used)
        }
    }

    private func boostIfDue() {
        guard boostNs > 0, let last = lastBoost else { return }
        let t = now
        guard t &- last >= boostNs else { return }
        lastBoost = t
        epoch &+= 1
        for l in 1..<queues.count {
            while let r = queues[l].popFirst() {
                setLevel(r, 0, used: 0)
                queues[0].append(r)
            }
        }
        queues[0].forEach { setLevel($0, 0, used: 0) }
    }

    public func pickNext() -> ThreadRef? {
        boostIfDue()
        for l in queues.indices {
            if let t = queues[l].popFirst() {
                readyCount -= 1
                return t
            }
        }
        return nil
    }

    public var hasReadyThreads: Bool { readyCount > 0 }

    /// A migrating thread's level and the time it used of that level's allotment.
    private struct Allotment: Sendable {
        let level: Int
        let used: UInt64
    }

    /// Gives up threads from the lowest levels first, back to front (the ones it would run
    /// last); each keeps its level and what it used of the allotment there (moving must not
    /// reset a CPU-bound thread to the top, nor demote an interactive one). O(n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        var out: [Emigrant] = []
        for l in queues.indices.reversed() where out.count < max {
            for t in queues[l].removeFromBack(max: max - out.count, where: movable) {
                let used = t.policyData.0 >> 8 == epoch ? t.policyData.1 : 0
                out.append(Emigrant(t, state: Allotment(level: l, used: used)))
            }
        }
        readyCount -= out.count
        return out
    }

    /// Queues a thread from another worker at the level it had there, with the allotment it
    /// had used (no state: at the top, as a new thread). O(1).
    public func immigrate(_ thread: ThreadRef, state: (any Sendable)?) {
        if lastBoost == nil { lastBoost = now }
        let a = state as? Allotment
        let l = min(a?.level ?? 0, quanta.count - 1)
        setLevel(thread, l, used: a?.used ?? 0)
        queues[l].append(thread)
        readyCount += 1
    }

    public func timeSlice(for thread: ThreadRef) -> Duration? {
        let l = level(of: thread)
        let used = thread.policyData.0 >> 8 == epoch ? thread.policyData.1 : 0
        return .nanoseconds(Int64(quantaNs[l] - min(used, quantaNs[l] - 1)))
    }

    public func shouldPreempt(_ running: ThreadRef) -> Bool {
        let l = level(of: running)
        return queues[..<l].contains { !$0.isEmpty }
    }

    public func checkInvariants() {
        var n = 0
        for (l, q) in queues.enumerated() {
            q.checkInvariants()
            q.forEach { t in
                n += 1
                precondition(t.block.pointee.state == .stateReady, "MLFQPolicy: queued thread \(t.id) is not ready")
                precondition(
                    level(of: t) == l, "MLFQPolicy: thread \(t.id) queued at level \(l) but is at \(level(of: t))")
            }
        }
        precondition(n == readyCount, "MLFQPolicy: count \(readyCount) but \(n) queued")
    }
}
