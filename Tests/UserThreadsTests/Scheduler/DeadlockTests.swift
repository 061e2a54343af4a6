import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct DeadlockTests {
    /// Wait-for cycles under M:1 (two threads joining each other) and M:N (two workers, each
    /// thread holding the mutex the other waits for) make `run` throw `UThreadError.deadlock`
    /// with the report, which names the cycle (across the workers under M:N). Run in a child process (`uthreads selftest deadlock`): if detection
    /// regresses, the child hangs or crashes and is killed, and this test fails with its output
    /// instead of hanging or crashing the whole run.
    @Test func waitForCyclesAreReportedNotHung() throws {
        let r = try ChildProcess.uthreads("selftest", "deadlock")
        #expect(!r.timedOut && !r.crashed && r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let parts = r.stdout.components(separatedBy: "M:N deadlock report:")
        try #require(parts.count == 2, "no M:N report in:\n\(r.stdout)")
        let single = parts[0]
        let multi = parts[1]
        #expect(single.contains("M:1 deadlock report:"))
        for text in ["wait-for cycle", "\"alice\"", "\"bob\"", "join #"] {
            #expect(single.contains(text), "M:1 report lacks \(text)")
        }
        #expect(single.contains("M:1 threads unwound: 2"))  // the deadlocked threads were woken and unwound
        #expect(multi.contains("M:N runtime: all 2 workers idle with parked threads"))
        // carol (worker 0) and dave (worker 1): a cycle whose edges span the workers.
        let cycle = multi.split(separator: "\n").first { $0.hasPrefix("wait-for cycle: ") } ?? ""
        for text in ["\"carol\"", "\"dave\"", "mutex 'first'", "mutex 'second'"] {
            #expect(cycle.contains(text), "M:N report names no cycle with \(text):\n\(multi)")
        }
        // Both threads with their waits: every worker writes its table before any thread is
        // woken to unwind (a release on the way out would otherwise change another's table).
        for text in ["carol", "dave", "mutex 'first'", "mutex 'second'"] {
            #expect(multi.contains(text), "M:N report lacks \(text)")
        }
        #expect(!multi.contains("cancelled"), "a waiter was reported after the unwinding began:\n\(multi)")
    }

    /// A wait-for cycle of mutexes: `workers` workers, thread i ("t<i>") on worker
    /// `placement[i]`, holding mutex "m<i>" and waiting for the next thread's.
    struct MutexCycle: CustomTestStringConvertible, Sendable {
        let workers: Int
        let placement: [Int]
        var testDescription: String { "workers: \(workers), threads on workers \(placement)" }

        /// Runs the cycle to its deadlock; returns the report `run` threw.
        func report() throws -> String {
            let n = placement.count
            let placement = placement
            do {
                try UThreadRuntime.run(workers: workers) {
                    let mutexes = (0..<n).map { UMutex(name: "m\($0)") }
                    let allHold = UWaitGroup()
                    try allHold.add(n)
                    let threads = try (0..<n).map { i in
                        try UThread.spawn(name: "t\(i)", onWorker: placement[i]) {
                            try mutexes[i].withLock {
                                try allHold.done()
                                try allHold.wait()
                                try mutexes[(i + 1) % n].withLock {}
                            }
                        }
                    }
                    for t in threads { _ = try? t.join() }
                }
            } catch UThreadError.deadlock(let report) {
                return report
            }
            Issue.record("the cycle ran to its end: no deadlock was reported")
            return ""
        }

        /// Expects exactly one "wait-for cycle" line, naming every thread and every mutex.
        func expectNamed(in report: String) {
            let cycles = report.split(separator: "\n").filter { $0.hasPrefix("wait-for cycle: ") }
            #expect(cycles.count == 1, "\(report)")
            let cycle = cycles.first ?? ""
            for i in placement.indices {
                #expect(
                    cycle.contains("\"t\(i)\" waiting for mutex 'm\((i + 1) % placement.count)' held by"), "\(report)")
            }
        }
    }

    /// Two threads each holding the mutex the other waits for, on one worker (either runtime)
    /// and across two workers: the report names the cycle, both threads and both mutexes, the
    /// same way wherever its edges run.
    @Test(arguments: [
        MutexCycle(workers: 1, placement: [0, 0]), MutexCycle(workers: 2, placement: [0, 0]),
        MutexCycle(workers: 2, placement: [0, 1]),
    ])
    func aTwoMutexCycleIsNamed(cycle: MutexCycle) throws {
        cycle.expectNamed(in: try cycle.report())
    }

    /// Three threads in a ring of mutexes, on one worker and spread over two workers (two edges
    /// cross between them, one stays on worker 0 or 1): one cycle through all three.
    @Test(arguments: [
        MutexCycle(workers: 1, placement: [0, 0, 0]), MutexCycle(workers: 2, placement: [0, 1, 0]),
        MutexCycle(workers: 2, placement: [0, 1, 1]),
    ])
    func aThreeThreadCycleIsNamed(cycle: MutexCycle) throws {
        cycle.expectNamed(in: try cycle.report())
    }

    /// Worker parts merge into one graph: an edge from one part to a thread of another part
    /// closes the cycle, and a waiter outside the cycle is not in it.
    @Test func partsOfTheGraphMergeIntoOneCycle() {
        let id = { ThreadID(rawValue: $0) }
        var worker0 = DeadlockReport.WaitGraph()
        worker0.edges = [id(1): [id(2)], id(3): [id(1)]]
        var worker1 = DeadlockReport.WaitGraph()
        worker1.edges = [id(2): [id(1)]]
        #expect(worker0.cycles.isEmpty && worker1.cycles.isEmpty)
        worker0.merge(worker1)
        #expect(worker0.cycles == [[id(1), id(2)]])
    }

    @Test func theInvariantCheckerAcceptsARealWorkload() throws {
        var c = UThreadRuntime.Configuration()
        c.checkInvariants = true
        try UThreadRuntime.run(c) {
            let sleepers = (0..<50).map { i in UThread { try UThread.sleep(for: .milliseconds(i % 5)) } }
            let yielders = (0..<50).map { _ in UThread { for _ in 0..<10 { UThread.yield() } } }
            for t in sleepers { try t.join() }
            for t in yielders { try t.join() }
        }
    }

    @Test func cycleFinderFindsEachCycleOnce() {
        let id = { ThreadID(rawValue: $0) }
        let edges: [ThreadID: [ThreadID]] = [
            id(1): [id(2)], id(2): [id(3)], id(3): [id(1)], id(4): [id(1)], id(5): [id(6)],
        ]
        #expect(DeadlockReport.findCycles(edges) == [[id(1), id(2), id(3)]])
    }
}
