import CUThreads
import Synchronization
import Testing

@testable import UserThreads

/// The entry points that throw report a call from outside a runtime (a test's own kernel thread
/// runs none) as `invalidArgument` naming the call, as the sync primitives already did, instead
/// of stopping the process. Those that cannot throw answer where an answer is honest: the spawns
/// make a finished thread whose `join()` throws that error, `yield()` returns, `isCancelled` is
/// false, `UThreadRuntime.nanoseconds` reads CLOCK_MONOTONIC; only those with nothing honest to
/// return (`UThread.current`, `ThreadLocal`'s members) stop, with a clear message
/// (ChildProcessTests). A thread of several workers joined from another runtime's thread is
/// `foreignRuntime`, as a thread of one worker is.
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
            ("withThreadGroup", { try withThreadGroup(timeout: .seconds(1)) { _ in } }),
            ("UThreadRuntime.seedRandom", { try UThreadRuntime.seedRandom(1) }),
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

    /// A body that must never run outside a runtime: counts the runs.
    final class Runs: Sendable {
        let count = Atomic<Int>(0)
        func body() -> Int {
            count.add(1, ordering: .relaxed)
            return 1
        }
    }

    /// `UThread.init` and `UThread.local` (every form) outside a runtime make a thread that is
    /// finished at once, whose `join()` (with or without a limit) throws the `invalidArgument`
    /// the throwing calls there throw, naming the call; the body never runs (they stopped the
    /// process).
    @Test func spawnsThatCannotThrowMakeAFinishedThreadOutsideARuntime() throws {
        let runs = Runs()
        let threads: [(String, UThread<Int>)] = [
            ("UThread.init", UThread { runs.body() }),
            ("UThread.init", UThread(name: "sized", stackSize: 64 * 1024) { runs.body() }),
            ("UThread.init", UThread(priority: 2, pinned: true) { runs.body() }),
            ("UThread.init", UThread(scheduling: .init(priority: 3)) { runs.body() }),
            ("UThread.local", UThread.local { runs.body() }),
            ("UThread.local", UThread.local(scheduling: .init(nice: 1)) { runs.body() }),
        ]
        for (api, thread) in threads {
            #expect(thread.isFinished, "\(api)")
            thread.cancel()  // nothing to cancel: no effect
            for join in [{ try thread.join() }, { try thread.join(timeout: .seconds(1)) }] {
                let message = expectError(sameCaseAs: .invalidArgument(""), Comment(rawValue: api), join)
                #expect(message?.hasPrefix("\(api) must be called on a user thread") == true, "\(message ?? "")")
            }
        }
        #expect(runs.count.load(ordering: .relaxed) == 0)
    }

    /// Outside a runtime `UThread.yield()` returns at once (no user thread can be ready there),
    /// `UThread.isCancelled` is false (nothing can cancel it) and `UThreadRuntime.nanoseconds`
    /// reads CLOCK_MONOTONIC, the clock of a runtime that does not simulate: none stops.
    @Test func yieldAndReadsOutsideARuntimeAnswer() {
        for _ in 0..<3 { UThread.yield() }
        #expect(!UThread.isCancelled)
        let before = uthreads_monotonic_ns()
        let now = UThreadRuntime.nanoseconds
        let after = uthreads_monotonic_ns()
        #expect(before <= now && now <= after)
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
