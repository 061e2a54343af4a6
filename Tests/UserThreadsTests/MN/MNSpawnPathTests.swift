import Testing
@testable import UserThreads

/// The M:N spawn path: a spawner's queued threads start on its worker, in batches before it
/// parks (MNWorker.swift, "Refill in batches"), and keep the FIFO order there.
@Suite(.timeLimit(.minutes(1))) struct MNSpawnPathTests {
    /// Bursts of short threads spawned and then joined by one pinned thread: every thread runs
    /// once with its own value, and on the spawner's worker the threads start in the order they
    /// were spawned (a refill batch starts the oldest first; thieves take the oldest and
    /// shedding the newest, which leaves the order of the rest as it was).
    @Test(arguments: [1, 2])
    func burstsStartInSpawnOrderOnEachWorker(workers: Int) throws {
        let (log, sum) = try UThreadRuntime.run(workers: workers) { () -> ([(n: Int, worker: Int)], Int) in
            UThread.pin()  // the spawner's worker is 0
            let log = KernelLock<[(n: Int, worker: Int)]>([])
            var sum = 0
            for burst in 0..<20 {
                let threads = (0..<100).map { i in
                    UThread { () -> Int in
                        let n = burst * 100 + i
                        log.withLock { $0.append((n, UThread.worker)) }
                        return n
                    }
                }
                for t in threads { sum += try t.join() }
            }
            return (log.withLock { $0 }, sum)
        }
        #expect(log.count == 2000)
        #expect(sum == 1999 * 2000 / 2)
        #expect(Set(log.map(\.n)).count == 2000)
        let order = log.filter { $0.worker == 0 }.map(\.n)
        #expect(order == order.sorted())  // bursts too: each is joined before the next is spawned
    }

    /// A worker keeps a finished thread's row whole with its stack for the next thread it
    /// starts (Scheduler.swift's "Thread objects"), whatever the result: each next thread
    /// still starts as new (its own id, name, priority and cancellation, switched in once),
    /// and no row or stack is left at the end. Queued threads (which a thief may start on the
    /// other worker, on its own kept rows) and pinned ones (started at once on the spawner's
    /// worker, so that a cancel before the spawner's join comes before their start).
    @Test(arguments: [1, 2])
    func aKeptRowStartsItsNextThreadAsNew(workers: Int) throws {
        let (mismatches, teardown) = try MNRuntime.runInspecting(workers: workers) { () -> [String] in
            UThread.pin()  // the spawner's worker keeps the rows its threads leave
            var mismatches: [String] = []
            for i in 0..<300 {
                let name = i % 2 == 0 ? "kept-\(i)" : ""
                let cancelled = i % 5 == 0
                // Results that hold a reference (the object is then not kept) and trivial ones.
                let t = UThread(name: name, priority: i % 3, pinned: cancelled) { () -> String in
                    guard let row = myRow() else { return "no row" }
                    return "\(row.id.rawValue) \(row.name) \(row.priority) \(row.isCancelled) \(row.switches)"
                }
                if cancelled { t.cancel() }  // started here, not run yet: it runs cancelled
                let seen = try t.join()
                let expected = "\(t.id.rawValue) \(name) \(i % 3) \(cancelled) 1"
                if seen != expected { mismatches.append("thread \(i): \(seen), expected \(expected)") }
            }
            return mismatches
        }
        #expect(mismatches == [])
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }
}
