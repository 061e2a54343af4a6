// Layer 8: once-initialisers.
//
// Design essay: the first caller runs the body; callers arriving while it runs park until it
// finishes and then return (or, if the body threw, the error is rethrown to the first caller
// and the waiters run it again themselves: a failed initialisation is not "done"). The body may
// park (that is the point of parking waiters instead of spinning). A body that calls its own
// UOnce again would wait for itself: that throws instead. `holders` names the running thread,
// so a cycle through two once-initialisers shows up in the deadlock report. Once done, `run`
// is one acquiring load (`done`, an atomic: the body's writes happen before every later
// return, on whatever worker).
import CUThreads
import Synchronization

/// Runs a closure exactly once, however many user threads on however many workers call `run`.
public final class UOnce: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed once is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// Set (releasing) once a body completed.
    private let done = Atomic<Bool>(false)
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    @exclusivity(unchecked) private var runner: ControlBlock? {
        didSet { runnerID.store(runner.map { Int(truncatingIfNeeded: $0.pointee.id) } ?? 0) }
    }
    /// The runner's thread id (0: none), readable from any kernel thread (`holders`).
    private let runnerID = Relaxed(0)
    @exclusivity(unchecked) private var waiters = FIFO<Waiter>()

    /// A once-initialiser whose body has not run.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Whether a call of `run` has completed its body; from then on `run` returns at once. A body
    /// that threw does not count.
    public var isDone: Bool { done.load(ordering: .acquiring) }

    /// Runs `body` if no call has completed it yet; otherwise waits for the call running it.
    /// - Parameters:
    ///   - timeout: how long to wait for another thread's run (not a limit on `body`).
    ///   - deadline: the same as an instant; the earlier of the two wins.
    ///   - body: the initialisation; it may park, and it runs on the calling thread.
    /// - Throws: `body`'s error (to the thread that ran it), `.timedOut` and
    ///   `CancellationError` while waiting, `.invalidArgument` on a recursive call.
    public func run(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil, _ body: () throws -> Void)
        throws
    {
        if isDone { return }
        guard let me = uthreads_get_current() else { throw syncOutsideUserThread("UOnce.run") }
        let limit = syncDeadline(timeout: timeout, deadline: deadline)
        while true {
            var mustRun = false
            let result = try syncWait(
                "UOnce.run", .once, object: id, target: self, deadline: limit,
                register: { waiter in
                    try sync.with { () throws(UThreadError) -> Bool in
                        defer { if syncChecking() { checkInvariants() } }
                        if isDone { return false }
                        guard let runner else {
                            runner = me
                            mustRun = true
                            return false
                        }
                        if runner == me { throw .invalidArgument("UOnce.run: \(label) called from its own body") }
                        waiters.push(waiter)
                        return true
                    }
                },
                withdraw: { waiter in
                    sync.locked {
                        defer { if syncChecking() { checkInvariants() } }
                        return waiters.remove { $0 == waiter } ? nil : .woken
                    }
                })
            if let result {
                try result.check()
                continue  // the run ended: done, or failed (then someone runs it again)
            }
            guard mustRun else { return }  // done
            let outcome = Result { try body() }
            let all = sync.locked { () -> [Waiter] in
                runner = nil
                if case .success = outcome { done.store(true, ordering: .releasing) }
                defer { if syncChecking() { checkInvariants() } }
                return waiters.popAll()
            }
            syncWake(all)
            return try outcome.get()
        }
    }

    var label: String { syncLabel("once", name: name, id: id) }

    /// "once 'config' running in #12", for the thread table (from any kernel thread; from
    /// elsewhere the runner by its id alone: `describeHolder`).
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let runner = sync.read {
            self.runner.map { describeHolder(UInt64(runnerID.load()), row: $0) }
        } elsewhere: {
            let id = runnerID.load()
            return id == 0 ? nil : "#\(id)"
        }
        return "\(label) running in " + (runner ?? "nobody")
    }

    /// The thread running the body, for wait-for cycles (from any kernel thread).
    public var holders: [ThreadID] {
        let id = runnerID.load()
        return id == 0 ? [] : [ThreadID(rawValue: UInt64(id))]
    }

    /// `UOnce(once 'config', done)`.
    public var description: String { "UOnce(\(label), \(isDone ? "done" : "not done"))" }

    // MARK: Invariants

    /// The once's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(1).
    @inline(never)
    func checkInvariants() {
        syncInvariant(!isDone || runner == nil, label, "done ⇒ no runner")
        syncInvariant(waiters.isEmpty || runner != nil, label, "waiters ⇒ a thread runs the body")
        syncInvariant((runner == nil) == (runnerID.load() == 0), label, "the runner's word names the runner")
    }
}
