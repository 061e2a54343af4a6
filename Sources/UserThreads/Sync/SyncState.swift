// Layer 8: where a sync object's state may be touched bare and where only under its lock (the
// decision and its proof: SyncSupport.swift, "Bare or locked").
import CUThreads
import Glibc
import Synchronization

/// Decides, once per object, whether its state is held bare (bound to one M:1 runtime: only
/// that runtime's kernel thread touches it, no lock, no atomic) or under its lock (shared by
/// the workers of an M:N runtime, or by kernel threads outside any runtime). The state itself
/// lives in the primitive's own fields; every access to it is bracketed by `enter`/`leave` (or
/// `isShared` and `lock`/`unlock`, for a caller that has its scheduler in hand).
@usableFromInline
struct SyncState: ~Copyable {
    /// `SyncState.undecided`, `SyncState.shared`, or the `serial` of the M:1 scheduler the
    /// object is bound to. A serial, not the scheduler's address: a later runtime may be
    /// allocated at the address of an ended one, and must not inherit its objects (their
    /// waiter lists may still name the ended runtime's rows and tokens).
    @usableFromInline let binding: Atomic<UInt>
    /// The lock of a shared object: a futex word (CUThreads/sync_lock.c, which says why not a
    /// pthread mutex).
    @usableFromInline let mutex: UnsafeMutablePointer<UInt32>

    @usableFromInline static let undecided: UInt = 0
    @usableFromInline static let shared: UInt = 1

