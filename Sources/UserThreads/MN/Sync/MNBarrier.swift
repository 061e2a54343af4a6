// Layer 11: M:N cyclic barriers.
//
// Design: as UBarrier — `parties` threads meet; the last to arrive takes every waiter, starts
// the next generation and wakes them (the barrier is reusable); it alone is told it was last.
// A waiter that gives up (timeout, cancellation) withdraws its arrival, so it leaves no trace
// and the others keep waiting for a full set — unless its generation was released just then:
// it is no longer queued, and it returns normally (the wake wins). destroy() breaks the
// barrier: waiters and later arrivals throw `UThreadError.closed`.
import CUThreads

/// A reusable barrier for a fixed number of M:N threads on any workers.
public final class MNBarrier: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var arrived = 0
        var generation = 0
        var broken = false
        var waiters = MNFIFO<MNWaiter>()
    }
    private let state = KernelLock(State())
    /// Shown in wait reasons and `description` ("" for none).
    public let name: String
    /// A process-wide id, shown when the barrier has no name.
    public let id: UInt64
    /// How many threads must arrive to release a generation.
    public let parties: Int

    /// A barrier that releases every `parties` arrivals.
    /// - Parameters:
    ///   - parties: threads per generation, at least 1.
    ///   - name: shown in wait reasons ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `parties` is below 1.
    public init(parties: Int, name: String = "") throws(UThreadError) {
        guard parties >= 1 else { throw .invalidArgument("MNBarrier needs at least one party, not \(parties)") }
        self.parties = parties
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Arrives and waits for the others. Returns true in exactly one thread per generation
    /// (the last to arrive). O(1) to wait, O(parties) for the last arrival.
    /// - Throws: `UThreadError.timedOut`, `CancellationError` (the arrival is withdrawn),
    ///   `UThreadError.closed` if the barrier is destroyed.
    @discardableResult
    public func arriveAndWait(timeout: Duration? = nil) throws -> Bool {
        let parties = self.parties
        var released: [MNWaiter] = []
        var myGeneration = 0
        let result = try mnWait(
            "MNBarrier.arriveAndWait", .barrier, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                try state.withLock { st throws(UThreadError) -> Bool in
                    if st.broken { throw .closed("\(label) was destroyed") }
                    st.arrived += 1
                    if st.arrived == parties {
                        st.arrived = 0
                        st.generation += 1
                        released = st.waiters.popAll()
                        return false
                    }
                    st.waiters.push(waiter)
                    myGeneration = st.generation
                    return true
                }
            },
            withdraw: { waiter in
                state.withLock { st in
                    guard st.waiters.remove(where: { $0 == waiter }) else {
                        return st.generation != myGeneration ? .woken : .closed
                    }
                    st.arrived -= 1  // withdraw the arrival
                    return nil
                }
            })
        guard let result else {
            mnWake(released)
            return true
        }
        try result.check()
        return false
    }

    /// Breaks the barrier: every waiter, and every later arrival, throws `UThreadError.closed`.
    public func destroy() {
        let all = state.withLock { st in
            st.broken = true
            return st.waiters.popAll()
        }
        mnWake(all, .closed)
    }

    /// Threads waiting in the current generation (a snapshot).
    public var arrived: Int { state.withLock { $0.arrived } }
    /// How many times the barrier has released.
    public var generation: Int { state.withLock { $0.generation } }

    var label: String { syncLabel("barrier", name: name, id: id) }

    /// "barrier 'phase' (2/3 arrived)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(arrived)/\(parties) arrived)" }

    public var description: String { "MNBarrier(\(label), \(arrived)/\(parties))" }
}
