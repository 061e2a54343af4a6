// Layer 11: M:N counting semaphores.
//
// Design: as USemaphore — a count of permits and a FIFO of waiters behind the object's
// KernelLock. signal() with a waiter hands the permit directly to the first waiter (the count
// is not incremented), so a later wait() cannot take it first: FIFO, no starvation. wait()
// takes a permit only when the count is positive and nobody queues. A waiter whose wait ends
// by timeout or cancellation just as a permit is handed to it keeps the permit and returns
// normally (the wake wins): no permit is lost.
import CUThreads

/// A counting semaphore for M:N threads on any worker.
public final class MNSemaphore: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var value: Int
        var waiters = MNFIFO<MNWaiter>()
        var destroyed = false
    }
    private let state: KernelLock<State>
    /// Shown in wait reasons and `description` ("" for none).
    public let name: String
    /// A process-wide id, shown when the semaphore has no name.
    public let id: UInt64

    /// A semaphore holding no permits.
    /// - Parameter name: shown in wait reasons ("" for none).
    public init(name: String = "") {
        self.state = KernelLock(State(value: 0))
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// A semaphore holding `value` permits.
    /// - Parameters:
    ///   - value: the initial permit count, not negative.
    ///   - name: shown in wait reasons ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `value` is negative.
    public init(value: Int, name: String = "") throws(UThreadError) {
        guard value >= 0 else { throw .invalidArgument("MNSemaphore value must be >= 0, not \(value)") }
        self.state = KernelLock(State(value: value))
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Takes a permit, waiting while none is available. O(1) (O(waiters) to give up).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed` (destroyed).
    public func wait(timeout: Duration? = nil) throws {
        let result = try mnWait(
            "MNSemaphore.wait", .semaphore, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                try state.withLock { st throws(UThreadError) -> Bool in
                    if st.destroyed { throw .closed("\(label) was destroyed") }
                    if st.value > 0 && st.waiters.isEmpty {
                        st.value -= 1
                        return false
                    }
                    st.waiters.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                state.withLock { st in st.waiters.remove { $0 == waiter } ? nil : (st.destroyed ? .closed : .woken) }
            })
        try result?.check()
    }

    /// Takes a permit if one is available now (and nobody queues).
    public func tryWait() -> Bool {
        state.withLock { st in
            guard !st.destroyed, st.value > 0, st.waiters.isEmpty else { return false }
            st.value -= 1
            return true
        }
    }

    /// Returns a permit: to the first waiter if any (woken on its worker), else to the count.
    /// O(1).
    public func signal() {
        let next: MNWaiter? = state.withLock { st in
            if let w = st.waiters.pop() { return w }
            st.value += 1
            return nil
        }
        if let next { mnWake(CollectionOfOne(next)) }
    }

    /// Wakes every waiter with `UThreadError.closed`; later waits throw at once.
    public func destroy() {
        let all = state.withLock { st in
            st.destroyed = true
            return st.waiters.popAll()
        }
        mnWake(all, .closed)
    }

    /// Permits available now (a snapshot).
    public var value: Int { state.withLock { $0.value } }

    var label: String { syncLabel("semaphore", name: name, id: id) }

    /// "semaphore 'slots' (value 0, 2 waiting)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let (value, waiting) = state.withLock { ($0.value, $0.waiters.count) }
        return "\(label) (value \(value), \(waiting) waiting)"
    }

    public var description: String { "MNSemaphore(\(label), value \(value))" }
}
