// Layer 8: a mutex that parks — never a kernel lock.
//
// Design essay
// ============
//
// State: the owner (a control block pointer, nil when free), a FIFO wait queue (the mutex *is*
// the queue: one allocation), and a `contended` hint.
//
// Fast paths. lock() on a free mutex stores the caller as owner; unlock() by the owner with no
// waiter clears it. Both are `@inlinable` (specialised into the caller) and the stored fields
// opt out of dynamic exclusivity checks (`@exclusivity(unchecked)`: only the owning runtime's
// kernel thread touches them, and never re-entrantly), so an uncontended lock+unlock is two
// out-of-line reads of the current thread and four plain loads/stores — a few nanoseconds.
//
// FIFO handoff. unlock() with waiters does not free the mutex: it makes the first waiter the
// owner and wakes it. The woken thread returns from lock() already owning the mutex, so a
// thread that arrives later cannot barge in front of it, and every waiter gets the mutex in
// arrival order: no starvation, and the acquisition spread among contending threads is flat.
// Invariant: waiters exist ⇒ owner != nil (a free mutex has an empty queue), which is why the
// lock fast path need not look at the queue.
//
// Deadlock. `holders` names the owner, so DeadlockReport can follow "A waits for m2, held by
// B; B waits for m1, held by A" and print the cycle with thread ids, names and the locks.
//
// Errors, not crashes: unlock by a thread that does not own the mutex throws
// `UThreadError.invalidArgument` naming both threads. lock() is cancellable and throws
// `CancellationError` (and, during deadlock teardown, `UThreadError.deadlock`), like join().
//
// Rejected designs:
//   * Barging (unlock frees, woken waiter retries): faster under some loads, but a running
//     thread that relocks in a loop starves every waiter — under M:1 it would *always* win.
//   * Spinning before parking: pointless under M:1 (the owner cannot run while we spin).
//   * Recursive locking: hides design errors; relocking by the owner throws instead of
//     deadlocking silently.
import CUThreads

/// A mutual-exclusion lock for user threads. Waiting parks the user thread (the kernel thread
/// runs others); ownership passes to waiters in FIFO order.
///
/// ```swift
/// let accounts = UMutex(name: "accounts")
/// try accounts.withLock { balance += 1 }
/// ```
public final class UMutex: WaitQueue, WaitTarget, CustomStringConvertible {
    /// The owning thread's control block; nil when free.
    @exclusivity(unchecked) @usableFromInline var owner: UnsafeMutablePointer<uthreads_tcb>?
    /// Set when a thread queued; cleared by the unlock that finds the queue empty.
    @exclusivity(unchecked) @usableFromInline var contended = false
    /// Shown in the thread table and in deadlock reports.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64

    /// An unlocked mutex.
    ///
    /// - Parameter name: shown in the thread table and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
        super.init()
    }

    /// Acquires the mutex, parking while another thread holds it. O(1).
    /// - Throws: `CancellationError` if the caller is cancelled while waiting;
    ///   `UThreadError.invalidArgument` if the caller already owns it (not recursive).
    @inlinable
    public func lock() throws {
        let me = uthreads_get_current()
        if _fastPath(owner == nil && me != nil) {
            owner = me
            return
        }
        try lockSlow(deadline: nil)
    }

    /// Acquires the mutex, giving up after `timeout` (or at `deadline`, whichever is first).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock).
    public func lock(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let me = uthreads_get_current()
        if owner == nil && me != nil {
            owner = me
            return
        }
        let s = Scheduler.require("UMutex.lock(timeout:)")
        try lockSlow(deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
    }

    /// Acquires the mutex if it is free; never waits. O(1).
    @inlinable
    public func tryLock() -> Bool {
        let me = uthreads_get_current()
        guard owner == nil, me != nil else { return false }
        owner = me
        return true
    }

    /// Releases the mutex; the first waiter, if any, becomes the owner. O(1).
    /// - Throws: `UThreadError.invalidArgument` if the caller does not own the mutex.
    @inlinable
    public func unlock() throws {
        let me = uthreads_get_current()
        if _fastPath(owner == me && me != nil && !contended) {
            owner = nil
            return
        }
        try unlockSlow(me)
    }

    /// Runs `body` holding the mutex.
    @inlinable
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { releaseOwned() }
        return try body()
    }

    /// Whether some thread holds the mutex.
    public var isLocked: Bool { owner != nil }

    /// Whether the calling thread holds the mutex.
    public var isHeldByCurrentThread: Bool { owner != nil && owner == uthreads_get_current() }

    /// The holder's id, if any.
    public var holder: ThreadID? { owner.map { ThreadID(rawValue: $0.pointee.id) } }

    // MARK: Slow paths

    @usableFromInline @inline(never)
    func lockSlow(deadline: UInt64?) throws {
        let s = Scheduler.require("UMutex.lock")
        let me = s.current
        if owner == me {
            throw UThreadError.invalidArgument(
                "UMutex.lock: \(describeThread(me)) already holds \(label) (mutexes are not recursive)")
        }
        if owner == nil {
            owner = me
            return
        }
        contended = true
        enqueue(me)
        // On success the unlocker made us the owner (handoff); otherwise we are off the queue.
        try s.park(.mutex, object: id, target: self, deadline: deadline).check()
    }

    @usableFromInline @inline(never)
    func unlockSlow(_ me: UnsafeMutablePointer<uthreads_tcb>?) throws {
        guard let me, owner == me else {
            let who = me.map(describeThread) ?? "code outside a user thread"
            let held = owner.map { "held by \(describeThread($0))" } ?? "not locked"
            throw UThreadError.invalidArgument("UMutex.unlock: \(who) does not own \(label) (\(held))")
        }
        releaseOwned()
    }

    /// Releases a mutex the caller is known to own: hands it to the first waiter. O(1).
    @usableFromInline
    func releaseOwned() {
        if !contended {
            owner = nil
            return
        }
        if let next = dequeue() {
            owner = next
            contended = !isEmpty
            Scheduler.require("UMutex.unlock").wake(next, .woken)
        } else {
            owner = nil
            contended = false
        }
    }

    var label: String { syncLabel("mutex", name: name, id: id) }

    // MARK: WaitTarget

    public func waitDescription(kind: WaitReason.Kind) -> String {
        "\(label) held by " + (owner.map(describeThread) ?? "nobody")
    }

    public var holders: [ThreadID] { owner.map { [ThreadID(rawValue: $0.pointee.id)] } ?? [] }

    public var description: String { "UMutex(\(label), \(owner.map { "held by \(describeThread($0))" } ?? "free"))" }
}
