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
            try UThread.sleep(until: ContinuousClock.now - .seconds(1))  // past: returns at once
        }
    }

    @Test func sleepersWakeInDeadlineOrder() throws {
        let order = try UThreadRuntime.run {
            var order: [Int] = []
            let threads = [30, 10, 20].map { ms in
                UThread {
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
