import Foundation
import Testing
import Synchronization
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct UThreadTests {
    @Test func joinReturnsValues() throws {
        let total = try UThreadRuntime.run {
            let threads = (1...100).map { i in UThread(name: "square \(i)") { i * i } }
            return try threads.reduce(0) { try $0 + $1.join() }
        }
        #expect(total == (1...100).reduce(0) { $0 + $1 * $1 })
    }

    struct Boom: Error, Equatable { let code: Int }

    @Test func joinRethrowsErrors() throws {
        try UThreadRuntime.run {
            let t = UThread<Int> { throw Boom(code: 7) }
            #expect(throws: Boom(code: 7)) { try t.join() }
            // Joining again gives the same outcome.
            #expect(throws: Boom(code: 7)) { try t.join() }
        }
    }

    @Test func runRethrowsTheMainThreadsError() {
        #expect(throws: Boom(code: 1)) {
            try UThreadRuntime.run { throw Boom(code: 1) }
        }
    }

    @Test func manyJoinersOfOneThread() throws {
        let sum = try UThreadRuntime.run {
            let target = UThread { () -> Int in
                UThread.yield()
                return 5
            }
            let joiners = (0..<50).map { _ in UThread { try target.join() } }
            return try joiners.reduce(0) { try $0 + $1.join() }
        }
        #expect(sum == 250)
    }

    @Test func yieldRoundTripsInFIFOOrder() throws {
        let order = try UThreadRuntime.run {
            var log: [Int] = []
            let threads = (0..<4).map { i in
                UThread.local {
                    for round in 0..<3 {
                        log.append(round * 10 + i)
                        UThread.yield()
                    }
                }
            }
            for t in threads { try t.join() }
            return log
        }
        #expect(order == [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23])
    }

    @Test func switchRoundTripsAmongManyThreads() throws {
        let counts = try UThreadRuntime.run {
            var counts = [Int](repeating: 0, count: 500)
            let threads = (0..<500).map { i in
                UThread.local {
                    for _ in 0..<200 {
                        counts[i] += 1
                        UThread.yield()
                    }
                }
            }
            for t in threads { try t.join() }
            return counts
        }
        #expect(counts.allSatisfy { $0 == 200 })
    }

    @Test func idsAreUniqueAndNeverReused() throws {
        let ids = try UThreadRuntime.run {
            var ids: [ThreadID] = []
            for _ in 0..<3000 {
                let t = UThread {}
                ids.append(t.id)
                try t.join()
            }
            return ids
        }
        #expect(Set(ids).count == ids.count)
    }

    @Test func joiningItselfIsAnError() throws {
        try UThreadRuntime.run {
            var me: UThread<Void>?
            let t = UThread.local {
                UThread.yield()
                #expect(throws: UThreadError.self) { try me!.join() }
            }
            me = t
            try t.join()
        }
    }

    @Test func badStackSizeIsAThrownError() throws {
        try UThreadRuntime.run {
            #expect(throws: UThreadError.self) { _ = try UThread.spawn(stackSize: 10) {} }
            let t = UThread(stackSize: -1) { 1 }
            #expect(t.isFinished)
            #expect(throws: UThreadError.self) { try t.join() }
        }
    }

    @Test func badConfigurationIsAThrownError() {
        var c = UThreadRuntime.Configuration()
        c.stackSize = 100
        #expect(throws: UThreadError.self) { try UThreadRuntime.run(c) {} }
    }

    @Test func nestedRunIsAThrownError() throws {
        try UThreadRuntime.run {
            #expect(throws: UThreadError.nestedRuntime) { _ = try UThreadRuntime.run {} }
        }
    }

    @Test func mainReturningCancelsAndDrainsTheRest() throws {
        var cleanedUp = 0
        try UThreadRuntime.run {
            for _ in 0..<10 {
                _ = UThread.local {
                    defer { cleanedUp += 1 }
                    try UThread.sleep(for: .seconds(3600))
                }
            }
            UThread.yield()
        }
        #expect(cleanedUp == 10)
    }

    /// Two runtimes, each on a kernel thread of its own, run at the same time and share nothing.
    /// The kernel threads are Foundation threads, not tasks of Swift concurrency's pool: `run`
    /// blocks its kernel thread, and two runs on this machine's two-thread pool would wait for
    /// whatever other tests hold the pool.
    @Test func runtimesOnDifferentKernelThreadsShareNothing() throws {
        let results = KernelLock<[Int]>([])
        let done = DispatchSemaphore(value: 0)
        for k in 0..<2 {
            Thread {
                let sum = try? UThreadRuntime.run {
                    let ts = (0..<1000).map { i in
                        UThread {
                            UThread.yield()
                            return i + k
                        }
                    }
                    return try ts.reduce(0) { try $0 + $1.join() }
                }
                results.withLock { $0.append(sum ?? -1) }
                done.signal()
            }.start()
        }
        for _ in 0..<2 { #expect(done.wait(timeout: .now() + .seconds(50)) == .success) }
        #expect(results.withLock { $0 }.sorted() == [499_500, 500_500])
    }

    final class Counter { var live = 0 }
    final class Tracked {
        let counter: Counter
        init(_ c: Counter) {
            counter = c
            c.live += 1
        }
        deinit { counter.live -= 1 }
    }

    @Test func resultsOfEverySizeAreKeptAndReleased() throws {
        try UThreadRuntime.run {
            let big = UThread { (1, 2, 3, 4, 5, 6, 7, 8) }  // 64 bytes: stored out of line
            let text = UThread { String(repeating: "x", count: 100) }
            let b = try big.join()
            #expect(b.0 == 1 && b.4 == 5 && b.7 == 8)
            #expect(try text.join().count == 100)
            let counter = Counter()
            do {
                let obj = UThread.local { Tracked(counter) }
                let never = UThread.local(stackSize: 1) { Tracked(counter) }  // fails to spawn: body dropped
                _ = try obj.join()
                #expect(throws: UThreadError.self) { try never.join() }
                #expect(counter.live == 1)  // held by obj's result
            }
            #expect(counter.live == 0)  // released with the handle
        }
    }

    /// A reused thread object keeps its witness for the same result type and takes a new one
    /// when the type changes (inline and out-of-line results alike).
    @Test func reusedObjectsFollowTheResultType() throws {
        try UThreadRuntime.run {
            for i in 0..<4 {
                #expect(try UThread { i }.join() == i)
                #expect(try UThread { i + 1 }.join() == i + 1)  // same type: witness kept
                #expect(try UThread { Double(i) / 2 }.join() == Double(i) / 2)
                #expect(try UThread { (i, i, i, i, i) }.join() == (i, i, i, i, i))  // 40 bytes: out of line
                try UThread {}.join()
                #expect(throws: UThreadError.self) {
                    try UThread { () throws -> Int in throw UThreadError.invalidArgument("x") }.join()
                }
            }
        }
    }

    /// A finishing thread returns its own stack and row before its last switch when that runs
    /// no code and unmaps nothing (a pool with room, a trivial result); otherwise the next
    /// thread reaps it. Either way the rows and stacks of finished threads are all returned,
    /// with dense and guarded stacks, and with a pool that takes none (so every stack is
    /// unmapped or given back with madvise after the switch, never under the finishing thread).
    @Test(arguments: [StackMode.dense, .guarded], [0, 1, 4096])
    func finishedThreadsReturnTheirStacksAndRows(mode: StackMode, pooled: Int) throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        configuration.pooledStacks = pooled
        try UThreadRuntime.run(configuration) {
            let counter = Counter()
            for i in 0..<200 {
                #expect(try UThread { i }.join() == i)  // trivial result
                _ = try UThread.local { Tracked(counter) }.join()  // result with a reference
                _ = UThread { UThread.yield() }  // nobody joins
                let pair = (UThread { i }, UThread { i + 1 })  // two finish before the joins
                #expect(try pair.0.join() + pair.1.join() == 2 * i + 1)
            }
            UThread.yield()
            #expect(counter.live == 0)
            #expect(UThreadRuntime.stackStatistics.inUse == 1)  // the main thread's
            #expect(UThreadRuntime.threadTable().threads.filter { $0.state != .running }.isEmpty)
        }
    }

    /// A finishing thread switches straight to its joiner only when nothing else is ready;
    /// otherwise the joiner queues behind the ready threads, in FIFO order as before.
    @Test func aFinishedThreadResumesItsJoinerInFIFOOrder() throws {
        try UThreadRuntime.run {
            var order: [String] = []
            let child = UThread.local { order.append("child") }
            let other = UThread.local { order.append("other") }  // ready behind child
            try child.join()
            order.append("joiner")
            try other.join()
            #expect(order == ["child", "other", "joiner"])

            let lone = UThread.local { order.append("lone") }
            try lone.join()
            order.append("back")
            #expect(order.suffix(2) == ["lone", "back"])
        }
    }

    /// Scheduler.reap keeps a finished thread's object for the next spawn when its result is
    /// trivial; it is reused only once no handle references it, and reuse is invisible.
    @Test func threadObjectsAreReusedOnlyWhenNoHandleIsLeft() throws {
        try UThreadRuntime.run {
            let kept = UThread(name: "kept") { 41 }
            #expect(try kept.join() == 41)
            for _ in 0..<3 { try UThread {}.join() }  // `kept` is still referenced: never reused
            #expect(try kept.join() == 41 && kept.name == "kept" && kept.isFinished)

            // A cancelled thread that finished normally: the next spawn may get its object.
            var previous: ObjectIdentifier?
            do {
                let c = UThread(name: "cancelled") { UThread.yield() }
                c.cancel()
                try c.join()
                #expect(c.isCancelled)
                previous = ObjectIdentifier(c.object)
            }
            let next = UThread { UThread.isCancelled }
            #expect(ObjectIdentifier(next.object) == previous)  // reused...
            #expect(!next.isCancelled && !next.isFinished && next.name == "")  // ...as if new
            #expect(try next.join() == false)

            var ids: Set<ThreadID> = [kept.id, next.id]
            for i in 0..<100 {
                let t = UThread(name: i % 2 == 0 ? "" : "n\(i)") { i }
                #expect(t.name == (i % 2 == 0 ? "" : "n\(i)"))
                #expect(try t.join() == i)
                #expect(ids.insert(t.id).inserted)  // ids stay unique
            }
            // Results that hold references are never kept past their handles.
            let counter = Counter()
            do { _ = try UThread.local { Tracked(counter) }.join() }
            #expect(counter.live == 0)
            do { #expect(throws: UThreadError.self) { try UThread { throw UThreadError.invalidArgument("x") }.join() } }
            let after = UThread { 1 }
            #expect(try after.join() == 1)
        }
    }
}

