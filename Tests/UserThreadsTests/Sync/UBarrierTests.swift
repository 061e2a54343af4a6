import Synchronization
import Testing

@testable import UserThreads

/// UBarrier on the M:1 runtime and across two workers: one release per generation, nobody
/// passes early, arrivals that give up are withdrawn, destroy breaks it.
@Suite(.timeLimit(.minutes(1)))
struct UBarrierTests {
    @Test(arguments: syncWorkerCounts) func aBarrierReleasesEachGenerationOnce(workers: Int) throws {
        let lasts = try runOn(workers: workers) { () -> Int in
            let b = try UBarrier(parties: 3, name: "phase")
            var ts: [UThread<Int>] = []
            for _ in 0..<3 {
                ts.append(
                    UThread { () -> Int in
                        var last = 0
                        for _ in 0..<4 where try b.arriveAndWait() { last += 1 }
                        return last
                    })
            }
            var total = 0
            for t in ts { total += try t.join() }
            #expect(b.generation == 4)
            return total
        }
        #expect(lasts == 4)  // exactly one last arrival per generation
    }

    @Test(arguments: syncWorkerCounts) func aBarrierArrivalThatGivesUpIsWithdrawn(workers: Int) throws {
        try runOn(workers: workers) {
            let b = try UBarrier(parties: 2)
            #expect(throws: UThreadError.timedOut) { try b.arriveAndWait(timeout: .milliseconds(5)) }
            #expect(b.arrived == 0)
            let t = UThread { _ = try b.arriveAndWait() }
            try waitFor { b.arrived == 1 }
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
            #expect(b.arrived == 0)
            expectInvalidArgument { _ = try UBarrier(parties: 0) }
        }
    }

    /// Four parties spread over the workers, several generations: nobody passes before all
    /// arrived, and exactly one arrival per generation is told it was last.
    @Test(arguments: syncWorkerCounts) func nobodyPassesABarrierBeforeEveryPartyArrived(workers: Int) throws {
        let (lasts, generation, ok) = try UThreadRuntime.run(workers: workers) { () -> (Int, Int, Bool) in
            let b = try UBarrier(parties: 4, name: "phase")
            let lasts = MNCounter()
            let phase = MNCounter()
            let bad = MNCounter()
            let ts = try (0..<4).map { i in
                try UThread.spawn(onWorker: i % workers) {
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

    /// A timed-out or cancelled arrival is withdrawn; destroy breaks the barrier for waiters
    /// and later arrivals alike.
    @Test(arguments: syncWorkerCounts) func aBarrierWithdrawsGiversUpAndDestroyBreaksIt(workers: Int) throws {
        let out = try UThreadRuntime.run(workers: workers) { () -> [String] in
            let b = try UBarrier(parties: 2)
            var out: [String] = []
            let timed = try UThread.spawn(onWorker: workers - 1) { () -> String in
                do {
                    try b.arriveAndWait(timeout: .milliseconds(3))
                    return "passed"
                } catch UThreadError.timedOut { return "timedOut" }
            }
            out.append(try timed.join())
            out.append("arrived \(b.arrived)")  // withdrawn
            let cancelled = try UThread.spawn(onWorker: workers - 1) { () -> String in
                do {
                    try b.arriveAndWait()
                    return "passed"
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try waitUntilParked(cancelled, .barrier))
            cancelled.cancel()
            out.append(try cancelled.join())
            out.append("arrived \(b.arrived)")
            let broken = try UThread.spawn(onWorker: workers - 1) { () -> String in
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
}
