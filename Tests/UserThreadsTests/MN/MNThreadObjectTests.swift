import Testing
@testable import UserThreads

/// The M:N thread object: joins across workers (the `flags` word and the striped waiter
/// locks), start failures, and the counters the runtime ends by.
@Suite(.timeLimit(.minutes(1))) struct MNThreadObjectTests {
    /// Joiners on both workers, some registered before the end and some after: all get the
    /// value, whichever way each one's registration and the finish raced.
    @Test func joinersOnEveryWorkerAllGetTheValue() throws {
        let results = try UThreadRuntime.run(workers: 2) { () -> [Int] in
            let gate = try Channel<Int>(capacity: 1)
            let target = UThread(name: "target") { () -> Int in (try gate.receive() ?? 0) * 2 }
            let joiners = try (0..<6).map { i in
                try UThread.spawn(name: "joiner \(i)", onWorker: i % 2) { try target.join() }
            }
            for _ in 0..<3 { UThread.yield() }
            try gate.send(21)
            let late = try UThread.spawn(name: "late joiner", onWorker: 1) { try target.join() }
            return try joiners.map { try $0.join() } + [try late.join(), try target.join()]
        }
        #expect(results == Array(repeating: 42, count: 8))
    }

    /// A cancel reaches a thread wherever it migrated, also when it races with the move (the
    /// adopter updates `placeWorker`, then reads `cancelRequested`; the canceller sets it, then
    /// reads the place). Every thread yields until it sees its cancel; a lost cancel would show
    /// as a thread that ran out of yields.
    @Test func aCancelFindsAThreadThatMigrated() throws {
        let (results, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Bool] in
            let threads = (0..<16).map { _ in
                UThread.startingHere { () -> Bool in
                    for _ in 0..<1_000_000 {
                        if UThread.isCancelled { return true }
                        UThread.yield()
                    }
                    return false
                }
            }
            // From worker 1, while worker 0 sheds threads to it (it is idle between cancels).
            let canceller = try UThread.spawn(name: "canceller", onWorker: 1) {
                for t in threads {
                    t.cancel()
                    UThread.yield()
                }
            }
            try canceller.join()
            return try threads.map { try $0.join() }
        }
        #expect(results == Array(repeating: true, count: 16))
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A cancelled joiner throws and leaves no waiter behind: the thread's end does not wake
    /// it again, and later joiners still get the value.
    @Test func aCancelledJoinerLeavesNoTrace() throws {
        let (cancelled, value) = try UThreadRuntime.run(workers: 2) { () -> (Bool, Int) in
            let gate = try Channel<Int>(capacity: 1)
            let target = UThread(name: "target") { () -> Int in try gate.receive() ?? 0 }
            let joiner = try UThread.spawn(name: "joiner", onWorker: 1) { () -> Bool in
                do { _ = try target.join() } catch is CancellationError { return true }
                return false
            }
            joiner.cancel()
            let cancelled = try joiner.join()
            try gate.send(7)
            return (cancelled, try target.join())
        }
        #expect(cancelled)
        #expect(value == 7)
    }

    /// A thread that cannot start (its stack size is out of range) ends with the reason, on
    /// every spawn path: queued and started by its joiner's worker, pinned, bound to another
    /// worker (under one worker `spawn(onWorker:)` throws it at once, as `spawn` does).
    @Test func aStartFailureEndsTheThreadWithItsError() throws {
        for workers in [1, 2] {
            let failures = try UThreadRuntime.run(workers: workers) { () -> Int in
                var failures = 0
                var threads = [UThread(stackSize: 1) { 1 }, UThread(pinned: true, stackSize: 1) { 1 }]
                do {
                    threads.append(try UThread.spawn(onWorker: workers - 1, stackSize: 1) { 1 })
                } catch UThreadError.invalidArgument {
                    failures += 1
                }
                for t in threads {
                    do { _ = try t.join() } catch UThreadError.invalidArgument { failures += 1 }
                    #expect(t.isFinished)
                }
                return failures
            }
            #expect(failures == 3)
        }
    }

    /// A worker keeps the objects of threads that finished with a trivial result and reuses
    /// them for its next spawns once no handle references them (KeptThreadObjects.swift):
    /// every reused thread starts as new (its own id, name, value; not cancelled, even when
    /// the object's previous thread was; no scheduling parameters left over). ThreadSanitizer
    /// builds keep nothing (it cannot see the uniqueness test's ordering).
    @Test func aReusedObjectStartsAsNew() throws {
        let (reused, tsan) = try UThreadRuntime.run(workers: 2) { () throws -> (Int, Bool) in
            UThread.pin()
            var ids = Set<UInt64>()
            for round in 0..<6 {
                let threads = (0..<64).map { i in
                    UThread(name: "r\(round) t\(i)", priority: round == 0 ? 5 : 0) { () -> Int in
                        if round > 0 { #expect(!UThread.isCancelled) }  // round 0's cancels race with the start
                        #expect(myRow()?.priority == (round == 0 ? 5 : 0))
                        return round * 1000 + i
                    }
                }
                if round == 0 { for (i, t) in threads.enumerated() where i % 2 == 1 { t.cancel() } }
                for (i, t) in threads.enumerated() {
                    #expect(t.name == "r\(round) t\(i)")
                    #expect(ids.insert(t.id.rawValue).inserted)
                    #expect(try t.join() == round * 1000 + i)
                    #expect(t.isCancelled == (round == 0 && i % 2 == 1))
                }
            }
            return (Scheduler.active!.objectsReused, Scheduler.active!.tsan)
        }
        #expect(tsan ? reused == 0 : reused > 0)
    }

    /// A spawn's object comes with the handle's and the queue slot's references at once (the
    /// reuse's uniqueness test adds the second: MNThreadObject.reusableTwice): every thread
    /// runs and returns its own value, objects are reused (so no reference was left over: a
    /// reuse needs the kept list's to be the only one), and each handle reads its own thread.
    @Test func aSpawnTakesTheHandlesAndTheQueuesReferencesAtOnce() throws {
        let (reused, tsan) = try UThreadRuntime.run(workers: 2) { () throws -> (Int, Bool) in
            UThread.pin()
            for round in 0..<6 {
                let threads = (0..<64).map { i in UThread { () -> Int in round * 1000 + i } }
                for (i, t) in threads.enumerated() {
                    #expect(t.name == "")
                    #expect(try t.join() == round * 1000 + i)
                    #expect(!t.isCancelled)
                }
                _ = UThread {}  // a Void thread between rounds: another result type, a new object
            }
            return (Scheduler.active!.objectsReused, Scheduler.active!.tsan)
        }
        #expect(tsan ? reused == 0 : reused > 0)
    }

    /// Joining a thread that already finished on another worker reads its result: the joiner
    /// does not park (its row is never switched out).
    @Test func joiningAThreadFinishedOnAnotherWorkerDoesNotPark() throws {
        let (value, switches) = try UThreadRuntime.run(workers: 2) { () throws -> (Int, UInt64) in
            UThread.pin()
            let t = try UThread.spawn(onWorker: 1) { 42 }
            while !t.isFinished { UThread.yield() }  // nothing else is ready here: returns at once
            let me = Scheduler.active!.current
            let before = me.pointee.switches
            let value = try t.join()
            return (value, me.pointee.switches &- before)
        }
        #expect(value == 42)
        #expect(switches == 0)
    }

    /// Threads spawned by threads that already finished, on both workers, are all counted:
    /// the runtime ends only after the last one (the live count is the sum of per-worker
    /// counters, read finished-first).
    @Test func theRuntimeWaitsForGrandchildrenOnBothWorkers() throws {
        let done = MNCounter()
        try UThreadRuntime.run(workers: 2) {
            for w in 0..<2 {
                _ = try UThread.spawn(onWorker: w) {
                    for _ in 0..<50 {
                        _ = UThread {
                            _ = UThread { done.add() }
                            done.add()
                        }
                    }
                }
            }
        }
        // Main returned at once; `run` returned only when every thread had ended (the ones not
        // started by then ran cancelled, which these bodies ignore).
        #expect(done.count == 200)
    }
}