/// The thread API under one worker and under two: the same calls, the same outcomes.
@Suite(.timeLimit(.minutes(1)))
struct UThreadWorkersTests {
    struct Boom: Error, Equatable { let code: Int }

    /// A value any thread may set and read (Sendable: threads may run on other workers).
    final class Shared<T: Sendable>: Sendable {
        let value: Mutex<T>
        init(_ value: T) { self.value = Mutex(value) }
        func set(_ v: T) { value.withLock { $0 = v } }
        func get() -> T { value.withLock { $0 } }
        /// Yields until `condition` holds for the value (threads on another worker set it).
        func wait(until condition: (T) -> Bool) {
            while !condition(get()) { UThread.yield() }
        }
    }

    @Test(arguments: [1, 2]) func joinReturnsValuesAndRethrowsErrors(workers: Int) throws {
        let (sum, failed) = try UThreadRuntime.run(workers: workers) { () -> (Int, Bool) in
            let threads = (1...20).map { i in UThread(name: "square \(i)") { i * i } }
            let failing = UThread<Int> { throw Boom(code: 3) }
            let sum = try threads.reduce(0) { try $0 + $1.join() }
            #expect(throws: Boom(code: 3)) { try failing.join() }
            #expect(throws: Boom(code: 3)) { try failing.join() }  // the same outcome again
            return (sum, failing.isFinished)
        }
        #expect(sum == (1...20).reduce(0) { $0 + $1 * $1 })
        #expect(failed)
    }

