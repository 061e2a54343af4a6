// Layer 8: where a sync object's state may be touched bare and where only under its lock (the
// decision and its proof: SyncSupport.swift, "Bare or locked").
import CUThreads
import Glibc
import Synchronization

/// Decides, once per object, whether its state is held bare (bound to one M:1 runtime: only
/// that runtime's kernel thread touches it, no lock, no atomic) or under its lock (shared by
/// the workers of an M:N runtime, or by kernel threads outside any runtime). The state itself
/// lives in the primitive's own fields; every access to it is bracketed by `enter`/`leave`.
@usableFromInline
struct SyncState: ~Copyable {
    /// `SyncState.undecided`, `SyncState.shared`, or the address of the M:1 scheduler the
    /// object is bound to (the value every row of that runtime carries in `runtime`).
    @usableFromInline let binding: Atomic<UInt>
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    @usableFromInline static let undecided: UInt = 0
    @usableFromInline static let shared: UInt = 1

    /// Bound at once when made inside a runtime: an M:1 runtime binds it, an M:N worker shares
    /// it; made outside any runtime, the first use decides.
    init() {
        let here = SyncState.hereBinding()
        binding = Atomic(here)
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// What the calling kernel thread binds an undecided object to: its M:1 scheduler, or
    /// `shared` (an M:N worker, or no runtime at all).
    static func hereBinding() -> UInt {
        guard let s = Scheduler.active, s.worker == nil else { return shared }
        return UInt(bitPattern: Unmanaged.passUnretained(s).toOpaque())
    }

    /// Starts an access to the object's state: takes the lock when the object is shared, or
    /// nothing when it is bound to the caller's M:1 runtime (binding an undecided one first).
    /// Returns whether it locked; pass that to `leave`.
    /// - Throws: `UThreadError.foreignRuntime` when the object is bound to another runtime
    ///   (another kernel thread's): a clear error, never a race.
    @usableFromInline
    func enter() throws(UThreadError) -> Bool {
        var b = binding.load(ordering: .acquiring)
        if b == SyncState.undecided {
            let (_, original) = binding.compareExchange(
                expected: SyncState.undecided, desired: SyncState.hereBinding(), ordering: .acquiringAndReleasing)
            b = original == SyncState.undecided ? binding.load(ordering: .acquiring) : original
        }
        if b == SyncState.shared {
            pthread_mutex_lock(mutex)
            return true
        }
        guard let here = uthreads_get_runtime(), UInt(bitPattern: here) == b else { throw .foreignRuntime }
        return false
    }

    /// Ends an access begun by `enter`.
    @usableFromInline @inline(__always)
    func leave(_ locked: Bool) {
        if locked { pthread_mutex_unlock(mutex) }
    }

    /// Runs `body` on the object's state (`enter`, `body`, `leave`).
    @inlinable @inline(__always)
    func with<R, E: Error>(_ body: () throws(E) -> R) throws -> R {
        let locked = try enter()
        defer { leave(locked) }
        return try body()
    }

    /// `with` for accesses that cannot meet a foreign binding (a waiter withdrawing, a holder
    /// releasing: they passed `enter` before) and for snapshots (descriptions, `isLocked`),
    /// and for wakers of a shared object. A bare object touched from another runtime's kernel
    /// thread is read without the lock (a stale value at worst: only snapshots do that).
    func locked<R>(_ body: () -> R) -> R {
        if let locked = try? enter() {
            defer { leave(locked) }
            return body()
        }
        return body()
    }
}
