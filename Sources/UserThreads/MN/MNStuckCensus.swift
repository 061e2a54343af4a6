// Layer 10: the census the M:N deadlock check reads — how many workers sleep with nothing that
// could ever wake them but another worker, and whether any of them left that state meanwhile.
//
// Design. A worker about to sleep with no timer, no descriptor waiter and no offload in flight
// `enter`s (it is *stuck*), re-checks its sources of work, and sleeps; when it wakes, or its
// re-check found work, it `leave`s before it takes any work. The worker that enters last asks
// `allStuck`: every active worker is stuck, no work is visible anywhere (the caller's
// `nothingToDo`: queues, migrant batches, mailboxes), and no worker left while it looked. Then
// no thread can ever run again: only a worker that leaves could take work, and none did.
//
// The proof, with every access sequentially consistent. A leaver lowers `stuck`, then bumps
// `activity`, then takes work (drains its mailbox, starts a thread). The checker reads
// `activity` (`before`), then `stuck`, then the work, then `activity` again. If the `stuck`
// read counted the leaver, the leaver's lowering comes after that read, so its bump comes after
// `before`. If the work read then missed work the leaver took, the taking — and so the bump —
// came before the work read, so before the second `activity` read: the two reads differ.
//
// Rejected: bumping `activity` *before* lowering `stuck` (the first version). `before` read
// between the two steps sees the bump already made and `stuck` still counting the leaver; the
// leaver then drains the mail the checker looks for, and the checker declares a deadlock while
// a wake is in flight. ThreadSanitizer's slow scheduling hit it (`mutexAcrossWorkers`: a false
// deadlock during a mutex handoff between workers, 1 run in 20; 1 in 3 with a trace buffer);
// `MNStuckCensusTests` replays that interleaving step by step.
//
// Rejected: a lock around the census and all the work counters. Every post and every enqueue
// would take it; the census is read only by a worker about to sleep forever.
import Synchronization

/// Counts the workers that sleep with nothing but another worker to wake them, and detects a
/// global deadlock among them without a lock (see the design above).
struct MNStuckCensus: ~Copyable {
    /// Workers that entered and have not left.
    private let stuck = Atomic<Int>(0)
    /// Bumped by a worker each time it leaves, right after it lowers `stuck` and before it takes
    /// any work.
    private let activity = Atomic<Int>(0)

    /// The points after the checker's reads, for tests that interleave a leaver there.
    enum Step { case readActivity, readStuck, readWork }

    init() {}

    /// The calling worker is about to sleep with nothing but another worker to wake it. O(1).
    func enter() {
        stuck.wrappingAdd(1, ordering: .sequentiallyConsistent)
    }

    /// The calling worker woke or found work: call before it takes any work. `between` runs
    /// between the two steps, for tests. O(1).
    func leave(between: () -> Void = {}) {
        stuck.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        between()
        activity.wrappingAdd(1, ordering: .sequentiallyConsistent)
    }

    /// The debug check (`UThreadRuntime.Configuration.checkInvariants`): between 0 and the
    /// runtime's worker count (an unpaired `enter` or `leave` breaks it). O(1).
    func checkInvariants(workers: Int) {
        let n = stuck.load(ordering: .relaxed)
        precondition(n >= 0 && n <= workers, "M:N census: \(n) stuck workers out of \(workers)")
    }

    /// Workers counted stuck now (a snapshot, for reports and tests).
    var stuckCount: Int { stuck.load(ordering: .sequentiallyConsistent) }

    /// Whether at least `workers` workers are stuck, `nothingToDo()` finds no work, and no
    /// worker left while this looked: then no thread can run again. A false answer may be
    /// wrong only in the safe direction (the caller just sleeps). `step` runs after each read,
    /// for tests. O(1) plus `nothingToDo`.
    func allStuck(of workers: Int, nothingToDo: () -> Bool, step: (Step) -> Void = { _ in }) -> Bool {
        let before = activity.load(ordering: .sequentiallyConsistent)
        step(.readActivity)
        guard stuck.load(ordering: .sequentiallyConsistent) >= workers else { return false }
        step(.readStuck)
        guard nothingToDo() else { return false }
        step(.readWork)
        return activity.load(ordering: .sequentiallyConsistent) == before
    }
}
