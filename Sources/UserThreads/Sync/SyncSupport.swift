// Layer 8: what every synchronization primitive shares — object ids, deadlines, parking.
//
// Design essay (the sync layer as a whole)
// ========================================
//
// Every primitive here is a small state machine plus one or more wait queues, built on the
// scheduler's `park`/`wake`. Under the M:1 runtime all threads of a runtime run on one kernel
// thread, one at a time, and a switch happens only inside `park`/`yield`: so a primitive's
// state changes need no lock and no atomic — a method that does not park is atomic. Each state
// change is kept in a small method (take, release, hand off) so that the M:N issue can later
// put a per-object spin lock around exactly those methods.
//
// Waiting never enters the kernel: a blocked thread is a row in the thread table with a wait
// kind, an object id and a `WaitTarget` that describes the wait ("mutex 'db' held by #12"),
// which is how the thread table and the deadlock report explain every wait.
//
// Timeouts and cancellation are the scheduler's: a waiter that times out or is cancelled is
// unlinked from its queue before it runs again, so a signaller that dequeues always finds a
// parked thread (no lost wake-up, no stale entry). Primitives only have to undo their own
// bookkeeping (rarely any: ownership is handed over only to a thread that was dequeued).
//
// Handoff instead of barging. Where a resource is released to a waiter (mutex, semaphore,
// rwlock), the releaser gives it *directly* to the first waiter before waking it. The woken
// thread does not compete again when it runs, so FIFO order is the acquisition order and no
// waiter starves. The price (a convoy when the woken thread is slow to run) is small here: a
// wake is an O(1) queue move, and the releaser keeps running.
import CUThreads
import Synchronization

/// Process-wide ids for sync objects, shown as the wait reason's object.
enum SyncObjectID {
    private static let next = Atomic<UInt64>(1)
    static func allocate() -> UInt64 { next.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// Turns the public timeout/deadline arguments into a deadline on the scheduler's clock
/// (`Deadline.earliest`: the earlier of the two wins; nil when neither limits).
@usableFromInline
func syncDeadline(timeout: Duration?, deadline: ContinuousClock.Instant?, now: UInt64) -> UInt64? {
    Deadline.earliest(timeout: timeout, deadline: deadline, now: now)
}

/// The same, on the calling thread's scheduler clock (CLOCK_MONOTONIC outside a runtime and on
/// M:N workers; the virtual clock in a simulated M:1 runtime).
@usableFromInline
func syncDeadline(timeout: Duration?, deadline: ContinuousClock.Instant?) -> UInt64? {
    if timeout == nil && deadline == nil { return nil }
    let now = Scheduler.active?.now() ?? uthreads_monotonic_ns()
    return Deadline.earliest(timeout: timeout, deadline: deadline, now: now)
}

/// Renders a sync object's label: `mutex 'accounts'` or `mutex 17`.
func syncLabel(_ kind: String, name: String, id: UInt64) -> String {
    name.isEmpty ? "\(kind) \(id)" : "\(kind) '\(name)'"
}

/// Renders a list of threads for a wait description: `#12 "worker"`.
func describeThread(_ t: ControlBlock) -> String {
    let name = t.cName
    return name.isEmpty ? "#\(t.pointee.id)" : "#\(t.pointee.id) \"\(name)\""
}

extension Scheduler {
    /// Enqueues the running thread on `queue` and parks it. Throws on timeout, cancellation,
    /// close and deadlock teardown (in which cases the thread is already off the queue).
    @inline(__always)
    func wait(
        on queue: WaitQueue, _ kind: WaitReason.Kind, object: UInt64, target: WaitTarget,
        deadline: UInt64?
    ) throws {
        queue.enqueue(current)
        try park(kind, object: object, target: target, deadline: deadline).check()
    }

    /// Wakes every thread on `queue` with `result`. Returns how many were woken. O(n).
    @discardableResult
    func wakeAll(_ queue: WaitQueue, _ result: WakeResult) -> Int {
        var n = 0
        while let t = queue.dequeue() {
            wake(t, result)
            n += 1
        }
        return n
    }
}