    /// Bound at once when made inside a runtime: an M:1 runtime binds it, an M:N worker shares
    /// it; made outside any runtime, the first use decides.
    init() {
        binding = Atomic(Scheduler.active.map(SyncState.binding(for:)) ?? SyncState.undecided)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: 0)
    }

    deinit {
        mutex.deallocate()
    }

    /// What a thread of `s` binds an undecided object to: its serial (an M:1 runtime), or
    /// `shared` (an M:N worker).
    static func binding(for s: Scheduler) -> UInt {
        s.worker == nil ? s.serial : shared
    }

    /// Whether a thread of `s` must take the lock (true) or may touch the state bare (false),
    /// binding an undecided object first. One load and compare when the object is bound to
    /// `s`, two when it is shared.
    /// - Throws: `UThreadError.foreignRuntime` when the object is bound to another runtime.
    @inline(__always)
    func isShared(_ s: Scheduler) throws(UThreadError) -> Bool {
        try isShared(serial: s.serial) { SyncState.binding(for: s) }
    }

    /// `isShared` on a scheduler's two numbers: its `serial`, and what it binds an undecided
    /// object to (`mine`, asked only then).
    @inline(__always)
    func isShared(serial: UInt, mine: () -> UInt) throws(UThreadError) -> Bool {
        if let known = knownShared(serial: serial) { return known }
        return try decide(mine())
    }

    /// The fast half of `isShared`, which cannot throw: false when the object is bound to
    /// `serial`, true when it is shared, nil when `isShared` must decide (undecided, or bound
    /// to another runtime). For an entry point that branches in its caller's frame
    /// (Channel.swift, "A frame each").
    @inlinable @inline(__always)
    func knownShared(serial: UInt) -> Bool? {
        let b = binding.load(ordering: .acquiring)
        if b == serial { return false }
        if b == SyncState.shared { return true }
        return nil
    }

    /// The slow half of `isShared`: `mine` is what the caller would bind the object to (its
    /// serial, or `shared` for a worker or a kernel thread outside any runtime). The first use
    /// of an undecided object decides; a shared object admits everyone; an object bound to
    /// another M:1 runtime (living or ended) refuses.
    @inline(never)
    func decide(_ mine: UInt) throws(UThreadError) -> Bool {
        var b = binding.load(ordering: .acquiring)
        if b == SyncState.undecided {
            let (exchanged, original) = binding.compareExchange(
                expected: SyncState.undecided, desired: mine, ordering: .acquiringAndReleasing)
            b = exchanged ? mine : original
        }
        if b == SyncState.shared { return true }
        if b == mine { return false }
        throw .foreignRuntime
    }

    /// Whether the object is shared now (inspection from any thread: never binds).
    var isSharedNow: Bool { binding.load(ordering: .acquiring) == SyncState.shared }

    /// Takes the object's lock (a shared object's accesses, after `isShared` said so).
    @inline(__always)
    func lock() { uthreads_sync_lock(mutex) }

    /// Releases the object's lock.
    @inline(__always)
    func unlock() { uthreads_sync_unlock(mutex) }

    /// Starts an access to the object's state from the calling kernel thread: takes the lock
    /// when the object is shared, or nothing when it is bound to the caller's M:1 runtime
    /// (binding an undecided one first). Returns whether it locked; pass that to `leave`.
    /// - Throws: `UThreadError.foreignRuntime` when the object is bound to another runtime
    ///   (another kernel thread's, or an ended one): a clear error, never a race.
    @usableFromInline
    func enter() throws(UThreadError) -> Bool {
        let locked: Bool
        if let p = uthreads_get_runtime() {
            // The caller's own scheduler, read unretained: through a reference the compiler
            // retained and released it (~40 instructions per call, callgrind).
            let (serial, mine) = Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef {
                ($0.serial, SyncState.binding(for: $0))
            }
            locked = try isShared(serial: serial) { mine }
        } else {
            locked = try decide(SyncState.shared)
        }
        if locked { lock() }
        return locked
    }

    /// `enter` for an operation that does not wait and cannot fail (a semaphore's signal, a
    /// condition's signal and broadcast, destroy, a group's `cancelAll`, a wait group's wake
    /// at zero), which any kernel thread may call: when the object is bound to another M:1
    /// runtime, `operation` (the same call again) is posted to that runtime and run on its
    /// kernel thread at its next safe point (Scheduler/ForeignCancels.swift), where `enter`
    /// admits it bare; it is dropped when that runtime has ended (its threads are gone, nobody
    /// waits). Returns whether it locked
    /// (pass it to `leave`), or nil when the operation was posted or dropped: the caller then
    /// touches nothing. (The rule: SyncSupport.swift, "Bare or locked".)
    /// (An autoclosure: the closure is made only when it is posted.)
    func enter(orPost operation: @autoclosure () -> @Sendable () -> Void) -> Bool? {
        if let locked = try? enter() { return locked }
        let serial = binding.load(ordering: .acquiring)  // decided: neither undecided nor shared
        let post = operation()
        ForeignCancels.send(toSerial: serial) { scheduler in
            if scheduler != nil { post() }
        }
        return nil
    }

    /// Ends an access begun by `enter`.
    @usableFromInline @inline(__always)
    func leave(_ locked: Bool) {
        if locked { unlock() }
    }

    /// Runs `body` on the object's state (`enter`, `body`, `leave`).
    @inlinable @inline(__always)
    func with<R, E: Error>(_ body: () throws(E) -> R) throws -> R {
        let locked = try enter()
        defer { leave(locked) }
        return try body()
    }

    /// `with` for accesses that cannot meet a foreign binding: a waiter withdrawing, a holder
    /// releasing (they passed `enter` before), a child reporting into its group. Never for a
    /// read another kernel thread may make (use `read`), nor for a change it may make (a
    /// signal, a destroy: `enter(orPost:)`).
    func locked<R>(_ body: () -> R) -> R {
        let locked = (try? enter()) ?? false
        defer { leave(locked) }
        return body()
    }

    /// A snapshot read from any kernel thread (`value`, `waiting`, `isLocked`, descriptions):
    /// `body` on the state, under the lock or bare, as `with`, for a shared object and for the
    /// object's own runtime; `elsewhere` for a kernel thread other than the runtime a bare
    /// object is bound to, which must not touch the state: it reads only `Relaxed` words the
    /// owner keeps (SyncSupport.swift, "Reads from elsewhere"). Never waits, never binds a bound
    /// object.
    @inline(__always)
    func read<R>(_ body: () -> R, elsewhere: () -> R) -> R {
        guard let locked = try? enter() else { return elsewhere() }
        defer { leave(locked) }
        return body()
    }
}

/// An integer of a sync object's state that kernel threads other than its owner may read (a
/// snapshot: `SyncState.read`'s `elsewhere`). Only whoever may touch the state writes it (the
/// bound runtime's kernel thread, or a holder of the object's lock), with a plain relaxed load
/// and store, never a read-modify-write: on x86-64 both are the plain `mov` a non-atomic field
/// compiles to, so the owner's paths cost no more instructions; a reader elsewhere gets a
/// value that was true a moment ago, never a torn one, and ThreadSanitizer sees no race. A
/// word that mirrors a field (a queue's length) is a `let` of the object beside the field, set
/// by the field's simple `didSet`, never a member of a struct the owner mutates in place: an
/// inout access of that struct is a write of all of it to ThreadSanitizer, the word included.
/// (SyncSupport.swift, "Reads from elsewhere".)
@usableFromInline
struct Relaxed: ~Copyable, @unchecked Sendable {
    @usableFromInline let word: Atomic<Int>

    @inlinable
    init(_ value: Int) { word = Atomic(value) }

    /// The word (a relaxed load).
    @inlinable @inline(__always)
    func load() -> Int { word.load(ordering: .relaxed) }

    /// Sets the word (a relaxed store). Only by whoever may touch the object's state.
    @inlinable @inline(__always)
    func store(_ value: Int) { word.store(value, ordering: .relaxed) }
}
