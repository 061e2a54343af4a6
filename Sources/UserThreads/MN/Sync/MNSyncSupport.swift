// Layer 11: what the M:N sync primitives share — the parking protocol, deadlines, labels.
//
// Design essay (the M:N sync layer as a whole)
// ============================================
//
// Each object's state (and its lists of waiters) sits behind a `KernelLock` (a pthread mutex
// that ThreadSanitizer sees), held only for a few loads and stores, never across a park. A
// thread that must wait publishes an `MNWaiter` (worker, row, token) under the lock, releases
// it, and parks on its own worker (`MNWorker.park`, through `mnWait` below). A waker changes
// the state and removes the waiter under the lock (handing it the resource first: FIFO
// handoff, as the M:1 primitives do), then wakes it after releasing: on the same worker
// directly, else through that worker's mailbox. A worker drains its mailbox only while none of
// its threads runs, so the waiter's context is saved before a remote wake is applied: no lost
// wake-up, no half-switched thread. A wait carries a token (`uthreads_tcb.mn_token`); a wake
// whose token no longer matches (the waiter gave up, or waits for something else now) is
// dropped, so a late wake can never hit the wrong wait.
//
// A wait that ends otherwise (timeout, cancellation, deadlock teardown) withdraws its waiter
// under the lock. If it is no longer there, a waker already dequeued it and handed it what it
// waited for (a lock, a permit, a signal, a barrier release): that wake is in flight and will
// be dropped by its token, so the waiter takes the outcome itself — *the wake wins*, the call
// returns as if woken. Nothing is lost and nothing has to be undone or passed on. (The M:1
// primitives never face this: their scheduler unlinks a timed-out waiter before anyone can
// dequeue it.)
//
// Channels and select are one type for both runtimes (Sync/Channel.swift, Sync/Select.swift):
// a select waits on several channels at once, each with its own lock, so each wait's
// selection is claimed exactly once by compare-and-swap (Sync/ChannelWaiter.swift).
//
// Every M:N primitive is `Sendable`, and each wait has a timeout, is cancellable, and shows a
// wait reason (the M:1 kinds, with the object's own description: "mutex 'db' held by #12").
// Bad arguments (negative permits, zero parties, a negative capacity) throw from the
// initialisers; misuse (unlock by a non-owner, a recursive once) throws
// `UThreadError.invalidArgument`.
//
// The M:1 primitives (UMutex, …) are not Sendable; these are. Use these between M:N
// threads; the M:1 ones between threads of one worker (`UThread { }` inside an M:N thread).
//
// Rejected designs:
//   * Making UMutex itself cross-worker: an atomic CAS in its inlined fast path and a lock
//     around every wait queue, paid by every M:1 program.
//   * A spin lock per object: a preempted holder on a 2-vCPU VM spins the other CPU for a
//     whole time slice.
//   * Passing a wake on when its waiter gave up (the first M:N mutex did): it needs per
//     primitive undo logic, and it turns a grant into a spurious wake-up of someone else.
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
