// Layer 10: the counters of an M:N runtime, summed over its workers (the public
// `UThreadRuntime.Statistics` is made from them in the Runtime layer: Runtime/UThread+Workers.swift).

/// What the workers of an M:N runtime have counted so far; each field is the public
/// `UThreadRuntime.Statistics` field of the same name, documented there.
struct MNCounters: Sendable, Hashable {
    var startedPerWorker: [Int]
    var stolen: Int
    var live: Int
    var migrations: Int
    var mailedWakes: Int
    var doorbells: Int
    var idleSpins: Int
}

extension MNRuntime {
    /// The runtime's counters now, read from any kernel thread (each a relaxed load: the
    /// figures are not a consistent snapshot of one moment).
    var counters: MNCounters {
        MNCounters(
            startedPerWorker: workers.map { $0.startedCount.load(ordering: .relaxed) },
            stolen: stolen.load(ordering: .relaxed),
            live: liveCount(),
            migrations: migrations.load(ordering: .relaxed),
            mailedWakes: workers.reduce(0) { $0 + $1.mailedWakes.load(ordering: .relaxed) },
            doorbells: workers.reduce(0) { $0 + $1.doorbellRings.load(ordering: .relaxed) },
            idleSpins: workers.reduce(0) { $0 + $1.idleSpins.load(ordering: .relaxed) })
    }
}
