// Layer 8: a mutex that parks — never a kernel lock — on one worker or across workers.
//
// Design essay
// ============
//
// State: the owner (a control block pointer, nil when free), a FIFO of waiters, and a
// `contended` hint, held bare or under the object's lock (SyncState: SyncSupport.swift's
// "Bare or locked").
//
// Fast paths. lock() on a free mutex bound to the caller's M:1 runtime stores the caller as
// owner; unlock() by the owner with no waiter clears it. Both are `@inlinable` (specialised
// into the caller) and the stored fields opt out of dynamic exclusivity checks
// (`@exclusivity(unchecked)`: a bare object is touched only by its runtime's kernel thread,
// a shared one only under its lock), so an uncontended lock+unlock at workers: 1 is two
// out-of-line reads of the current thread, the binding test (a load and a compare) and a few
// plain loads and stores. A shared mutex (M:N, or outside any runtime) takes the slow path,
// under its lock, every time.
//
// FIFO handoff. unlock() with waiters does not free the mutex: it makes the first waiter the
// owner and wakes it. The woken thread returns from lock() already owning the mutex, so a
// thread that arrives later cannot barge in front of it, and every waiter gets the mutex in
// arrival order: no starvation, and the acquisition spread among contending threads is flat.
// Invariant: waiters exist ⇒ owner != nil (a free mutex has no waiters), which is why the
// lock fast path need not look at the queue. A waiter that gives up after it was handed the
// mutex keeps it (the wake wins: Waiter.swift).
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
//   * Spinning before parking: pointless under M:1 (the owner cannot run while we spin), and
//     on a 2-vCPU VM a preempted owner turns a spin into a wasted time slice.
//   * Recursive locking: hides design errors; relocking by the owner throws instead of
//     deadlocking silently.
import CUThreads

