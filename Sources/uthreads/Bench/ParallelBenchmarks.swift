// `uthreads bench parallel`: the one runtime on 1 worker vs 2 (or more), same run: `run(workers: 1)` is the M:1
// runtime, so the 1-worker rows are the reference.
import ArgumentParser
import CUThreads
import Glibc
import Synchronization
import UserThreads

struct BenchParallelCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "parallel",
        abstract:
            "M:N runtime: CPU-bound fork-join, yield-heavy threads balanced only by migration, and spawn+join on 1 worker vs all CPUs; a 1,000,000-spawn stress run; HTTP (uthreads serve under wrk); threads that wait on a pipe, then compute."
    )
    @OptionGroup var options: BenchOptions
    @Option(help: "Run only these groups (comma-separated: fork-join, migrate, spawn, stress, http, pipe-wait).")
    var only: String?
    @Option(help: "Worker counts to measure (comma-separated; default 1, 2 and the CPU count). Ratios need 1.")
    var workers: String?
    static var groups: [(BenchReport, BenchOptions) throws -> Void] {
        [
            ParallelBenchRuns.forkJoin, ParallelBenchRuns.migrate, ParallelBenchRuns.spawn, ParallelBenchRuns.stress,
            ParallelBenchRuns.http, ParallelBenchRuns.pipeWait,
        ]
    }
    static let groupNames = ["fork-join", "migrate", "spawn", "stress", "http", "pipe-wait"]

    func validate() throws {
        if let workers {
            let counts = workers.split(separator: ",").map { Int($0.filter { $0 != " " }) }
            guard !counts.isEmpty, counts.allSatisfy({ $0 != nil && (1...1024).contains($0!) }) else {
                throw ValidationError(
                    "--workers: a comma-separated list of worker counts in 1...1024, not '\(workers)'")
            }
        }
        for name in selected where !Self.groupNames.contains(name) {
            throw ValidationError(
                "--only: unknown group '\(name)' (groups: \(Self.groupNames.joined(separator: ", ")))")
        }
    }

    private var selected: [String] {
        only.map { $0.split(separator: ",").map { String($0.filter { $0 != " " }) } } ?? Self.groupNames
    }

    func run() throws {
        if let workers {
            ParallelBenchRuns.workerCounts = Array(
                Set(workers.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) })
            ).sorted()
        }
        // M:N needs every CPU, whatever --placement says.
        try runBench(options, placement: .free) { report in
            for (name, group) in zip(Self.groupNames, Self.groups) where selected.contains(name) {
                try group(report, options)
            }
        }
    }
}

/// A CPU-bound leaf: an LCG with a xor-shift, not foldable by the optimiser.
@inline(never)
func crunch(_ seed: UInt64, _ iterations: Int) -> UInt64 {
    var x = seed | 1
    for _ in 0..<iterations {
        x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        x ^= x >> 29
    }
    return x
}

enum ParallelBenchmarks {
    nonisolated(unsafe) static var verbose = getenv("UTHREADS_BENCH_VERBOSE") != nil

    /// The policy of the fork-join and migration groups' workers: `UTHREADS_BENCH_POLICY` =
    /// `rr`, `priority`, `mlfq`, `lottery`, `stride`, `fair` or `edf` (unset: FIFO). Started
    /// threads migrate under each (the policy's state travels with them).
    static let policy: (@Sendable () -> any SchedulingPolicy)? = {
        switch getenv("UTHREADS_BENCH_POLICY").map({ String(cString: $0) }) {
        case "rr": return { try! RoundRobinPolicy() }
        case "priority": return { try! PriorityPolicy() }
        case "mlfq": return { try! MLFQPolicy() }
        case "lottery": return { try! LotteryPolicy() }
        case "stride": return { try! StridePolicy() }
        case "fair": return { try! FairSharePolicy() }
        case "edf": return { try! EDFPolicy() }
        default: return nil
        }
    }()

    /// Wall time (ms) of `tasks` CPU-bound M:N threads forked by main and joined.
    static func forkJoinMs(workers: Int, tasks: Int, iterations: Int) throws -> (
        ms: Double, checksum: UInt64, cpu: Double
    ) {
        let cpu0 = processCPUSeconds()
        let start = uthreads_monotonic_ns()
        let sum = try UThreadRuntime.run(workers: workers, policy: policy) { () -> UInt64 in
            let threads = (0..<tasks).map { i in UThread { crunch(UInt64(i), iterations) } }
            let r = try threads.reduce(0) { try $0 &+ $1.join() }
            if verbose { print("  workers \(workers): \(UThread.runtime!.statistics)") }
            return r
        }
        let wall = Double(uthreads_monotonic_ns() - start) / 1e9
        return (wall * 1e3, sum, (processCPUSeconds() - cpu0) / wall)
    }

