import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct CancellationTests {
    @Test func cancellingASleepingThreadWakesItWithCancellationError() throws {
        try UThreadRuntime.run {
            let sleeper = UThread { try UThread.sleep(for: .seconds(3600)) }
            UThread.yield()  // it is asleep now
            #expect(UThreadRuntime.threadTable().threads.first { $0.id == sleeper.id }?.state == .sleeping)
            sleeper.cancel()
            #expect(throws: CancellationError.self) { try sleeper.join() }
            #expect(sleeper.isCancelled)
        }
    }

    @Test func cancellingAJoinerWakesIt() throws {
        try UThreadRuntime.run {
            let forever = UThread { try UThread.sleep(for: .seconds(3600)) }
            let joiner = UThread { try forever.join() }
            UThread.yield()
            joiner.cancel()
            #expect(throws: CancellationError.self) { try joiner.join() }
            forever.cancel()
        }
    }

    @Test func cancelBeforeStartIsSeenAtTheFirstCheck() throws {
        try UThreadRuntime.run {
            let t = UThread { () -> Bool in
                let cancelled = UThread.isCancelled
                try UThread.checkCancellation()
                return cancelled
            }
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
        }
    }

    @Test func sleepReturnsAfterItsDeadline() throws {
        try UThreadRuntime.run {
            let start = ContinuousClock.now
            try UThread.sleep(for: .milliseconds(20))
            #expect(ContinuousClock.now - start >= .milliseconds(20))
        }
        // On the virtual clock, exactly: a sleep takes its duration, and a deadline in the
        // past returns at once (no time passes, and the thread never waits on a timer).
        var c = UThreadRuntime.Configuration()
        c.clock = .virtual
        let trace = UThreadTrace()
        c.trace = trace
        let (slept, pastSlept) = try UThreadRuntime.run(c) { () -> (UInt64, UInt64) in
            let t0 = UThreadRuntime.nanoseconds
            try UThread.sleep(for: .milliseconds(20))
            let t1 = UThreadRuntime.nanoseconds
            try UThread.sleep(until: ContinuousClock.now - .seconds(1))
            return (t1 - t0, UThreadRuntime.nanoseconds - t1)
        }
        #expect(slept == 20_000_000)
        #expect(pastSlept == 0)
        // the first sleep only
        #expect(trace.events.filter { $0.kind == .block && $0.waitReason == .sleep }.count == 1)
    }

    @Test func sleepersWakeInDeadlineOrder() throws {
        let order = try UThreadRuntime.run {
            var order: [Int] = []
            let threads = [30, 10, 20].map { ms in
                UThread.local {
                    try UThread.sleep(for: .milliseconds(ms))
                    order.append(ms)
                }
            }
            for t in threads { try t.join() }
            return order
        }
        #expect(order == [10, 20, 30])
    }
}
