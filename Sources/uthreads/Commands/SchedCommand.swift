// `uthreads sched …`: the scheduling lab — policies side by side on built-in workloads.
import ArgumentParser
import CUThreads
import Foundation
import UserThreads

struct SchedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sched",
        abstract:
            "The scheduling lab: run a workload under one policy or all, with per-thread figures, an SVG Gantt chart and a Perfetto trace.",
        discussion: """
            Policies: \(LabPolicy.allCases.map(\.rawValue).joined(separator: ", ")), all.
            Workloads:
            \(LabWorkload.allCases.map { "  \($0.rawValue): \($0.summary)" }.joined(separator: "\n"))
            Runs on the virtual clock (exact, reproducible from --seed) unless --real-clock.
            """)

    @Option(help: "fifo, rr, priority, lottery, stride, mlfq, edf, cfs, or all.")
    var policy: String = "all"
    @Option(help: "cpu, interactive, deadlines, nice, mixed.")
    var workload: String = "cpu"
    @Option(help: "Write an SVG Gantt chart (with --policy all: one file per policy, named <file>-<policy>.svg).")
    var svg: String?
    @Option(help: "Write a Chrome/Perfetto trace JSON (with --policy all: one per policy).")
    var trace: String?
    @Option(help: "Seed of the random policies (lottery).")
    var seed: UInt64 = 1
    @Option(help: "Base quantum in ms (RR, priority, lottery, stride; MLFQ uses ½, 1, 2×; CFS a 2× latency).")
    var quantum: Double = 4
    @Flag(help: "Run on the real clock (threads spin on the TSC) instead of the virtual clock.")
    var realClock = false
    @Flag(help: "Measure the cost of UThread.checkpoint() when no switch is due, and exit.")
    var benchCheckpoint = false

    func validate() throws {
        if !benchCheckpoint {
            guard policy == "all" || LabPolicy(rawValue: policy) != nil else {
                throw ValidationError("unknown policy \(policy)")
            }
            guard LabWorkload(rawValue: workload) != nil else { throw ValidationError("unknown workload \(workload)") }
            guard quantum >= 0.01 && quantum <= 1000 else { throw ValidationError("--quantum must be 0.01...1000 ms") }
        }
    }

    func run() throws {
        if benchCheckpoint { return try CheckpointBench.run() }
        let w = LabWorkload(rawValue: workload)!
        let policies = policy == "all" ? LabPolicy.allCases : [LabPolicy(rawValue: policy)!]
        let q = Duration.microseconds(Int(quantum * 1000))
        var results: [LabResult] = []
        for p in policies {
            let r = try SchedLab.run(p, w, seed: seed, quantum: q, virtual: !realClock)
            results.append(r)
            if policies.count == 1 { SchedLab.printThreads(r, workload: w) }
            let title = "\(p.title) — workload \(w.rawValue) (quantum \(quantum) ms, seed \(seed))"
            if let svg {
                try write(r.trace.svgGantt(title: title), to: path(svg, p, all: policies.count > 1, ext: "svg"))
            }
            if let trace { try write(r.trace.perfettoJSON(), to: path(trace, p, all: policies.count > 1, ext: "json")) }
        }
        if policies.count > 1 { SchedLab.printComparison(results, workload: w) }
    }

    private func path(_ base: String, _ p: LabPolicy, all: Bool, ext: String) -> String {
        guard all else { return base }
        let stem = base.hasSuffix("." + ext) ? String(base.dropLast(ext.count + 1)) : base
        return "\(stem)-\(p.rawValue).\(ext)"
    }

    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        print("wrote \(path)")
    }
}

/// The cost of `UThread.checkpoint()` when no switch is due.
enum CheckpointBench {
    @inline(never) static func opaque(_ x: Int) -> Int { x }

    static func run() throws {
        let n = 200_000_000
        func measure(_ policy: @escaping @Sendable () throws -> any SchedulingPolicy, checkpoint: Bool) throws -> Double
        {
            var c = UThreadRuntime.Configuration()
            c.watchdogLimit = nil  // the loop without checkpoint() has no safe point, by design
            return try UThreadRuntime.run(c, policy: policy) {
                var sink = 0
                let step = opaque(1)
                let t0 = uthreads_monotonic_ns()
                if checkpoint {
                    for _ in 0..<n {
                        UThread.checkpoint()
                        sink &+= step
                        sink ^= sink >> 7
                    }
                } else {
                    for _ in 0..<n {
                        sink &+= step
                        sink ^= sink >> 7
                    }
                }
                let t1 = uthreads_monotonic_ns()
                _ = opaque(sink)
                return Double(t1 - t0) / Double(n)
            }
        }
        print("== UThread.checkpoint() when no switch is due: \(n) iterations of a loop body, median of 5")
        for (name, make) in [
            (
                "round-robin, 10 ms quantum (alone: one self-preemption per 10 ms)",
                { @Sendable in try RoundRobinPolicy(quantum: .milliseconds(10)) as any SchedulingPolicy }
            ),
            ("FIFO (no quantum)", { @Sendable in FIFOPolicy() as any SchedulingPolicy }),
        ] {
            var with: [Double] = []
            var without: [Double] = []
            for _ in 0..<5 {
                with.append(try measure(make, checkpoint: true))
                without.append(try measure(make, checkpoint: false))
            }
            let w = with.sorted()[2]
            let wo = without.sorted()[2]
            print("\(name):")
            print(
                "  loop with checkpoint()    \(w.fixed(3)) ns/iteration  [\(with.min()!.fixed(3)) .. \(with.max()!.fixed(3))]"
            )
            print(
                "  same loop without         \(wo.fixed(3)) ns/iteration  [\(without.min()!.fixed(3)) .. \(without.max()!.fixed(3))]"
            )
            print("  checkpoint() costs        \((w - wo).fixed(3)) ns/call")
        }
        // The switch with the trace recorder on and off (FIFO, 2 threads yielding in turn).
        func yieldNs(traced: Bool) throws -> Double {
            var c = UThreadRuntime.Configuration()
            if traced { c.trace = UThreadTrace(capacity: 1 << 16) }
            return try UThreadRuntime.run(c) {
                let rounds = 1_000_000
                let partner = UThread { for _ in 0..<rounds { UThread.yield() } }
                UThread.yield()
                let t0 = uthreads_monotonic_ns()
                for _ in 0..<rounds { UThread.yield() }
                let t1 = uthreads_monotonic_ns()
                try partner.join()
                return Double(t1 - t0) / Double(rounds * 2)
            }
        }
        var off: [Double] = []
        var on: [Double] = []
        for _ in 0..<5 {
            off.append(try yieldNs(traced: false))
            on.append(try yieldNs(traced: true))
        }
        print("yield() between 2 threads (FIFO), median of 5:")
        print(
            "  tracing off               \(off.sorted()[2].fixed(1)) ns/switch  [\(off.min()!.fixed(1)) .. \(off.max()!.fixed(1))]"
        )
        print(
            "  tracing on (ring 64Ki)    \(on.sorted()[2].fixed(1)) ns/switch  [\(on.min()!.fixed(1)) .. \(on.max()!.fixed(1))]"
        )
    }
}
