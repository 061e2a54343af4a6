// `uthreads bench parallel`: the M:N runtime (issue 7) on 1 worker vs 2 (or more), same run.
import ArgumentParser
import CUThreads
import Glibc
import UserThreads

struct BenchParallelCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "parallel",
        abstract: "M:N runtime: CPU-bound fork-join and spawn+join on 1 worker vs all CPUs; a 1,000,000-spawn stress run.")
    @OptionGroup var options: BenchOptions
    @Option(help: "Run only these groups (comma-separated: fork-join, spawn, stress, http).")
    var only: String?
    @Option(help: "Worker counts to measure (comma-separated; default 1, 2 and the CPU count). Ratios need 1.")
    var workers: String?
    static var groups: [(BenchReport, BenchOptions) throws -> Void] {
        [ParallelBenchRuns.forkJoin, ParallelBenchRuns.spawn, ParallelBenchRuns.stress, ParallelBenchRuns.http]
    }
    static let groupNames = ["fork-join", "spawn", "stress", "http"]

    func validate() throws {
        if let workers {
            let counts = workers.split(separator: ",").map { Int($0.filter { $0 != " " }) }
            guard !counts.isEmpty, counts.allSatisfy({ $0 != nil && (1...1024).contains($0!) }) else {
                throw ValidationError("--workers: a comma-separated list of worker counts in 1...1024, not '\(workers)'")
            }
        }
        for name in selected where !Self.groupNames.contains(name) {
            throw ValidationError("--only: unknown group '\(name)' (groups: \(Self.groupNames.joined(separator: ", ")))")
        }
    }

    private var selected: [String] {
        only.map { $0.split(separator: ",").map { String($0.filter { $0 != " " }) } } ?? Self.groupNames
    }

    func run() throws {
        let report = BenchReport()
        printHeader()
        if let workers {
            ParallelBenchRuns.workerCounts = Array(Set(workers.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) })).sorted()
        }
        for (name, group) in zip(Self.groupNames, Self.groups) where selected.contains(name) { try group(report, options) }
        if options.json { try printJSON(report) }
    }
}

/// A CPU-bound leaf: an LCG with a xor-shift, not foldable by the optimiser.
@inline(never)
func crunch(_ seed: UInt64, _ iterations: Int) -> UInt64 {
    var x = seed | 1
    for _ in 0..<iterations {
        x = x &* 6364136223846793005 &+ 1442695040888963407
        x ^= x >> 29
    }
    return x
}

enum ParallelBenchmarks {
    nonisolated(unsafe) static var verbose = getenv("UTHREADS_BENCH_VERBOSE") != nil

    /// Wall time (ms) of `tasks` CPU-bound M:N threads forked by main and joined.
    static func forkJoinMs(workers: Int, tasks: Int, iterations: Int) throws -> (ms: Double, checksum: UInt64, cpu: Double) {
        let cpu0 = processCPUSeconds()
        let start = uthreads_monotonic_ns()
        let sum = try UThreadRuntime.run(workers: workers) { () -> UInt64 in
            let threads = (0..<tasks).map { i in MNThread { crunch(UInt64(i), iterations) } }
            let r = try threads.reduce(0) { try $0 &+ $1.join() }
            if verbose { print("  workers \(workers): \(MNThread.runtime!.statistics)") }
            return r
        }
        let wall = Double(uthreads_monotonic_ns() - start) / 1e9
        return (wall * 1e3, sum, (processCPUSeconds() - cpu0) / wall)
    }

    /// The same work in the M:1 runtime (the reference: no coordinator at all).
    static func forkJoinM1Ms(tasks: Int, iterations: Int) throws -> (ms: Double, checksum: UInt64) {
        let start = uthreads_monotonic_ns()
        let sum = try UThreadRuntime.run { () -> UInt64 in
            let threads = (0..<tasks).map { i in UThread { crunch(UInt64(i), iterations) } }
            return try threads.reduce(0) { try $0 &+ $1.join() }
        }
        return (Double(uthreads_monotonic_ns() - start) / 1e6, sum)
    }

    /// The same in the M:1 runtime (the reference: no coordinator at all).
    static func spawnJoinM1Ns(count: Int, batch: Int) throws -> Double {
        let (ns, sum) = try UThreadRuntime.run { () -> (UInt64, Int) in
            let start = uthreads_monotonic_ns()
            var sum = 0
            var done = 0
            while done < count {
                let n = min(batch, count - done)
                let base = done
                let threads = (0..<n).map { i in UThread { base + i } }
                for t in threads { sum &+= try t.join() }
                done += n
            }
            return (uthreads_monotonic_ns() - start, sum)
        }
        guard sum == count * (count - 1) / 2 else { throw ValidationError("spawn+join lost threads: sum \(sum)") }
        return Double(ns) / Double(count)
    }

