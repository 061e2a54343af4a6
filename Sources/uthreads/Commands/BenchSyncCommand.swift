// `uthreads bench sync`: see Bench/SyncBenchmarks.swift for what each row measures.
import ArgumentParser
import CKernelPeers
import UserThreads

struct BenchSyncCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Channels and mutexes vs. pthread mutex+condvar.")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { [SyncBenchRuns.sync] }
}

enum SyncBenchRuns {
    static func sync(_ r: BenchReport, _ o: BenchOptions) throws {
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
        try BenchPlacement.with(.free) { try mn(r, o) }  // two workers need two CPUs
    }

    /// Unbuffered channel ping-pong across workers, on one worker, unpinned, and the pthread
    /// mutex+condvar pair, all free to use every CPU. Alternated per repetition.
    static func mn(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- sync, M:N: unbuffered MNChannel ping-pong (ns per handoff, wall time)")
        let trips = o.scaled(50_000, quick: 1_000)
        var across: [Double] = []
        var local: [Double] = []
        var unpinned: [Double] = []
        var condvar: [Double] = []
        for _ in 0..<o.repetitions {
            across.append(try SyncBenchmarks.mnChannelPingPong(roundTrips: trips, workers: 2))
            unpinned.append(try SyncBenchmarks.mnChannelPingPong(roundTrips: trips, workers: 2, pinned: false))
            local.append(try SyncBenchmarks.mnChannelPingPong(roundTrips: trips, workers: 1))
            condvar.append(peers_condvar_handoff_ns(Int32(2 * trips), -1))
        }
        r.add(
            group: "sync", name: "M:N: MNChannel ping-pong, threads on 2 workers", unit: "ns/handoff", samples: across)
        r.add(
            group: "sync", name: "M:N: MNChannel ping-pong, both threads on 1 worker", unit: "ns/handoff",
            samples: local)
        r.add(
            group: "sync", name: "M:N: Channel ping-pong, 2 workers, threads unpinned", unit: "ns/handoff",
            samples: unpinned)
        r.add(
            group: "sync", name: "kernel threads: mutex+condvar handoff, free (2 CPUs)", unit: "ns/handoff",
            samples: condvar,
            ratioOver: "M:N: MNChannel ping-pong, threads on 2 workers",
            ratioLabel: "the MNChannel handoff across workers")
    }
}
