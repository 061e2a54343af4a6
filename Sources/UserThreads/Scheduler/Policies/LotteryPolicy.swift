// Layer 6: lottery scheduling (Waldspurger and Weihl, 1994).

/// Lottery scheduling: at every decision one ticket among all ready threads' tickets is drawn
/// at random and its holder runs for a quantum. Over many quanta a thread's share of the CPU
/// converges to its share of the tickets (binomially: relative error ~ 1/√(draws won)), and a
/// new thread has a chance at once. The random source is SplitMix64 seeded at construction,
/// so a run under the virtual clock is reproduced exactly by its seed: this is also the
/// policy the deterministic simulation uses to explore interleavings.
///
/// awakened, hasReadyThreads, timeSlice: O(1). pickNext: O(n) (walk to the winning ticket).
public final class LotteryPolicy: SchedulingPolicy {
    /// The time slice a winning thread runs before the next draw (default 10 ms).
    public let quantum: Duration
    /// The seed of the random source (default 1). Under the virtual clock, the same seed
    /// reproduces the same sequence of draws and so the same run.
    public let seed: UInt64
    private var random: SplitMix64
    private var queue = ReadyQueue()
    private var totalTickets: UInt64 = 0

    /// - Parameters:
    ///   - seed: the random source's seed.
    ///   - quantum: the time slice (default 10 ms).
    /// - Throws: `UThreadError.invalidArgument` when `quantum` is zero or negative.
    public init(seed: UInt64 = 1, quantum: Duration = .milliseconds(10)) throws(UThreadError) {
        try quantum.requirePositive("LotteryPolicy: the quantum")
        self.seed = seed
        self.quantum = quantum
        random = SplitMix64(seed: seed)
    }

    public func awakened(_ thread: ThreadRef, reason: ReadyReason) {
        queue.append(thread)
        totalTickets += UInt64(thread.tickets)
    }

    public func pickNext() -> ThreadRef? {
        guard !queue.isEmpty else { return nil }
        var winner = random.next(below: totalTickets)
        var chosen: ThreadRef?
        queue.forEach { t in
            guard chosen == nil else { return }
            let n = UInt64(t.tickets)
            if winner < n { chosen = t } else { winner -= n }
        }
        let t = chosen ?? queue.first!
        queue.remove(t)
        totalTickets -= UInt64(t.tickets)
        return t
    }

    public var hasReadyThreads: Bool { !queue.isEmpty }
    public func timeSlice(for thread: ThreadRef) -> Duration? { quantum }
    public var readyCount: Int { queue.count }

    /// Gives up threads from the back of the queue (every ready thread is equally likely to
    /// run next; the back is simply the cheapest end). Its tickets are in its row, so nothing
    /// else travels. O(n).
    public func emigrate(max: Int, where movable: (ThreadRef) -> Bool) -> [Emigrant] {
        queue.removeFromBack(max: max, where: movable).map { t in
            totalTickets -= UInt64(t.tickets)
            return Emigrant(t)
        }
    }

    public func checkInvariants() {
        queue.checkInvariants()
        var sum: UInt64 = 0
        queue.forEach {
            sum += UInt64($0.tickets)
            precondition($0.block.pointee.state == .stateReady, "LotteryPolicy: queued thread \($0.id) is not ready")
        }
        precondition(sum == totalTickets, "LotteryPolicy: ticket total \(totalTickets) but queued threads hold \(sum)")
    }
}
