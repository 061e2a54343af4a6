// Shares over many quanta (seeded, virtual clock) and freedom from starvation.
import Testing
@testable import UserThreads

/// Runs `count` CPU-bound threads that each loop 1 ms bursts until `total` ms of virtual time
/// have passed; returns the CPU (ms) each got, from the trace.
func cpuShares(_ policy: any SchedulingPolicy, _ parameters: [SchedulingParameters], totalMs: Int) throws -> [Double] {
    let trace = UThreadTrace(capacity: 1 << 18)
    nonisolated(unsafe) let policy = policy  // made here for this workers: 1 runtime, used once by it
    try UThreadRuntime.run(virtualConfiguration(trace), policy: { policy }) {
        var stop = false
        let threads = parameters.enumerated().map { i, p in
            UThread.local(name: "t\(i)", scheduling: p) {
                while !stop { UThread.simulateWork(for: .milliseconds(1)) }
            }
        }
        try UThread.sleep(for: .milliseconds(totalMs))
        stop = true
        for t in threads { try t.join() }
    }
    let summaries = trace.summaries()
    return parameters.indices.map { i in Double(summaries.first { $0.thread.name == "t\(i)" }!.running) / 1e6 }
}

@Suite(.timeLimit(.minutes(1))) struct PolicyShareTests {
    /// Lottery, tickets 100 : 200 : 300, 3000 quanta of 1 ms: shares within ±0.03 of 1/6,
    /// 2/6, 3/6 (the binomial σ of the smallest share is 0.007: over 4σ).
    @Test(arguments: [1, 2, 3] as [UInt64])
    func lotterySharesFollowTickets(seed: UInt64) throws {
        let cpu = try cpuShares(
            try LotteryPolicy(seed: seed, quantum: .milliseconds(1)),
            [.init(tickets: 100), .init(tickets: 200), .init(tickets: 300)], totalMs: 3000)
        let total = cpu.reduce(0, +)
        for (i, expected) in [1.0 / 6, 2.0 / 6, 3.0 / 6].enumerated() {
            #expect(abs(cpu[i] / total - expected) < 0.03, "seed \(seed): thread \(i) got \(cpu[i] / total)")
        }
    }

    /// Stride, tickets 100 : 200 : 300 over 3000 quanta: within ±0.005 (one quantum in 600).
    @Test func strideSharesFollowTickets() throws {
        let cpu = try cpuShares(
            try StridePolicy(quantum: .milliseconds(1)),
            [.init(tickets: 100), .init(tickets: 200), .init(tickets: 300)], totalMs: 3000)
        let total = cpu.reduce(0, +)
        for (i, expected) in [1.0 / 6, 2.0 / 6, 3.0 / 6].enumerated() {
            #expect(abs(cpu[i] / total - expected) < 0.005, "thread \(i) got \(cpu[i] / total)")
        }
    }

    /// CFS-style: nice 0 against nice 5 weighs 1024 : 335, shares 0.754 : 0.246 (±0.01).
    @Test func fairShareFollowsNice() throws {
        let cpu = try cpuShares(try FairSharePolicy(), [.init(nice: 0), .init(nice: 5)], totalMs: 2000)
        let total = cpu.reduce(0, +)
        #expect(abs(cpu[0] / total - 1024.0 / 1359) < 0.01, "nice 0 got \(cpu[0] / total)")
    }

    /// Round-robin: equal shares among equals (±2 quanta: the round cut by the stop, plus the
    /// 1 ms burst each finishes after it).
    @Test func roundRobinSharesEqually() throws {
        let cpu = try cpuShares(
            try RoundRobinPolicy(quantum: .milliseconds(2)), [.init(), .init(), .init()], totalMs: 600)
        for c in cpu { #expect(abs(c - 200) <= 4, "\(cpu)") }
    }

    /// Two priority-10 hogs and one priority-0 thread: with aging (5 ms per level) the low
    /// thread runs within (10 + 1) × 5 ms plus a quantum; without aging it starves until the
    /// hogs stop at 500 ms.
    @Test func priorityAgingPreventsStarvation() throws {
        func firstRunOfLow(_ policy: PriorityPolicy) throws -> UInt64 {
            let trace = UThreadTrace(capacity: 1 << 16)
            nonisolated(unsafe) let policy = policy  // made here for this workers: 1 runtime
            try UThreadRuntime.run(virtualConfiguration(trace), policy: { policy }) {
                var lowRan = false
                let hogs = (0..<2).map { i in
                    UThread.local(name: "hog \(i)", scheduling: .init(priority: 10)) {
                        var worked = 0
                        while worked < 250 && !(lowRan && worked > 100) {
                            UThread.simulateWork(for: .milliseconds(1))
                            worked += 1
                        }
                    }
                }
                let low = UThread(name: "low", scheduling: .init(priority: 0)) { lowRan = true }
                for t in hogs { try t.join() }
                try low.join()
            }
            return trace.summaries().first { $0.thread.name == "low" }!.firstRun!
        }
        let aged = try firstRunOfLow(try PriorityPolicy(quantum: .milliseconds(1), agingInterval: .milliseconds(5)))
        #expect(aged <= 56_000_000, "low first ran at \(aged) ns")
        let strict = try firstRunOfLow(try PriorityPolicy(quantum: .milliseconds(1), agingInterval: nil))
        #expect(strict >= 500_000_000, "low first ran at \(strict) ns")
    }
}
