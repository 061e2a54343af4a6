import Synchronization
import Testing

@testable import UserThreads

/// USemaphore on the M:1 runtime and across two workers: FIFO handoff of permits, timeouts,
/// deadlines, cancellation, destroy, wait reasons and bad arguments.
@Suite(.timeLimit(.minutes(1)))
struct USemaphoreTests {
    @Test(arguments: syncWorkerCounts) func permitsGoToWaitersInArrivalOrder(workers: Int) throws {
        let order = try runOn(workers: workers) { () -> [Int] in
            let s = USemaphore(name: "slots")
            let log = SyncLog<Int>()
            var threads: [UThread<Void>] = []
            for i in 0..<4 {
                threads.append(
                    UThread {
                        try s.wait()
                        log.add(i)
                    })
                try waitFor { s.waitDescription(kind: .semaphore).contains("\(i + 1) waiting") }
            }
            s.signal()
            // The permit was handed to the first waiter, not added to the count: no barging.
            #expect(s.tryWait() == false)
            #expect(s.value == 0)
            for _ in 1..<4 { s.signal() }
            for t in threads { try t.join() }
            return log.all
        }
        #expect(order == Array(0..<4))
    }

    @Test(arguments: syncWorkerCounts) func waitTimesOutMeetsItsDeadlineAndIsCancellable(workers: Int) throws {
        try runOn(workers: workers) {
            let s = USemaphore()
            #expect(throws: UThreadError.timedOut) { try s.wait(timeout: .milliseconds(5)) }
            #expect(throws: UThreadError.timedOut) { try s.wait(deadline: .now + .milliseconds(5)) }
            let t = UThread { try s.wait() }
            try waitFor { s.waitDescription(kind: .semaphore).contains("1 waiting") }
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
            s.signal()  // nobody waits: the permit is counted
            #expect(s.value == 1)
            try s.wait(timeout: .zero)
        }
    }

    @Test(arguments: syncWorkerCounts) func destroyWakesWaitersWithClosed(workers: Int) throws {
        try runOn(workers: workers) {
            let s = USemaphore(name: "gate")
            let t = UThread(name: "waiter") { try s.wait() }
            try waitFor { s.waitDescription(kind: .semaphore).contains("1 waiting") }
            let row = UThreadRuntime.threadTable().threads.first { $0.name == "waiter" }
            #expect(row?.waitReason?.description == "semaphore 'gate' (value 0, 1 waiting)")
            s.destroy()
            #expect {
                try t.join()
            } throws: { error in
                if case UThreadError.closed = error { return true } else { return false }
            }
        }
    }

    @Test func aNegativeValueThrows() {
        expectInvalidArgument { _ = try USemaphore(value: -1) }
    }

    /// From `Int.max` the first `signal()` would overflow the count (a trap): such a value throws,
    /// the maximum itself is accepted and can be signalled.
    @Test func aValueAboveTheMaximumThrows() throws {
        expectInvalidArgument { _ = try USemaphore(value: Int.max) }
        expectInvalidArgument { _ = try USemaphore(value: USemaphore.maximumValue + 1) }
        let s = try USemaphore(value: USemaphore.maximumValue)
        s.signal()
        #expect(s.value == USemaphore.maximumValue + 1)
    }

    @Test func aBlockingBodySignalsASharedSemaphore() throws {
        let s = USemaphore()  // made outside any runtime, first used by a worker: shared
        try UThreadRuntime.run(workers: 2) {
            let t = UThread { try s.wait() }
            try blocking { s.signal() }
            try t.join()
        }
    }

    @Test(arguments: syncWorkerCounts) func permitsAreHandedOffAndErrorsThrown(workers: Int) throws {
        expectError(sameCaseAs: .invalidArgument("")) { try USemaphore(value: -1) }
        let (maxInside, order, out) = try UThreadRuntime.run(workers: workers) { () -> (Int, [Int], [String]) in
            // At most 2 inside at once, among 8 threads on both workers.
            let slots = try USemaphore(value: 2, name: "slots")
            let inside = MNCounter()
            let maxInside = SharedAtomic(0)
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % workers) {
                    for _ in 0..<200 {
                        try slots.wait()
                        inside.add()
                        let now = inside.count
                        var m = maxInside.load()
                        while now > m,
                            !maxInside.compareExchange(expected: m, desired: now).exchanged
                        { m = maxInside.load() }
                        UThread.yield()
                        inside.add(-1)
                        slots.signal()
                    }
                }
            }
            for t in ts { try t.join() }
            #expect(slots.value == 2)
            // FIFO: waiters parked in order get the permits in order.
            let s = USemaphore()
            let log = MNLog()
            var waiters: [UThread<Void>] = []
            for i in 0..<3 {
                let t = try UThread.spawn(onWorker: (i + 1) % workers) {
                    try s.wait()
                    log.add("\(i)")
                }
                #expect(try waitUntilParked(t, .semaphore))
                waiters.append(t)
            }
            for t in waiters {
                s.signal()
                try t.join()
            }
            var out: [String] = []
            do { try s.wait(timeout: .milliseconds(2)) } catch UThreadError.timedOut { out.append("timedOut") }
            #expect(!s.tryWait())
            s.signal()
            #expect(s.tryWait())
            let cancelled = try UThread.spawn(onWorker: workers - 1) { () -> String in
                do {
                    try s.wait()
                    return "got"
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try waitUntilParked(cancelled, .semaphore))
            cancelled.cancel()
            out.append(try cancelled.join())
            s.signal()
            #expect(s.value == 1)  // the cancelled waiter took no permit
            let destroyed = try UThread.spawn(onWorker: workers - 1) { () -> String in
                _ = s.tryWait()
                do {
                    try s.wait()
                    return "got"
                } catch UThreadError.closed { return "closed" }
            }
            #expect(try waitUntilParked(destroyed, .semaphore))
            s.destroy()
            out.append(try destroyed.join())
            return (maxInside.load(), log.all.compactMap { Int($0) }, out)
        }
        #expect(maxInside >= 1 && maxInside <= 2)
        #expect(order == [0, 1, 2])
        #expect(out == ["timedOut", "cancelled", "closed"])
    }
}
