// Each policy's exact order on small workloads, worked out by hand (virtual clock: exact).
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct PolicyOrderTests {
    /// FIFO runs each job to completion in arrival order.
    /// P1 0–24, P2 24–27, P3 27–30.
    @Test func fifoRunsToCompletion() throws {
        let s = try schedule(
            FIFOPolicy(), [Job(name: "P1", work: 24), Job(name: "P2", work: 3), Job(name: "P3", work: 3)])
        #expect(s.runOrder == ["P1", "P2", "P3"])
        #expect([s.finish("P1"), s.finish("P2"), s.finish("P3")] == [24, 27, 30])
    }

    /// The textbook round-robin example (Silberschatz): bursts 24, 3, 3 ms, quantum 4 ms.
    /// P1 0–4, P2 4–7, P3 7–10, P1 10–30 (alone, slice after slice). Waiting: P1 6, P2 4, P3 7.
    @Test func roundRobinTextbookExample() throws {
        let s = try schedule(
            try RoundRobinPolicy(quantum: .milliseconds(4)),
            [Job(name: "P1", work: 24), Job(name: "P2", work: 3), Job(name: "P3", work: 3)])
        #expect(s.runOrder == ["P1", "P2", "P3", "P1"])
        #expect([s.finish("P1"), s.finish("P2"), s.finish("P3")] == [30, 7, 10])
        #expect(s.summary["P1"]!.waiting == 6_000_000)
        #expect(s.summary["P2"]!.waiting == 4_000_000)
        #expect(s.summary["P3"]!.waiting == 7_000_000)
        #expect(s.runLengths("P1") == [4, 4, 4, 4, 4, 4])
        // Switched out at 4, 14, 18, 22, 26 (at 30 its work is done: it exits, no safe point).
        #expect(s.summary["P1"]!.preemptions == 5)
    }

    /// Strict priority (no aging): B (3) 0–10, C (2) 10–20, A (1) 20–30.
    @Test func strictPriorityOrder() throws {
        let s = try schedule(
            try PriorityPolicy(agingInterval: nil),
            [
                Job(name: "A", work: 10, scheduling: .init(priority: 1)),
                Job(name: "B", work: 10, scheduling: .init(priority: 3)),
                Job(name: "C", work: 10, scheduling: .init(priority: 2)),
            ])
        #expect(s.runOrder == ["B", "C", "A"])
        #expect([s.finish("B"), s.finish("C"), s.finish("A")] == [10, 20, 30])
    }

    /// Stride, tickets 200 : 100, quantum 1 ms, 3 ms of work each. Strides 2^20/200 = 5242 and
    /// 2^20/100 = 10485. Passes: A 0 → runs (0–1) → 5242; B 0 → runs (1–2) → 10485; A 5242
    /// → (2–3) → 10484; A 10484 < 10485 → (3–4), done at 4; B (4–6), done at 6.
    @Test func strideOrder() throws {
        let s = try schedule(
            try StridePolicy(quantum: .milliseconds(1)),
            [
                Job(name: "A", work: 3, scheduling: .init(tickets: 200)),
                Job(name: "B", work: 3, scheduling: .init(tickets: 100)),
            ])
        #expect(s.runOrder == ["A", "B", "A", "B"])
        #expect(s.finish("A") == 4)
        #expect(s.finish("B") == 6)
    }

    /// CFS, equal weights, target latency 4 ms: each slice is 4 × 1024 / 2048 = 2 ms.
    /// A 0–2 (v 2), B 2–4 (v 2), A 4–6 done, B 6–8 done.
    @Test func fairShareEqualWeightsAlternate() throws {
        let s = try schedule(
            try FairSharePolicy(targetLatency: .milliseconds(4), minGranularity: .milliseconds(1)),
            [Job(name: "A", work: 4), Job(name: "B", work: 4)])
        #expect(s.runOrder == ["A", "B", "A", "B"])
        #expect(s.finish("A") == 6)
        #expect(s.finish("B") == 8)
    }

    /// EDF on a feasible set (total 30 ms): D (3, dl 6) 0–3, B (5, dl 12) 3–8, C (8, dl 25)
    /// 8–16, A (10, dl 40) 16–26, E (4, dl 50) 26–30: every deadline met. FIFO (spawn order
    /// A B C D E) misses B's (finishes at 15 > 12) and D's (26 > 6).
    @Test func edfMeetsEveryDeadlineOfAFeasibleSet() throws {
        let set: [(String, Int, Int)] = [("A", 10, 40), ("B", 5, 12), ("C", 8, 25), ("D", 3, 6), ("E", 4, 50)]
        let jobs = set.map { Job(name: $0.0, work: $0.1, scheduling: .init(deadline: .milliseconds($0.2))) }
        let s = try schedule(try EDFPolicy(), jobs)
        #expect(s.runOrder == ["D", "B", "C", "A", "E"])
        for (name, _, deadline) in set { #expect(s.finish(name) <= Double(deadline), "\(name) missed its deadline") }
        let f = try schedule(FIFOPolicy(), jobs)
        #expect(set.filter { f.finish($0.0) > Double($0.2) }.map(\.0) == ["B", "D"])
    }

    /// EDF preemption: U (dl 10) runs first only to start its 5 ms sleep (its arrival); L
    /// (20 ms, dl 100) runs 0–5; U wakes at 5 with the earlier deadline and preempts it at
    /// once: U 5–7, then L 7–22.
    @Test func edfPreemptsForAnEarlierDeadline() throws {
        let s = try schedule(
            try EDFPolicy(),
            [
                Job(name: "L", work: 20, scheduling: .init(deadline: .milliseconds(100))),
                Job(name: "U", work: 2, scheduling: .init(deadline: .milliseconds(10)), arrival: 5),
            ])
        #expect(s.runOrder == ["U", "L", "U", "L"])
        // L waits only while U runs (its 1 ms re-checks re-pick it at once: zero-length waits).
        let lane = s.summary["L"]!.thread.lane
        let waits = s.trace.segments().filter { $0.lane == lane && $0.state == .ready && $0.end > $0.start }
        #expect(waits.map { [$0.start / 1_000_000, $0.end / 1_000_000] } == [[5, 7]])
        #expect(s.finish("U") == 7)
        #expect(s.finish("L") == 22)
    }

    /// MLFQ, quanta 2/4/8 ms, boost every 50 ms, one CPU-bound thread of 70 ms: demoted after
    /// each allotment (2, 4, then 8 ms slices at the bottom), boosted back to the top at the
    /// first decision after 50 ms (t = 54: slices 2, 4 again), then 8, then the last 2 ms.
    @Test func mlfqDemotesAndBoosts() throws {
        let s = try schedule(
            try MLFQPolicy(
                quanta: [.milliseconds(2), .milliseconds(4), .milliseconds(8)], boostInterval: .milliseconds(50)),
            [Job(name: "hog", work: 70)])
        #expect(s.runLengths("hog") == [2, 4, 8, 8, 8, 8, 8, 8, 2, 4, 8, 2])
    }

    /// MLFQ keeps an interactive thread at the top: it preempts the demoted hog the moment it
    /// wakes, so it never waits.
    @Test func mlfqFavoursInteractiveThreads() throws {
        let trace = UThreadTrace()
        try UThreadRuntime.run(virtualConfiguration(trace), policy: { try MLFQPolicy(boostInterval: nil) }) {
            let hog = UThread(name: "hog") { UThread.simulateWork(for: .milliseconds(200)) }
            let editor = UThread(name: "editor") {
                for _ in 0..<10 {
                    try UThread.sleep(for: .milliseconds(9))
                    UThread.simulateWork(for: .microseconds(500))
                }
            }
            try hog.join()
            try editor.join()
        }
        let editor = trace.summaries().first { $0.thread.name == "editor" }!
        #expect(editor.wakeups == 10)
        #expect(editor.wakeLatencyTotal == 0)
    }

    /// A user-written policy (the one in SchedulingPolicy's documentation): shortest first.
    @Test func aUserWrittenPolicy() throws {
        final class ShortestFirst: SchedulingPolicy {
            private var ready: [ThreadRef] = []
            func awakened(_ thread: ThreadRef, reason: ReadyReason) { ready.append(thread) }
            func pickNext() -> ThreadRef? {
                guard let i = ready.indices.min(by: { ready[$0].priority < ready[$1].priority }) else { return nil }
                return ready.remove(at: i)
            }
            var hasReadyThreads: Bool { !ready.isEmpty }
            func timeSlice(for thread: ThreadRef) -> Duration? { .milliseconds(5) }
        }
        let s = try schedule(
            ShortestFirst(), [30, 10, 20].map { Job(name: "job \($0)", work: $0, scheduling: .init(priority: $0)) })
        #expect(s.runOrder == ["job 10", "job 20", "job 30"])
        #expect([s.finish("job 10"), s.finish("job 20"), s.finish("job 30")] == [10, 30, 60])
    }
}
