import Testing
import UserThreads

@Suite("Sync: mutex", .timeLimit(.minutes(1)))
struct SyncMutexTests {
    @Test func mutualExclusionUnderManyThreads() throws {
        let total = try UThreadRuntime.run {
            let m = UMutex(name: "counter")
            var counter = 0
            var inside = 0
            var maxInside = 0
            let threads = (0..<200).map { _ in
                UThread {
                    for _ in 0..<50 {
                        try m.withLock {
                            inside += 1
                            maxInside = max(maxInside, inside)
                            let v = counter
                            UThread.yield()  // a switch inside the critical section
                            counter = v + 1
                            inside -= 1
                        }
                    }
                }
            }
            for t in threads { try t.join() }
            #expect(maxInside == 1)
            return counter
        }
        #expect(total == 200 * 50)
    }

    @Test func fifoHandoffNoBarging() throws {
        try UThreadRuntime.run {
            let m = UMutex(name: "fifo")
            try m.lock()
            var order: [Int] = []
            let threads = (0..<20).map { i in
                UThread { try m.withLock { order.append(i) } }
            }
            UThread.yield()  // all 20 queue, in spawn order
            #expect(m.waiting == 20)
            try m.unlock()
            // Ownership went to the first waiter: the releasing thread cannot barge back in.
            #expect(m.tryLock() == false)
            #expect(m.holder == threads[0].id)
            for t in threads { try t.join() }
            #expect(order == Array(0..<20))
            #expect(!m.isLocked)
        }
    }

    @Test func fairnessSpreadUnderContention() throws {
        try UThreadRuntime.run {
            let m = UMutex()
            var counts = [Int](repeating: 0, count: 50)
            var stop = false
            let threads = (0..<50).map { i in
                UThread {
                    while !stop {
                        try m.withLock {
                            counts[i] += 1
                            UThread.yield()
                        }
                    }
                }
            }
            while counts.reduce(0, +) < 5_000 { UThread.yield() }
            stop = true
            for t in threads { try t.join() }
            #expect(counts.min()! * 2 >= counts.max()!, "spread \(counts.min()!)...\(counts.max()!)")
        }
    }

    @Test func timeoutLeavesNoTrace() throws {
        try UThreadRuntime.run {
            let m = UMutex(name: "slow")
            try m.lock()
            let waiter = UThread { try m.lock(timeout: .milliseconds(5)) }
            #expect(throws: UThreadError.timedOut) { try waiter.join() }
            #expect(m.waiting == 0)
            try m.unlock()
            #expect(!m.isLocked)
        }
    }

    @Test func cancellationMidWaitLeavesNoTrace() throws {
        try UThreadRuntime.run {
            let m = UMutex(name: "held")
            try m.lock()
            let a = UThread(name: "a") { try m.lock() }
            var bGot = false
            let b = UThread(name: "b") {
                try m.lock()
                bGot = true
                try m.unlock()
            }
            UThread.yield()
            #expect(m.waiting == 2)
            a.cancel()
            #expect(throws: CancellationError.self) { try a.join() }
            #expect(m.waiting == 1)
            try m.unlock()  // goes to b, not to the cancelled a
            try b.join()
            #expect(bGot)
            #expect(!m.isLocked)
        }
    }

    @Test func misuseIsAnErrorNotACrash() throws {
        try UThreadRuntime.run {
            let m = UMutex(name: "owned")
            try m.lock()
            let other = UThread { try m.unlock() }
            expectError(sameCaseAs: .invalidArgument(""), "unlock by a thread that does not own it") {
                try other.join()
            }
            expectError(sameCaseAs: .invalidArgument(""), "not recursive") { try m.lock() }
            try m.unlock()
            expectError(sameCaseAs: .invalidArgument(""), "not locked") { try m.unlock() }
        }
    }

    @Test func waitReasonNamesMutexAndHolder() throws {
        try UThreadRuntime.run {
            let m = UMutex(name: "accounts")
            try m.lock()
            let t = UThread(name: "clerk") { try m.withLock {} }
            UThread.yield()
            let table = UThreadRuntime.threadTable()
            let row = table.threads.first { $0.id == t.id }
            let me = UThread.current.id
            #expect(row?.waitReason?.kind == .mutex)
            #expect(row?.waitReason?.description == "mutex 'accounts' held by \(me) \"main\", 1 waiting")
            try m.unlock()
            try t.join()
        }
    }

    @Test func mutexCycleIsReportedAsDeadlock() throws {
        var report = ""
        do {
            try UThreadRuntime.run {
                let m1 = UMutex(name: "m1")
                let m2 = UMutex(name: "m2")
                let a = UThread(name: "alice") {
                    try m1.withLock {
                        UThread.yield()
                        try m2.withLock {}
                    }
                }
                let b = UThread(name: "bob") {
                    try m2.withLock {
                        UThread.yield()
                        try m1.withLock {}
                    }
                }
                _ = try? a.join()
                _ = try? b.join()
            }
            Issue.record("expected a deadlock")
        } catch UThreadError.deadlock(let text) {
            report = text
        }
        let cycle = report.split(separator: "\n").first { $0.hasPrefix("wait-for cycle") }.map(String.init) ?? ""
        #expect(cycle.contains("\"alice\""), "\(report)")
        #expect(cycle.contains("\"bob\""))
        #expect(cycle.contains("mutex 'm1' held by"))
        #expect(cycle.contains("mutex 'm2' held by"))
    }
}
