// `uthreads bench …`: figures side by side with the peers, in one run.
import ArgumentParser
import CKernelPeers
import Foundation
import UserThreads

/// Options every benchmark takes.
struct BenchOptions: ParsableArguments {
    @Flag(help: "Tiny counts: a smoke test (figures meaningless).")
    var quick = false
    @Flag(
        help:
            "Write the run (machine, commit, date, every row with every sample) as JSON to stdout; everything else goes to stderr."
    )
    var json = false
    @Option(
        help:
            "Where the threads of the timed rows run: pinned (the benchmark and every thread it starts on CPU 0) or free (all CPUs). Rows that need several CPUs (M:N) are always free and say so."
    )
    var placement: BenchPlacementOption = .pinned
    @Flag(
        help:
            "Count instructions with valgrind's callgrind instead of timing (per switch, spawn+run+join, channel handoff, mutex lock+unlock, checkpoint())."
    )
    var instructions = false
    @Option(help: "With --instructions: compare with the ceilings in this JSON file; more than 10% above one fails.")
    var ceilings: String?
    @Option(name: .customLong("repeat"), help: "Repetitions per figure (the median is shown).")
    var repetitions: Int = 5
    @Flag(help: "Also print the comparison table as Markdown.")
    var markdown = false
    @Option(help: "Write the comparison chart (log-scale bars) as SVG to this path.")
    var svg: String?
    @Option(
        help:
            "The Go peer (peers/src/go's gobench) for the sync group's pair against Go; default: $UTHREADS_GOBENCH, $PEERS_BUILD/gobench, peers/build/gobench (else those rows are skipped)."
    )
    var go: String?
    @Option(
        name: .customLong("go-pairs"),
        help: "Interleaved pairs (ours, Go) of the pair against Go (default 11; 3 with --quick).")
    var goPairs: Int?

    func validate() throws {
        guard (1...100).contains(repetitions) else { throw ValidationError("--repeat must be 1...100") }
        if ceilings != nil && !instructions { throw ValidationError("--ceilings needs --instructions") }
        if let goPairs, !(1...1000).contains(goPairs) { throw ValidationError("--go-pairs must be 1...1000") }
    }

    func scaled(_ full: Int, quick small: Int) -> Int { quick ? small : full }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks side by side with kernel threads (run all with no subcommand).",
        subcommands: [
            BenchAllCommand.self, BenchSwitchCommand.self, BenchSpawnCommand.self, BenchMemoryCommand.self,
            BenchSyncCommand.self, BenchIOCommand.self, BenchCompareCommand.self, BenchScaleCommand.self,
            BenchParallelCommand.self, BenchFiguresCommand.self, BenchLoopCommand.self,
            BenchJacketCommand.self,
        ],
        defaultSubcommand: BenchAllCommand.self)
}

/// A benchmark subcommand: runs its groups of rows with the shared options.
protocol BenchSubcommand: ParsableCommand {
    var options: BenchOptions { get }
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { get }
}

/// `--placement`: the two placements a run can ask for.
enum BenchPlacementOption: String, ExpressibleByArgument {
    case pinned, free
    var placement: BenchPlacement { self == .pinned ? .pinned : .free }
}

extension BenchSubcommand {
    func run() throws {
        try runBench(options) { report in
            for group in Self.groups { try group(report, options) }
        }
    }
}

/// Runs a benchmark command: stdout reserved for the JSON with `--json`, the header, the
/// groups under the requested placement, then the run file on stdout. `--instructions` counts
/// instructions instead of timing.
func runBench(
    _ options: BenchOptions, placement: BenchPlacement? = nil,
    _ groups: (BenchReport) throws -> Void
) throws {
    let placement = placement ?? options.placement.placement
    if options.json { BenchOutput.reserveStdoutForJSON() }
    if options.instructions {
        try InstructionCounts.run(options)
        return
    }
    // The checkout's commit and the date as the run starts (edits during a long run are not in it).
    var run = BenchRun.current(
        command: "uthreads " + CommandLine.arguments.dropFirst().joined(separator: " "),
        quick: options.quick, repetitions: options.repetitions, rows: [])
    let report = BenchReport()
    printHeader(options, placement: placement)
    try BenchPlacement.with(placement) { try groups(report) }
    if options.json {
        run.rows = report.rows
        run.skipped = report.skipped.isEmpty ? nil : report.skipped
        BenchOutput.writeJSON(try run.encoded())
    }
}

struct BenchAllCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(commandName: "all", abstract: "Every benchmark.")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] {
        CompareBenchRuns.all  // core, sync, then the comparison's groups (PeerBenchmarks.swift) and its table
    }
}

struct BenchSwitchCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(commandName: "switch", abstract: "Context switch / handoff cost.")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { [CoreBenchRuns.switches] }
}

struct BenchSpawnCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(commandName: "spawn", abstract: "Spawn + run + join cost.")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { [CoreBenchRuns.spawn] }
}

struct BenchMemoryCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(commandName: "memory", abstract: "Memory per parked thread.")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { [CoreBenchRuns.memory] }
}

func printHeader(_ options: BenchOptions, placement: BenchPlacement) {
    let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    print(
        "== uthreads bench: \(cpus) CPUs available; medians of \(options.repetitions) runs, spread in brackets; compare rows of one run (ratios), not absolute times"
    )
    print(
        "== clock: wall time (CLOCK_MONOTONIC) for every timed row; placement: \(placement.rawValue) unless a row says otherwise; a ratio only between rows of the same placement"
    )
}

