import CUThreads
import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// Started M:N threads migrate between workers at audited safe points.
///
/// Every test makes worker 0 start its threads itself (`UThread.startingHere`), so that worker
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
                UThread.startingHere { () -> Bool in
                    let first = UThread.worker
                    let firstRow = myRow()?.worker
                    Self.yieldUntil(moved) { if UThread.worker != first { moved.set() } }
                    let now = UThread.worker
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
                UThread.startingHere { () -> Bool in
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

    /// Pinned threads (`UThread.pin()`, `pinned:`) never change kernel thread while threads
    /// beside them migrate; waiting for I/O does not pin (MNDescriptorMigrationTests). A
    /// `UThread.local` needs a pinned spawner and never pins it behind its back.
    @Test func pinningKeepsTheKernelThread() throws {
        let (ok, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Bool] in
            let moved = MNFlag()
            let pinned = UThread.startingHere { () -> Bool in
                UThread.pin()
                let me = pthread_self()
                var same = !UThread.isMigratable
                Self.yieldUntil(moved) { same = same && pthread_equal(pthread_self(), me) != 0 }
                for _ in 0..<1000 {
                    UThread.yield()
                    same = same && pthread_equal(pthread_self(), me) != 0
                }
                return same
            }
            let optionPinned = UThread(pinned: true) { !UThread.isMigratable }
            let movers = (0..<3).map { _ in
                UThread.startingHere { () -> Bool in
                    let first = UThread.worker
                    let migratable = UThread.isMigratable
                    Self.yieldUntil(moved) { if UThread.worker != first { moved.set() } }
                    return migratable
                }
            }
            let parent = UThread { () -> Bool in
                let before = UThread.isMigratable
                let refused = (try? UThread.local { 1 }.join()) == nil
                let stillMigratable = UThread.isMigratable
                UThread.pin()
                let local = try UThread.local { 1 }.join()
                return before && refused && stillMigratable && local == 1 && !UThread.isMigratable
            }
            let reader = UThread { () -> Bool in
                var fds: [Int32] = [0, 0]
                guard pipe(&fds) == 0 else { return false }
                defer {
                    close(fds[0])
                    close(fds[1])
                }
                _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
                let before = UThread.isMigratable
                var byte: UInt8 = 0
                // An empty pipe: the read waits in this worker's reactor until its deadline.
                let timedOut =
                    (try? withUnsafeMutableBytes(of: &byte) { try IO.read(fds[0], into: $0, timeout: .milliseconds(1)) })
                    == nil
                return before && timedOut && UThread.isMigratable
            }
            return try [pinned.join(), optionPinned.join(), parent.join(), reader.join()] + movers.map { try $0.join() }
                + [moved.isSet]
        }
        #expect(ok.allSatisfy { $0 })
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// From its first `spawnLocal` on, a group's caller is pinned: yields and sleeps inside the
    /// body (sites where an M:N thread may move) must not carry it to another worker between
    /// its local children's spawns or after them. (A review found the group spawning into the
    /// old worker's table from the new worker's kernel thread.)
    @Test func aThreadGroupPinsItsCaller() throws {
        let (results, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Int] in
            // A migratable thread beside them moves to the idle worker: proof that a group's
            // caller could have moved, had the group not pinned it.
            let moved = MNFlag()
            let mover = UThread.startingHere { () -> Bool in
                let first = UThread.worker
                Self.yieldUntil(moved) { if UThread.worker != first { moved.set() } }
                return moved.isSet
            }
            let threads = (0..<8).map { k in
                UThread.startingHere { () -> Int in
                    var sum = 0
                    let stayed = try withThreadGroup { g -> Bool in
                        try g.spawnLocal {}
                        let me = pthread_self()
                        let pinned = !UThread.isMigratable
                        Self.yieldUntil(moved) {}  // safe points while the mover migrates
                        try UThread.sleep(for: .microseconds(50))
                        for i in 0..<4 { try g.spawnLocal { sum += k * 10 + i } }
                        for _ in 0..<50 { UThread.yield() }
                        return pinned && pthread_equal(pthread_self(), me) != 0
                    }
                    return stayed ? sum : -1
                }
            }
            return try threads.map { try $0.join() } + [try mover.join() ? 1 : 0]
        }
        #expect(results == (0..<8).map { k in 4 * k * 10 + 6 } + [1])
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A group pins its caller only from its first `spawnLocal` to the end of its scope (a
    /// scope of `spawn` children alone leaves it movable), counted over nested scopes (also
    /// when an outer group's `spawnLocal` comes inside an inner scope): the caller is movable
    /// again when the last scope that pinned it ends, unless it pinned itself meanwhile. A
    /// free-standing `UThread.local` inside a scope pins nothing: its spawner, held only by
    /// the scope, counts as movable, so the local thread fails with the advice to pin.
    @Test func aThreadGroupPinsItsCallerFromItsFirstLocalChildToItsEnd() throws {
        let seen = try UThreadRuntime.run(workers: 2) { () -> [String: Bool] in
            try UThread { () -> [String: Bool] in
                var seen: [String: Bool] = [:]
                seen["before"] = UThread.isMigratable
                try withThreadGroup { g in
                    try g.spawn { UThread.yield() }
                    seen["spawn only"] = UThread.isMigratable
                    try g.spawnLocal { UThread.yield() }
                    seen["after spawnLocal"] = UThread.isMigratable
                }
                seen["after"] = UThread.isMigratable
                try withThreadGroup { outer in
                    try outer.spawnLocal {}
                    try withThreadGroup { inner in try inner.spawnLocal {} }
                    seen["nested, after the inner scope"] = UThread.isMigratable
                }
                seen["nested, after the outer scope"] = UThread.isMigratable
                try withThreadGroup { outer in
                    try withThreadGroup { inner in
                        try inner.spawnLocal {}
                        try outer.spawnLocal {}
                    }
                    seen["crossed, after the inner scope"] = UThread.isMigratable
                }
                seen["crossed, after the outer scope"] = UThread.isMigratable
                var refused = false
                do {
                    try withThreadGroup { g in
                        try g.spawnLocal {}
                        _ = try UThread.local { 1 }.join()
                    }
                } catch UThreadError.invalidArgument(let message) {
                    refused = message.contains("call UThread.pin()")
                }
                seen["UThread.local in a scope refused"] = refused
                seen["after UThread.local"] = UThread.isMigratable
                return seen
            }.join()
        }
        #expect(
            seen == [
                "before": true, "spawn only": true, "after spawnLocal": false, "after": true,
                "nested, after the inner scope": false, "nested, after the outer scope": true,
                "crossed, after the inner scope": false, "crossed, after the outer scope": true,
                "UThread.local in a scope refused": true, "after UThread.local": true,
            ])
        let pinned = try UThreadRuntime.run(workers: 2) { () -> [Bool] in
            try UThread { () -> [Bool] in
                try withThreadGroup { g in
                    try g.spawnLocal {}
                    UThread.pin()
                }
                let afterPin = UThread.isMigratable
                // Pinned by the user, the spawner may spawn local threads in and out of scopes.
                let local = try withThreadGroup { _ in try UThread.local { 1 }.join() }
                return [afterPin, local == 1, UThread.isMigratable]
            }.join()
        }
        #expect(pinned == [false, true, false])
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
            let ch = try Channel<Int>(capacity: 8)
            let lock = UMutex()
            let shared = MNGuarded()
            let moves = MNCounter()
            var finished = 0
            var cancelled = 0
            for round in 0..<6 {
                let threads = (0..<24).map { i in
                    UThread.startingHere { () -> Bool in
                        let t = Tracked(alive)
                        defer { _ = t }
                        // Its row counts every move (ThreadInfo.migrations), seen or not below.
                        defer { rowMigrations.add(myRow()?.migrations ?? 0) }
                        var worker = UThread.worker
                        for k in 0..<300 {
                            if UThread.isCancelled { return false }
                            switch (i + k) % 4 {
                            case 0: UThread.yield()
                            case 1: try? ch.send(k, timeout: .milliseconds(1))
                            case 2: _ = try? ch.receive(timeout: .milliseconds(1))
                            default: try lock.withLock { shared.value += 1 }
                            }
                            if UThread.worker != worker {
                                moves.add()
                                worker = UThread.worker
                            }
                        }
                        return true
                    }
                }
                // Cancels race with the moves (some threads are between workers when asked).
                let canceller = UThread {
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
                _ = UThread.startingHere { () -> Void in
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
            let coordinator = try UThread.spawn(onWorker: 0) { () -> [Int] in
                let done = MNCounter()
                let hog = UThread.startingHere { () -> Bool in
                    let end = uthreads_monotonic_ns() + 20_000_000_000  // a bound, not a wait
                    while done.count < 3 && uthreads_monotonic_ns() < end { UThread.checkpoint() }
                    return done.count == 3
                }
                let behind = (0..<3).map { _ in
                    UThread.startingHere { () -> Int in
                        done.add()
                        return UThread.worker
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
                let t = try UThread.spawn(onWorker: w) { () -> UInt64 in
                    var token: UInt64 = 0
                    _ = MNWorker.require("test").scheduler.parkWaiter(.waitGroup, object: 0, deadline: nil) { waiter in
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
        #expect(tokens.map(Waiter.worker(ofToken:)) == [0, 1])
    }
}

/// The built-in policies, for tests parameterised over them.
enum BuiltInPolicy: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case fifo, roundRobin, priority, mlfq, lottery, stride, fairShare, edf

    var testDescription: String { rawValue }

    /// A factory for `run(workers:policy:)` (one instance per worker).
    var factory: @Sendable () -> any SchedulingPolicy {
        switch self {
        case .fifo: return { FIFOPolicy() }
        case .roundRobin: return { try! RoundRobinPolicy(quantum: .microseconds(200)) }
        case .priority: return { try! PriorityPolicy(quantum: .microseconds(200), agingInterval: .milliseconds(1)) }
        case .mlfq: return { try! MLFQPolicy() }
        case .lottery: return { try! LotteryPolicy(seed: 7, quantum: .microseconds(200)) }
        case .stride: return { try! StridePolicy(quantum: .microseconds(200)) }
        case .fairShare: return { try! FairSharePolicy() }
        case .edf: return { try! EDFPolicy() }
        }
    }
}

/// Started, ready threads move between workers under every built-in policy, with the policy's
/// per-thread state; the policies' `emigrate`/`immigrate` rebase what is relative to their clock.
@Suite(.timeLimit(.minutes(2))) struct MNPolicyMigrationTests {
    /// Eight threads started on worker 0 all run there once, then take distinct priorities,
    /// tickets, nice values and deadlines and yield until one of them finds itself on worker 1
    /// (worker 1 is idle: only migration of a started thread gives it work), or for a bounded
    /// number of yields (some policies let one thread keep worker 0 to itself: the others
    /// must be moved to run at all). Invariants are checked by both workers' idle loops and by
    /// each thread after every yield; each thread's parameters are the same after any move.
    @Test(arguments: BuiltInPolicy.allCases)
    func startedThreadsMigrateWithTheirParameters(policy: BuiltInPolicy) throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.checkInvariants = true
        let (results, teardown) = try MNRuntime.runInspecting(
            workers: 2, configuration: configuration, policy: policy.factory
        ) { () -> [(workers: Set<Int>, intact: Bool)] in
            let moved = MNFlag()
            let started = MNCounter()
            let threads = (0..<8).map { i in
                UThread.startingHere { () -> (workers: Set<Int>, intact: Bool) in
                    var seen: Set<Int> = [UThread.worker]
                    // Every thread has run once before any takes parameters that let it keep
                    // the CPU (an earlier deadline, a higher priority).
                    started.add()
                    while started.count < 8 {
                        UThread.yield()
                        seen.insert(UThread.worker)
                    }
                    let me = Scheduler.active!.current
                    me.pointee.priority = Int32(i)
                    me.pointee.tickets = UInt32(50 + 10 * i)
                    me.pointee.nice = Int32(i - 4)
                    UThread.setDeadline(.seconds(100 + i))
                    let deadline = me.pointee.sched_deadline_ns
                    var intact = true
                    var yields = 0
                    while !moved.isSet && yields < 2_000_000 {
                        UThread.yield()
                        yields += 1
                        let s = Scheduler.active!
                        s.checkInvariants()
                        seen.insert(UThread.worker)
                        if seen.count > 1 { moved.set() }
                        let row = s.current
                        intact =
                            intact && row == me && row.pointee.priority == Int32(i)
                            && row.pointee.tickets == UInt32(50 + 10 * i) && row.pointee.nice == Int32(i - 4)
                            && row.pointee.sched_deadline_ns == deadline
                    }
                    return (seen, intact)
                }
            }
            return try threads.map { try $0.join() } + [([moved.isSet ? 1 : 0], true)]
        }
        #expect(results.allSatisfy { $0.intact })
        #expect(results.last!.workers == [1])  // some thread ran on both workers
        #expect(results.dropLast().reduce(into: Set<Int>()) { $0.formUnion($1.workers) } == [0, 1])
        #expect(teardown.statistics.migrations > 0)
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// Ready threads queued in `policy`, one per value of `prepare` (called with the row).
    final class Rows {
        var blocks: [ControlBlock] = []
        func make(_ n: Int) -> [ThreadRef] {
            (0..<n).map { _ in
                let b = ControlBlock.allocate(capacity: 1)
                b.initialize(to: uthreads_tcb())
                b.pointee.state = .stateReady
                b.pointee.tickets = 100
                b.pointee.sched_deadline_ns = .max
                blocks.append(b)
                return ThreadRef(b)
            }
        }
        deinit {
            for b in blocks {
                b.deinitialize(count: 1)
                b.deallocate()
            }
        }
    }

    /// CFS: a thread's virtual runtime moves as its lag behind the old queue's minimum and lands
    /// at the same lag over the new queue's minimum (its absolute value there would be
    /// meaningless); the thread chosen is the one with the largest virtual runtime.
    @Test func fairShareRebasesVirtualRuntime() throws {
        let rows = Rows()
        let a = try FairSharePolicy()
        let b = try FairSharePolicy()
        let t = rows.make(3)
        for r in t { a.awakened(r, reason: .spawned) }
        // Run each thread in turn for a long time on `a`: its minimum grows far above `b`'s.
        for k in 0..<30 {
            let r = a.pickNext()!
            a.ran(r, nanoseconds: 1_000_000_000 + UInt64(k) * 1_000)
            a.awakened(r, reason: .yielded)
        }
        a.checkInvariants()
        let largest = t.map { a.virtualRuntime($0) }.max()!
        let minimum = t.map { a.virtualRuntime($0) }.min()!
        let out = a.emigrate(max: 1) { _ in true }
        #expect(out.count == 1 && a.virtualRuntime(out[0].thread) == largest)
        a.checkInvariants()
        #expect(a.readyCount == 2)
        let fresh = rows.make(1)[0]
        b.awakened(fresh, reason: .spawned)  // b's minimum: 0
        b.immigrate(out[0].thread, state: out[0].state)
        b.checkInvariants()
        #expect(b.readyCount == 2)
        // At least its lead over the slowest thread there, and nowhere near its absolute value.
        #expect(b.virtualRuntime(out[0].thread) >= largest - minimum)
        #expect(b.virtualRuntime(out[0].thread) < largest / 2)
        // Without state (from a policy that keeps none) it starts at the minimum.
        let c = try FairSharePolicy()
        c.immigrate(rows.make(1)[0], state: nil)
        #expect(c.readyCount == 1)
        c.checkInvariants()
    }

    /// Stride: the pass travels as the lead over the global pass.
    @Test func strideRebasesPass() throws {
        let rows = Rows()
        let a = try StridePolicy(quantum: .milliseconds(1))
        let t = rows.make(3)
        for r in t { a.awakened(r, reason: .spawned) }
        for _ in 0..<100 {
            let r = a.pickNext()!
            a.ran(r, nanoseconds: 1_000_000)
            a.awakened(r, reason: .yielded)
        }
        let passes = t.map { $0.policyData.0 }
        let out = a.emigrate(max: 1) { _ in true }
        #expect(out.count == 1 && out[0].thread.policyData.0 == passes.max()!)
        let b = try StridePolicy(quantum: .milliseconds(1))
        b.immigrate(out[0].thread, state: out[0].state)
        #expect(out[0].thread.policyData.0 <= passes.max()! - passes.min()!)
        #expect(b.pickNext() == out[0].thread)
        a.checkInvariants()
        b.checkInvariants()
    }

    /// MLFQ: a demoted thread keeps its level and used allotment; the lowest level goes first.
    @Test func mlfqKeepsTheLevel() throws {
        let rows = Rows()
        let a = try MLFQPolicy(quanta: [.milliseconds(1), .milliseconds(2), .milliseconds(4)], boostInterval: nil)
        let t = rows.make(2)
        for r in t { a.awakened(r, reason: .spawned) }
        let r = a.pickNext()!
        a.ran(r, nanoseconds: 1_000_000)  // uses up level 0
        a.ran(r, nanoseconds: 500_000)  // half of level 1's
        a.awakened(r, reason: .yielded)
        #expect(a.level(of: r) == 1)
        let out = a.emigrate(max: 1) { _ in true }
        #expect(out.count == 1 && out[0].thread == r && a.readyCount == 1)
        let b = try MLFQPolicy(quanta: [.milliseconds(1), .milliseconds(2), .milliseconds(4)], boostInterval: nil)
        b.immigrate(r, state: out[0].state)
        #expect(b.level(of: r) == 1 && b.timeSlice(for: r) == .microseconds(1500))
        a.checkInvariants()
        b.checkInvariants()
    }

    /// Priority: the lowest effective priority goes first, and its age travels.
    @Test func priorityKeepsTheAge() throws {
        let rows = Rows()
        let a = try PriorityPolicy(agingInterval: .milliseconds(10))
        let t = rows.make(3)
        for (i, r) in t.enumerated() {
            r.block.pointee.priority = Int32(10 * i)
            a.awakened(r, reason: .spawned)
        }
        let now = uthreads_monotonic_ns()
        t[0].policyData.0 = now - 55_000_000  // waited 55 ms: +5
        let out = a.emigrate(max: 1) { _ in true }
        #expect(out.count == 1 && out[0].thread == t[0])
        let b = try PriorityPolicy(agingInterval: .milliseconds(10))
        b.immigrate(t[0], state: out[0].state)
        #expect(b.effectivePriority(t[0], now: uthreads_monotonic_ns()) >= 5)
        a.checkInvariants()
        b.checkInvariants()
    }

    /// A user's policy that does not opt in gives nothing up and receives threads as woken.
    @Test func userPolicyDefaults() throws {
        final class Mine: SchedulingPolicy {
            var ready: [ThreadRef] = []
            var woken = 0
            func awakened(_ thread: ThreadRef, reason: ReadyReason) {
                if reason == .woken { woken += 1 }
                ready.append(thread)
            }
            func pickNext() -> ThreadRef? { ready.isEmpty ? nil : ready.removeFirst() }
            var hasReadyThreads: Bool { !ready.isEmpty }
        }
        let rows = Rows()
        let p = Mine()
        let t = rows.make(2)
        p.awakened(t[0], reason: .spawned)
        #expect(p.emigrate(max: 5) { _ in true }.isEmpty && p.readyCount == 1)
        p.immigrate(t[1], state: nil)
        #expect(p.woken == 1 && p.ready.count == 2)
    }

    /// EDF, round-robin, lottery: the threads they would run last go first; lottery's ticket
    /// total follows.
    @Test func queuePoliciesGiveUpTheirLastThreads() throws {
        let rows = Rows()
        let edf = try EDFPolicy()
        let t = rows.make(3)
        for (i, r) in t.enumerated() {
            r.block.pointee.sched_deadline_ns = UInt64(1000 * (i + 1))
            edf.awakened(r, reason: .spawned)
        }
        #expect(edf.emigrate(max: 1) { _ in true }.map(\.thread) == [t[2]])
        #expect(edf.pickNext() == t[0])
        edf.checkInvariants()
        let lottery = try LotteryPolicy()
        let u = rows.make(3)
        for r in u { lottery.awakened(r, reason: .spawned) }
        #expect(lottery.emigrate(max: 2) { $0 != u[2] }.map(\.thread) == [u[1], u[0]])
        lottery.checkInvariants()
        #expect(lottery.readyCount == 1 && lottery.pickNext() == u[2])
        let rr = try RoundRobinPolicy()
        let v = rows.make(3)
        for r in v { rr.awakened(r, reason: .spawned) }
        #expect(rr.emigrate(max: 1) { _ in true }.map(\.thread) == [v[2]])
        rr.checkInvariants()
    }
}

/// A woken thread goes to the idle worker of the thread that woke it, and a ping-pong pair
/// stays together on one worker.
@Suite(.timeLimit(.minutes(1))) struct MNPairTests {
    /// Rounds of `ping → echo → pong`, each answer naming the echo's worker, until both threads
    /// were seen on one worker for `settled` rounds in a row (or `limit` rounds: a bound, not a
    /// wait). Returns the rounds in a row and whether every answer was right.
    static func pingPong(
        _ ping: Channel<Int>, _ pong: Channel<(Int, Int)>, settled: Int, limit: Int
    ) throws -> (together: Int, apart: Int, right: Bool) {
        var together = 0
        var apart = 0
        var right = true
        for i in 0..<limit where together < settled {
            try ping.send(i)
            guard let (v, worker) = try pong.receive() else { return (together, apart, false) }
            right = right && v == 2 * i
            if worker == UThread.worker {
                together += 1
            } else {
                together = 0
                apart += 1
            }
        }
        return (together, apart, right)
    }

    static func echo(_ ping: Channel<Int>, _ pong: Channel<(Int, Int)>) throws {
        while let v = try ping.receive() { try pong.send((2 * v, UThread.worker)) }
    }

    /// Two unpinned threads started on different workers ping-pong over unbuffered channels:
    /// the woken thread goes to the idle worker of its waker, so after a few rounds both run on
    /// one worker (observed by both: each answer names the echo's worker) and stay there.
    @Test(arguments: [BuiltInPolicy.fifo, .fairShare, .mlfq], [2, 3])
    func aPairStartedApartEndsOnOneWorker(policy: BuiltInPolicy, workers: Int) throws {
        let (result, teardown) = try MNRuntime.runInspecting(workers: workers, policy: policy.factory) {
            () -> (together: Int, apart: Int, right: Bool, startedApart: Bool) in
            let ping = Channel<Int>(name: "ping")
            let pong = Channel<(Int, Int)>(name: "pong")
            // A pinned starter on the last worker starts the (unpinned) echo there.
            let echo = try UThread.spawn(onWorker: workers - 1) {
                UThread.startingHere { try Self.echo(ping, pong) }
            }.join()
            let pinger = UThread.startingHere { () -> (together: Int, apart: Int, right: Bool, first: Int) in
                let first = UThread.worker
                let r = try Self.pingPong(ping, pong, settled: 1_000, limit: 1_000_000)
                ping.close()
                return (r.together, r.apart, r.right, first)
            }
            let r = try pinger.join()
            try echo.join()
            return (r.together, r.apart, r.right, r.first != workers - 1)
        }
        #expect(result.right)
        #expect(result.together == 1_000)
        if result.startedApart { #expect(teardown.statistics.migrations > 0) }  // the echo moved (at once or later)
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A pair on one worker stays there while another worker is idle: the thread that wakes
    /// its partner and parks for the answer does not count as wanting the worker, so shedding
    /// never sends the partner away (and no wake needs mail).
    @Test(arguments: [BuiltInPolicy.fifo, .stride])
    func aPairOnOneWorkerIsNotSplit(policy: BuiltInPolicy) throws {
        let (result, _) = try MNRuntime.runInspecting(workers: 2, policy: policy.factory) {
            () -> (settled: Bool, apart: Int, right: Bool, mailed: Int) in
            let ping = Channel<Int>(name: "ping")
            let pong = Channel<(Int, Int)>(name: "pong")
            let echo = UThread.startingHere { try Self.echo(ping, pong) }
            let pinger = UThread.startingHere { () -> (settled: Bool, apart: Int, right: Bool, mailed: Int) in
                let warm = try Self.pingPong(ping, pong, settled: 100, limit: 1_000_000)  // together
                let before = UThread.runtime!.statistics.mailedWakes
                let r = try Self.pingPong(ping, pong, settled: 20_000, limit: 20_000)
                let mailed = UThread.runtime!.statistics.mailedWakes - before
                ping.close()
                return (warm.together == 100, r.apart, warm.right && r.right, mailed)
            }
            let r = try pinger.join()
            try echo.join()
            return r
        }
        #expect(result.settled && result.right)
        #expect(result.apart == 0)
        #expect(result.mailed == 0)
    }
}
