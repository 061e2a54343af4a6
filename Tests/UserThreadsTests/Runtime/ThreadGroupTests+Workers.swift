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

    /// The limits of a thread group's wait, each already due or due while its children wait.
    enum GroupLimit: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case zeroTimeout = "a timeout of zero"
        case negativeTimeout = "a negative timeout"
        case pastDeadline = "a deadline that has passed"
        case shortTimeout = "a timeout that passes while the children wait"
        case shortDeadline = "a deadline that passes while the children wait"
        var testDescription: String { rawValue }

        /// `withThreadGroup` with this limit.
        func group<R>(_ body: (UThreadGroup) throws -> R) throws -> R {
            switch self {
            case .zeroTimeout: try withThreadGroup(timeout: .zero, body)
            case .negativeTimeout: try withThreadGroup(timeout: .seconds(-1), body)
            case .pastDeadline: try withThreadGroup(deadline: .now - .seconds(1), body)
            case .shortTimeout: try withThreadGroup(timeout: .milliseconds(20), body)
            case .shortDeadline: try withThreadGroup(deadline: .now + .milliseconds(20), body)
            }
        }
    }

    /// When a group's limit passes with children waiting on something only the test could
    /// give them (a channel it never sends on), every child is cancelled, the scope returns
    /// only after all have finished, and it throws `timedOut`; a non-positive timeout is
    /// already due, as for every other wait. `spawnLocal` children are cancelled the same way.
    @Test(arguments: syncWorkerCounts, GroupLimit.allCases)
    func aThreadGroupsLimitCancelsItsChildrenThenThrowsTimedOut(workers: Int, limit: GroupLimit) throws {
        let (outcome, cancelled, finished, finishedAtThrow) = try runOn(workers: workers) {
            () -> (String, Int, Int, Int) in
            let cancelled = MNCounter()
            let finished = MNCounter()
            let never = Channel<Int>(name: "never")
            var finishedAtThrow = -1
            let outcome: String
            do {
                try limit.group { g in
                    for _ in 0..<4 {
                        try g.spawn {
                            defer { finished.add() }
                            do { _ = try never.receive() } catch is CancellationError { cancelled.add() }
                        }
                    }
                    try g.spawnLocal {
                        defer { finished.add() }
                        do { _ = try never.receive() } catch is CancellationError { cancelled.add() }
                    }
                }
                outcome = "returned"
            } catch UThreadError.timedOut {
                finishedAtThrow = finished.count
                outcome = "timedOut"
            }
            return (outcome, cancelled.count, finished.count, finishedAtThrow)
        }
        #expect(outcome == "timedOut")
        #expect(cancelled == 5)
        #expect(finished == 5)
        #expect(finishedAtThrow == 5)  // structured: no child ran on after the throw
    }

    /// A limit that is already due finds nothing to wait for when every child has finished:
    /// the scope returns its value (as a wait group at zero returns); one that does not pass
    /// before the children finish changes nothing either.
    @Test(arguments: syncWorkerCounts) func aThreadGroupsLimitOnlyBoundsAWait(workers: Int) throws {
        let values = try runOn(workers: workers) { () -> [Int] in
            let sum = MNCounter()
            let early = try withThreadGroup(timeout: .zero) { g -> Int in
                for i in 0..<3 { try g.spawn { sum.add(i) } }
                try waitFor { g.running == 0 }  // every child has finished
                return sum.count
            }
            let go = Channel<Int>(name: "go")
            let late = try withThreadGroup(timeout: .seconds(60), deadline: .now + .seconds(60)) { g -> Int in
                for _ in 0..<3 { try g.spawn { _ = try go.receive() } }
                for i in 0..<3 { try go.send(i) }
                return 7
            }
            return [early, late]
        }
        #expect(values == [3, 7])
    }

    struct Early: Error, Equatable {}

    /// A child's error that came before the limit passed stays the one thrown: the first
    /// error wins over the limit's `timedOut`.
    @Test(arguments: syncWorkerCounts) func aChildsErrorBeforeTheLimitWins(workers: Int) throws {
        let cancelled = try runOn(workers: workers) { () -> Int in
            let cancelled = MNCounter()
            let never = Channel<Int>(name: "never")
            #expect(throws: Early.self) {
                try withThreadGroup(timeout: .zero) { g in
                    try g.spawn {
                        do { _ = try never.receive() } catch is CancellationError { cancelled.add() }
                    }
                    try g.spawn { throw Early() }
                    try waitFor { g.isCancelled }  // the error is recorded before the cancel
                }
            }
            return cancelled.count
        }
        #expect(cancelled == 1)
    }
}
