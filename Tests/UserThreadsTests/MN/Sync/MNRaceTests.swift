import Synchronization
import Testing
@testable import UserThreads

/// Give-ups racing with hand-overs across workers: a waiter that times out just as it is handed
/// a permit or a lock keeps it (the wake wins), so nothing is lost or granted twice. Each test
/// also checks that timeouts did fire: without them there is no race to test.
@Suite(.timeLimit(.minutes(1))) struct MNRaceTests {
    /// Parks in short sleeps (an M:N thread: the other worker keeps running) until `timeouts`
    /// counts one, or 20 s pass; true if one fired. Whoever calls it holds what the others
    /// wait for, so their waits must time out meanwhile.
    static func holdUntilATimeout(_ timeouts: MNCounter) throws -> Bool {
        let end = ContinuousClock.now + .seconds(20)  // a bound, never expected
        while timeouts.count == 0 && ContinuousClock.now < end { try UThread.sleep(for: .microseconds(200)) }
        return timeouts.count > 0
    }

    /// Permits are conserved: every signal ends up either taken by a wait that returned, or in
    /// the count — never lost to a waiter that gave up, never given twice.
    @Test func semaphoreTimeoutsNeverLoseAPermit() throws {
        let signals = 3000
        let (taken, left, timedOut) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int, Bool) in
            let s = USemaphore()
            let taken = MNCounter()
            let stop = MNFlag()
            let timeouts = MNCounter()
            let waiters = try (0..<6).map { i in
                try UThread.spawn(onWorker: i % 2) {
                    var k = 0
                    while !stop.isSet {
                        k += 1
                        do {
                            try s.wait(timeout: .microseconds(20 + (i * 7 + k) % 50))
                            taken.add()
                        } catch UThreadError.timedOut { timeouts.add() }
                    }
                }
            }
            let signallers = try (0..<2).map { i in
                try UThread.spawn(onWorker: i) {
                    for k in 0..<(signals / 2) {
                        s.signal()
                        if k % 8 == 0 { UThread.yield() }
                    }
                }
            }
            for t in signallers { try t.join() }
            // No permit comes any more: once the waiters have taken the last, their waits time out.
            let timedOut = try Self.holdUntilATimeout(timeouts)
            stop.set()
            for t in waiters { try t.join() }
            return (taken.count, s.value, timedOut)
        }
        #expect(timedOut)
        #expect(taken + left == signals)
    }

    /// Writers with short timeouts among readers: no overlap ever, and the lock ends free.
    @Test func rwlockTimeoutsKeepTheLockConsistent() throws {
        let (violations, free, timedOut) = try UThreadRuntime.run(workers: 2) { () -> (Int, Bool, Bool) in
            let l = URWLock()
            let readers = MNCounter()
            let writers = MNCounter()
            let violations = MNCounter()
            let timeouts = MNCounter()
            let ts = try (0..<6).map { i in
                try UThread.spawn(onWorker: i % 2) {
                    var held = false
                    for k in 0..<400 {
                        if i % 3 == 0 {
                            do {
                                try l.writeLock(timeout: .microseconds(30 + k % 40))
                                writers.add()
                                if writers.count != 1 || readers.count != 0 { violations.add() }
                                UThread.yield()
                                // The first writer in holds on until a waiter has given up.
                                if i == 0 && !held {
                                    held = true
                                    _ = try Self.holdUntilATimeout(timeouts)
                                }
                                writers.add(-1)
                                try l.writeUnlock()
                            } catch UThreadError.timedOut { timeouts.add() }
                        } else {
                            do {
                                try l.readLock(timeout: .microseconds(30 + k % 40))
                                readers.add()
                                if writers.count != 0 { violations.add() }
                                UThread.yield()
                                readers.add(-1)
                                try l.readUnlock()
                            } catch UThreadError.timedOut { timeouts.add() }
                        }
                    }
                }
            }
            for t in ts { try t.join() }
            return (violations.count, l.readerCount == 0 && !l.isWriteLocked, timeouts.count > 0)
        }
        #expect(timedOut)
        #expect(violations == 0)
        #expect(free)
    }

    /// Mutex waiters with short timeouts: every acquisition that returned is balanced by an
    /// unlock that succeeds (a waiter handed the lock as it timed out owns it), and the mutex
    /// ends free.
    @Test func mutexTimeoutsNeverStrandTheLock() throws {
        let (inside, free, timedOut) = try UThreadRuntime.run(workers: 2) { () -> (Int, Bool, Bool) in
            let m = UMutex()
            let overlap = MNCounter()
            let inside = MNCounter()
            let timeouts = MNCounter()
            let ts = try (0..<6).map { i in
                try UThread.spawn(onWorker: i % 2) {
                    var held = false
                    for k in 0..<400 {
                        do {
                            try m.lock(timeout: .microseconds(20 + (i + k) % 40))
                            overlap.add()
                            if overlap.count != 1 { inside.add(1_000_000) }  // two owners
                            inside.add()
                            UThread.yield()
                            // The first to get it holds on until a waiter has given up.
                            if i == 0 && !held {
                                held = true
                                _ = try Self.holdUntilATimeout(timeouts)
                            }
                            overlap.add(-1)
                            try m.unlock()
                        } catch UThreadError.timedOut { timeouts.add() }
                    }
                }
            }
            for t in ts { try t.join() }
            return (inside.count, !m.isLocked, timeouts.count > 0)
        }
        #expect(timedOut)
        #expect(inside < 1_000_000)
        #expect(free)
    }
}
