import Testing

@testable import UserThreads

/// UCondition on the M:1 runtime and across two workers: signal, broadcast, timeouts (the
/// mutex is held again whatever the outcome), cancellation and misuse.
@Suite(.timeLimit(.minutes(1)))
struct UConditionTests {
    @Test(arguments: syncWorkerCounts) func signalWakesOneAndBroadcastTheRest(workers: Int) throws {
        try runOn(workers: workers) {
            let (m, c) = (UMutex(name: "m"), UCondition(name: "ready"))
            let woken = SyncLog<Int>()
            let threads = (0..<3).map { i in
                UThread {
                    try m.withLock {
                        try c.wait(m)
                        woken.add(i)
                    }
                }
            }
            try waitFor { c.waiting == 3 }
            #expect(c.signal())
            try waitFor { woken.all.count == 1 }
            #expect(c.waiting == 2)
            #expect(c.broadcast() == 2)
            for t in threads { try t.join() }
            #expect(Set(woken.all) == [0, 1, 2])
            #expect(c.signal() == false)
        }
    }

    @Test(arguments: syncWorkerCounts) func aTimedOutOrCancelledWaitReturnsHoldingTheMutex(workers: Int) throws {
        try runOn(workers: workers) {
            let (m, c) = (UMutex(), UCondition())
            try m.lock()
            #expect(throws: UThreadError.timedOut) { try c.wait(m, timeout: .milliseconds(5)) }
            #expect(m.isHeldByCurrentThread)
            #expect(throws: UThreadError.timedOut) { try c.wait(m, until: { false }, deadline: .now) }
            #expect(m.isHeldByCurrentThread)
            try m.unlock()
            let t = UThread { () -> Bool in
                try m.lock()
                defer { try? m.unlock() }
                do { try c.wait(m) } catch is CancellationError { return m.isHeldByCurrentThread }
                return false
            }
            try waitFor { c.waiting == 1 }
            t.cancel()
            #expect(try t.join())
        }
    }

    @Test(arguments: syncWorkerCounts) func waitingWithoutTheMutexThrows(workers: Int) throws {
        try runOn(workers: workers) {
            let (m, c) = (UMutex(), UCondition())
            expectInvalidArgument { try c.wait(m) }
            c.destroy()
            try m.lock()
            #expect {
                try c.wait(m)
            } throws: { error in
                if case UThreadError.closed = error { return true } else { return false }
            }
            try m.unlock()
        }
    }
}
