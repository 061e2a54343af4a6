import Testing

@testable import UserThreads

/// UMutex on the M:1 runtime and across two workers: FIFO handoff without barging, timeouts,
/// deadlines, cancellation, wait reasons and misuse errors.
@Suite(.timeLimit(.minutes(1)))
struct UMutexTests {
    @Test(arguments: syncWorkerCounts) func waitersGetTheMutexInArrivalOrderWithoutBarging(workers: Int) throws {
        let order = try runOn(workers: workers) { () -> [Int] in
            let m = UMutex(name: "fifo")
            let log = SyncLog<Int>()
            try m.lock()
            var threads: [UThread<Void>] = []
            for i in 0..<5 {
                threads.append(UThread { try m.withLock { log.add(i) } })
                try waitFor { m.waiting == i + 1 }  // arrival order is spawn order
            }
            try m.unlock()
            // Ownership went to the first waiter: the releasing thread cannot barge back in.
            #expect(m.tryLock() == false)
            for t in threads { try t.join() }
            #expect(!m.isLocked)
            return log.all
        }
        #expect(order == Array(0..<5))
    }

    @Test(arguments: syncWorkerCounts) func lockTimesOutAndMeetsItsDeadline(workers: Int) throws {
        try runOn(workers: workers) {
            let m = UMutex()
            try m.lock()
            let t = UThread { () -> Int in
                var timedOut = 0
                do { try m.lock(timeout: .milliseconds(5)) } catch UThreadError.timedOut { timedOut += 1 }
                do { try m.lock(deadline: .now + .milliseconds(5)) } catch UThreadError.timedOut { timedOut += 1 }
                // The earlier of the two wins.
                do { try m.lock(timeout: .seconds(60), deadline: .now) } catch UThreadError.timedOut { timedOut += 1 }
                return timedOut
            }
            #expect(try t.join() == 3)
            #expect(m.waiting == 0)
            try m.unlock()
            try m.lock(timeout: .zero)  // free: a zero timeout still takes it
            try m.unlock()
        }
    }

    @Test(arguments: syncWorkerCounts) func cancelEndsTheWaitAndLeavesNoWaiter(workers: Int) throws {
        try runOn(workers: workers) {
            let m = UMutex()
            try m.lock()
            let t = UThread { try m.lock() }
            try waitFor { m.waiting == 1 }
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
            #expect(m.waiting == 0)
            #expect(m.isHeldByCurrentThread)
            try m.unlock()
        }
    }

    @Test(arguments: syncWorkerCounts) func theWaitReasonNamesTheMutexAndItsHolder(workers: Int) throws {
        try runOn(workers: workers) {
            let m = UMutex(name: "db")
            try m.lock()
            let t = UThread(name: "clerk") { try m.withLock {} }
            try waitFor { m.waiting == 1 }
            let me = UThread.current.id
            let row = UThreadRuntime.threadTable().threads.first { $0.name == "clerk" }
            #expect(row?.waitReason?.kind == .mutex)
            #expect(row?.waitReason?.description.hasPrefix("mutex 'db' held by \(me)") == true)
            #expect(m.holder == me)
            try m.unlock()
            try t.join()
        }
    }

    @Test(arguments: syncWorkerCounts) func misuseThrowsInvalidArgument(workers: Int) throws {
        try runOn(workers: workers) {
            let m = UMutex(name: "m")
            expectInvalidArgument { try m.unlock() }  // not locked
            try m.lock()
            expectInvalidArgument { try m.lock() }  // not recursive
            let t = UThread { () -> Bool in
                do { try m.unlock() } catch UThreadError.invalidArgument { return true }
                return false
            }
            #expect(try t.join())  // a non-owner cannot unlock
            try m.unlock()
        }
    }

    @Test func aMutexBoundToAnM1RuntimeRefusesOtherKernelThreads() throws {
        try UThreadRuntime.run {
            let m = UMutex()
            try m.lock()
            try m.unlock()
            // A kernel thread with no runtime: a clear error, never a race.
            let refused = try blocking { () -> Bool in
                do { try m.unlock() } catch UThreadError.foreignRuntime { return true } catch {}
                return false
            }
            #expect(refused)
        }
    }

    @Test func aMutexMadeOutsideAnyRuntimeIsSharedWithThePool() throws {
        let m = UMutex()
        #expect(m.tryLock() == false)  // no user thread: nothing to own it
        try UThreadRuntime.run(workers: 2) {
            let ts = (0..<4).map { _ in UThread { for _ in 0..<200 { try m.withLock { UThread.yield() } } } }
            for t in ts { try t.join() }
            #expect(!m.isLocked)
        }
    }
}

/// Expects `body` to throw `UThreadError.invalidArgument`.
func expectInvalidArgument(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected invalidArgument", sourceLocation: sourceLocation)
    } catch UThreadError.invalidArgument {
    } catch {
        Issue.record("expected invalidArgument, got \(error)", sourceLocation: sourceLocation)
    }
}
