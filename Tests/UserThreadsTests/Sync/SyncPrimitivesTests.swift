import Testing
import UserThreads

@Suite("Sync: condition, semaphore, rwlock, wait group, barrier, once, locals, groups", .timeLimit(.minutes(1)))
struct SyncPrimitivesTests {
    // MARK: Condition

    @Test func conditionPredicateWaitAndSignal() throws {
        try UThreadRuntime.run {
            let m = UMutex()
            let c = UCondition(name: "ready")
            var items: [Int] = []
            let consumers = (0..<10).map { _ in
                UThread.local { () -> Int in
                    try m.lock()
                    defer { try? m.unlock() }
                    try c.wait(m, until: { !items.isEmpty })
                    return items.removeFirst()
                }
            }
            UThread.yield()
            #expect(c.waiting == 10)
            for i in 0..<10 {
                try m.withLock { items.append(i) }
                c.signal()
            }
            let got = try consumers.map { try $0.join() }.sorted()
            #expect(got == Array(0..<10))
        }
    }

    @Test func conditionBroadcastTimeoutCancelDestroy() throws {
        try UThreadRuntime.run {
            let m = UMutex()
            let c = UCondition()
            var go = false
            let waiters = (0..<5).map { _ in UThread.local { try m.withLock { try c.wait(m, until: { go }) } } }
            UThread.yield()
            try m.withLock { go = true }
            #expect(c.broadcast() == 5)
            for w in waiters { try w.join() }

            // Timeout: throws, and the mutex is held again.
            try m.withLock {
                #expect(throws: UThreadError.timedOut) { try c.wait(m, timeout: .milliseconds(2)) }
                #expect(m.isHeldByCurrentThread)
            }
            // Cancellation mid-wait: CancellationError, holding the mutex, no trace on the queue.
            var heldAfterCancel = false
            let t = UThread.local {
                try m.withLock {
                    do { try c.wait(m) } catch {
                        heldAfterCancel = m.isHeldByCurrentThread
                        throw error
                    }
                }
            }
            UThread.yield()
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
            #expect(heldAfterCancel)
            #expect(c.waiting == 0)
            // Destroy wakes waiters with a clear error.
            let d = UThread.local { try m.withLock { try c.wait(m) } }
            UThread.yield()
            c.destroy()
            expectError(sameCaseAs: .closed("")) { try d.join() }
            #expect(!m.isLocked)
        }
    }

    // MARK: Semaphore

    @Test func semaphoreLimitsConcurrency() throws {
        try UThreadRuntime.run {
            let sem = try USemaphore(value: 3, name: "slots")
            var inside = 0
            var maxInside = 0
            let threads = (0..<100).map { _ in
                UThread.local {
                    try sem.wait()
                    inside += 1
                    maxInside = max(maxInside, inside)
                    UThread.yield()
                    inside -= 1
                    sem.signal()
                }
            }
            for t in threads { try t.join() }
            #expect(maxInside == 3)
            #expect(sem.value == 3)
        }
    }

    @Test func semaphoreTimeoutCancelDestroy() throws {
        try UThreadRuntime.run {
            let sem = try USemaphore(value: 0)
            #expect(throws: UThreadError.timedOut) { try sem.wait(timeout: .milliseconds(2)) }
            let a = UThread.local { try sem.wait() }
            let b = UThread.local { try sem.wait() }
            UThread.yield()
            a.cancel()
            #expect(throws: CancellationError.self) { try a.join() }
            sem.signal()  // goes to b
            try b.join()
            #expect(sem.value == 0)
            let c = UThread.local { try sem.wait() }
            UThread.yield()
            sem.destroy()
            expectError(sameCaseAs: .closed("")) { try c.join() }
        }
    }

    // MARK: RW lock