    /// Wall time (ms) of `threads` M:N threads that worker 0 starts itself (nothing is queued,
    /// so nothing can be stolen), each running `slices` CPU-bound slices with a yield between
    /// them: only migration of started threads can put a second worker to use.
    static func yieldingMs(workers: Int, threads: Int, slices: Int, iterations: Int) throws -> (
        ms: Double, checksum: UInt64, migrations: Int, cpu: Double
    ) {
        let cpu0 = processCPUSeconds()
        let start = uthreads_monotonic_ns()
        let (sum, migrations) = try UThreadRuntime.run(workers: workers, policy: policy) { () -> (UInt64, Int) in
            let ts = (0..<threads).map { i in
                UThread.startingHere { () -> UInt64 in
                    var x = UInt64(i)
                    for _ in 0..<slices {
                        x = crunch(x, iterations)
                        UThread.yield()
                    }
                    return x
                }
            }
            let r = try ts.reduce(0) { try $0 &+ $1.join() }
            let stats = UThread.runtime!.statistics
            if verbose { print("  workers \(workers): \(stats)") }
            return (r, stats.migrations)
        }
        let wall = Double(uthreads_monotonic_ns() - start) / 1e9
        return (wall * 1e3, sum, migrations, (processCPUSeconds() - cpu0) / wall)
    }

