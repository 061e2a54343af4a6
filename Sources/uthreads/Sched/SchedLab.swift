// The scheduling lab: built-in workloads run under each policy, measured from the trace.
//
// Workloads run on the virtual clock by default: a thread's CPU burst is simulated work that
// advances virtual time exactly (with safe points, so quanta apply), sleeps jump the clock,
// and every figure is exact and reproducible from the seed. `--real-clock` runs the same
// threads spinning on the TSC instead (figures then include the machine's noise).
import UserThreads

enum LabPolicy: String, CaseIterable {
    case fifo, rr, priority, lottery, stride, mlfq, edf, cfs

    var title: String {
        switch self {
        case .fifo: "FIFO"
        case .rr: "round-robin"
        case .priority: "priority+aging"
        case .lottery: "lottery"
        case .stride: "stride"
        case .mlfq: "MLFQ"
        case .edf: "EDF"
        case .cfs: "fair share (CFS)"
        }
    }

    func make(seed: UInt64, quantum: Duration) throws -> any SchedulingPolicy {
        switch self {
        case .fifo: FIFOPolicy()
        case .rr: try RoundRobinPolicy(quantum: quantum)
        case .priority: try PriorityPolicy(quantum: quantum, agingInterval: quantum * 4)
        case .lottery: try LotteryPolicy(seed: seed, quantum: quantum)
        case .stride: try StridePolicy(quantum: quantum)
        case .mlfq: try MLFQPolicy(quanta: [quantum / 2, quantum, quantum * 2], boostInterval: quantum * 20)
        case .edf: try EDFPolicy(recheckInterval: quantum)
        case .cfs: try FairSharePolicy(targetLatency: quantum * 2, minGranularity: quantum / 10)
        }
    }
}

/// One thread of a workload: bursts of work separated by sleeps.
struct LabThread {
    var name: String
    var scheduling = SchedulingParameters()
    /// (sleep before, work) pairs in ms.
    var phases: [(sleep: Double, work: Double)]
    var kind: String
}

enum LabWorkload: String, CaseIterable {
    case cpu, interactive, deadlines, nice, mixed

    var summary: String {
        switch self {
        case .cpu: "4 CPU-bound threads of 40, 20, 10 and 5 ms, all arriving at 0"
        case .interactive: "2 CPU hogs of 60 ms and 3 interactive threads (8 × sleep 10 ms, work 1 ms)"
        case .deadlines: "5 one-shot jobs with deadlines (work/deadline ms: 10/40 5/12 8/25 3/6 4/50): feasible"
        case .nice: "3 CPU-bound threads of 30 ms with nice 0/5/10 = tickets 400/200/100 = priority 3/2/1"
        case .mixed: "a 40 ms hog, 2 interactive threads, 2 deadline jobs, a low-priority batch job"
        }
    }

    var threads: [LabThread] {
        func cpu(_ name: String, _ ms: Double, _ s: SchedulingParameters = .init()) -> LabThread {
            LabThread(name: name, scheduling: s, phases: [(0, ms)], kind: "cpu")
        }
        func interactive(_ name: String, rounds: Int = 8) -> LabThread {
            LabThread(name: name, phases: Array(repeating: (10, 1), count: rounds), kind: "interactive")
        }
        func deadline(_ name: String, _ work: Double, _ dl: Int) -> LabThread {
            LabThread(name: name, scheduling: .init(deadline: .milliseconds(dl)), phases: [(0, work)], kind: "deadline")
        }
        switch self {
        case .cpu: return [cpu("A 40ms", 40), cpu("B 20ms", 20), cpu("C 10ms", 10), cpu("D 5ms", 5)]
        case .interactive:
            return [cpu("hog 1", 60), cpu("hog 2", 60), interactive("editor"), interactive("shell"), interactive("ui")]
        case .deadlines:
            return [
                deadline("A 10/40", 10, 40), deadline("B 5/12", 5, 12), deadline("C 8/25", 8, 25),
                deadline("D 3/6", 3, 6), deadline("E 4/50", 4, 50),
            ]
        case .nice:
            return [
                cpu("nice 0", 30, .init(priority: 3, nice: 0, tickets: 400)),
                cpu("nice 5", 30, .init(priority: 2, nice: 5, tickets: 200)),
                cpu("nice 10", 30, .init(priority: 1, nice: 10, tickets: 100)),
            ]
        case .mixed:
            return [
                cpu("hog 40ms", 40), interactive("editor", rounds: 5), interactive("shell", rounds: 5),
                deadline("frame 4/15", 4, 15), deadline("audio 2/8", 2, 8),
                cpu("batch (low)", 15, .init(priority: -1, nice: 10, tickets: 50)),
            ]
        }
    }
}

/// Figures of one thread (ms).
struct LabThreadResult {
    var name: String
    var kind: String
    var turnaround: Double
    var waiting: Double
    var response: Double
    var cpu: Double
    var wakeLatency: Double?
    var deadline: Double?
    var missed: Bool { deadline.map { turnaround > $0 + 1e-9 } ?? false }
}

struct LabResult {
    var policy: LabPolicy
    var threads: [LabThreadResult]
    var makespan: Double
    var trace: UThreadTrace

