import Testing

@testable import UserThreads

/// UWaitGroup, UBarrier, UOnce and URWLock on the M:1 runtime and across two workers: the
/// rules, timeouts, deadlines, cancellation and misuse errors.
@Suite(.timeLimit(.minutes(1)))
struct UGroupPrimitivesTests {
    @Test(arguments: syncWorkerCounts) func aWaitGroupReleasesItsWaitersAtZero(workers: Int) throws {
        try runOn(workers: workers) { try Self.waitGroupScenario(workers: workers) }
    }

    /// A function, not a closure literal: Swift 6.3.1's region checker crashed (SendNonSendable,
    /// `map::at`) on this body written inline.
    static func waitGroupScenario(workers: Int) throws {
        let g = UWaitGroup(name: "jobs")
        try g.add(3)
        let first = UThread { try g.wait() }
        let second = UThread { try g.wait() }
        #expect(throws: UThreadError.timedOut) { try g.wait(timeout: .milliseconds(5)) }
        #expect(throws: UThreadError.timedOut) { try g.wait(deadline: .now) }
        for _ in 0..<3 { try UThread { try g.done() }.join() }
        try first.join()
        try second.join()
        #expect(g.pending == 0)
        expectInvalidArgument { try g.done() }  // below zero
        try g.wait()  // zero: at once
    }

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

    @Test(arguments: syncWorkerCounts) func aWaitingWriterHoldsBackNewReaders(workers: Int) throws {
        try runOn(workers: workers) {
            let l = URWLock(name: "db")
            try l.readLock()
            let writer = UThread { try l.withWriteLock {} }
            try waitFor { l.waitDescription(kind: .rwlock).contains("1 writer(s) queued") }
            // A new reader queues behind the waiting writer: no writer starvation.
            let reader = UThread { () -> Bool in
                try l.readLock(timeout: .milliseconds(5))
                try l.readUnlock()
                return true
            }
            #expect(throws: UThreadError.timedOut) { try reader.join() }
            try l.readUnlock()
            try writer.join()
            #expect(!l.isWriteLocked && l.readerCount == 0)
            expectInvalidArgument { try l.readUnlock() }
            try l.writeLock(deadline: .now + .seconds(1))
            expectInvalidArgument { try l.readLock() }  // holds it for writing
            try l.writeUnlock()
        }
    }
}
