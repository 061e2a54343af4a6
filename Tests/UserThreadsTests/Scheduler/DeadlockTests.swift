import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct DeadlockTests {
    @Test func aJoinCycleIsReportedNotHung() throws {
        var unwound = 0
        do {
            try UThreadRuntime.run {
                var b: UThread<Void>?
                let a = UThread(name: "alice") {
                    defer { unwound += 1 }
                    UThread.yield()
                    try b!.join()
                }
                b = UThread(name: "bob") {
                    defer { unwound += 1 }
                    try a.join()
                }
                try a.join()
            }
            Issue.record("run returned although every thread waits forever")
        } catch UThreadError.deadlock(let report) {
            #expect(report.contains("wait-for cycle"))
            #expect(report.contains("alice"))
            #expect(report.contains("bob"))
            #expect(report.contains("join #"))
        }
        #expect(unwound == 2)  // the deadlocked threads were woken and unwound
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
        let edges: [ThreadID: [ThreadID]] = [id(1): [id(2)], id(2): [id(3)], id(3): [id(1)], id(4): [id(1)], id(5): [id(6)]]
        #expect(DeadlockReport.findCycles(edges) == [[id(1), id(2), id(3)]])
    }
}
