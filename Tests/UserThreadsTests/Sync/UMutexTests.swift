import CUThreads
import Testing

@testable import UserThreads

/// UMutex on the M:1 runtime and across two workers: mutual exclusion, FIFO handoff without
/// barging and an even share under contention, timeouts, deadlines, cancellation, wait
/// reasons, the deadlock report of a lock cycle and misuse errors.
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
            #expect(m.holder == threads[0].id)
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
            let next = UThread { () -> Bool in try m.withLock { true } }
            try waitFor { m.waiting == 2 }
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
            #expect(m.waiting == 1)
            #expect(m.isHeldByCurrentThread)
            try m.unlock()  // goes to the waiter behind, not to the cancelled one
            #expect(try next.join())
            #expect(!m.isLocked)
        }
    }

    /// Many threads, a switch inside every critical section: never two inside at once, and
    /// no increment lost.
    @Test(arguments: syncWorkerCounts) func mutualExclusionUnderManyThreads(workers: Int) throws {
        final class Guarded: @unchecked Sendable {  // touched only under the mutex
            var counter = 0, inside = 0, maxInside = 0
        }
        let (total, maxInside) = try runOn(workers: workers) { () -> (Int, Int) in
            let m = UMutex(name: "counter")
            let state = Guarded()
            let threads = (0..<100).map { _ in
                UThread {
                    for _ in 0..<50 {
                        try m.withLock {
                            state.inside += 1
                            state.maxInside = max(state.maxInside, state.inside)
                            let v = state.counter
                            UThread.yield()
                            state.counter = v + 1
                            state.inside -= 1
                        }
                    }
                }
            }
            for t in threads { try t.join() }
            return try m.withLock { (state.counter, state.maxInside) }
        }
        #expect(maxInside == 1)
        #expect(total == 100 * 50)
    }

    /// FIFO handoff shares a contended mutex evenly: no thread gets it twice as often as another.
    /// One worker only: there every contender is queued at each handoff; with two, a contender
    /// still running on the other worker misses its turns, and the spread measures placement,
    /// not the mutex.
    @Test func contentionIsSharedEvenly() throws {
        let counts = try runOn(workers: 1) { () -> [Int] in
            let m = UMutex()
            let counts = KernelLock([Int](repeating: 0, count: 20))
            let stop = UOnce()
            let threads = (0..<20).map { i in
                UThread {
                    while !stop.isDone {
                        try m.withLock {
                            counts.withLock { $0[i] += 1 }
                            UThread.yield()
                        }
                    }
                }
            }
            try waitFor { counts.withLock { $0.reduce(0, +) } >= 2_000 }
            try stop.run {}
            for t in threads { try t.join() }
            return counts.withLock { $0 }
        }
        #expect(counts.min()! * 2 >= counts.max()!, "spread \(counts.min()!)...\(counts.max()!)")
    }

    @Test(arguments: syncWorkerCounts) func aLockCycleIsReportedAsADeadlock(workers: Int) throws {
        var report = ""
        do {
            try runOn(workers: workers) {
                let (m1, m2) = (UMutex(name: "m1"), UMutex(name: "m2"))
                let inFirst = UWaitGroup()
                try inFirst.add(2)
                let a = UThread(name: "alice") {
                    try m1.withLock {
                        try inFirst.done()
                        try inFirst.wait()
                        try m2.withLock {}
                    }
                }
                let b = UThread(name: "bob") {
                    try m2.withLock {
                        try inFirst.done()
                        try inFirst.wait()
                        try m1.withLock {}
                    }
                }
                _ = try? a.join()
                _ = try? b.join()
            }
            Issue.record("expected a deadlock")
        } catch UThreadError.deadlock(let text) {
            report = text
        }
        #expect(report.contains("\"alice\""), "\(report)")
        #expect(report.contains("\"bob\""))
        #expect(report.contains("mutex 'm1' held by"))
        #expect(report.contains("mutex 'm2' held by"))
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
            #expect(row?.waitReason?.description == "mutex 'db' held by \(me) \"main\", 1 waiting")
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

    /// Spawns a thread on worker 0 that locks `m` and ends holding it; returns its id and the
    /// address of its row.
    func endHolding(_ m: UMutex) throws -> (ThreadID, UInt) {
        try UThread.spawn(name: "gone", onWorker: 0) { () -> (ThreadID, UInt) in
            try m.lock()
            return (UThread.current.id, UInt(bitPattern: uthreads_get_current()))
        }.join()
    }

    /// A thread that ends holding a mutex keeps it; the next thread spawned on its (reused)
    /// row is a different thread: its unlock throws, it does not hold the mutex, and its lock
    /// waits like anyone's instead of saying it already holds it.
    @Test(arguments: syncWorkerCounts) func aMutexHeldByAnEndedThreadIsNotOwnedByTheNextThreadOnItsRow(
        workers: Int
    ) throws {
        try runOn(workers: workers) {
            let m = UMutex(name: "m")
            let (gone, goneRow) = try endHolding(m)
            let (row, unlockRefused, held, lockTimedOut) = try UThread.spawn(name: "next", onWorker: 0) {
                () -> (UInt, Bool, Bool, Bool) in
                var refused = false
                do { try m.unlock() } catch UThreadError.invalidArgument { refused = true }
                var timedOut = false
                do { try m.lock(timeout: .milliseconds(1)) } catch UThreadError.timedOut { timedOut = true }
                return (UInt(bitPattern: uthreads_get_current()), refused, m.isHeldByCurrentThread, timedOut)
            }.join()
            #expect(row == goneRow)  // the case this test is about: the row was reused
            #expect(unlockRefused)
            #expect(!held)
            #expect(lockTimedOut)
            #expect(m.isLocked)
            #expect(m.holder == gone)
            #expect(m.description == "UMutex(mutex 'm', held by \(gone) (finished))")
            expectInvalidArgument { try m.unlock() }  // nor can any other thread
            #expect(!m.tryLock())
        }
    }

    /// Waiting on a mutex whose holder ended: the timeout, the deadline and cancellation end
    /// the wait, which leaves no waiter behind, and the wait reason names the finished holder.
    @Test(arguments: syncWorkerCounts) func waitsOnAMutexHeldByAnEndedThreadTimeOutAndCancel(workers: Int) throws {
        try runOn(workers: workers) {
            let m = UMutex(name: "orphan")
            let (gone, _) = try endHolding(m)
            let timedOut = try UThread { () -> Int in
                var n = 0
                do { try m.lock(timeout: .milliseconds(2)) } catch UThreadError.timedOut { n += 1 }
                do { try m.lock(deadline: .now + .milliseconds(2)) } catch UThreadError.timedOut { n += 1 }
                return n
            }.join()
            #expect(timedOut == 2)
            let waiter = UThread(name: "waiter") { try m.lock() }
            try waitFor { m.waiting == 1 }
            let reason = UThreadRuntime.threadTable().threads.first { $0.name == "waiter" }?.waitReason
            #expect(reason?.description == "mutex 'orphan' held by \(gone) (finished), 1 waiting")
            waiter.cancel()
            #expect(throws: CancellationError.self) { try waiter.join() }
            #expect(m.waiting == 0)
            #expect(m.holder == gone)
        }
    }

    /// A mutex still held when its runtime ended (its main thread returned holding it) is
    /// described after the end by its holder's id. The runtime's rows are freed by then, so the
    /// description must not read the holder's row (it read freed memory and crashed).
    @Test func aMutexHeldWhenItsRuntimeEndedIsDescribedAfterTheEnd() throws {
        let m = UMutex(name: "m")
        let holder = try UThreadRuntime.run { () -> ThreadID in
            try m.lock()
            return UThread.current.id
        }
        #expect(m.description == "UMutex(mutex 'm', held by \(holder))")
        #expect(m.holder == holder)
    }

    /// A thread that waits without a timeout on a mutex whose holder ended can never run again:
    /// the runtime reports a deadlock, and the report names the holder as finished.
    @Test func theDeadlockReportNamesAFinishedHolder() throws {
        var report = ""
        do {
            try UThreadRuntime.run {
                let m = UMutex(name: "orphan")
                _ = try endHolding(m)
                try UThread(name: "stuck") { try m.lock() }.join()
            }
            Issue.record("expected a deadlock")
        } catch UThreadError.deadlock(let text) {
            report = text
        }
        let stuck = report.split(separator: "\n").first { $0.contains(" stuck ") } ?? ""
        #expect(stuck.contains("mutex 'orphan' held by #"), "\(report)")
        #expect(stuck.contains(" (finished), 1 waiting"), "\(report)")
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
