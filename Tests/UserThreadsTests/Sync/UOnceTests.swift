import Synchronization
import Testing

@testable import UserThreads

/// UOnce on the M:1 runtime and across two workers: the body runs once while the others wait,
/// a failed body is retried, recursion is refused.
@Suite(.timeLimit(.minutes(1)))
struct UOnceTests {
    @Test(arguments: syncWorkerCounts) func aOnceRunsOnceAndRefusesRecursion(workers: Int) throws {
        try runOn(workers: workers) {
            let once = UOnce(name: "config")
            let runs = SyncLog<Int>()
            var ts: [UThread<Void>] = []
            for i in 0..<4 {
                ts.append(
                    UThread {
                        try once.run {
                            try UThread.sleep(for: .milliseconds(1))  // the others wait, parked
                            runs.add(i)
                        }
                    })
            }
            for t in ts { try t.join() }
            #expect(runs.all.count == 1)
            #expect(once.isDone)
            let nested = UOnce()
            expectInvalidArgument { try nested.run { try nested.run {} } }
        }
    }

    /// Eight threads spread over the workers call run; the body (which parks) runs once, the
    /// others wait for it and see its effect; a failing body is retried by the next caller; a
    /// recursive call throws; a waiter times out while the body runs elsewhere.
    @Test(arguments: syncWorkerCounts) func aOnceBodyRunsOnceWhileTheOthersWaitForIt(workers: Int) throws {
        let (runs, seen, out) = try UThreadRuntime.run(workers: workers) { () -> (Int, Int, [String]) in
            let once = UOnce(name: "init")
            let runs = MNCounter()
            let seen = MNCounter()
            let othersWaited = MNFlag()
            let value = SharedAtomic(0)
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % workers) {
                    try once.run {
                        runs.add()
                        // The body runs on until the 7 others wait for it (the merged table
                        // shows them parked on the once), bounded.
                        let end = ContinuousClock.now + .seconds(20)  // never expected
                        while ContinuousClock.now < end {
                            if UThreadRuntime.threadTable().threads.filter({ $0.waitReason?.kind == .once }).count == 7
                            {
                                othersWaited.set()
                                break
                            }
                            try UThread.sleep(for: .microseconds(100))
                        }
                        value.store(42)
                    }
                    if value.load() == 42 { seen.add() }
                }
            }
            for t in ts { try t.join() }
            #expect(once.isDone)
            var out: [String] = []
            struct Boom: Error {}
            let flaky = UOnce()
            do { try flaky.run { throw Boom() } } catch is Boom { out.append("first failed") }
            let retry = try UThread.spawn(onWorker: workers - 1) { () -> String in
                var ran = false
                try flaky.run { ran = true }
                return ran ? "retried" : "not retried"
            }
            out.append(try retry.join())
            let nested = UOnce(name: "nested")
            do { try nested.run { try nested.run {} } } catch UThreadError.invalidArgument {
                out.append("recursive refused")
            }
            // A waiter times out while the body runs elsewhere.
            let slow = UOnce()
            let gate = Channel<Int>()
            let runner = try UThread.spawn(onWorker: workers - 1) { try slow.run { _ = try gate.receive() } }
            #expect(try waitUntilParked(runner, .channelReceive))
            do { try slow.run(timeout: .milliseconds(2)) {} } catch UThreadError.timedOut {
                out.append("waiter timedOut")
            }
            try gate.send(0)
            try runner.join()
            #expect(othersWaited.isSet, "the other callers never all waited for the body")
            return (runs.count, seen.count, out)
        }
        #expect(runs == 1)
        #expect(seen == 8)
        #expect(out == ["first failed", "retried", "recursive refused", "waiter timedOut"])
    }

    /// A body that throws is not done: its caller gets the error, the callers that waited for it
    /// do not (one of them runs the body again), and a call from its own body is refused.
    @Test(arguments: syncWorkerCounts) func aFailedOnceBodyIsRetriedAndOnlyItsCallerSeesTheError(workers: Int) throws {
        let (errors, runs) = try runOn(workers: workers) { () -> ([String], Int) in
            let once = UOnce(name: "config")
            let runs = SharedAtomic(0)
            let threads = (0..<20).map { _ in
                UThread {
                    try once.run {
                        let run = runs.load() + 1
                        runs.store(run)  // inside the once: one runner at a time
                        UThread.yield()  // others arrive and park meanwhile
                        if run == 1 { throw UThreadError.invalidArgument("first attempt fails") }
                    }
                }
            }
            var errors: [String] = []
            for t in threads { do { try t.join() } catch { errors.append("\(error)") } }
            #expect(once.isDone)
            let recursive = UOnce()
            #expect(
                expectError(sameCaseAs: .invalidArgument("")) { try recursive.run { try recursive.run {} } }?.contains(
                    "called from its own body") == true)
            return (errors, runs.load())
        }
        #expect(errors == ["\(UThreadError.invalidArgument("first attempt fails"))"])
        #expect(runs == 2)  // the failed run, then one successful retry
    }
}
