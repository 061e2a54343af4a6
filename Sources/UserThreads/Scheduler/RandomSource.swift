// Layer 6: the runtime's random source (which ready case a `channelSelect` takes).
//
// Design. Each scheduler draws from its own SplitMix64 state (`Scheduler.randomState`, owned by
// the scheduler's kernel thread: a draw takes no lock and no atomic read-modify-write). The
// state starts from the clock; `UThreadRuntime.seedRandom(seed)` makes it reproducible. The
// seed belongs to the runtime, not to the worker that called it: worker k's state becomes
// `RandomSeed.state(seed, worker: k)` (SplitMix64's finaliser over seed ^ k, so the workers'
// sequences differ), and under `workers: 1` the one scheduler is worker 0. So worker 0 draws
// the same sequence from a seed whatever the worker count.
//
// How the seed reaches the other workers. The runtime keeps one `SharedRandomSeed` that every
// worker's scheduler holds (unretained: the runtime owns it, and a draw reads it without a
// retain, which would be an atomic on a reference count the workers share). `seedRandom`
// stores the seed there under a lock and bumps a generation number; each scheduler compares the
// generation with the last one it took at its next draw (one plain atomic load per draw, a load
// and a branch on x86-64; under M:1 a nil test) and, when it changed, takes the seed and resets
// its own state. Every draw that happens after `seedRandom` returns (a thread spawned after it,
// a select on another worker signalled after it) therefore draws from the seeded state.
//
// What reproducible means with several workers: the same seed gives each worker the same
// sequence of draws. Which thread draws next on a worker is still the scheduler's choice: a
// thread that moves to another worker draws from that worker's sequence, and threads on one
// worker interleave as the schedule runs them. Threads pinned to their workers
// (`UThread.spawn(onWorker:)`), each alone on its worker or in a fixed order there, choose the
// same cases in the same order in every run with the same seed.
//
// Rejected: posting the seed to every worker's mailbox. The post is asynchronous: a select on
// another worker right after `seedRandom` could run before that worker read its mail, and draw
// from the clock-seeded state, so a run would not be reproducible. Waiting for every worker to
// acknowledge would make `seedRandom` a rendezvous with busy workers.
// Rejected: one shared state for every worker (an atomic SplitMix64 counter). Every select
// would contend on one cache line, and the order of draws across workers (so each worker's
// choices) would depend on timing.
// Rejected: seeding only the calling worker (the first version): selects on any other worker,
// or by a thread that moved, kept their clock-seeded choices.
import CUThreads
import Synchronization

/// The seed of an M:N runtime, shared by every worker's scheduler (see the design above).
final class SharedRandomSeed: Sendable {
    /// Bumped (under `seed`'s lock) by each `set`; 0: never seeded. Read without the lock by
    /// each draw: a changed value sends the scheduler to the lock for the new seed.
    let generation = Atomic<UInt64>(0)
    private let seed = KernelLock<(generation: UInt64, seed: UInt64)>((0, 0))

    init() {}

    /// Seeds every worker: each takes the seed at its next draw. Any kernel thread. O(1).
    func set(_ value: UInt64) {
        seed.withLock {
            $0 = ($0.generation + 1, value)
            generation.store($0.generation, ordering: .releasing)
        }
    }

    /// The current seed and its generation. O(1).
    var current: (generation: UInt64, seed: UInt64) { seed.withLock { $0 } }
}

enum RandomSeed {
    /// Worker `worker`'s starting state for `seed` (SplitMix64's finaliser over seed ^ worker:
    /// neighbouring seeds and neighbouring workers give unrelated sequences).
    static func state(_ seed: UInt64, worker: Int) -> UInt64 {
        var z = seed ^ UInt64(truncatingIfNeeded: worker)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Scheduler {
    /// Seeds the runtime's random source: every worker's under M:N (each at its next draw),
    /// this scheduler's under M:1. O(1).
    func seedRandom(_ seed: UInt64) {
        if let shared = sharedSeed {
            shared._withUnsafeGuaranteedRef { $0.set(seed) }
        } else {
            randomState = RandomSeed.state(seed, worker: 0)
        }
    }

    /// A number from the runtime's random source (SplitMix64). Used for select fairness.
    func nextRandom() -> UInt64 {
        if let shared = sharedSeed,
            shared._withUnsafeGuaranteedRef({ $0.generation.load(ordering: .acquiring) }) != seedGeneration
        {
            let (generation, seed) = shared._withUnsafeGuaranteedRef { $0.current }
            seedGeneration = generation
            randomState = RandomSeed.state(seed, worker: Int(max(workerIndex, 0)))
        }
        randomState &+= 0x9E37_79B9_7F4A_7C15
        var z = randomState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
