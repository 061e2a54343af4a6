// Layer 8: a mutex that parks — never a kernel lock — on one worker or across workers.
//
// Design essay
// ============
//
// State: the owner's thread id (0 when free) with its row (control block pointer, for its
// name and whether it still runs) and a FIFO of waiters, held bare or under the object's lock
// (SyncState: SyncSupport.swift's "Bare or locked"), plus `fast`, one word that packs the two
// states the fast paths handle for a bare mutex.
//
// The owner is its thread id, never its row alone. Rows are reused as soon as a thread ends
// (ControlBlockTable), so a row names "whoever runs on it now": a mutex that kept the row of a
// thread that ended holding it would pass to the next thread spawned there, whose unlock()
// would succeed and whose lock() would say it already holds it. Ids are never reused.
//
// Fast paths. `fast` is the M:1 runtime's address (the value in every one of its rows'
// `runtime`) while a bare mutex is free with no waiter, the owner's id negated (0 &- id) while
// it is held with no waiter, and 0 otherwise: waiters, or a shared or undecided mutex (never
// written then). lock() is "if fast == me.runtime { fast = 0 &- me.id; ownerRow = me }",
// unlock() "if fast &+ me.id == 0 { fast = me.runtime }": one test answers both "bound to my
// runtime?" and "free?" (or "mine, no waiters?"). The three values cannot be confused: ids
// start at 1 and stay below 2^63 (one a nanosecond for 292 years), so a negated id is at or
// above 2^63, where no user-space address lies (x86_64 and arm64 keep them below 2^48), and
// is never 0. The negation lets unlock test with one add against the id it loads; the row
// written beside it is for descriptions only, read on the runtime's kernel thread alone
// (`describeHolder`). Measured (callgrind, release, `uthreads bench --instructions`): 37.9
// instructions per uncontended lock+unlock, 33 with the row alone. Both are `@inlinable`
// (specialised into the caller) and the stored fields opt out of dynamic exclusivity checks
// (`@exclusivity(unchecked)`: a bare object is touched only by its runtime's kernel thread, a
// shared one only under its lock). The slow paths unpack `fast` into `owner` before they
// change the state and pack it again after (`unpack`, `pack`). A shared mutex (M:N, or
// outside any runtime) takes the slow path, under its lock, every time. The binding is the
// runtime's serial (SyncState.swift); only the fast word uses its address, which a later
// runtime can get once this one ended. Its fast paths could then take a free, waiterless
// mutex of the ended runtime on their one kernel thread (no race: nothing of the old runtime
// is left in a free mutex without waiters), and its slow paths refuse it (`.foreignRuntime`)
// as any other runtime's.
//
// Read from elsewhere (SyncSupport.swift, "Reads from elsewhere"). `fast` and `owner` are
// `Relaxed` words: a relaxed load and store are the `mov`s the plain fields compiled to (38.0
// instructions per lock+unlock, 38.1 before, callgrind), and another kernel thread decodes
// the holder from the two without a race (`holderID`: as an `Int` the fast word is negative
// for a held mutex, positive for a free one, 0 when `owner` holds the truth; `unpack` stores
// `owner` before it clears the fast word). `waiting` is a word the queue's `didSet` keeps. A
// description from elsewhere names the holder by its id alone.
//
// FIFO handoff. unlock() with waiters does not free the mutex: it makes the first waiter the
// owner and wakes it. The woken thread returns from lock() already owning the mutex, so a
// thread that arrives later cannot barge in front of it, and every waiter gets the mutex in
// arrival order: no starvation, and the acquisition spread among contending threads is flat.
// Invariant: waiters exist ⇒ owner != nil (a free mutex has no waiters), which is why the
// lock fast path need not look at the queue. A waiter that gives up after it was handed the
// mutex keeps it (the wake wins: Waiter.swift).
//
// A holder that ended. A thread that ends holding the mutex keeps it, as with Java's
// ReentrantLock or a non-robust pthread mutex: lockers wait (their timeout, deadline and
// cancellation still end the wait), unlock() by any other thread throws the not-owner error,
// `holder` is the ended thread's id and descriptions call it finished. Nothing is released at
// exit: the scheduler's exit path would have to know every mutex a thread holds (a list per
// thread, kept on every fast path), and a release on the way out would hand a possibly
// inconsistent protected state to the next locker without telling it (robust mutexes return
// EOWNERDEAD for that; a silent release would not).
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
//   * The owner's row in the fast word with its id in a second field: unlock would load and
//     compare both (estimated 2 more instructions per lock+unlock than the negated id, past
//     the benchmark's failing bound).
//   * Clearing the row's mutexes at thread exit: see "A holder that ended".
//   * A holder word of its own for readers elsewhere, stored by the fast path: one more store
//     in every uncontended lock, for what the fast word already encodes.
//   * Reads from elsewhere under the object's lock (what `isLocked`, `holder` and `waiting`
//     did): a bare mutex has no lock its runtime takes, so the reader raced the fast paths and
//     measured the waiter array while the runtime could free its buffer.
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
    /// The fast paths' word (the essay): the runtime's address (free), the owner's id negated
    /// (held), or 0 (waiters, shared or undecided: `owner` holds the truth). A `Relaxed` word
    /// (as `Int` bits), which a reader elsewhere decodes (`holderID`).
    @usableFromInline let fast: Relaxed
    /// The bound runtime's address, the fast word's "free" value (0 until a bare binding).
    @exclusivity(unchecked) var home: UInt = 0
    /// The owning thread's id while `fast` is 0; 0 when free. A `Relaxed` word.
    let owner = Relaxed(0)
    /// The row the owner ran on when it took the mutex (set with every owner, fast path
    /// included): its name while `ownerRow.id == owner` and it has not finished; reused by
    /// another thread, or finished, otherwise. Never decides ownership.
    @exclusivity(unchecked) @usableFromInline var ownerRow: UnsafeMutablePointer<uthreads_tcb>?
    @exclusivity(unchecked) var waiters = FIFO<Waiter>() {
        didSet { queued.store(waiters.count) }  // a simple didSet: the queue is changed in place
    }
    /// The length of `waiters`, readable from any kernel thread (`waiting`).
    let queued = Relaxed(0)
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
        let bare = sync.binding.load(ordering: .relaxed) > SyncState.shared
        self.home = bare ? UInt(bitPattern: uthreads_get_runtime()) : 0
        self.fast = Relaxed(Int(bitPattern: home))
    }

    /// Acquires the mutex, parking while another thread holds it. O(1).
    /// - Throws: `CancellationError` if the caller is cancelled while waiting;
    ///   `UThreadError.invalidArgument` if the caller already owns it (not recursive) or is not
    ///   a user thread; `.foreignRuntime` for a mutex bound to another M:1 runtime.
    @inlinable
    public func lock() throws {
        if let me = uthreads_get_current(), _fastPath(fast.load() == Int(bitPattern: me.pointee.runtime)) {
            fast.store(0 &- Int(truncatingIfNeeded: me.pointee.id))
            ownerRow = me
            return
        }
        try lockSlow(deadline: nil)
    }

    /// Acquires the mutex, giving up after `timeout` (or at `deadline`, whichever is first).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock).
    public func lock(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        if let me = uthreads_get_current(), fast.load() == Int(bitPattern: me.pointee.runtime) {
            fast.store(0 &- Int(truncatingIfNeeded: me.pointee.id))
            ownerRow = me
            return
        }
        try lockSlow(deadline: syncDeadline(timeout: timeout, deadline: deadline))
    }

    /// Acquires the mutex if it is free; never waits. O(1).
    public func tryLock() -> Bool {
        guard let me = uthreads_get_current() else { return false }
        return
            (try? sync.with { () -> Bool in
                unpack()
                defer { pack() }
                guard owner.load() == 0 else { return false }
                take(me)
                return true
            }) ?? false
    }

    /// Releases the mutex; the first waiter, if any, becomes the owner. O(1).
    /// - Throws: `UThreadError.invalidArgument` if the caller does not own the mutex. A mutex
    ///   whose holder ended stays held by that finished thread: no other thread can unlock it
    ///   (not even one spawned later on the same row), and lockers wait until their timeout,
    ///   deadline or cancellation.
    @inlinable
    public func unlock() throws {
        if let me = uthreads_get_current(), _fastPath(fast.load() &+ Int(truncatingIfNeeded: me.pointee.id) == 0) {
            fast.store(Int(bitPattern: me.pointee.runtime))
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

    /// Whether some thread holds the mutex (a snapshot, from any kernel thread); a thread that
    /// ended holding it still does.
    public var isLocked: Bool { holderID != 0 }

    /// Whether the calling thread holds the mutex (by thread id: a thread on the row of one
    /// that ended holding it does not). Exact: only the caller can make it true or false.
    public var isHeldByCurrentThread: Bool {
        guard let me = uthreads_get_current() else { return false }
        return holderID == me.pointee.id
    }

    /// Threads waiting for the mutex now (a snapshot, from any kernel thread).
    public var waiting: Int { queued.load() }

    /// The owner's thread id (0: free), from the two words alone, so from any kernel thread:
    /// the fast word while it holds the state (a negated id is negative as an `Int`, the
    /// runtime's address positive), else `owner`. Exact inside `sync`; elsewhere a value the
    /// mutex had a moment ago.
    var holderID: UInt64 {
        let f = fast.load()
        guard f != 0 else { return UInt64(truncatingIfNeeded: owner.load()) }
        return f < 0 ? UInt64(truncatingIfNeeded: 0 &- f) : 0
    }

    /// The holder as descriptions show it (`describeHolder`), nil when free (inside `sync`:
    /// it reads the row).
    var holderDescription: String? {
        let id = holderID
        return id == 0 ? nil : describeHolder(id, row: ownerRow)
    }

    /// `holderDescription` from any kernel thread: from elsewhere only the id the words give
    /// (the row is the runtime's).
    private var holderSnapshot: String? {
        sync.read {
            holderDescription
        } elsewhere: {
            let id = holderID
            return id == 0 ? nil : "#\(id)"
        }
    }

    /// Makes `me` the owner (inside `sync`, unpacked).
    private func take(_ me: UnsafeMutablePointer<uthreads_tcb>) {
        owner.store(Int(truncatingIfNeeded: me.pointee.id))
        ownerRow = me
    }

    /// Moves the fast word's state into `owner` (inside `sync`, before a slow path changes it):
    /// `owner` first, so a reader elsewhere that sees the fast word 0 finds the holder there.
    private func unpack() {
        guard fast.load() != 0 else { return }
        owner.store(Int(truncatingIfNeeded: holderID))
        fast.store(0)
    }

    /// Packs the state into the fast word again when the fast paths can take it: a bare mutex
    /// with no waiter (inside `sync`, after a slow path changed it).
    /// The end of every slow path's access, so the invariants are checked here (behind the
    /// flag: SyncSupport.swift, "Invariants").
    private func pack() {
        defer { if syncChecking() { checkInvariants() } }
        guard sync.binding.load(ordering: .relaxed) > SyncState.shared, waiters.isEmpty else { return }
        // Bare: the caller runs on the bound runtime's kernel thread (it passed `enter`).
        if home == 0 { home = UInt(bitPattern: uthreads_get_runtime()) }
        fast.store(owner.load() == 0 ? Int(bitPattern: home) : 0 &- owner.load())
    }

    /// The holder's id, if any (a snapshot, from any kernel thread): the id of a thread that
    /// ended holding the mutex too, which keeps it.
    public var holder: ThreadID? {
        let id = holderID
        return id == 0 ? nil : ThreadID(rawValue: id)
    }

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
                    unpack()
                    defer { pack() }
                    if owner.load() == 0 {
                        take(me)
                        return false
                    }
                    if owner.load() == me.pointee.id {
                        throw .invalidArgument(
                            "UMutex.lock: \(describeThread(me)) already holds \(label) (mutexes are not recursive)")
                    }
                    waiters.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                // Else it was handed the mutex already: the wake wins.
                sync.locked {
                    unpack()
                    defer { pack() }
                    return waiters.remove(where: { $0 == waiter }) ? nil : .woken
                }
            })
        return result ?? .woken
    }

    @usableFromInline @inline(never)
    func unlockSlow() throws {
        let me = uthreads_get_current()
        let next = try sync.with { () throws(UThreadError) -> Waiter? in
            unpack()
            defer { pack() }
            guard let me, owner.load() == me.pointee.id else {
                let who = me.map(describeThread) ?? "code outside a user thread"
                let held = holderDescription.map { "held by \($0)" } ?? "not locked"
                throw .invalidArgument("UMutex.unlock: \(who) does not own \(label) (\(held))")
            }
            return handOff()
        }
        if let next { syncWake(next) }
    }

    /// Releases a mutex the caller is known to own: hands it to the first waiter. O(1).
    @inlinable
    func releaseOwned() {
        if let me = uthreads_get_current(), _fastPath(fast.load() &+ Int(truncatingIfNeeded: me.pointee.id) == 0) {
            fast.store(Int(bitPattern: me.pointee.runtime))
            return
        }
        releaseOwnedSlow()
    }

    @usableFromInline @inline(never)
    func releaseOwnedSlow() {
        let next = sync.locked { () -> Waiter? in
            unpack()
            defer { pack() }
            return handOff()
        }
        if let next { syncWake(next) }
    }

    /// Makes the first waiter the owner (or frees the mutex); returns the waiter to wake after
    /// the state is left. Caller: inside `sync`, unpacked.
    private func handOff() -> Waiter? {
        guard let next = waiters.pop() else {
            owner.store(0)
            ownerRow = nil
            return nil
        }
        take(UnsafeMutablePointer(bitPattern: next.block)!)
        return next
    }

    var label: String { syncLabel("mutex", name: name, id: id) }

    // MARK: WaitTarget

    /// "mutex 'db' held by #12, 2 waiting", for the thread table (from any kernel thread).
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let waiting = self.waiting
        return "\(label) held by " + (holderSnapshot ?? "nobody") + (waiting > 0 ? ", \(waiting) waiting" : "")
    }

    /// The owner, for wait-for cycles.
    public var holders: [ThreadID] { holder.map { [$0] } ?? [] }

    /// `UMutex(mutex 'db', held by #12)` or `UMutex(mutex 3, free)`.
    public var description: String {
        "UMutex(\(label), \(holderSnapshot.map { "held by \($0)" } ?? "free"))"
    }

    // MARK: Invariants

    /// The mutex's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(waiters). The
    /// holder need not be live: a thread that ended holding the mutex keeps it (the essay).
    @inline(never)
    func checkInvariants() {
        let held = holderID
        syncInvariant(waiters.isEmpty || held != 0, label, "waiters ⇒ a holder (a free mutex has no waiters)")
        syncInvariant(held == 0 || ownerRow != nil, label, "held ⇒ the holder's row is kept")
        syncInvariant(
            fast.load() == 0 || (waiters.isEmpty && sync.binding.load(ordering: .relaxed) > SyncState.shared),
            label, "the fast word is used ⇒ bare, no waiter")
        syncInvariant(queued.load() == waiters.count, label, "waiting == the waiter queue's length")
        for w in waiters.items[waiters.head...] {
            syncInvariant(
                ControlBlock(bitPattern: w.block)!.pointee.id != held, label, "the holder is not one of its waiters")
        }
    }
}
