// Layer 1: a lock between kernel threads that ThreadSanitizer understands.
//
// `Synchronization.Mutex` would do, but on this toolchain ThreadSanitizer does not see its
// lock and unlock (they are atomics and futex calls inside the uninstrumented
// libswiftSynchronization), so every access it protects is reported as a race (checked with a
// two-thread counter: "Swift access race", yet the count is right). pthread_mutex is
// intercepted by ThreadSanitizer and costs the same uncontended (~20 ns), so the state shared
// between kernel threads (M:N queues, mailboxes and sync objects; the offload pool's hand-back)
// sits behind this instead, and `scripts/tsan.sh` reports real races only.
import Glibc

/// A value guarded by a pthread mutex. Hold it for a few loads and stores, never across a park.
/// Usable from inlinable code (the M:N channel's hot path is specialised in its callers).
@usableFromInline
package final class KernelLock<Value>: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Guarded by `mutex`, so Swift's dynamic exclusivity check (a `swift_beginAccess` per
    /// use) would only repeat what the lock ensures.
    @exclusivity(unchecked) @usableFromInline var value: Value

    @usableFromInline
    package init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inlinable @inline(__always)
    package func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    // Several locks at once (an M:N select locks all its channels, in id order): lock, reach
    // the value while held, unlock.

    /// Takes the lock; pair with `unlock()`. Prefer `withLock`.
    @inlinable @inline(__always)
    func lock() { pthread_mutex_lock(mutex) }

    /// Releases the lock taken by `lock()`.
    @inlinable @inline(__always)
    func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` on the value; the caller must hold the lock (taken with `lock()`).
    @inlinable @inline(__always)
    func withLockHeld<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try body(&value)
    }
}
