import Synchronization
import Testing

@testable import UserThreads

/// UWaitGroup, UBarrier, UOnce, URWLock and thread groups on the M:1 runtime and across two
/// workers: the rules, timeouts, deadlines, cancellation and misuse errors.
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

    /// Eight threads spread over the workers call run; the body (which parks) runs once, the
    /// others wait for it and see its effect; a failing body is retried by the next caller; a
    /// recursive call throws; a waiter times out while the body runs elsewhere.
    @Test(arguments: syncWorkerCounts) func aOnceBodyRunsOnceWhileTheOthersWaitForIt(workers: Int) throws {
        let (runs, seen, out) = try UThreadRuntime.run(workers: workers) { () -> (Int, Int, [String]) in
            let once = UOnce(name: "init")
            let runs = MNCounter()
            let seen = MNCounter()
            let othersWaited = MNFlag()
            let value = SharedAtomic(0)
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % workers) {
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
            let retry = try UThread.spawn(onWorker: workers - 1) { () -> String in
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
            let runner = try UThread.spawn(onWorker: workers - 1) { try slow.run { _ = try gate.receive() } }
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

    /// A writer that waits holds back later readers (no writer starvation), and when it
    /// unlocks every queued reader is admitted at once.
    @Test(arguments: syncWorkerCounts) func aWaitingWriterHoldsBackLaterReadersThenAdmitsThemAll(workers: Int) throws {
        let log = try UThreadRuntime.run(workers: workers) { () -> [String] in
            let l = URWLock(name: "rw")
            let log = MNLog()
            try l.readLock()
            let writer = try UThread.spawn(onWorker: workers - 1) {
                try l.writeLock()
                log.add("writer in")
                try l.writeUnlock()
            }
            #expect(try waitUntilParked(writer, .rwlock))
            let reader = try UThread.spawn(onWorker: workers - 1) {
                try l.readLock()
                log.add("late reader in")
                try l.readUnlock()
            }
            #expect(try waitUntilParked(reader, .rwlock))  // queued behind the waiting writer
            #expect(l.readerCount == 1)
            log.add("first reader out")
            try l.readUnlock()
            try writer.join()
            try reader.join()
            return log.all
        }
        #expect(log == ["first reader out", "writer in", "late reader in"])
    }

    @Test(arguments: syncWorkerCounts) func readersShareWritersExcludeAndErrorsThrow(workers: Int) throws {
        let (violations, writes, out) = try UThreadRuntime.run(workers: workers) { () -> (Int, Int, [String]) in
            let l = URWLock()
            let readers = MNCounter()
            let writersIn = MNCounter()
            let violations = MNCounter()
            let guarded = MNGuarded()
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % workers) {
                    for k in 0..<300 {
                        if (i + k) % 4 == 0 {
                            try l.withWriteLock {
                                writersIn.add()
                                if writersIn.count != 1 || readers.count != 0 { violations.add() }
                                guarded.value += 1
                                UThread.yield()
                                writersIn.add(-1)
                            }
                        } else {
                            try l.withReadLock {
                                readers.add()
                                if writersIn.count != 0 { violations.add() }
                                UThread.yield()
                                readers.add(-1)
                            }
                        }
                    }
                }
            }
            for t in ts { try t.join() }
            var out: [String] = []
            do { try l.readUnlock() } catch UThreadError.invalidArgument { out.append("readUnlock not held") }
            do { try l.writeUnlock() } catch UThreadError.invalidArgument { out.append("writeUnlock not held") }
            try l.readLock()
            try l.readLock()  // recursive read: counted
            do { try l.writeLock() } catch UThreadError.invalidArgument { out.append("upgrade refused") }
            // A waiting writer that gives up while readers hold the lock admits the readers
            // queued behind it.
            let writer = try UThread.spawn(onWorker: workers - 1) { () -> String in
                do {
                    try l.writeLock()
                    return "writer got it"
                } catch is CancellationError { return "writer cancelled" }
            }
            #expect(try waitUntilParked(writer, .rwlock))
            let reader = try UThread.spawn(onWorker: workers - 1) { () -> String in
                try l.readLock()
                try l.readUnlock()
                return "reader admitted"
            }
            #expect(try waitUntilParked(reader, .rwlock))
            writer.cancel()
            out.append(try writer.join())
            out.append(try reader.join())
            try l.readUnlock()
            try l.readUnlock()
            #expect(l.readerCount == 0 && !l.isWriteLocked)
            return (violations.count, guarded.value, out)
        }
        #expect(violations == 0)
        #expect(writes == 8 * 300 / 4)
        #expect(
            out == [
                "readUnlock not held", "writeUnlock not held", "upgrade refused", "writer cancelled", "reader admitted",
            ])
    }

    /// A reader queued behind a writer that gives up is admitted at once; unlocking a read lock
    /// the caller does not hold is an error naming that.
    @Test(arguments: syncWorkerCounts) func readersQueuedBehindAWriterThatTimesOutAreAdmitted(workers: Int) throws {
        try runOn(workers: workers) {
            let l = URWLock()
            try l.readLock()
            let w = UThread { try l.writeLock(timeout: .milliseconds(5)) }
            try waitFor { l.waitDescription(kind: .rwlock).contains("1 writer(s) queued") }
            let r = UThread {
                try l.readLock()
                try l.readUnlock()
            }  // queues behind the writer
            #expect(throws: UThreadError.timedOut) { try w.join() }
            try r.join()  // admitted when the writer gave up
            try l.readUnlock()
            #expect(
                expectError(sameCaseAs: .invalidArgument("")) { try l.readUnlock() }?.contains("does not hold") == true)
        }
    }

    /// Fifty threads each add and finish: the wait returns when every one is done.
    @Test(arguments: syncWorkerCounts) func aWaitGroupCountsEveryThread(workers: Int) throws {
        let done = try runOn(workers: workers) { () -> Int in
            let wg = UWaitGroup()
            let done = MNCounter()
            for _ in 0..<50 {
                try wg.add()
                _ = UThread {
                    UThread.yield()
                    done.add()
                    try wg.done()
                }
            }
            try wg.wait()
            #expect(expectError(sameCaseAs: .invalidArgument("")) { try wg.done() }?.contains("negative") == true)
            return done.count
        }
        #expect(done == 50)
    }

    /// A body that throws is not done: its caller gets the error, the callers that waited for it
    /// do not (one of them runs the body again), and a call from its own body is refused.
    @Test(arguments: syncWorkerCounts) func aFailedOnceBodyIsRetriedAndOnlyItsCallerSeesTheError(workers: Int) throws {
        let (errors, runs) = try runOn(workers: workers) { () -> ([String], Int) in
            let once = UOnce(name: "config")
            let runs = SharedAtomic(0)
            let threads = (0..<20).map { _ in
                UThread {
                    try once.run {
                        let run = runs.load() + 1
                        runs.store(run)  // inside the once: one runner at a time
                        UThread.yield()  // others arrive and park meanwhile
                        if run == 1 { throw UThreadError.invalidArgument("first attempt fails") }
                    }
                }
            }
            var errors: [String] = []
            for t in threads { do { try t.join() } catch { errors.append("\(error)") } }
            #expect(once.isDone)
            let recursive = UOnce()
            #expect(
                expectError(sameCaseAs: .invalidArgument("")) { try recursive.run { try recursive.run {} } }?.contains(
                    "called from its own body") == true)
            return (errors, runs.load())
        }
        #expect(errors == ["\(UThreadError.invalidArgument("first attempt fails"))"])
        #expect(runs == 2)  // the failed run, then one successful retry
    }

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
