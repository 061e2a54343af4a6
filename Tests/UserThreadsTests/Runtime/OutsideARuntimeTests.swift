import Testing

@testable import UserThreads

/// The entry points that throw report a call from outside a runtime (a test's own kernel thread
/// runs none) as `invalidArgument` naming the call, as the sync primitives already did, instead
/// of stopping the process; only those that cannot throw (`yield()`, `UThread.init`, …) stop,
/// with a clear message (ChildProcessTests). A thread of several workers joined from another
/// runtime's thread is `foreignRuntime`, as a thread of one worker is.
@Suite(.timeLimit(.minutes(1)))
struct OutsideARuntimeTests {
    @Test func throwingCallsOutsideARuntimeThrowInvalidArgument() throws {
        let (r, w) = try IO.pipe()  // nothing to read: the read must wait
        defer {
            try? IO.close(r)
            try? IO.close(w)
        }
        let calls: [(String, () throws -> Void)] = [
            ("UThread.sleep(for:)", { try UThread.sleep(for: .milliseconds(1)) }),
            ("UThread.sleep(until:)", { try UThread.sleep(until: .now + .milliseconds(1)) }),
            ("UThread.checkCancellation()", { try UThread.checkCancellation() }),
            ("UThread.spawn", { _ = try UThread.spawn {} }),
            ("UThread.spawn(onWorker:)", { _ = try UThread.spawn(onWorker: 0) {} }),
            ("blocking { }", { _ = try blocking { 1 } }),
            ("UThread.await", { _ = try UThread.await { 1 } }),
            ("withThreadGroup", { try withThreadGroup { _ in } }),
            ("channelSelect", { let _: Int = try channelSelect { s in s.otherwise { 0 } } }),
            ("Channel.send", { try Channel<Int>(capacity: 1).send(1) }),
            ("Channel.receive", { _ = try Channel<Int>(capacity: 1).receive(timeout: .seconds(1)) }),
            (
                "an I/O call that must wait",
                {
                    var byte: UInt8 = 0
                    _ = try withUnsafeMutableBytes(of: &byte) { try IO.read(r, into: $0) }
                }
            ),
        ]
        for (api, call) in calls {
            let message = expectError(sameCaseAs: .invalidArgument(""), Comment(rawValue: api), call)
            #expect(message?.hasPrefix("\(api) must be called on a user thread") == true, "\(api): \(message ?? "")")
        }
    }

    /// Joining a thread of `run(workers: 2)` from the thread of an M:1 runtime on another kernel
    /// thread throws `foreignRuntime` (it stopped the process: "must be called from an M:N
    /// thread"); from a kernel thread outside every runtime it blocks, here until its timeout.
    @Test func joiningAThreadOfSeveralWorkersFromElsewhere() throws {
        let seen = try UThreadRuntime.run(workers: 2) { () -> [String]? in
            let sleeper = UThread { try UThread.sleep(for: .seconds(60)) }
            defer { sleeper.cancel() }
            return try ControlSocketTests.onKernelThread { () -> [String] in
                var seen: [String] = []
                do { try sleeper.join(timeout: .milliseconds(20)) } catch { seen.append("outside: \(error)") }
                do {
                    try UThreadRuntime.run {
                        do { try sleeper.join() } catch { seen.append("M:1: \(error)") }
                    }
                } catch { seen.append("run: \(error)") }
                return seen
            }
        }
        #expect(seen == ["outside: \(UThreadError.timedOut)", "M:1: \(UThreadError.foreignRuntime)"])
    }
}
