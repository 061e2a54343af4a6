import Synchronization
import Testing

@testable import UserThreads

// The group's rules (wait for all, cancel on the first error, a cancelled waiter cancels its
// children) on the M:1 runtime and across two workers: part of ThreadGroupTests.
extension ThreadGroupTests {
    /// A thread group waits for every child before its scope returns.
    @Test(arguments: syncWorkerCounts) func aThreadGroupWaitsForEveryChild(workers: Int) throws {
        let finished = try runOn(workers: workers) { () -> Int in
            let finished = MNCounter()
            try withThreadGroup { g in
                for i in 0..<100 {
                    try g.spawn {
                        for _ in 0..<(i % 5) { UThread.yield() }
                        finished.add()
                    }
                }
            }
            return finished.count
        }
        #expect(finished == 100)
    }

    struct Boom: Error, Equatable {}

    /// The first error of a child cancels its siblings and is rethrown; nothing is left behind.
    @Test(arguments: syncWorkerCounts) func aThreadGroupCancelsSiblingsAndRethrowsTheFirstError(workers: Int) throws {
        let (cancelled, finishedCleanly, rows) = try runOn(workers: workers) { () -> (Int, Int, Int) in
            let cancelled = MNCounter()
            let finishedCleanly = MNCounter()
            let forever = Channel<Int>()
            #expect(throws: Boom.self) {
                try withThreadGroup { g in
                    for _ in 0..<10 {
                        try g.spawn {
                            do { _ = try forever.receive() } catch is CancellationError {
                                cancelled.add()
                                throw CancellationError()
                            }
                            finishedCleanly.add()
                        }
                    }
                    try g.spawn {
                        UThread.yield()
                        throw Boom()
                    }
                }
            }
            return (cancelled.count, finishedCleanly.count, UThreadRuntime.threadTable().threads.count)
        }
        #expect(cancelled == 10)
        #expect(finishedCleanly == 0)
        #expect(rows == 1)  // only main: nothing leaked
    }

    /// Cancelling the thread that waits for a group cancels every child.
    @Test(arguments: syncWorkerCounts) func cancellingTheWaiterCancelsTheGroup(workers: Int) throws {
        let stopped = try runOn(workers: workers) { () -> Int in
            let stopped = MNCounter()
            let started = MNCounter()
            let parent = UThread {
                try withThreadGroup { g in
                    for _ in 0..<5 {
                        try g.spawn {
                            defer { stopped.add() }
                            started.add()
                            try UThread.sleep(for: .seconds(60))
                        }
                    }
                }
            }
            try waitFor { started.count == 5 }
            parent.cancel()
            #expect(throws: CancellationError.self) { try parent.join() }
            return stopped.count
        }
        #expect(stopped == 5)
    }
}
