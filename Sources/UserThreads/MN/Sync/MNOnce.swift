// Layer 11: M:N once-initialisers.
//
// Design: as UOnce — the first caller runs the body (outside the object's lock: the body may
// park, spawn, take other locks); callers arriving meanwhile park until it finishes, then
// return. If the body throws, the error goes to the thread that ran it and the waiters wake and
// try again themselves (a failed initialisation is not "done"). A body that calls its own
// MNOnce again would wait for itself: that throws instead. `holders` names the running thread.
import CUThreads

/// Runs a closure exactly once, however many M:N threads on however many workers call `run`.
public final class MNOnce: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var done = false
        var runner: UInt64 = 0
        var waiters = MNFIFO<MNWaiter>()
    }
    private let state = KernelLock(State())
    /// Shown in wait reasons and `description` ("" for none).
    public let name: String
    /// A process-wide id, shown when the once has no name.
    public let id: UInt64

    /// A once-initialiser whose body has not run.
    /// - Parameter name: shown in wait reasons ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Runs `body` if no call has completed it yet; otherwise waits for the call running it.
    /// - Parameters:
    ///   - timeout: how long to wait for another thread's run (not a limit on `body`).
    ///   - body: the initialisation; it may park, and it runs on the calling thread.
    /// - Throws: `body`'s error (to the thread that ran it), `.timedOut` and
    ///   `CancellationError` while waiting, `.invalidArgument` on a recursive call.
    public func run(timeout: Duration? = nil, _ body: () throws -> Void) throws {
        let me = mnCurrentThread("MNOnce.run")
        let deadline = mnDeadline(timeout)
        while true {
            var mustRun = false
            let result = try mnWait(
                "MNOnce.run", .once, object: id, target: self, deadline: deadline,
                register: { waiter in
                    try state.withLock { st throws(UThreadError) -> Bool in
                        if st.done { return false }
                        if st.runner == 0 {
                            st.runner = me
                            mustRun = true
                            return false
                        }
                        if st.runner == me { throw .invalidArgument("MNOnce.run: \(label) called from its own body") }
                        st.waiters.push(waiter)
                        return true
                    }
                },
                withdraw: { waiter in
                    state.withLock { st in st.waiters.remove { $0 == waiter } ? nil : .woken }
                })
            if let result {
                try result.check()
                continue  // the run ended: done, or failed (then someone runs it again)
            }
            guard mustRun else { return }  // done
            let outcome = Result { try body() }
            let all = state.withLock { st in
                st.runner = 0
                if case .success = outcome { st.done = true }
                return st.waiters.popAll()
            }
            mnWake(all)
            return try outcome.get()
        }
    }

    /// Whether a call of `run` has completed its body (a body that threw does not count).
    public var isDone: Bool { state.withLock { $0.done } }

    var label: String { syncLabel("once", name: name, id: id) }

    /// "once 'config' running in #12", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let runner = state.withLock { $0.runner }
        return "\(label) running in " + (runner == 0 ? "nobody" : mnThreadLabel(runner))
    }

    /// The thread running the body, for wait-for cycles.
    public var holders: [ThreadID] {
        let runner = state.withLock { $0.runner }
        return runner == 0 ? [] : [ThreadID(rawValue: runner)]
    }

    public var description: String { "MNOnce(\(label), \(isDone ? "done" : "not done"))" }
}