    /// ns per thread for spawning `count` empty M:N threads in batches of `batch`, joining each batch.
    static func spawnJoinNs(workers: Int, count: Int, batch: Int) throws -> Double {
        let (ns, sum) = try UThreadRuntime.run(workers: workers) { () -> (UInt64, Int) in
            let start = uthreads_monotonic_ns()
            var sum = 0
            var done = 0
            while done < count {
                let n = min(batch, count - done)
                let base = done
                let threads = (0..<n).map { i in MNThread { base + i } }
                for t in threads { sum &+= try t.join() }
                done += n
            }
            if verbose { print("  workers \(workers): \(MNThread.runtime!.statistics)") }
            return (uthreads_monotonic_ns() - start, sum)
        }
        guard sum == count * (count - 1) / 2 else { throw ValidationError("spawn+join lost threads: sum \(sum)") }
        return Double(ns) / Double(count)
    }
}

/// User + system CPU time of the process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(usage.ru_utime) + s(usage.ru_stime)
}

enum ParallelBenchRuns {
    /// The worker counts measured (`--workers`); 1, 2 and the CPU count by default.
    nonisolated(unsafe) static var workerCounts: [Int] = Array(Set([1, 2, max(2, UThreadRuntime.processorCount)])).sorted()

    static func forkJoin(_ r: BenchReport, _ o: BenchOptions) throws {
        let tasks = o.scaled(64, quick: 8)
        let iterations = o.scaled(3_000_000, quick: 20_000)
        print("\n-- fork-join: \(tasks) CPU-bound M:N threads forked and joined by main (ms wall time; \(UThreadRuntime.processorCount) CPUs)")
        var samples: [Int: [Double]] = [:]
        var cpu: [Int: [Double]] = [:]
        var m1: [Double] = []
        var checksum: UInt64?
        // Alternate the configurations so that noise hits them alike.
        for _ in 0..<o.repetitions {
            let m = try ParallelBenchmarks.forkJoinM1Ms(tasks: tasks, iterations: iterations)
            m1.append(m.ms)
            checksum = checksum ?? m.checksum
            for w in workerCounts {
                let s = try ParallelBenchmarks.forkJoinMs(workers: w, tasks: tasks, iterations: iterations)
                guard s.checksum == checksum else { throw ValidationError("fork-join checksum differs with \(w) workers") }
                samples[w, default: []].append(s.ms)
                cpu[w, default: []].append(s.cpu)
            }
        }
        r.add(group: "parallel", name: "M:1 runtime (reference)", unit: "ms", samples: m1)
        let one = samples[1].map(median)
        for w in workerCounts {
            r.add(group: "parallel", name: "M:N runtime, \(w) worker\(w == 1 ? "" : "s")", unit: "ms", samples: samples[w]!,
                  note: (w == 1 || one == nil ? "" : "speedup \((one! / median(samples[w]!)).fixed(2))x vs 1 worker; ")
                    + "CPUs busy \(median(cpu[w]!).fixed(2))")
        }
    }

    static func spawn(_ r: BenchReport, _ o: BenchOptions) throws {
        let count = o.scaled(200_000, quick: 5_000)
        print("\n-- spawn+join: \(count) empty threads, batches of 1000 spawned then joined (ns per thread)")
        var samples: [Int: [Double]] = [:]
        var m1: [Double] = []
        // Alternate the configurations so that noise hits them alike.
        for _ in 0..<o.repetitions {
            m1.append(try ParallelBenchmarks.spawnJoinM1Ns(count: count, batch: 1000))
            for w in workerCounts {
                samples[w, default: []].append(try ParallelBenchmarks.spawnJoinNs(workers: w, count: count, batch: 1000))
            }
        }
        r.add(group: "parallel", name: "M:1 UThread spawn+join (reference)", unit: "ns/thread", samples: m1)
        let one = samples[1].map(median)
        for w in workerCounts {
            r.add(group: "parallel", name: "M:N spawn+join, \(w) worker\(w == 1 ? "" : "s")", unit: "ns/thread", samples: samples[w]!,
                  note: w == 1 ? "\((median(samples[w]!) / median(m1)).fixed(1))x M:1"
                    : one.map { "throughput \(($0 / median(samples[w]!)).fixed(2))x vs 1 worker" })
        }
    }

    static func stress(_ r: BenchReport, _ o: BenchOptions) throws {
        let stress = o.scaled(1_000_000, quick: 10_000)
        let start = uthreads_monotonic_ns()
        let ns = try ParallelBenchmarks.spawnJoinNs(workers: 2, count: stress, batch: 10_000)
        let seconds = Double(uthreads_monotonic_ns() - start) / 1e9
        r.add(BenchRow(group: "parallel", name: "stress: \(stress) spawns+joins on 2 workers (checked)", value: ns, unit: "ns/thread",
                       note: "\(seconds.fixed(2)) s in all"))
    }

    static func http(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- http: not yet")
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s[s.count / 2]
    }
}