    /// `join(timeout:deadline:)` gives up after the timeout and at the deadline (the thread
    /// keeps running and is joined later), and a joiner cancelled while parked stops waiting.
    /// With two workers the joined thread runs on the other worker: the joiner parks as a
    /// `Waiter` of the thread's object, woken through the mailbox.
    @Test(arguments: [1, 2]) func joinGivesUpAtATimeoutADeadlineOrACancel(workers: Int) throws {
        let rig = ChannelRig(workers: workers)
        try UThreadRuntime.run(workers: workers) {
            let gate = Channel<Int>(name: "gate")
            let t = try rig.spawn { try gate.receive() ?? -1 }
            expectError(sameCaseAs: .timedOut) { try t.join(timeout: .milliseconds(2)) }
            expectError(sameCaseAs: .timedOut) { try t.join(deadline: .now + .milliseconds(2)) }
            let joiner = UThread { () -> Bool in
                do { _ = try t.join(timeout: .seconds(60)) } catch is CancellationError { return true }
                return false
            }
            #expect(try rig.waitUntilParked(joiner, .join))
            joiner.cancel()
            #expect(try joiner.join())
            #expect(!t.isFinished)
            try gate.send(7)
            #expect(try t.join(timeout: .seconds(60)) == 7)
            #expect(try t.join(deadline: .now) == 7)  // finished: no wait, no limit checked
        }
    }

