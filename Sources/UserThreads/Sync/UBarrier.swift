// Layer 8: cyclic barriers.
//
// Design essay: `parties` threads meet; the last to arrive wakes the others and starts the
// next generation (the barrier is reusable). The last arrival is told it was the last
// (`arriveAndWait` returns true) so one thread can run a per-phase action. A waiter that
// times out or is cancelled withdraws its arrival (the count goes back down), so it leaves no
// trace and the others keep waiting for a full set — unless its generation was released
// meanwhile, in which case it returns as released (the wake wins: Waiter.swift). destroy() breaks the barrier: waiters and
// later arrivals throw `UThreadError.closed`.
import CUThreads

/// A reusable barrier for a fixed number of user threads, on one worker or across workers.
public final class UBarrier: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed barrier is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// How many threads must arrive to release a generation (at least 1).
    public let parties: Int
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    /// Arrivals and releases: `Relaxed` words, readable from any kernel thread (`arrived`,
    /// `generation`).
    private let arrivals = Relaxed(0)
    private let generations = Relaxed(0)
    @exclusivity(unchecked) private var broken = false
    @exclusivity(unchecked) private var waiters = FIFO<Waiter>()

    /// A barrier that releases every `parties` arrivals.
    ///
    /// - Parameters:
    ///   - parties: threads per generation, at least 1.
    ///   - name: shown in wait reasons and deadlock reports ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `parties` is less than 1.
    public init(parties: Int, name: String = "") throws(UThreadError) {
        guard parties >= 1 else { throw .invalidArgument("UBarrier needs at least one party, not \(parties)") }
        self.parties = parties
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Arrives and waits for the others. Returns true in exactly one thread per generation
    /// (the last to arrive). O(1) to wait, O(parties) for the last arrival.
    /// - Throws: `UThreadError.timedOut`, `CancellationError` (the arrival is withdrawn),
    ///   `UThreadError.closed` if the barrier is destroyed.
    @discardableResult
    public func arriveAndWait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> Bool {
        let parties = self.parties
        var released: [Waiter] = []
        var myGeneration = 0
        let result = try syncWait(
            "UBarrier.arriveAndWait", .barrier, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline),
            register: { waiter in
                try sync.with { () throws(UThreadError) -> Bool in
                    defer { if syncChecking() { checkInvariants() } }
                    if broken { throw .closed("\(label) was destroyed") }
                    let arrived = arrivals.load() + 1  // never stored when it is `parties`
                    if arrived == parties {
                        arrivals.store(0)
                        generations.store(generations.load() + 1)
                        released = waiters.popAll()
                        return false
                    }
                    arrivals.store(arrived)
                    waiters.push(waiter)
                    myGeneration = generations.load()
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked {
                    defer { if syncChecking() { checkInvariants() } }
                    guard waiters.remove(where: { $0 == waiter }) else {
                        return generations.load() != myGeneration ? .woken : .closed
                    }
                    arrivals.store(arrivals.load() - 1)  // withdraw the arrival
                    return nil
                }
            })
        guard let result else {
            syncWake(released)
            return true
        }
        try result.check()
        return false
    }

    /// Breaks the barrier: every waiter, and every later arrival, throws `UThreadError.closed`.
    /// Any kernel thread may call it: a barrier that belongs to an M:1 runtime (made inside
    /// `run { }`) is broken by a post to that runtime, at its next safe point.
    public func destroy() {
        guard let locked = sync.enter(orPost: { [self] in destroy() }) else { return }
        broken = true
        let all = waiters.popAll()
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        syncWake(all, .closed)
    }

    /// Threads waiting at the barrier in the current generation (0..<parties, a snapshot, from any
    /// kernel thread); a
    /// waiter that times out or is cancelled is subtracted again.
    public var arrived: Int { arrivals.load() }
    /// How many times the barrier has released (starts at 0, +1 each time the last party
    /// arrives; a snapshot, from any kernel thread).
    public var generation: Int { generations.load() }

    var label: String { syncLabel("barrier", name: name, id: id) }

    /// "barrier 'phase' (2/3 arrived)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(arrived)/\(parties) arrived)" }

    /// `UBarrier(barrier 'phase', 2/3)`.
    public var description: String { "UBarrier(\(label), \(arrived)/\(parties))" }

    // MARK: Invariants

    /// The barrier's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(1).
    @inline(never)
    func checkInvariants() {
        syncInvariant(arrivals.load() >= 0 && arrivals.load() < parties, label, "0 <= arrived < parties")
        syncInvariant(generations.load() >= 0, label, "generation >= 0")
        syncInvariant(
            broken ? waiters.isEmpty : waiters.count == arrivals.load(), label,
            "one waiter per arrival (none once destroyed)")
    }
}
