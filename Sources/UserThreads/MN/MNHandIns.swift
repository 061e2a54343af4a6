// Layer 10: hand-ins from outside — work that a kernel thread which is not a worker of the
// runtime hands in (a spawn through the handle, a cancel, a wake), bracketed so that the
// deadlock check can tell whether one was under way while it looked.
//
// Design. A hand-in makes work appear in several steps: a spawn from outside counts the thread
// live (`externalSpawns`), queues it (the injection queue, or a worker's mailbox) and rings; a
// cancel or wake from outside posts to a mailbox and rings. No worker leaves the stuck state
// around those steps, so the census that makes the deadlock check sound (MNStuckCensus.swift)
// does not see them, and the check reads its counters one after another. It once read the
// injection queue before a spawn from outside and the live count after it, saw a live thread
// queued nowhere, and declared a deadlock over two empty thread tables (ThreadSanitizer's slow
// scheduling, the test of a spawn racing the end of the runtime: one round in several hundred;
// `MNHandInsTests` replays that order).
//
// So every hand-in is bracketed: `begun` is bumped before its first step and `done` after its
// last. The check reads `done`, then `begun`, and trusts what it then reads only when the two
// were equal and `begun` is unchanged after it looked (`noneDuring`). The proof, every access
// sequentially consistent: `done` ≤ `begun` at every instant; if the first read of `done` equals
// the later read of `begun`, no hand-in was under way at the first read and none began before
// the second, so every hand-in begun so far was whole before the check looked, and its work (a
// queued thread, a mailbox message) is what the check finds, unless a worker took it, which
// that worker's leaving the census shows. A hand-in that begins after the first read changes
// `begun` before the last one. A hand-in that begins after the check passed comes after a real
// deadlock: no thread of the runtime could run at that moment, and the report says so.
//
// Rejected: holding the injection queue's lock around the check. It orders spawns from outside
// only; cancels and wakes from outside go to mailboxes. Rejected: one counter bumped at the
// start and at the end (odd while under way): two hand-ins at once make it even again.
import Synchronization

/// Counts hand-ins from kernel threads that are not workers, begun and done, so that the
/// deadlock check sees none under way while it looked (see the design above).
struct MNHandIns: ~Copyable {
    private let begun = Atomic<Int>(0)
    private let done = Atomic<Int>(0)

    /// The points after the check's reads, for tests that interleave a hand-in there.
    enum Step { case readDone, readBegun, looked }

    init() {}

    /// Runs `body`, a hand-in from outside, bracketed. O(1) beyond `body`.
    func handIn<R>(_ body: () throws -> R) rethrows -> R {
        begin()
        defer { end() }
        return try body()
    }

    /// The two halves of `handIn`, for tests that step through a hand-in.
    func begin() { begun.wrappingAdd(1, ordering: .sequentiallyConsistent) }
    func end() { done.wrappingAdd(1, ordering: .sequentiallyConsistent) }

    /// Whether `look` answered true with no hand-in under way when it began and none begun
    /// until it ended. A false answer may be wrong only in the safe direction (the deadlock
    /// check's caller just sleeps). `step` runs after each read, for tests. O(1) plus `look`.
    func noneDuring(_ look: () -> Bool, step: (Step) -> Void = { _ in }) -> Bool {
        let before = done.load(ordering: .sequentiallyConsistent)
        step(.readDone)
        guard begun.load(ordering: .sequentiallyConsistent) == before else { return false }
        step(.readBegun)
        guard look() else { return false }
        step(.looked)
        return begun.load(ordering: .sequentiallyConsistent) == before
    }
}
