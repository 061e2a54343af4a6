import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct DeadlockTests {
    /// Wait-for cycles under M:1 (two threads joining each other) and M:N (two workers, each
    /// thread holding the mutex the other waits for) make `run` throw `UThreadError.deadlock`
    /// with the report. Run in a child process (`uthreads selftest deadlock`): if detection
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
        // Both threads with their waits: every worker writes its table before any thread is
        // woken to unwind (a release on the way out would otherwise change another's table).
        for text in ["carol", "dave", "mutex 'first'", "mutex 'second'"] {
            #expect(multi.contains(text), "M:N report lacks \(text)")
        }
        #expect(!multi.contains("cancelled"), "a waiter was reported after the unwinding began:\n\(multi)")
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
