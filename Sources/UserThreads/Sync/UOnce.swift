// Layer 8: once-initialisers.
//
// Design essay: the first caller runs the body; callers arriving while it runs park until it
// finishes and then return (or, if the body threw, the error is rethrown to the first caller
// and the waiters run it again themselves: a failed initialisation is not "done"). The body may
// park (that is the point of parking waiters instead of spinning). A body that calls its own
// UOnce again would wait for itself: that throws instead. `holders` names the running thread,
// so a cycle through two once-initialisers shows up in the deadlock report.
import CUThreads

/// Runs a closure exactly once, however many user threads call `run` concurrently.
public final class UOnce: WaitQueue, WaitTarget, CustomStringConvertible {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed once is shown by `id`.
    public let name: String
    public let id: UInt64
    /// Whether a call of `run` has completed its body; from then on `run` returns at once. A body
    /// that threw does not count.
    @exclusivity(unchecked) public private(set) var isDone = false
    @exclusivity(unchecked) private var runner: ControlBlock?

    /// A once-initialiser whose body has not run.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
        super.init()
    }

    /// Runs `body` if no call has completed it yet; otherwise waits for the running call.
    /// - Throws: `body`'s error (to the thread that ran it), `CancellationError` while waiting,
    ///   `.invalidArgument` on a recursive call.
    public func run(_ body: () throws -> Void) throws {
        if isDone { return }
        let s = Scheduler.require("UOnce.run")
        while !isDone {
            if let runner {
                if runner == s.current {
                    throw UThreadError.invalidArgument("UOnce.run: \(label) called from its own body")
                }
                try s.wait(on: self, .once, object: id, target: self, deadline: nil)
                continue
            }
            runner = s.current
            do {
                try body()
            } catch {
                runner = nil
                s.wakeAll(self, .woken)
                throw error
            }
            runner = nil
            isDone = true
            s.wakeAll(self, .woken)
        }
    }

    var label: String { syncLabel("once", name: name, id: id) }
    public func waitDescription(kind: WaitReason.Kind) -> String {
        "\(label) running in " + (runner.map(describeThread) ?? "nobody")
    }
    public var holders: [ThreadID] { runner.map { [$0.threadID] } ?? [] }
    public var description: String { "UOnce(\(label), \(isDone ? "done" : "not done"))" }
}
