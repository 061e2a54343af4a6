// An M:N workload whose merged thread table shows every worker and every M:N primitive's wait
// reason at once: `uthreads table --workers N`.
import UserThreads

enum MNDemoWorkload {
    /// Runs an M:N runtime with `workers` workers, parks one thread on each M:N primitive
    /// (spread over the workers), takes the merged thread table, then releases everything.
    static func snapshot(workers: Int) throws -> ThreadTable {
        try UThreadRuntime.run(workers: workers) { () -> ThreadTable in
            let accounts = UMutex(name: "accounts")
            let jobs = Channel<Int>(name: "jobs")
            let quit = Channel<Void>(name: "quit")
            let results = try Channel<Int>(capacity: 1, name: "results")
            let readyLock = UMutex(name: "ready-lock")
            let ready = UCondition(name: "ready")
            let slots = USemaphore(name: "slots")
            let config = URWLock(name: "config")
            let phase = try UBarrier(parties: 2, name: "phase")
            let setup = UOnce(name: "setup")
            let started = UWaitGroup()
            try accounts.lock()
            try results.send(0)
            try config.writeLock()
            try started.add(1)
            var k = 0
            func spawn(_ name: String, _ body: @escaping @Sendable () throws -> Void) throws -> UThread<Void> {
                k += 1
                return try UThread.spawn(name: name, onWorker: k % workers, body)
            }
            let threads = [
                try spawn("teller") { try accounts.withLock {} },
                try spawn("consumer") { _ = try jobs.receive() },
                try spawn("producer") { try results.send(1) },
                try spawn("waiter") { try readyLock.withLock { try ready.wait(readyLock) } },
                try spawn("pool user") { try slots.wait() },
                try spawn("reader") { try config.withReadLock {} },
                try spawn("phase 1") { try phase.arriveAndWait() },
                try spawn("initialiser") { try setup.run { try started.wait() } },
                try spawn("selector") {
                    _ =
                        try channelSelect { s in
                            s.receive(from: jobs) { _ in }
                            s.receive(from: quit) { _ in }
                        } as Void
                },
                try spawn("napper") { do { try UThread.sleep(for: .seconds(60)) } catch is CancellationError {} },
            ]
            // Wait until every one of them is parked (the table is the evidence).
            var table = UThreadRuntime.threadTable()
            for _ in 0..<5_000 {
                let parked = Set(table.threads.filter { $0.state == .blocked || $0.state == .sleeping }.map(\.name))
                if threads.allSatisfy({ parked.contains($0.name) }) { break }
                try UThread.sleep(for: .milliseconds(1))
                table = UThreadRuntime.threadTable()
            }
            // Add a thread that waits for the once-initialiser, now that it runs.
            let late = try spawn("late initialiser") { try setup.run {} }
            for _ in 0..<5_000 {
                if table.threads.contains(where: { $0.id == late.id && $0.state == .blocked }) { break }
                try UThread.sleep(for: .milliseconds(1))
                table = UThreadRuntime.threadTable()
            }
            // Release everything.
            try accounts.unlock()
            _ = try results.receive()
            _ = try readyLock.withLock { ready.broadcast() }
            slots.signal()
            try config.writeUnlock()
            try phase.arriveAndWait()
            try started.done()
            jobs.close()
            quit.close()
            threads.last!.cancel()  // the napper
            for t in threads + [late] { try t.join() }
            return table
        }
    }
}