/// The core figures (switch, spawn, memory), shared by `bench` and the tour.
enum CoreBenchRuns {
    static func median(_ repeatCount: Int, _ body: () throws -> Double) rethrows -> [Double] {
        var samples: [Double] = []
        for _ in 0..<repeatCount { samples.append(try body()) }
        return samples
    }

    static func switches(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- switch: one thread hands the CPU to another (ns per switch or handoff)")
        let n = o.scaled(2_000_000, quick: 20_000)
        let k = o.scaled(200_000, quick: 2_000)
        let user = try median(o.repetitions) { try CoreBenchmarks.userYieldSwitchNs(switches: n) }
        r.add(
            group: "switch", name: "user threads: yield() between 2 threads (public API)", unit: "ns/switch",
            samples: user)
        let bare = try median(o.repetitions) { try CoreBenchmarks.userYieldSwitchNs(switches: n, cpuAccounting: false) }
        r.add(
            group: "switch", name: "user threads: the same, cpuAccounting off (no TSC read)", unit: "ns/switch",
            samples: bare)
        let futex = median(o.repetitions) { peers_futex_handoff_ns(Int32(k), 0) }
        r.add(
            group: "switch", name: "kernel threads: futex handoff, pinned to 1 CPU", unit: "ns/handoff", samples: futex,
            ratioOver: "user threads: yield() between 2 threads (public API)")
        let condvar = median(o.repetitions) { peers_condvar_handoff_ns(Int32(k), 0) }
        r.add(
            group: "switch", name: "kernel threads: mutex+condvar handoff, pinned", unit: "ns/handoff",
            samples: condvar,
            ratioOver: "user threads: yield() between 2 threads (public API)")
        let yieldK = median(o.repetitions) { peers_sched_yield_handoff_ns(Int32(k), 0) }
        r.add(
            group: "switch", name: "kernel threads: sched_yield handoff, pinned", unit: "ns/handoff", samples: yieldK,
            ratioOver: "user threads: yield() between 2 threads (public API)")
        let syscalls = CoreBenchmarks.systemCallsDuringSwitches(o.scaled(1_000_000, quick: 10_000))
        r.add(
            BenchRow(
                group: "switch",
                name: "system calls during \(o.scaled(1_000_000, quick: 10_000)) user switches (seccomp trap count)",
                value: Double(syscalls), unit: "syscalls", note: syscalls < 0 ? "could not check" : nil))
    }

    static func spawn(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- spawn: create, run and join an empty thread (ns per thread)")
        let n = o.scaled(500_000, quick: 5_000)
        let one = try median(o.repetitions) { try CoreBenchmarks.userSpawnJoinNs(count: n) }
        r.add(group: "spawn", name: "user threads: spawn+run+join, one at a time", unit: "ns/thread", samples: one)
        let bare = try median(o.repetitions) { try CoreBenchmarks.userSpawnJoinNs(count: n, cpuAccounting: false) }
        r.add(group: "spawn", name: "user threads: the same, cpuAccounting off", unit: "ns/thread", samples: bare)
        let batch = try median(o.repetitions) { try CoreBenchmarks.userSpawnBatchNs(count: n, batch: 1000) }
        r.add(group: "spawn", name: "user threads: spawn 1000 then join all", unit: "ns/thread", samples: batch)
        let p = median(o.repetitions) { peers_pthread_create_join_ns(Int32(o.scaled(5_000, quick: 100))) }
        r.add(
            group: "spawn", name: "kernel threads: pthread_create+join", unit: "ns/thread", samples: p,
            ratioOver: "user threads: spawn+run+join, one at a time")
    }

    static func memory(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- memory: a parked thread (bytes per thread)")
        let n = o.scaled(100_000, quick: 2_000)
        let m = try CoreBenchmarks.userParkedMemory(count: n, mode: .dense)
        r.add(
            BenchRow(
                group: "memory", name: "user threads: parked, dense stacks, RSS incl. table (\(n))",
                value: m.bytesPerThread,
                unit: "bytes/thread"))
        r.add(
            BenchRow(
                group: "memory", name: "user threads: spawn-until-parked (\(n), dense)", value: m.spawnNsPerThread,
                unit: "ns/thread"))
        r.add(
            BenchRow(
                group: "memory", name: "user threads: cancel+wake+join (\(n), dense)", value: m.wakeNsPerThread,
                unit: "ns/thread"))
        let g = try CoreBenchmarks.userParkedMemory(count: o.scaled(10_000, quick: 1_000), mode: .guarded)
        r.add(
            BenchRow(
                group: "memory", name: "user threads: parked, guarded stacks, RSS (\(g.threads))",
                value: g.bytesPerThread,
                unit: "bytes/thread"))
        let p = CoreBenchmarks.pthreadParkedMemory(count: o.scaled(10_000, quick: 500))
        r.add(
            BenchRow(
                group: "memory", name: "kernel threads: parked pthread, user RSS (\(p.threads))", value: p.userBytes,
                unit: "bytes/thread"))
        r.add(
            BenchRow(
                group: "memory", name: "kernel threads: parked pthread, + kernel stack/page tables/slab",
                value: p.userBytes + p.kernelBytes,
                unit: "bytes/thread",
                note: "= \(((p.userBytes + p.kernelBytes) / m.bytesPerThread).fixed(1))x user threads"))
    }
}
