// `uthreads bench sync`: see Bench/SyncBenchmarks.swift for what each row measures.
import ArgumentParser
import CKernelPeers
import Foundation
import UserThreads

struct BenchSyncCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract:
            "Channels and mutexes vs. pthread mutex+condvar; M:N ping-pongs; the unpinned pair against Go, interleaved."
    )
    @OptionGroup var options: BenchOptions
    @Option(help: "Run only these groups (comma-separated: core, mn, family, go).")
    var only: String?
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { [SyncBenchRuns.sync] }

    private var selected: [String] {
        only.map { $0.split(separator: ",").map { String($0.filter { $0 != " " }) } } ?? SyncBenchRuns.groupNames
    }

    func validate() throws {
        for name in selected where !SyncBenchRuns.groupNames.contains(name) {
            throw ValidationError(
                "--only: unknown group '\(name)' (groups: \(SyncBenchRuns.groupNames.joined(separator: ", ")))")
        }
    }

    func run() throws {
        try runBench(options) { report in try SyncBenchRuns.run(report, options, only: selected) }
    }
}

enum SyncBenchRuns {
    /// The groups `--only` names: the pinned core rows, the M:N ping-pongs, one family at
    /// workers 1 and 2, the unpinned pair against Go (GoPeer.swift).
    static let groupNames = ["core", "mn", "family", "go"]

    static func sync(_ r: BenchReport, _ o: BenchOptions) throws { try run(r, o, only: groupNames) }

    static func run(_ r: BenchReport, _ o: BenchOptions, only: [String]) throws {
        if only.contains("core") { try core(r, o) }
        try BenchPlacement.with(.free) {  // two workers need two CPUs
            if only.contains("mn") { try mn(r, o) }
            if only.contains("family") { try family(r, o) }
            if only.contains("go") { try go(r, o) }
        }
    }

    static func core(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- sync: channels and mutexes (ns per handoff or lock+unlock)")
        let trips = o.scaled(200_000, quick: 2_000)
        let channel = try CoreBenchRuns.median(o.repetitions) { try SyncBenchmarks.channelPingPong(roundTrips: trips) }
        r.add(group: "sync", name: "user threads: channel ping-pong handoff", unit: "ns/handoff", samples: channel)
        let k = o.scaled(200_000, quick: 2_000)
        let condvar = CoreBenchRuns.median(o.repetitions) { peers_condvar_handoff_ns(Int32(k), 0) }
        r.add(
            group: "sync", name: "kernel threads: mutex+condvar handoff, pinned", unit: "ns/handoff", samples: condvar,
            ratioOver: "user threads: channel ping-pong handoff")
        let iterations = o.scaled(20_000_000, quick: 100_000)
        let mutex = try CoreBenchRuns.median(o.repetitions) {
            try SyncBenchmarks.uncontendedMutex(iterations: iterations)
        }
        r.add(group: "sync", name: "user threads: UMutex lock+unlock, uncontended", unit: "ns/pair", samples: mutex)
        let pmutex = CoreBenchRuns.median(o.repetitions) { uncontendedPthreadMutex(iterations: iterations) }
        r.add(
            group: "sync", name: "kernel threads: pthread_mutex lock+unlock, uncontended", unit: "ns/pair",
            samples: pmutex,
            ratioOver: "user threads: UMutex lock+unlock, uncontended")
        var spreads: [(Int, Int)] = []
        let threads = o.scaled(1_000, quick: 100)
        let contended = try CoreBenchRuns.median(o.repetitions) { () -> Double in
            let (rate, lo, hi) = try SyncBenchmarks.contendedMutex(
                threads: threads, acquisitions: o.scaled(1_000_000, quick: 10_000))
            spreads.append((lo, hi))
            return rate
        }
        let lo = spreads.map(\.0).min()!
        let hi = spreads.map(\.1).max()!
        r.add(
            group: "sync", name: "user threads: UMutex contended by \(threads) threads", unit: "M acq/s",
            samples: contended,
            note: "acquisitions per thread \(lo)...\(hi) (FIFO handoff: equal shares)")
    }

