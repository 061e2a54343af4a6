import Synchronization
import Testing
@testable import UserThreads

/// UCondition, USemaphore and URWLock across workers.
@Suite(.timeLimit(.minutes(1))) struct MNLockTests {
    // MARK: UCondition

    /// The M:N primitives are Sendable, so kernel threads that are not workers (a `blocking {}`
    /// body on the offload pool) may signal them; the wake reaches the parked waiter through its
    /// worker's mailbox instead of stopping on "must be called from an M:N thread".
    @Test func aBlockingBodyWakesAnMNWaiter() throws {
        let woke = try UThreadRuntime.run(workers: 2) { () -> Bool in
            let m = UMutex(name: "m")
            let c = UCondition(name: "c")
            let done = UWaitGroup()
            try done.add(1)
            let waiter = try UThread.spawn(onWorker: 1) { () -> Bool in
                try m.withLock { try c.wait(m, timeout: .seconds(30)) }
                try done.wait(timeout: .seconds(30))
                return true
            }
            while c.waiting == 0 { UThread.yield() }
            let signalled = try blocking { c.signal() }
            try blocking { try done.done() }  // wakes the waiter if it already waits, else it finds 0
            return try signalled && waiter.join()
        }
        #expect(woke)
    }

    /// A bounded buffer guarded by an UMutex with two conditions; producers and consumers on
    /// both workers. Nothing lost or duplicated.
    @Test func conditionProducerConsumerAcrossWorkers() throws {
        let (sum, count) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int) in
            final class Buffer: @unchecked Sendable {
                var items: [Int] = []
                var done = 0
            }
            let m = UMutex(name: "buffer")
            let notEmpty = UCondition(name: "not empty")
            let notFull = UCondition(name: "not full")
            let buffer = Buffer()
            let producers = try (0..<3).map { p in
                try UThread.spawn(onWorker: p % 2) {
                    for i in 0..<1000 {
                        try m.withLock {
                            try notFull.wait(m, until: { buffer.items.count < 4 })
                            buffer.items.append(p * 1000 + i)
                        }
                        notEmpty.signal()
                    }
                    try m.withLock { buffer.done += 1 }
                    notEmpty.broadcast()
                }
            }
            let consumers = try (0..<3).map { c in
                try UThread.spawn(onWorker: (c + 1) % 2) { () -> (Int, Int) in
                    var s = 0
                    var n = 0
                    while true {
                        let v: Int? = try m.withLock {
                            try notEmpty.wait(m, until: { !buffer.items.isEmpty || buffer.done == 3 })
                            return buffer.items.isEmpty ? nil : buffer.items.removeFirst()
                        }
                        guard let v else { break }
                        notFull.signal()
                        s += v
                        n += 1
                    }
                    notEmpty.broadcast()
                    return (s, n)
                }
            }
            for p in producers { try p.join() }
            let r = try consumers.map { try $0.join() }
            return (r.reduce(0) { $0 + $1.0 }, r.reduce(0) { $0 + $1.1 })
        }
        #expect(count == 3000)
        #expect(sum == (0..<3000).reduce(0, +))
    }

    /// signal wakes the longest waiter (FIFO); broadcast wakes every one, across workers.
    @Test func conditionSignalIsFIFOAndBroadcastWakesAll() throws {
        let (order, broadcastCount) = try UThreadRuntime.run(workers: 2) { () -> ([Int], Int) in
            let m = UMutex()
            let c = UCondition()
            let log = MNLog()
            var waiters: [UThread<Void>] = []
            for i in 0..<3 {
                let t = try UThread.spawn(onWorker: 1 - i % 2) {
                    try m.withLock { try c.wait(m) }
                    log.add("\(i)")
                }
                #expect(try waitUntilParked(t, .condition))
                waiters.append(t)
            }
            for t in waiters {
                #expect(c.signal())
                try t.join()  // the woken one is the one we expect, in order
            }
            #expect(!c.signal())
            let more = try (0..<4).map { i in try UThread.spawn(onWorker: i % 2) { try m.withLock { try c.wait(m) } } }
            for t in more { #expect(try waitUntilParked(t, .condition)) }
            let n = c.broadcast()
            for t in more { try t.join() }
            return (log.all.compactMap { Int($0) }, n)
        }
        #expect(order == [0, 1, 2])
        #expect(broadcastCount == 4)
    }

    /// Every way out of a wait returns holding the mutex; misuse throws.
    @Test func conditionTimeoutCancellationDestroyAndMisuse() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let m = UMutex(name: "m")
            let c = UCondition(name: "c")
            var out: [String] = []
            do { try c.wait(m) } catch UThreadError.invalidArgument { out.append("not held") }
            let timed = try UThread.spawn(onWorker: 1) { () -> String in
                try m.lock()
                defer { try? m.unlock() }
                do { try c.wait(m, timeout: .milliseconds(3)) } catch UThreadError.timedOut {
                    return "timedOut, holds: \(m.isLocked)"
                }
                return "woken"
            }
            out.append(try timed.join())
            let cancelled = try UThread.spawn(onWorker: 1) { () -> String in
                try m.lock()
                defer { try? m.unlock() }
                do { try c.wait(m) } catch is CancellationError { return "cancelled, holds: \(m.isLocked)" }
                return "woken"
            }
            #expect(try waitUntilParked(cancelled, .condition))
            try m.lock()  // the cancelled waiter must queue for the mutex behind us
            cancelled.cancel()
            #expect(try waitUntilParked(cancelled, .mutex))
            try m.unlock()
            out.append(try cancelled.join())
            let destroyed = try UThread.spawn(onWorker: 1) { () -> String in
                try m.withLock {
                    do { try c.wait(m) } catch UThreadError.closed { return "closed" }
                    return "woken"
                }
            }
            #expect(try waitUntilParked(destroyed, .condition))
            c.destroy()
            out.append(try destroyed.join())
            return out
        }
        #expect(out == ["not held", "timedOut, holds: true", "cancelled, holds: true", "closed"])
    }

    // MARK: USemaphore

    @Test func semaphorePermitsHandoffAndErrors() throws {
        expectError(sameCaseAs: .invalidArgument("")) { try USemaphore(value: -1) }
        let (maxInside, order, out) = try UThreadRuntime.run(workers: 2) { () -> (Int, [Int], [String]) in
            // At most 2 inside at once, among 8 threads on both workers.
            let slots = try USemaphore(value: 2, name: "slots")
            let inside = MNCounter()
            let maxInside = SharedAtomic(0)
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % 2) {
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
                let t = try UThread.spawn(onWorker: 1 - i % 2) {
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
            let cancelled = try UThread.spawn(onWorker: 1) { () -> String in
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
            let destroyed = try UThread.spawn(onWorker: 1) { () -> String in
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

    // MARK: URWLock

    /// A writer that waits holds back later readers (no writer starvation), and when it
    /// unlocks every queued reader is admitted at once.
    @Test func rwlockWriterPreferenceAcrossWorkers() throws {
        let log = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let l = URWLock(name: "rw")
            let log = MNLog()
            try l.readLock()
            let writer = try UThread.spawn(onWorker: 1) {
                try l.writeLock()
                log.add("writer in")
                try l.writeUnlock()
            }
            #expect(try waitUntilParked(writer, .rwlock))
            let reader = try UThread.spawn(onWorker: 1) {
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

    @Test func rwlockExclusionStormAndErrors() throws {
        let (violations, writes, out) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int, [String]) in
            let l = URWLock()
            let readers = MNCounter()
            let writersIn = MNCounter()
            let violations = MNCounter()
            let guarded = MNGuarded()
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % 2) {
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
            let writer = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    try l.writeLock()
                    return "writer got it"
                } catch is CancellationError { return "writer cancelled" }
            }
            #expect(try waitUntilParked(writer, .rwlock))
            let reader = try UThread.spawn(onWorker: 1) { () -> String in
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
}