    var averageTurnaround: Double { threads.map(\.turnaround).reduce(0, +) / Double(threads.count) }
    var averageWaiting: Double { threads.map(\.waiting).reduce(0, +) / Double(threads.count) }
    var averageResponse: Double { threads.map(\.response).reduce(0, +) / Double(threads.count) }
    /// Threads finished per second of makespan.
    var throughput: Double { Double(threads.count) / (makespan / 1000) }
    var deadlineMisses: Int { threads.filter(\.missed).count }
    var deadlineCount: Int { threads.filter { $0.deadline != nil }.count }
    /// Jain's fairness index over each thread's progress rate x = cpu / (cpu + waiting) — the
    /// fraction of its runnable time it was actually on the CPU. 1: every thread progressed
    /// equally when it could; 1/n: one thread had it all. (Σx)² / (n Σx²).
    var jain: Double {
        let x = threads.map { $0.cpu / max(1e-9, $0.cpu + $0.waiting) }
        let s = x.reduce(0, +)
        let s2 = x.map { $0 * $0 }.reduce(0, +)
        return s2 == 0 ? 1 : s * s / (Double(x.count) * s2)
    }
    var meanWakeLatency: Double? {
        let w = threads.compactMap(\.wakeLatency)
        return w.isEmpty ? nil : w.reduce(0, +) / Double(w.count)
    }
}

enum SchedLab {
    static func run(_ policy: LabPolicy, _ workload: LabWorkload, seed: UInt64, quantum: Duration, virtual: Bool) throws
        -> LabResult
    {
        let trace = UThreadTrace(capacity: 1 << 20)
        var c = UThreadRuntime.Configuration()
        c.clock = virtual ? .virtual : .real
        c.trace = trace
        let specs = workload.threads
        try UThreadRuntime.run(c, policy: { try policy.make(seed: seed, quantum: quantum) }) {
            let threads = specs.map { spec in
                UThread(name: spec.name, scheduling: spec.scheduling) {
                    for phase in spec.phases {
                        if phase.sleep > 0 { try UThread.sleep(for: .microseconds(Int(phase.sleep * 1000))) }
                        UThread.simulateWork(for: .microseconds(Int(phase.work * 1000)))
                    }
                }
            }
            for t in threads { try t.join() }
        }
        let summaries = trace.summaries()
        var results: [LabThreadResult] = []
        var makespan = 0.0
        for spec in specs {
            guard let s = summaries.first(where: { $0.thread.name == spec.name }) else { continue }
            let ms = { (ns: UInt64) in Double(ns) / 1e6 }
            let turnaround = ms(s.turnaround ?? 0)
            makespan = max(makespan, ms(s.exited ?? 0))
            results.append(
                LabThreadResult(
                    name: spec.name, kind: spec.kind, turnaround: turnaround, waiting: ms(s.waiting),
                    response: ms(s.response ?? 0),
                    cpu: ms(s.running), wakeLatency: s.wakeups > 0 ? ms(s.wakeLatencyTotal) / Double(s.wakeups) : nil,
                    deadline: spec.scheduling.deadline.map { Double(nanoseconds(of: $0)) / 1e6 }))
        }
        return LabResult(policy: policy, threads: results, makespan: makespan, trace: trace)
    }

    static func printThreads(_ r: LabResult, workload: LabWorkload) {
        print("\n== \(r.policy.title) — workload \(workload.rawValue): \(workload.summary)")
        let header = ["thread", "kind", "turnaround", "waiting", "response", "cpu", "wake lat", "deadline"]
        var rows: [[String]] = []
        for t in r.threads {
            rows.append([
                t.name, t.kind, ms(t.turnaround), ms(t.waiting), ms(t.response), ms(t.cpu),
                t.wakeLatency.map(ms) ?? "-",
                t.deadline.map { "\(ms($0)) \(t.missed ? "MISSED" : "met")" } ?? "-",
            ])
        }
        printTable(header, rows)
        print(
            "totals: makespan \(ms(r.makespan)), throughput \(r.throughput.fixed(1)) threads/s, mean turnaround \(ms(r.averageTurnaround)), mean waiting \(ms(r.averageWaiting)), mean response \(ms(r.averageResponse)), Jain's fairness \(r.jain.fixed(3)), deadline misses \(r.deadlineMisses)/\(r.deadlineCount)"
        )
    }

    static func printComparison(_ results: [LabResult], workload: LabWorkload) {
        print("\n== all policies — workload \(workload.rawValue): \(workload.summary)")
        let header = [
            "policy", "makespan", "throughput/s", "turnaround", "waiting", "response", "wake lat", "Jain", "misses",
            "switches",
        ]
        let rows = results.map { r in
            [
                r.policy.title, ms(r.makespan), r.throughput.fixed(1), ms(r.averageTurnaround), ms(r.averageWaiting),
                ms(r.averageResponse),
                r.meanWakeLatency.map(ms) ?? "-", r.jain.fixed(3), "\(r.deadlineMisses)/\(r.deadlineCount)",
                "\(r.trace.events.filter { $0.kind == .run }.count)",
            ]
        }
        printTable(header, rows)
        print(
            "(turnaround, waiting, response, wake latency: means over threads, in ms; Jain's index over cpu/(cpu+waiting))"
        )
    }

    static func ms(_ v: Double) -> String { v >= 100 ? v.fixed(1) : v.fixed(2) }

    static func printTable(_ header: [String], _ rows: [[String]]) {
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 0 ? c.padding(widths[i]) : c.leftPadding(widths[i]) }.joined(
                separator: "  ")
        }
        print(line(header))
        print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for r in rows { print(line(r)) }
    }
}

/// Duration → ns.
func nanoseconds(of d: Duration) -> UInt64 {
    let (s, a) = d.components
    return UInt64(s) * 1_000_000_000 + UInt64(a / 1_000_000_000)
}