    /// UMutex between two threads and USemaphore ping-pong at workers 1 (M:1) and 2 (the partner
    /// on the other worker), free to use every CPU. Alternated per repetition. At workers 1
    /// every mutex acquisition is a handoff; at 2 a yield with nothing else ready on the worker
    /// returns at once, so many acquisitions find the mutex free (the row is per acquisition).
    static func family(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- sync, one family: UMutex between 2 threads and USemaphore ping-pong at workers 1 and 2 (wall time)")
        let rounds = o.scaled(50_000, quick: 1_000)
        var samples: [String: [Double]] = [:]
        for _ in 0..<o.repetitions {
            for workers in [1, 2] {
                samples["mutex \(workers)", default: []].append(
                    try SyncBenchmarks.mutexHandoff(rounds: rounds, workers: workers))
                samples["semaphore \(workers)", default: []].append(
                    try SyncBenchmarks.semaphorePingPong(roundTrips: rounds, workers: workers))
            }
        }
        for workers in [1, 2] {
            let place = workers == 1 ? "M:1" : "threads on 2 workers"
            r.add(
                group: "sync", name: "UMutex, 2 threads each holding it across a yield, \(place)",
                unit: "ns/acquisition",
                samples: samples["mutex \(workers)"]!)
            r.add(
                group: "sync", name: "USemaphore ping-pong, \(place)", unit: "ns/handoff",
                samples: samples["semaphore \(workers)"]!)
        }
    }

    /// Unbuffered channel ping-pong across workers, on one worker, unpinned, and the pthread
    /// mutex+condvar pair, all free to use every CPU. Alternated per repetition.
    static func mn(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- sync, M:N: unbuffered Channel ping-pong (ns per handoff, wall time)")
        let trips = o.scaled(50_000, quick: 1_000)
        var across: [Double] = []
        var local: [Double] = []
        var shared: [Double] = []
        var condvar: [Double] = []
        var unpinned: [Double] = []
        var doorbells: [Double] = []
        var mailed: [Double] = []
        var together = 0
        var acrossDoorbells: [Double] = []
        for _ in 0..<o.repetitions {
            let u = try SyncBenchmarks.mnChannelPingPongUnpinned(roundTrips: trips)
            unpinned.append(u.ns)
            doorbells.append(u.doorbells)
            mailed.append(u.mailed)
            together += u.together ? 1 : 0
            let a = try SyncBenchmarks.mnChannelPingPong(roundTrips: trips, workers: 2)
            across.append(a.ns)
            acrossDoorbells.append(a.doorbells)
            shared.append(try SyncBenchmarks.mnChannelPingPong(roundTrips: trips, workers: 2, echoWorker: 0).ns)
            local.append(try SyncBenchmarks.mnChannelPingPong(roundTrips: trips, workers: 1).ns)
            condvar.append(peers_condvar_handoff_ns(Int32(2 * trips), -1))
        }
        func share(_ v: [Double]) -> String { "\((v.sorted()[v.count / 2] * 100).fixed(1)) %" }
        r.add(
            group: "sync", name: "M:N: Channel ping-pong, two unpinned threads, 2 workers", unit: "ns/handoff",
            samples: unpinned,
            note:
                "median per handoff: doorbell \(share(doorbells)), mailed wake \(share(mailed)); pair on one worker at the end in \(together) of \(o.repetitions) runs"
        )
        r.add(
            group: "sync", name: "M:N: Channel ping-pong, threads on 2 workers", unit: "ns/handoff", samples: across,
            note: "pinned apart; median per handoff: doorbell \(share(acrossDoorbells))")
        r.add(
            group: "sync", name: "M:N: Channel ping-pong, both threads pinned to worker 0 of 2", unit: "ns/handoff",
            samples: shared, note: "the channel is shared (locked) though no kernel thread is crossed")
        r.add(
            group: "sync", name: "Channel ping-pong, run(workers: 1)", unit: "ns/handoff",
            samples: local, note: "one worker: the channel takes no lock")
        r.add(
            group: "sync", name: "kernel threads: mutex+condvar handoff, free (2 CPUs)", unit: "ns/handoff",
            samples: condvar,
            ratioOver: "M:N: Channel ping-pong, threads on 2 workers",
            ratioLabel: "the Channel handoff across workers")
    }
}