    /// ns per thread for spawning `count` empty M:N threads in batches of `batch`, joining each batch.
    /// With `spawners` > 1, that many M:N threads (placed round-robin on the workers) share the
    /// count, each spawning and joining its own batches: the same work on any number of workers,
    /// but no longer a single serial spawner.
    static func spawnJoinNs(workers: Int, count: Int, batch: Int, spawners: Int = 1) throws -> Double {
        @Sendable func spawnAndJoin(_ first: Int, _ end: Int) throws -> Int {
            var sum = 0
            var done = first
            while done < end {
                let n = min(batch, end - done)
                let base = done
                let threads = (0..<n).map { i in UThread { base + i } }
                for t in threads { sum &+= try t.join() }
                done += n
            }
            return sum
        }
        let (ns, sum) = try UThreadRuntime.run(workers: workers) { () -> (UInt64, Int) in
            let start = uthreads_monotonic_ns()
            var sum = 0
            if spawners == 1 {
                sum = try spawnAndJoin(0, count)
            } else {
                let share = (count + spawners - 1) / spawners
                let group = try (0..<spawners).map { k in
                    try UThread.spawn(onWorker: k % workers) {
                        try spawnAndJoin(k * share, min(count, (k + 1) * share))
                    }
                }
                for t in group { sum &+= try t.join() }
            }
            if verbose { print("  workers \(workers), spawners \(spawners): \(UThread.runtime!.statistics)") }
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
    nonisolated(unsafe) static var workerCounts: [Int] = Array(Set([1, 2, max(2, UThreadRuntime.processorCount)]))
        .sorted()

    static func forkJoin(_ r: BenchReport, _ o: BenchOptions) throws {
        let tasks = o.scaled(64, quick: 8)
        let iterations = o.scaled(3_000_000, quick: 20_000)
        print(
            "\n-- fork-join: \(tasks) CPU-bound M:N threads forked and joined by main (ms wall time; \(UThreadRuntime.processorCount) CPUs)"
        )
        let (samples, _, cpu) = try sampleByWorkers(o, "fork-join") { w in
            let s = try ParallelBenchmarks.forkJoinMs(workers: w, tasks: tasks, iterations: iterations)
            return (s.ms, s.checksum, 0, s.cpu)
        }
        addByWorkers(r, samples) { w in ("fork-join, run(workers: \(w))", "CPUs busy \(median(cpu[w]!).fixed(2))") }
    }

    static func migrate(_ r: BenchReport, _ o: BenchOptions) throws {
        let threads = o.scaled(16, quick: 4)
        let slices = o.scaled(2_000, quick: 100)
        let iterations = 2_000
        print(
            "\n-- migration: \(threads) yield-heavy threads all started by worker 0, \(slices) CPU slices each (ms wall time)"
        )
        let (samples, moved, cpu) = try sampleByWorkers(o, "migration") { w in
            let s = try ParallelBenchmarks.yieldingMs(
                workers: w, threads: threads, slices: slices, iterations: iterations)
            return (s.ms, s.checksum, Double(s.migrations), s.cpu)
        }
        addByWorkers(r, samples) { w in
            (
                "M:N yield-heavy, started on worker 0, \(w) worker\(w == 1 ? "" : "s")",
                "migrations \(Int(median(moved[w]!))); CPUs busy \(median(cpu[w]!).fixed(2))"
            )
        }
    }

    static func spawn(_ r: BenchReport, _ o: BenchOptions) throws {
        let count = o.scaled(200_000, quick: 5_000)
        print(
            "\n-- spawn+join: \(count) empty threads, batches of 1000 spawned then joined (ns per thread); by main alone, then by one spawner per worker"
        )
        var samples: [Int: [Double]] = [:]
        var shared: [Int: [Double]] = [:]  // one spawner per worker of the widest configuration
        let spawners = workerCounts.max() ?? 2
        // Alternate the configurations so that noise hits them alike.
        for _ in 0..<o.repetitions {
            for w in workerCounts {
                samples[w, default: []].append(
                    try ParallelBenchmarks.spawnJoinNs(workers: w, count: count, batch: 1000))
                shared[w, default: []].append(
                    try ParallelBenchmarks.spawnJoinNs(workers: w, count: count, batch: 1000, spawners: spawners))
            }
        }
        func rows(_ samples: [Int: [Double]], _ label: String) {
            let one = samples[1].map(median)
            for w in workerCounts {
                r.add(
                    group: "parallel", name: "spawn+join, \(label)run(workers: \(w))",
                    unit: "ns/thread", samples: samples[w]!,
                    note: w == 1 ? nil : one.map { "throughput \(($0 / median(samples[w]!)).fixed(2))x vs 1 worker" })
            }
        }
        rows(samples, "")
        rows(shared, "\(spawners) spawners, ")
    }

    static func stress(_ r: BenchReport, _ o: BenchOptions) throws {
        let stress = o.scaled(1_000_000, quick: 10_000)
        let start = uthreads_monotonic_ns()
        let ns = try ParallelBenchmarks.spawnJoinNs(workers: 2, count: stress, batch: 10_000)
        let seconds = Double(uthreads_monotonic_ns() - start) / 1e9
        r.add(
            BenchRow(
                group: "parallel", name: "stress: \(stress) spawns+joins on 2 workers (checked)", value: ns,
                unit: "ns/thread",
                note: "\(seconds.fixed(2)) s in all"))
    }

    /// `uthreads serve` (a child process of this binary) with 1 and 2 workers under wrk, in
    /// alternation: each repetition is a round that runs every worker count once (the first
    /// count alternates between rounds), so drift on a shared machine hits both alike. wrk runs
    /// on the same CPUs as the server (a 2-CPU machine cannot give each its own): a second worker
    /// can only use what wrk leaves, so the figure to compare is server CPU per request, taken
    /// as a ratio to one worker inside each round, then the median over the rounds. At 100
    /// connections for `duration` seconds, then at 1,000 for a shorter run (its rows are the
    /// same figures with ten times the idle keep-alive threads per ready one). Skipped without wrk.
    static func http(_ r: BenchReport, _ o: BenchOptions) throws {
        guard BenchIOCommand.which("wrk") != nil else {
            print("\n-- http: skipped (wrk is not on PATH; peers/http.sh also compares Go and SwiftNIO)")
            return
        }
        _ = IO.raiseDescriptorLimit()
        for (connections, duration) in [(100, o.quick ? 1 : 5), (1000, o.quick ? 1 : 3)] {
            print(
                "\n-- http: uthreads serve under wrk -t2 -c\(connections) -d\(duration)s, worker counts alternating in \(o.repetitions) rounds (wrk shares the CPUs)"
            )
            var rps: [Int: [Double]] = [:]
            var cpu: [Int: [Double]] = [:]
            for round in 0..<o.repetitions {
                for w in round % 2 == 0 ? workerCounts : workerCounts.reversed() {
                    let m = try HTTPLoad.measure(workers: w, connections: connections, seconds: duration)
                    rps[w, default: []].append(m.requestsPerSecond)
                    cpu[w, default: []].append(m.cpuMicrosecondsPerRequest)
                }
            }
            let suffix = connections == 100 ? "" : ", \(connections) connections"
            for w in workerCounts {
                let one = rps[1].map(median)
                r.add(
                    group: "parallel", name: "HTTP hello, \(w) worker\(w == 1 ? "" : "s")\(suffix)", unit: "req/s",
                    samples: rps[w]!,
                    note: "server CPU \(median(cpu[w]!).fixed(1)) µs/request"
                        + (w == 1 || one == nil ? "" : "; \((median(rps[w]!) / one!).fixed(2))x the req/s of 1 worker"))
            }
            // Per round: each worker count's CPU per request over one worker's in the same round.
            guard let one = cpu[1] else { continue }
            for w in workerCounts where w != 1 {
                r.add(
                    group: "parallel",
                    name: "HTTP server CPU per request, \(w) workers ÷ 1\(suffix)", unit: "x",
                    samples: zip(cpu[w]!, one).map { $0 / $1 }, note: "median of the per-round ratios")
            }
        }
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s[s.count / 2]
    }
}

/// Runs `uthreads serve` as a child process and loads it with wrk.
enum HTTPLoad {
    struct Measurement {
        var requestsPerSecond: Double
        var cpuMicrosecondsPerRequest: Double
    }

    static func measure(workers: Int, connections: Int, seconds: Int) throws -> Measurement {
        let (pid, port) = try startServer(workers: workers)
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        let url = "http://127.0.0.1:\(port)/"
        _ = try BenchIOCommand.capture(["wrk", "-t2", "-c\(connections)", "-d1s", url])  // warm-up
        let before = try cpuSeconds(pid)
        let output = try BenchIOCommand.capture(["wrk", "-t2", "-c\(connections)", "-d\(seconds)s", url])
        let cpu = try cpuSeconds(pid) - before
        var result = Measurement(requestsPerSecond: 0, cpuMicrosecondsPerRequest: .nan)
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if line.hasPrefix("Requests/sec:"), let v = words.last.flatMap({ Double($0) }) {
                result.requestsPerSecond = v
            }
            if words.count > 2, words[1] == "requests", words[2] == "in", let n = Double(words[0]), n > 0 {
                result.cpuMicrosecondsPerRequest = cpu / n * 1e6
            }
        }
        guard result.requestsPerSecond > 0 else { throw ValidationError("wrk gave no result:\n\(output)") }
        return result
    }

    /// Starts `uthreads serve --port 0 --workers N` and reads its port from the line it prints.
    private static func startServer(workers: Int) throws -> (pid_t, UInt16) {
        try ChildProcess.startServe(["--workers", "\(workers)"])
    }

    /// User + system CPU seconds of process `pid` (fields 14 and 15 of /proc/PID/stat).
    private static func cpuSeconds(_ pid: pid_t) throws -> Double {
        let fd = open("/proc/\(pid)/stat", O_RDONLY)
        guard fd >= 0 else { throw UThreadError.system(call: "open", errno: .init(rawValue: errno)) }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw UThreadError.system(call: "read", errno: .init(rawValue: errno)) }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return .nan }
        let fields = text[text.index(after: close)...].split(separator: " ")  // fields 3, 4, ...
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

// MARK: Pipe-wait-then-compute

extension ParallelBenchmarks {
    /// What one pipe-wait-then-compute run measured.
    struct PipeWaitRun {
        var ms: Double
        var checksum: UInt64
        /// Threads that ran on more than one worker after their pipe wait.
        var movedShare: Double
        var cpu: Double
    }