    /// Cancelled before it starts (or, with two workers, possibly just after): it starts
    /// cancelled, and its first wait throws.
    @Test(arguments: [1, 2]) func cancelBeforeStartEndsTheThread(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            let t = UThread { () -> Int in
                try UThread.sleep(for: .seconds(60))
                return 1
            }
            t.cancel()
            #expect(t.isCancelled)
            #expect(throws: CancellationError.self) { try t.join() }
            #expect(t.isFinished)
        }
    }

    @Test(arguments: [1, 2]) func cancelAfterStartWakesItsWait(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            let started = Shared(false)
            let t = UThread {
                started.set(true)
                try UThread.sleep(for: .seconds(60))
            }
            started.wait { $0 }
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
        }
    }

    @Test(arguments: [1, 2]) func aThreadCannotJoinItself(workers: Int) throws {
        let message = try UThreadRuntime.run(workers: workers) { () -> String? in
            let slot = Shared<UThread<String?>?>(nil)
            let t = UThread { () -> String? in
                slot.wait { $0 != nil }
                do { _ = try slot.get()!.join() } catch UThreadError.invalidArgument(let m) { return m }
                return nil
            }
            slot.set(t)
            return try t.join()
        }
        #expect(message?.contains("cannot join itself") == true, "\(String(describing: message))")
    }

    /// The id is known at spawn, before the thread runs, and is the one it runs under.
    @Test(arguments: [1, 2]) func idIsStableFromSpawn(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            let threads = (0..<8).map { _ in UThread { UThread.current.id } }
            let ids = threads.map(\.id)
            #expect(Set(ids).count == ids.count)
            #expect(!ids.contains(ThreadID(rawValue: 0)))
            for t in threads {
                let ran = try t.join()
                #expect(ran == t.id)
            }
            #expect(threads.map(\.id) == ids)
        }
    }

    @Test(arguments: [1, 2]) func workerNamesTheCallersWorker(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            #expect((0..<workers).contains(UThread.worker))
            for k in 0..<workers {
                let t = try UThread.spawn(name: "on \(k)", onWorker: k) { UThread.worker }
                #expect(try t.join() == k)
            }
            #expect(throws: UThreadError.self) { try UThread.spawn(onWorker: workers) {} }
        }
        #expect(UThread.worker == 0)  // outside a runtime
    }

    /// `pin()` ends migration for the caller; a pinned spawn is never migratable; nothing is
    /// under one worker.
    @Test(arguments: [1, 2]) func pinAndIsMigratable(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            let free = UThread { () -> (Bool, Bool) in
                let before = UThread.isMigratable
                UThread.pin()
                return (before, UThread.isMigratable)
            }
            let (before, after) = try free.join()
            #expect(before == (workers > 1))
            #expect(!after)
            let pinned = UThread(pinned: true) { UThread.isMigratable }
            #expect(try pinned.join() == false)
        }
    }

    /// Under two workers a local thread needs a spawner that stays put: from an unpinned one it
    /// is created finished with an error that names the fix, and the spawner stays migratable.
    @Test func localFromAnUnpinnedThreadThrowsTheDocumentedError() throws {
        let (message, stillMigratable) = try UThreadRuntime.run(workers: 2) { () -> (String?, Bool) in
            let spawner = UThread { () -> (String?, Bool) in
                let t = UThread.local { 1 }
                #expect(t.isFinished)
                do { _ = try t.join() } catch UThreadError.invalidArgument(let m) { return (m, UThread.isMigratable) }
                return (nil, UThread.isMigratable)
            }
            return try spawner.join()
        }
        #expect(message?.contains("UThread.pin()") == true, "\(String(describing: message))")
        #expect(stillMigratable)
    }

    /// From a pinned thread (or under one worker, any thread) a local thread runs on the
    /// spawner's worker and shares its non-Sendable state.
    @Test(arguments: [1, 2]) func localFromAPinnedThreadSharesState(workers: Int) throws {
        let result = try UThreadRuntime.run(workers: workers) { () -> [Int] in
            UThread.pin()
            var log: [Int] = []
            let here = UThread.worker
            let threads = (0..<4).map { i in
                UThread.local {
                    #expect(UThread.worker == here)
                    #expect(!UThread.isMigratable)
                    log.append(i)
                }
            }
            for t in threads { try t.join() }
            return log.sorted()
        }
        #expect(result == [0, 1, 2, 3])
    }

    @Test func runRefusesWorkerCountsOutOfRange() {
        for n in [0, -1, 1025] {
            #expect(throws: UThreadError.self) { try UThreadRuntime.run(workers: n) {} }
        }
    }

    @Test(arguments: [1, 2]) func runtimeHandleIsThereForAnyNumberOfWorkers(workers: Int) throws {
        let seen = try UThreadRuntime.run(workers: workers) { () -> (Int?, Int?, Int?) in
            let handle = try #require(UThread.runtime)
            let t = handle.spawn(name: "from the handle") { 6 * 7 }
            let value = try t.join()
            return (handle.workers, value, handle.statistics.startedPerWorker.count)
        }
        #expect(seen.0 == workers)
        #expect(seen.1 == 42)
        #expect(seen.2 == workers)
        #expect(UThread.runtime == nil)  // outside a runtime
    }
}
