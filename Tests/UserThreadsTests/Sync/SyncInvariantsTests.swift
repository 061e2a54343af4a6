import Testing

@testable import UserThreads

/// The sync primitives' invariant checks (SyncSupport.swift, "Invariants"): read from the
/// caller's runtime's `Configuration.checkInvariants`, run after every change of every
/// primitive's state (a broken one stops the process), and passed by every primitive through
/// contention, handoffs, timeouts, cancellation, destroy and close, on one worker and two.
@Suite(.timeLimit(.minutes(1)))
struct SyncInvariantsTests {
    static var checking: UThreadRuntime.Configuration {
        var c = UThreadRuntime.Configuration()
        c.checkInvariants = true
        return c
    }

    /// The flag is the calling thread's runtime's: off outside any runtime and by default, on
    /// in a runtime configured with it, on every worker.
    @Test func theChecksFollowTheCallersRuntime() throws {
        #expect(!syncChecking())
        #expect(try UThreadRuntime.run { syncChecking() } == false)
        for workers in syncWorkerCounts {
            let on = try UThreadRuntime.run(workers: workers, Self.checking) { () -> [Bool] in
                var on = [syncChecking()]
                for w in 0..<workers { on.append(try UThread.spawn(onWorker: w) { syncChecking() }.join()) }
                return on
            }
            #expect(on == Array(repeating: true, count: workers + 1), "workers: \(workers)")
        }
    }

    /// Every primitive, checked after each change, through contention (four threads spread
    /// over the workers), handoffs, select, timeouts, cancellation, destroy and close; each
    /// `checkInvariants()` also holds when called directly at the end.
    @Test(arguments: syncWorkerCounts) func everyPrimitiveKeepsItsInvariantsUnderTheChecks(workers: Int) throws {
        let (inside, got) = try UThreadRuntime.run(workers: workers, Self.checking) { () -> (Int, Int) in
            let m = UMutex(name: "m")
            let c = UCondition(name: "c")
            let sem = try USemaphore(value: 1, name: "sem")
            let rw = URWLock(name: "rw")
            let ch = try Channel<Int>(capacity: 2, name: "ch")
            let un = Channel<Int>(name: "un")
            let wg = UWaitGroup(name: "wg")
            let b = try UBarrier(parties: 4, name: "b")
            let once = UOnce(name: "once")
            let inside = MNCounter()
            let got = MNCounter()
            try wg.add(4)
            let ts = try (0..<4).map { i in
                try UThread.spawn(onWorker: i % workers) {
                    for k in 0..<40 {
                        try m.withLock { inside.add() }
                        try m.lock()
                        c.signal()
                        do { try c.wait(m, timeout: .microseconds(50)) } catch UThreadError.timedOut {}
                        try m.unlock()
                        try sem.wait()
                        UThread.yield()
                        sem.signal()
                        if (i + k) % 3 == 0 {
                            try rw.withWriteLock { UThread.yield() }
                        } else {
                            try rw.withReadLock { UThread.yield() }
                        }
                        try ch.send(k)
                        if try ch.receive() != nil { got.add() }
                        try channelSelect(timeout: .microseconds(100)) { s in
                            s.send(k, to: un) {}
                            s.receive(from: un) { _ in }
                            s.onTimeout {}
                        }
                        try once.run { inside.add() }
                        _ = try b.arriveAndWait()
                    }
                    try wg.done()
                }
            }
            try wg.wait()
            for t in ts { try t.join() }
            // Waits that end otherwise than by a wake: a timeout, a cancel, a destroy, a close.
            try m.lock()
            let locker = try UThread.spawn(onWorker: workers - 1) { try m.lock(timeout: .milliseconds(2)) }
            #expect(throws: UThreadError.timedOut) { try locker.join() }
            try rw.readLock()
            let writer = try UThread.spawn(onWorker: workers - 1) { try rw.writeLock() }
            try waitFor { rw.waitDescription(kind: .rwlock).contains("1 writer(s) queued") }
            writer.cancel()
            #expect(throws: CancellationError.self) { try writer.join() }
            try rw.readUnlock()
            let empty = try USemaphore(value: 0, name: "empty")
            let waiter = try UThread.spawn(onWorker: workers - 1) { try empty.wait() }
            try waitFor { empty.waitDescription(kind: .semaphore).contains("1 waiting") }
            empty.destroy()
            #expect(throws: UThreadError.self) { try waiter.join() }
            let receiver = try UThread.spawn(onWorker: workers - 1) { try un.receive() }
            // Shared (two workers): its parked list is shown; bare: closed before or after it parks.
            try waitFor { workers == 1 || un.core.waitDescription(kind: .channelReceive).contains("1 receiver(s)") }
            un.close()
            #expect(try receiver.join() == nil)
            ch.close()
            #expect(try ch.receive() == nil)
            try m.unlock()
            // Each primitive's checks, called directly on its final state.
            m.sync.locked { m.checkInvariants() }
            c.sync.locked { c.checkInvariants() }
            sem.sync.locked { sem.checkInvariants() }
            rw.sync.locked { rw.checkInvariants() }
            wg.sync.locked { wg.checkInvariants() }
            b.sync.locked { b.checkInvariants() }
            once.sync.locked { once.checkInvariants() }
            for core in [ch.core, un.core] { core.sync.locked { core.checkInvariants() } }
            return (inside.count, got.count)
        }
        #expect(inside == 4 * 40 + 1)
        #expect(got == 4 * 40)
    }
}