/// A mutual-exclusion lock for user threads, on one worker or across workers. Waiting parks
/// the user thread (the kernel thread runs others); ownership passes to waiters in FIFO order.
///
/// ```swift
/// let accounts = UMutex(name: "accounts")
/// try accounts.withLock { balance += 1 }
/// ```
public final class UMutex: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// Bare or locked (SyncState.swift); guards every field below.
    @usableFromInline let sync = SyncState()
    /// The owning thread's control block; nil when free.
    @exclusivity(unchecked) @usableFromInline var owner: UnsafeMutablePointer<uthreads_tcb>?
    /// Set while threads wait (the unlock fast path's test).
    @exclusivity(unchecked) @usableFromInline var contended = false
    @exclusivity(unchecked) var waiters = WaiterQueue<Waiter>()
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
    }

    /// Acquires the mutex, parking while another thread holds it. O(1).
    /// - Throws: `CancellationError` if the caller is cancelled while waiting;
    ///   `UThreadError.invalidArgument` if the caller already owns it (not recursive) or is not
    ///   a user thread; `.foreignRuntime` for a mutex bound to another M:1 runtime.
    @inlinable
    public func lock() throws {
        if let me = uthreads_get_current(), _fastPath(sync.isBare(for: me) && owner == nil) {
            owner = me
            return
        }
        try lockSlow(deadline: nil)
    }

    /// Acquires the mutex, giving up after `timeout` (or at `deadline`, whichever is first).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock).
    public func lock(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        if let me = uthreads_get_current(), sync.isBare(for: me) && owner == nil {
            owner = me
            return
        }
        try lockSlow(deadline: syncDeadline(timeout: timeout, deadline: deadline))
    }

    /// Acquires the mutex if it is free; never waits. O(1).
    public func tryLock() -> Bool {
        guard let me = uthreads_get_current() else { return false }
        return
            (try? sync.with { () -> Bool in
                guard owner == nil else { return false }
                owner = me
                return true
            }) ?? false
    }

    /// Releases the mutex; the first waiter, if any, becomes the owner. O(1).
    /// - Throws: `UThreadError.invalidArgument` if the caller does not own the mutex.
    @inlinable
    public func unlock() throws {
        if let me = uthreads_get_current(), _fastPath(sync.isBare(for: me) && owner == me && !contended) {
            owner = nil
            return
        }
        try unlockSlow()
    }

    /// Runs `body` holding the mutex.
    @inlinable
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { releaseOwned() }
        return try body()
    }

    /// Whether some thread holds the mutex (a snapshot).
    public var isLocked: Bool { sync.locked { owner != nil } }

    /// Whether the calling thread holds the mutex.
    public var isHeldByCurrentThread: Bool {
        guard let me = uthreads_get_current() else { return false }
        return sync.locked { owner == me }
    }

    /// Threads waiting for the mutex now (a snapshot).
    public var waiting: Int { sync.locked { waiters.count } }

    /// The holder's id, if any (a snapshot).
    public var holder: ThreadID? { sync.locked { owner.map { ThreadID(rawValue: $0.pointee.id) } } }

    // MARK: Slow paths

    @usableFromInline @inline(never)
    func lockSlow(deadline: UInt64?) throws {
        let r = try lock(deadline: deadline, cancellable: true)
        if r != .woken { try r.check() }
    }

    /// Acquires the mutex (parking as a waiter); returns `.woken` when the caller owns it, else
    /// the result that ended the wait (the caller does not own it then).
    func lock(deadline: UInt64?, cancellable: Bool) throws -> WakeResult {
        guard let me = uthreads_get_current() else { throw syncOutsideUserThread("UMutex.lock") }
        let result = try syncWait(
            "UMutex.lock", .mutex, object: id, target: self, deadline: deadline, cancellable: cancellable,
            register: { waiter in
                try sync.with { () throws(UThreadError) -> Bool in
                    if owner == nil {
                        owner = me
                        return false
                    }
                    if owner == me {
                        throw .invalidArgument(
                            "UMutex.lock: \(describeThread(me)) already holds \(label) (mutexes are not recursive)")
                    }
                    waiters.push(waiter)
                    contended = true
                    return true
                }
            },
            withdraw: { waiter in
                // Else it was handed the mutex already: the wake wins.
                sync.locked {
                    guard waiters.remove(where: { $0 == waiter }) else { return .woken }
                    contended = !waiters.isEmpty
                    return nil
                }
            })
        return result ?? .woken
    }

    @usableFromInline @inline(never)
    func unlockSlow() throws {
        let me = uthreads_get_current()
        let next = try sync.with { () throws(UThreadError) -> Waiter? in
            guard let me, owner == me else {
                let who = me.map(describeThread) ?? "code outside a user thread"
                let held = owner.map { "held by \(describeThread($0))" } ?? "not locked"
                throw .invalidArgument("UMutex.unlock: \(who) does not own \(label) (\(held))")
            }
            return handOff()
        }
        if let next { syncWake(next) }
    }

    /// Releases a mutex the caller is known to own: hands it to the first waiter. O(1).
    @inlinable
    func releaseOwned() {
        if let me = uthreads_get_current(), _fastPath(sync.isBare(for: me) && !contended) {
            owner = nil
            return
        }
        releaseOwnedSlow()
    }

    @usableFromInline @inline(never)
    func releaseOwnedSlow() {
        if let next = sync.locked({ handOff() }) { syncWake(next) }
    }

    /// Makes the first waiter the owner (or frees the mutex); returns the waiter to wake after
    /// the state is left. Caller: inside `sync`.
    private func handOff() -> Waiter? {
        guard let next = waiters.pop() else {
            owner = nil
            contended = false
            return nil
        }
        owner = UnsafeMutablePointer(bitPattern: next.block)
        contended = !waiters.isEmpty
        return next
    }

    var label: String { syncLabel("mutex", name: name, id: id) }

    // MARK: WaitTarget

    /// "mutex 'db' held by #12, 2 waiting", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let (owner, waiting) = sync.locked { (self.owner, waiters.count) }
        return "\(label) held by " + (owner.map(describeThread) ?? "nobody")
            + (waiting > 0 ? ", \(waiting) waiting" : "")
    }

    /// The owner, for wait-for cycles.
    public var holders: [ThreadID] { holder.map { [$0] } ?? [] }

    /// `UMutex(mutex 'db', held by #12)` or `UMutex(mutex 3, free)`.
    public var description: String {
        let owner = sync.locked { self.owner }
        return "UMutex(\(label), \(owner.map { "held by \(describeThread($0))" } ?? "free"))"
    }
}