    @Test func rwlockReadersShareWritersExclude() throws {
        try UThreadRuntime.run {
            let rw = URWLock(name: "table")
            var readersInside = 0
            var maxReaders = 0
            var writerInside = false
            var violations = 0
            var threads: [UThread<Void>] = []
            for i in 0..<60 {
                if i % 6 == 0 {
                    threads.append(
                        UThread.local {
                            try rw.withWriteLock {
                                if writerInside || readersInside > 0 { violations += 1 }
                                writerInside = true
                                UThread.yield()
                                writerInside = false
                            }
                        })
                } else {
                    threads.append(
                        UThread.local {
                            try rw.withReadLock {
                                if writerInside { violations += 1 }
                                readersInside += 1
                                maxReaders = max(maxReaders, readersInside)
                                UThread.yield()
                                readersInside -= 1
                            }
                        })
                }
            }
            for t in threads { try t.join() }
            #expect(violations == 0)
            #expect(maxReaders > 1)
        }
    }

    @Test func rwlockWriterIsNotStarvedByReaders() throws {
        try UThreadRuntime.run {
            let rw = URWLock()
            var stop = false
            var writes = 0
            let readers = (0..<8).map { _ in
                UThread.local { while !stop { try rw.withReadLock { UThread.yield() } } }
            }
            UThread.yield()
            let writer = UThread.local { for _ in 0..<20 { try rw.withWriteLock { writes += 1 } } }
            try writer.join()  // would hang under reader preference: readers always overlap
            stop = true
            for r in readers { try r.join() }
            #expect(writes == 20)
        }
    }