    /// Wall time (ms) of `threads` M:N threads that worker 0 starts itself, each first waiting
    /// on its own pipe (its descriptor is then in a reactor's epoll set), woken by main's write,
    /// then running `slices` CPU-bound slices with a yield between them. Only migration of
    /// threads that waited on a descriptor can put a second worker to use.
    static func pipeWaitThenComputeMs(workers: Int, threads: Int, slices: Int, iterations: Int) throws -> PipeWaitRun {
        let cpu0 = processCPUSeconds()
        let start = uthreads_monotonic_ns()
        let (sum, moved) = try UThreadRuntime.run(workers: workers, policy: policy) { () -> (UInt64, Int) in
            let pipes = try (0..<threads).map { _ in try IO.pipe() }
            let waiting = BenchCounter()
            let ts = pipes.enumerated().map { i, p in
                UThread.startingHere { () -> (UInt64, Bool) in
                    var byte: UInt8 = 0
                    waiting.add()
                    _ = try withUnsafeMutableBytes(of: &byte) { try IO.read(p.read, into: $0) }  // waits
                    let first = UThread.worker
                    var elsewhere = false
                    var x = UInt64(i) &+ UInt64(byte)
                    for _ in 0..<slices {
                        x = crunch(x, iterations)
                        UThread.yield()
                        if UThread.worker != first { elsewhere = true }
                    }
                    return (x, elsewhere)
                }
            }
            // Every thread has started and is about to park on its empty pipe (it parks with no
            // safe point after counting itself); then each is woken by a byte.
            while waiting.value < threads { UThread.yield() }
            UThread.yield()
            var one: UInt8 = 1
            for p in pipes { _ = try withUnsafeBytes(of: &one) { try IO.write(p.write, all: $0) } }
            var sum: UInt64 = 0
            var moved = 0
            for t in ts {
                let (x, elsewhere) = try t.join()
                sum &+= x
                if elsewhere { moved += 1 }
            }
            for p in pipes {
                try IO.close(p.read)
                try IO.close(p.write)
            }
            if verbose { print("  workers \(workers): \(UThread.runtime!.statistics)") }
            return (sum, moved)
        }
        let wall = Double(uthreads_monotonic_ns() - start) / 1e9
        return PipeWaitRun(
            ms: wall * 1e3, checksum: sum, movedShare: Double(moved) / Double(threads),
            cpu: (processCPUSeconds() - cpu0) / wall)
    }
}

/// A counter shared by the threads of one benchmark run.
final class BenchCounter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.wrappingAdd(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

extension ParallelBenchRuns {
    /// Runs `measure` (ms, checksum, one more figure, CPUs busy) `o.repetitions` times for
    /// every worker count, the counts interleaved, and checks that every run computed the same
    /// checksum; the samples by worker count.
    /// One "parallel" row of wall-time `samples` (ms) per worker count, named and annotated by
    /// `row`; rows other than 1 worker's note their speed-up over it first.
    static func addByWorkers(
        _ r: BenchReport, _ samples: [Int: [Double]], _ row: (Int) -> (name: String, note: String)
    ) {
        let one = samples[1].map(median)
        for w in workerCounts {
            let (name, note) = row(w)
            r.add(
                group: "parallel", name: name, unit: "ms", samples: samples[w]!,
                note: (w == 1 || one == nil ? "" : "speedup \((one! / median(samples[w]!)).fixed(2))x vs 1 worker; ")
                    + note)
        }
    }

    static func sampleByWorkers(
        _ o: BenchOptions, _ group: String, _ measure: (Int) throws -> (Double, UInt64, Double, Double)
    ) throws -> (ms: [Int: [Double]], extra: [Int: [Double]], cpu: [Int: [Double]]) {
        var samples: [Int: [Double]] = [:]
        var extra: [Int: [Double]] = [:]
        var cpu: [Int: [Double]] = [:]
        var checksum: UInt64?
        for _ in 0..<o.repetitions {
            for w in workerCounts {
                let (ms, sum, x, busy) = try measure(w)
                checksum = checksum ?? sum
                guard sum == checksum else { throw ValidationError("\(group) checksum differs with \(w) workers") }
                samples[w, default: []].append(ms)
                extra[w, default: []].append(x)
                cpu[w, default: []].append(busy)
            }
        }
        return (samples, extra, cpu)
    }

    /// Threads started by one thread that wait on a pipe, then compute with a yield every
    /// ~17 µs: 1 worker vs more, and the share of threads seen on more than one worker after
    /// their wait (they move only if a descriptor wait does not pin them).
    static func pipeWait(_ r: BenchReport, _ o: BenchOptions) throws {
        let threads = o.scaled(16, quick: 4)
        let slices = o.scaled(500, quick: 50)
        let iterations = 10_000
        print(
            "\n-- pipe-wait-then-compute: \(threads) threads started by worker 0, each waits on its pipe, then \(slices) CPU slices with yields (ms wall time)"
        )
        let (samples, moved, cpu) = try sampleByWorkers(o, "pipe-wait") { w in
            let s = try ParallelBenchmarks.pipeWaitThenComputeMs(
                workers: w, threads: threads, slices: slices, iterations: iterations)
            return (s.ms, s.checksum, s.movedShare, s.cpu)
        }
        addByWorkers(r, samples) { w in
            (
                "M:N pipe-wait-then-compute, started on worker 0, \(w) worker\(w == 1 ? "" : "s")",
                "threads seen on several workers \(Int((median(moved[w]!) * 100).rounded())) %; "
                    + "CPUs busy \(median(cpu[w]!).fixed(2))"
            )
        }
    }
}
