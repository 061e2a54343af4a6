import Synchronization
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

    /// The primitives are Sendable, so under several workers kernel threads that are not workers
    /// (a `blocking {}` body on the offload pool) may signal them; the wake reaches the parked
    /// waiter through its worker's mailbox. (Under one worker a primitive made there belongs to
    /// its kernel thread: UMutexTests.)
    @Test func aBlockingBodyWakesAWaiterOnAWorker() throws {
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

    /// A bounded buffer guarded by an UMutex with two conditions; producers and consumers
    /// spread over the workers. Nothing lost or duplicated.
    @Test(arguments: syncWorkerCounts) func aBoundedBufferLosesAndDuplicatesNothing(workers: Int) throws {
        let (sum, count) = try UThreadRuntime.run(workers: workers) { () -> (Int, Int) in
            final class Buffer: @unchecked Sendable {
                var items: [Int] = []
                var done = 0
            }
            let m = UMutex(name: "buffer")
            let notEmpty = UCondition(name: "not empty")
            let notFull = UCondition(name: "not full")
            let buffer = Buffer()
            let producers = try (0..<3).map { p in
                try UThread.spawn(onWorker: p % workers) {
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
                try UThread.spawn(onWorker: (c + 1) % workers) { () -> (Int, Int) in
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

    /// signal wakes the longest waiter (FIFO); broadcast wakes every one.
    @Test(arguments: syncWorkerCounts) func signalWakesTheLongestWaiterAndBroadcastWakesAll(workers: Int) throws {
        let (order, broadcastCount) = try UThreadRuntime.run(workers: workers) { () -> ([Int], Int) in
            let m = UMutex()
            let c = UCondition()
            let log = MNLog()
            var waiters: [UThread<Void>] = []
            for i in 0..<3 {
                let t = try UThread.spawn(onWorker: (i + 1) % workers) {
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
            let more = try (0..<4).map { i in
                try UThread.spawn(onWorker: i % workers) { try m.withLock { try c.wait(m) } }
            }
            for t in more { #expect(try waitUntilParked(t, .condition)) }
            let n = c.broadcast()
            for t in more { try t.join() }
            return (log.all.compactMap { Int($0) }, n)
        }
        #expect(order == [0, 1, 2])
        #expect(broadcastCount == 4)
    }

    /// Every way out of a wait returns holding the mutex; misuse throws.
    @Test(arguments: syncWorkerCounts) func everyWayOutOfAWaitReturnsHoldingTheMutex(workers: Int) throws {
        let out = try UThreadRuntime.run(workers: workers) { () -> [String] in
            let m = UMutex(name: "m")
            let c = UCondition(name: "c")
            var out: [String] = []
            do { try c.wait(m) } catch UThreadError.invalidArgument { out.append("not held") }
            let timed = try UThread.spawn(onWorker: workers - 1) { () -> String in
                try m.lock()
                defer { try? m.unlock() }
                do { try c.wait(m, timeout: .milliseconds(3)) } catch UThreadError.timedOut {
                    return "timedOut, holds: \(m.isLocked)"
                }
                return "woken"
            }
            out.append(try timed.join())
            let cancelled = try UThread.spawn(onWorker: workers - 1) { () -> String in
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
            let destroyed = try UThread.spawn(onWorker: workers - 1) { () -> String in
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
}