    @Test func rwlockTimeoutReadmitsReaders() throws {
        try UThreadRuntime.run {
            let rw = URWLock()
            try rw.readLock()
            let w = UThread.local { try rw.writeLock(timeout: .milliseconds(5)) }
            UThread.yield()
            let r = UThread.local {
                try rw.readLock()
                try rw.readUnlock()
            }  // queues behind the writer
            #expect(throws: UThreadError.timedOut) { try w.join() }
            try r.join()  // admitted when the writer gave up
            try rw.readUnlock()
            #expect(
                expectError(sameCaseAs: .invalidArgument("")) { try rw.readUnlock() }?.contains("does not hold") == true
            )
        }
    }

    // MARK: Wait group, barrier, once

    @Test func waitGroupWaitsForAll() throws {
        try UThreadRuntime.run {
            let wg = UWaitGroup()
            var done = 0
            for _ in 0..<50 {
                try wg.add()
                _ = UThread.local {
                    UThread.yield()
                    done += 1
                    try wg.done()
                }
            }
            try wg.wait()
            #expect(done == 50)
            #expect(expectError(sameCaseAs: .invalidArgument("")) { try wg.done() }?.contains("negative") == true)
            try wg.add()
            #expect(throws: UThreadError.timedOut) { try wg.wait(timeout: .milliseconds(2)) }
        }
    }

    @Test func barrierGenerationsAndLeader() throws {
        try UThreadRuntime.run {
            let parties = 8
            let rounds = 50
            let barrier = try UBarrier(parties: parties)
            var phase = [Int](repeating: 0, count: parties)
            var leaders = 0
            var skew = 0
            let threads = (0..<parties).map { i in
                UThread.local {
                    for r in 0..<rounds {
                        phase[i] = r
                        if try barrier.arriveAndWait() { leaders += 1 }
                        if phase.contains(where: { $0 < r }) { skew += 1 }
                    }
                }
            }
            for t in threads { try t.join() }
            #expect(leaders == rounds)
            #expect(skew == 0)
            #expect(barrier.generation == rounds)
        }
    }

    @Test func barrierWithdrawsOnTimeoutAndBreaksOnDestroy() throws {
        try UThreadRuntime.run {
            let b = try UBarrier(parties: 2)
            #expect(throws: UThreadError.timedOut) { try b.arriveAndWait(timeout: .milliseconds(2)) }
            #expect(b.arrived == 0)
            let t = UThread.local { try b.arriveAndWait() }
            UThread.yield()
            b.destroy()
            expectError(sameCaseAs: .closed("")) { try t.join() }
        }
    }

    @Test func onceRunsExactlyOnce() throws {
        try UThreadRuntime.run {
            let once = UOnce(name: "config")
            var runs = 0
            var failures = 0
            let threads = (0..<20).map { _ in
                UThread.local {
                    try once.run {
                        runs += 1
                        UThread.yield()  // others arrive and park meanwhile
                        if runs == 1 {
                            failures += 1
                            throw UThreadError.invalidArgument("first attempt fails")
                        }
                    }
                }
            }
            var errors: [String] = []
            for t in threads { do { try t.join() } catch { errors.append("\(error)") } }
            // the failed run's own error, once
            #expect(errors == ["\(UThreadError.invalidArgument("first attempt fails"))"])
            #expect(runs == 2)  // the failed run, then one successful retry
            #expect(once.isDone)
            let recursive = UOnce()
            #expect(
                expectError(sameCaseAs: .invalidArgument("")) { try recursive.run { try recursive.run {} } }?.contains(
                    "called from its own body") == true)
        }
    }

    // MARK: Thread-locals

    final class Counter { var n = 0 }
    final class Tracker {
        let counter: Counter
        init(_ counter: Counter) { self.counter = counter }
        deinit { counter.n += 1 }
    }

    @Test func threadLocalsArePerThreadAndReleasedAtExit() throws {
        try UThreadRuntime.run {
            let id = ThreadLocal<Int>(default: -1)
            let tracker = ThreadLocal<Tracker?>(default: nil)
            id.value = 0
            let released = Counter()
            let threads = (1...10).map { i in
                UThread.local { () -> Int in
                    #expect(id.value == -1)
                    id.value = i
                    tracker.value = Tracker(released)
                    UThread.yield()
                    return id.value
                }
            }
            for (i, t) in threads.enumerated() {
                let v = try t.join()
                #expect(v == i + 1)
            }
            #expect(id.value == 0)
            #expect(released.n == 10)
            id.reset()
            #expect(!id.hasValue)
        }
    }

    // MARK: Thread groups

    @Test func threadGroupWaitsForEveryChild() throws {
        try UThreadRuntime.run {
            var finished = 0
            try withThreadGroup { g in
                for i in 0..<100 {
                    g.spawnLocal {
                        for _ in 0..<(i % 5) { UThread.yield() }
                        finished += 1
                    }
                }
            }
            #expect(finished == 100)
        }
    }

    struct Boom: Error, Equatable {}

    @Test func threadGroupCancelsSiblingsAndRethrowsFirstError() throws {
        try UThreadRuntime.run {
            var cancelled = 0
            var finishedCleanly = 0
            let forever = Channel<Int>()
            #expect(throws: Boom.self) {
                try withThreadGroup { g in
                    for _ in 0..<10 {
                        g.spawnLocal {
                            do { _ = try forever.receive() } catch is CancellationError {
                                cancelled += 1
                                throw CancellationError()
                            }
                            finishedCleanly += 1
                        }
                    }
                    g.spawnLocal {
                        UThread.yield()
                        throw Boom()
                    }
                }
            }
            #expect(cancelled == 10)
            #expect(finishedCleanly == 0)
            #expect(UThreadRuntime.threadTable().threads.count == 1)  // only main: nothing leaked
        }
    }

    @Test func cancellingTheWaiterCancelsTheGroup() throws {
        try UThreadRuntime.run {
            var stopped = 0
            let parent = UThread.local {
                try withThreadGroup { g in
                    for _ in 0..<5 {
                        g.spawnLocal {
                            defer { stopped += 1 }
                            try UThread.sleep(for: .seconds(60))
                        }
                    }
                }
            }
            UThread.yield()
            parent.cancel()
            #expect(throws: CancellationError.self) { try parent.join() }
            #expect(stopped == 5)
        }
    }
}
