// Layer 11: what the M:N channel and select still share — the parking protocol in the M:N
// runtime's waiter form, deadlines, labels. The sync layer's essay (one family for every
// runtime, bare or locked state, handoff) is in Sync/SyncSupport.swift; the parking protocol's
// (tokens, withdraw, the wake wins) in Sync/Waiter.swift.
//
// Channels and select need more than the other primitives, because a select waits on several
// channels at once and each channel has its own lock: a waiter node sits in several lists, and
// two channels could each try to complete it. Each wait has one `MNSelection` whose atomic
// state is claimed exactly once (compare-and-swap) by whoever completes it — a peer on one of
// the channels, a close, or the waiter itself giving up. See MNChannelWaiter.swift and
// ChannelSelect.swift. A select locks all its channels at once, in id order (the only place that
// holds two object locks; every other path holds one), so polling and enqueueing are one
// atomic step, as in Go.
//
// Rejected: global lock order by address for select: ids are stable, unique and printable.
import CUThreads

/// Parks the calling M:N thread on an object's waiter list (see the essay).
///
/// `register` runs under no lock of ours: it takes the object's lock, and either takes what it
/// waits for and returns false (no park), or publishes the waiter and returns true. When the
/// wait ends otherwise than by a wake, `withdraw` removes the waiter under the object's lock and
/// returns nil, or returns the result of the wake in flight when the waiter was already
/// dequeued (the wake wins).
///
/// The worker is looked up here, for every park: a thread may resume on another worker.
///
/// - Returns: nil when it did not park; else `.woken`, `.closed`, or the timeout, cancellation
///   or deadlock result that ended it.
@usableFromInline
func mnWait(
    _ api: StaticString, _ kind: WaitReason.Kind, object: UInt64, target: WaitTarget?,
    deadline: UInt64?, cancellable: Bool = true,
    register: (MNWaiter) throws -> Bool, withdraw: (MNWaiter) -> WakeResult?
) rethrows -> WakeResult? {
    let (w, s) = MNWorker.require(api)
    guard
        let (waiter, result) = try w.park(
            s, kind, object: object, target: target, deadline: deadline,
            cancellable: cancellable, register)
    else { return nil }
    if result == .woken || result == .closed { return result }
    return withdraw(waiter) ?? result
}

/// Wakes cross-worker waiters (after the object's lock is released), from any kernel thread:
/// directly on the caller's own worker, else through the waiter's worker's mailbox.
@inline(__always)
func mnWake(_ waiters: some Sequence<MNWaiter>, _ result: WakeResult = .woken) {
    for waiter in waiters { waiter.runtime.wake(waiter, result) }
}

/// Wakes one cross-worker waiter (non-generic: for inlinable callers).
@usableFromInline
func mnWakeOne(_ waiter: MNWaiter) {
    waiter.runtime.wake(waiter, .woken)
}

/// A CLOCK_MONOTONIC deadline `timeout` from now (M:N runtimes use the real clock only);
/// nil for no limit (`Deadline.after`: negative is already due, huge is none).
@usableFromInline
func mnDeadline(_ timeout: Duration?) -> UInt64? {
    timeout.flatMap { Deadline.after($0, now: uthreads_monotonic_ns()) }
}

/// The id of the calling M:N thread (process-unique), for owners and holders.
@inline(__always)
func mnCurrentThread(_ api: StaticString) -> UInt64 {
    MNWorker.require(api).scheduler.current.pointee.id
}

/// `#12` for a thread id, as the M:1 descriptions show holders.
func mnThreadLabel(_ id: UInt64) -> String { "#\(id)" }