extension SyncBenchRuns {
    static let pairInterleavedRow = "M:N: Channel ping-pong, two unpinned threads, 2 workers, interleaved with Go"
    static let goRow = "Go: goroutine ping-pong, GOMAXPROCS=2"
    static let pairOverGoRow = "unpinned pair ÷ Go (interleaved, median of per-pair ratios)"
    static let pairOverGoMediansRow = "unpinned pair ÷ Go (interleaved, ratio of medians)"

    /// The unpinned pair against Go's goroutine ping-pong at GOMAXPROCS=2, in interleaved pairs
    /// of short repetitions (essay: GoPeer.swift). Skipped, with the reason, without a Go peer.
    static func go(_ r: BenchReport, _ o: BenchOptions) throws {
        let handoffs = o.scaled(1_000_000, quick: 10_000)
        let pairs = o.goPairs ?? (o.quick ? 3 : 11)
        print(
            "\n-- sync, M:N against Go: unpinned Channel pair vs goroutine ping-pong, \(pairs) interleaved pairs (the rows' medians are of \(pairs), not of --repeat; wall time)"
        )
        let names = [pairInterleavedRow, goRow, pairOverGoRow, pairOverGoMediansRow]
        let location = try GoPeer.locate(
            option: o.go, environment: ProcessInfo.processInfo.environment,
            directory: FileManager.default.currentDirectoryPath)
        guard case .found(let path) = location else {
            if case .missing(let reason) = location { r.skip(group: "sync", rows: names, reason: reason) }
            return
        }
        var ours: [Double] = []
        var goes: [Double] = []
        var together = 0
        for i in 0..<pairs {
            func measureOurs() throws {
                let u = try SyncBenchmarks.mnChannelPingPongUnpinned(roundTrips: handoffs / 2)
                ours.append(u.ns)
                together += u.together ? 1 : 0
            }
            // ABBA: each side goes first in every other pair.
            if i % 2 == 0 {
                try measureOurs()
                goes.append(try GoPeer.pingPong(path, handoffs: handoffs))
            } else {
                goes.append(try GoPeer.pingPong(path, handoffs: handoffs))
                try measureOurs()
            }
        }
        let ratios = zip(ours, goes).map { $0 / $1 }
        let like = "unpinned, wall time, \(handoffs) handoffs per repetition"
        r.add(
            group: "sync", name: pairInterleavedRow, unit: "ns/handoff", samples: ours,
            note: "\(like), alternated with the Go row (ABBA); pair on one worker at the end in \(together) of \(pairs)"
        )
        r.add(
            group: "sync", name: goRow, unit: "ns/handoff", samples: goes,
            note:
                "\(like): child `gobench pingpong \(handoffs) 1`, Go's own time of its loop (start-up, GOMAXPROCS=1 pass, warm-up not counted)"
        )
        r.add(
            group: "sync", name: pairOverGoRow, unit: "x", samples: ratios,
            note: "sample i = pair sample i ÷ Go sample i, \(pairs) pairs measured back to back; target ≤ 0.5")
        let median = { (v: [Double]) -> Double in v.sorted()[v.count / 2] }
        r.add(
            BenchRow(
                group: "sync", name: pairOverGoMediansRow, value: median(ours) / median(goes), unit: "x",
                note: "\(BenchReport.fmt(median(ours))) ÷ \(BenchReport.fmt(median(goes))) ns/handoff",
                placement: BenchPlacement.current.rawValue))
    }
}
