import CUThreads
import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// Started M:N threads migrate between workers at audited safe points.
///
/// Every test makes worker 0 start its threads itself (`MNThread.startingHere`), so that worker
/// 1 is idle and only migration can give it work. Loops that wait for a migration are bounded
/// by a count of yields (they wait on an event, never on time).
@Suite(.timeLimit(.minutes(1))) struct MNMigrationTests {
    /// Yields until `moved` is set (by any thread) or `limit` yields passed.
    static func yieldUntil(_ moved: MNFlag, limit: Int = 50_000_000, _ check: () -> Void) {
        var n = 0
        while !moved.isSet && n < limit {
            UThread.yield()
            check()
            n += 1
        }
    }

    /// Ready threads move to an idle worker; the thread table (the adopter's) lists each where
    /// it runs now, and the statistics count the migrations.
    @Test func readyThreadsMigrateToAnIdleWorker() throws {
        let (rows, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Bool] in
            let moved = MNFlag()
            let threads = (0..<4).map { _ in
                MNThread.startingHere { () -> Bool in
                    let first = MNThread.worker!
                    let firstRow = myRow()?.worker
                    Self.yieldUntil(moved) { if MNThread.worker != first { moved.set() } }
                    let now = MNThread.worker!
                    // The row is listed by the worker that runs the thread now, with its index
                    // and how often it moved.
                    let row = myRow()
                    return firstRow == first && row?.worker == now && (now == first || (row?.migrations ?? 0) > 0)
                }
            }
            let ok = try threads.map { try $0.join() }
            return ok + [moved.isSet]
        }
        #expect(rows.allSatisfy { $0 })
        #expect(teardown.statistics.migrations > 0)
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A thread that holds a dynamic exclusive access (a `modify` of a class property) across
    /// yields keeps it when it resumes on another kernel thread, while other threads make the
    /// same kind of access on both workers; its errno and thread-local value travel with it.
    @Test func migrationKeepsExclusivityErrnoAndThreadLocals() throws {
        let (results, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Bool] in
            let moved = MNFlag()
            let threads = (0..<6).map { n in
                MNThread.startingHere { () -> Bool in
                    let local = ThreadLocal<Int>(default: -1)
                    local.value = n
                    let box = MNBox()
                    let tid = uthreads_gettid()
                    var intact = true
                    var changedKernelThread = false
                    holding(&box.x) {  // open across every yield below
                        Self.yieldUntil(moved) {
                            errno = Int32(1000 + n)
                            UThread.yield()
                            intact = intact && errno == Int32(1000 + n) && local.value == n
                            if uthreads_gettid() != tid {
                                changedKernelThread = true
                                moved.set()
                            }
                        }
                    }
                    // Other threads still make their own accesses after this one moved away.
                    let other = MNBox()
                    holding(&other.x) { UThread.yield() }
                    return intact && box.x == 2 && other.x == 2 && (changedKernelThread || moved.isSet)
                }
            }
            return try threads.map { try $0.join() } + [moved.isSet]
        }
        #expect(results.allSatisfy { $0 })
        #expect(teardown.statistics.migrations > 0)
    }

    /// Pinned threads (`MNThread.pin()`, `pinned:`) never change kernel thread while threads
    /// beside them migrate; spawning a worker-local `UThread` or waiting for I/O pins as well.
    @Test func pinningKeepsTheKernelThread() throws {
        let (ok, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Bool] in
            let moved = MNFlag()
            let pinned = MNThread.startingHere { () -> Bool in
                MNThread.pin()
                let me = pthread_self()
                var same = !MNThread.isMigratable
                Self.yieldUntil(moved) { same = same && pthread_equal(pthread_self(), me) != 0 }
                for _ in 0..<1000 {
                    UThread.yield()
                    same = same && pthread_equal(pthread_self(), me) != 0
                }
                return same
            }
            let optionPinned = MNThread(pinned: true) { !MNThread.isMigratable }
            let movers = (0..<3).map { _ in
                MNThread.startingHere { () -> Bool in
                    let first = MNThread.worker!
                    let migratable = MNThread.isMigratable
                    Self.yieldUntil(moved) { if MNThread.worker != first { moved.set() } }
                    return migratable
                }
            }
            let parent = MNThread { () -> Bool in
                let before = MNThread.isMigratable
                _ = try UThread { 1 }.join()
                return before && !MNThread.isMigratable
            }
            let reader = MNThread { () -> Bool in
                var fds: [Int32] = [0, 0]
                guard pipe(&fds) == 0 else { return false }
                defer {
                    close(fds[0])
                    close(fds[1])
                }
                _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
                let before = MNThread.isMigratable
                var byte: UInt8 = 0
                // An empty pipe: the read waits in this worker's reactor until its deadline.
                let timedOut =
                    (try? withUnsafeMutableBytes(of: &byte) { try IO.read(fds[0], into: $0, timeout: .milliseconds(1)) })
                    == nil
                return before && timedOut && !MNThread.isMigratable
            }
            return try [pinned.join(), optionPinned.join(), parent.join(), reader.join()] + movers.map { try $0.join() }
                + [moved.isSet]
        }
        #expect(ok.allSatisfy { $0 })
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A thread group keeps its caller's scheduler, so `withThreadGroup` pins the caller: yields
    /// and sleeps inside the body (sites where an M:N thread may move) must not carry it to
    /// another worker before or after its children are spawned. (A review found the group
    /// spawning into the old worker's table from the new worker's kernel thread.)
    @Test func aThreadGroupPinsItsCaller() throws {
        let (results, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Int] in
            // A migratable thread beside them moves to the idle worker: proof that a group's
            // caller could have moved, had the group not pinned it.
            let moved = MNFlag()
            let mover = MNThread.startingHere { () -> Bool in
                let first = MNThread.worker!
                Self.yieldUntil(moved) { if MNThread.worker != first { moved.set() } }
                return moved.isSet
            }
            let threads = (0..<8).map { k in
                MNThread.startingHere { () -> Int in
                    let me = pthread_self()
                    var sum = 0
                    let pinned = try withThreadGroup { g -> Bool in
                        let pinned = !MNThread.isMigratable
                        Self.yieldUntil(moved) {}  // safe points while the mover migrates
                        try UThread.sleep(for: .microseconds(50))
                        for i in 0..<4 { g.spawn { sum += k * 10 + i } }
                        for _ in 0..<50 { UThread.yield() }
                        return pinned
                    }
                    return pinned && pthread_equal(pthread_self(), me) != 0 ? sum : -1
                }
            }
            return try threads.map { try $0.join() } + [try mover.join() ? 1 : 0]
        }
        #expect(results == (0..<8).map { k in 4 * k * 10 + 6 } + [1])
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// Threads that wait on M:N primitives migrate too (the wait is an audited site), and wake,
    /// join and cancel still find them wherever they run. With 3 workers a thread may also move
    /// between two workers that are not its home, and its row still goes home at the end.
    @Test(arguments: [2, 3])
    func migrationStressWithWakesJoinsCancelsAndShutdown(workers: Int) throws {
        final class Tracked: Sendable {
            let counter: MNCounter
            init(_ c: MNCounter) {
                counter = c
                c.add(1)
            }
            deinit { counter.add(-1) }
        }
        let alive = MNCounter()
        let rowMigrations = MNCounter()
        let (summary, teardown) = try MNRuntime.runInspecting(workers: workers) {
            () -> (finished: Int, cancelled: Int, moves: Int) in
            let ch = try MNChannel<Int>(capacity: 8)
            let lock = MNMutex()
            let shared = MNGuarded()
            let moves = MNCounter()
            var finished = 0
            var cancelled = 0
            for round in 0..<6 {
                let threads = (0..<24).map { i in
                    MNThread.startingHere { () -> Bool in
                        let t = Tracked(alive)
                        defer { _ = t }
                        // Its row counts every move (ThreadInfo.migrations), seen or not below.
                        defer { rowMigrations.add(myRow()?.migrations ?? 0) }
                        var worker = MNThread.worker!
                        for k in 0..<300 {
                            if UThread.isCancelled { return false }
                            switch (i + k) % 4 {
                            case 0: UThread.yield()
                            case 1: try? ch.send(k, timeout: .milliseconds(1))
                            case 2: _ = try? ch.receive(timeout: .milliseconds(1))
                            default: try lock.withLock { shared.value += 1 }
                            }
                            if MNThread.worker != worker {
                                moves.add()
                                worker = MNThread.worker!
                            }
                        }
                        return true
                    }
                }
                // Cancels race with the moves (some threads are between workers when asked).
                let canceller = MNThread {
                    for (i, t) in threads.enumerated() where (i + round) % 5 == 0 {
                        t.cancel()
                        UThread.yield()
                    }
                }
                try canceller.join()
                for t in threads {
                    if (try? t.join()) == true { finished += 1 } else { cancelled += 1 }
                }
                while (try? ch.receive(timeout: .zero)) != nil {}
            }
            // Threads still running on both workers when main returns: cancelled, they unwind.
            for _ in 0..<8 {
                _ = MNThread.startingHere { () -> Void in
                    let t = Tracked(alive)
                    defer { _ = t }
                    while !UThread.isCancelled { UThread.yield() }
                }
            }
            UThread.yield()
            return (finished, cancelled, moves.count)
        }
        #expect(summary.finished + summary.cancelled == 6 * 24)
        // Migrations happened (threads saw their worker change), each counted in its row and in
        // the runtime's statistics.
        #expect(summary.moves > 0)
        #expect(rowMigrations.count >= summary.moves)
        #expect(teardown.statistics.migrations >= rowMigrations.count)
        #expect(alive.count == 0)
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
        #expect(teardown.statistics.live == 0)
    }

    /// A thread that runs long without yielding but calls `UThread.checkpoint()` lets its worker
    /// give the ready threads queued behind it to the idle worker.
    @Test func checkpointsLetABusyWorkerShedTheThreadsBehindIt() throws {
        let workers = try UThreadRuntime.run(workers: 2) { () -> [Int] in
            let coordinator = try MNThread.spawn(onWorker: 0) { () -> [Int] in
                let done = MNCounter()
                let hog = MNThread.startingHere { () -> Bool in
                    let end = uthreads_monotonic_ns() + 20_000_000_000  // a bound, not a wait
                    while done.count < 3 && uthreads_monotonic_ns() < end { UThread.checkpoint() }
                    return done.count == 3
                }
                let behind = (0..<3).map { _ in
                    MNThread.startingHere { () -> Int in
                        done.add()
                        return MNThread.worker!
                    }
                }
                let ran = try behind.map { try $0.join() }
                return try hog.join() ? ran : []
            }
            return try coordinator.join()
        }
        #expect(workers == [1, 1, 1])
    }

    /// Wait tokens are unique in the runtime (the worker index + 1 is in the high bits), so a late
    /// wake for a wait a thread began on one worker cannot match a wait it began on another, and
    /// a token says that its waiter parks on a worker (M:1 tokens have 0 there).
    @Test func waitTokensAreUniquePerRuntime() throws {
        let tokens = try UThreadRuntime.run(workers: 2) { () -> [UInt64] in
            var seen: [UInt64] = []
            for w in 0..<2 {
                let t = try MNThread.spawn(onWorker: w) { () -> UInt64 in
                    var token: UInt64 = 0
                    _ = MNWorker.require("test").worker.park(
                        MNWorker.require("test").scheduler, .waitGroup, object: 0, deadline: nil
                    ) { waiter in
                        token = waiter.token
                        return false
                    }
                    return token
                }
                seen.append(try t.join())
            }
            return seen
        }
        #expect(tokens[0] >> 48 == 1 && tokens[1] >> 48 == 2)
    }
}
