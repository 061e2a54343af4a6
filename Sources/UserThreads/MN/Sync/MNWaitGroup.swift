// Layer 11: the M:N wait group (Go's sync.WaitGroup) — a counter whose zero wakes every waiter.
//
// Design: the count and the waiters behind the object's KernelLock; the call that brings the
// count to zero takes every waiter and wakes them after releasing the lock. A waiter that
// times out while a zero is being announced returns normally (the wake wins).
import CUThreads

/// Waits for a number of tasks to finish, across workers (Go's sync.WaitGroup).
public final class MNWaitGroup: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var count = 0
        var waiters = MNFIFO<MNWaiter>()
    }
    private let state = KernelLock(State())
    /// A process-wide id, shown in wait reasons.
    public let id = SyncObjectID.allocate()

    /// A wait group with a count of zero.
    public init() {}

    /// Adds `n` (may be negative) to the counter; at zero every waiter is woken. O(waiters).
    /// - Throws: `.invalidArgument` if the counter would go negative.
    public func add(_ n: Int) throws {
        let all: [MNWaiter] = try state.withLock { st throws(UThreadError) -> [MNWaiter] in
            let (sum, overflow) = st.count.addingReportingOverflow(n)
            guard !overflow else { throw .invalidArgument("MNWaitGroup counter would overflow (\(st.count) + \(n))") }
            guard sum >= 0 else { throw .invalidArgument("MNWaitGroup counter would be negative (\(st.count) + \(n))") }
            st.count = sum
            return st.count == 0 ? st.waiters.popAll() : []
        }
        mnWake(all)
    }

    /// Decrements the count; at zero, wakes every waiter on every worker.
    /// - Throws: `UThreadError.invalidArgument` when the count would go below zero.
    public func done() throws { try add(-1) }

    /// Waits until the counter is zero.
    /// - Throws: `.timedOut`, `CancellationError`.
    public func wait(timeout: Duration? = nil) throws {
        let result = mnWait(
            "MNWaitGroup.wait", .waitGroup, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                state.withLock { st -> Bool in
                    if st.count == 0 { return false }
                    st.waiters.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                state.withLock { $0.waiters.remove { $0 == waiter } ? nil : .woken }
            })
        try result?.check()  // woken: the count reached zero (even if it has risen again since)
    }

    /// The counter now (a snapshot).
    public var count: Int { state.withLock { $0.count } }

    /// "wait group 7 (count 3)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String { "wait group \(id) (count \(count))" }

    public var description: String { "MNWaitGroup(\(id), count \(count))" }
}
