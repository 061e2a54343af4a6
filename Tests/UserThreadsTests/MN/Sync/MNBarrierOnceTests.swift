import Synchronization
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct MNBarrierOnceTests {
    /// Four parties on two workers, several generations: nobody passes before all arrived, and
    /// exactly one arrival per generation is told it was last.
    @Test func barrierGenerationsAcrossWorkers() throws {
        let (lasts, generation, ok) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int, Bool) in
            let b = try UBarrier(parties: 4, name: "phase")
            let lasts = MNCounter()
            let phase = MNCounter()
            let bad = MNCounter()
            let ts = try (0..<4).map { i in
                try UThread.spawn(onWorker: i % 2) {
                    for round in 0..<50 {
                        phase.add()
                        if try b.arriveAndWait() { lasts.add() }
                        if phase.count < 4 * (round + 1) { bad.add() }  // someone passed early
                        try b.arriveAndWait()  // keep rounds apart
                    }
                }
            }
            for t in ts { try t.join() }
            return (lasts.count, b.generation, bad.count == 0)
        }
        #expect(lasts == 50)
        #expect(generation == 100)
        #expect(ok)
    }

    @Test func barrierTimeoutWithdrawsAndDestroyBreaks() throws {
        expectError(sameCaseAs: .invalidArgument("")) { try UBarrier(parties: 0) }
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let b = try UBarrier(parties: 2)
            var out: [String] = []
            let timed = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    try b.arriveAndWait(timeout: .milliseconds(3))
                    return "passed"
                } catch UThreadError.timedOut { return "timedOut" }
            }
            out.append(try timed.join())
            out.append("arrived \(b.arrived)")  // withdrawn
            let cancelled = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    try b.arriveAndWait()
                    return "passed"
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try waitUntilParked(cancelled, .barrier))
            cancelled.cancel()
            out.append(try cancelled.join())
            out.append("arrived \(b.arrived)")
            let broken = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    try b.arriveAndWait()
                    return "passed"
                } catch UThreadError.closed { return "closed" }
            }
            #expect(try waitUntilParked(broken, .barrier))
            b.destroy()
            out.append(try broken.join())
            do { try b.arriveAndWait() } catch UThreadError.closed { out.append("later arrival closed") }
            return out
        }
        #expect(out == ["timedOut", "arrived 0", "cancelled", "arrived 0", "closed", "later arrival closed"])
    }

    /// Eight threads on two workers call run; the body (which parks) runs once, the others wait
    /// for it; a failing body is retried by the next caller; a recursive call throws.
    @Test func onceRunsOnceAcrossWorkers() throws {
        let (runs, seen, out) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int, [String]) in
            let once = UOnce(name: "init")
            let runs = MNCounter()
            let seen = MNCounter()
            let othersWaited = MNFlag()
            let value = SharedAtomic(0)
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % 2) {
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
            let retry = try UThread.spawn(onWorker: 1) { () -> String in
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
            let runner = try UThread.spawn(onWorker: 1) { try slow.run { _ = try gate.receive() } }
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
}
