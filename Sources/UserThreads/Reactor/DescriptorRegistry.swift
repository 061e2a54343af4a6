// Layer 5: which reactors of an M:N runtime watch a descriptor — so that a close reaches them all.
//
// Design essay
// ============
//
// The problem. Under `UThreadRuntime.run(workers:)` every worker has its own reactor (epoll
// set and table of waiters, Reactor.swift). A descriptor is in the epoll set of each worker
// on which some thread waited for it: per-worker acceptors on one listening socket, or a
// reader on worker 1 and a supervisor on worker 0 that closes the socket to unblock it. The
// closer's own reactor can wake only its own waiters; the kernel then silently drops the file
// from the other epoll sets, and a waiter there would sleep until its own timeout.
//
// What this is. One registry per M:N runtime (M:1 runtimes have none: their reactor's
// `registry` is nil and they pay one nil check on a descriptor's first wait and on a close):
// for every descriptor number, the set of workers whose reactor has an entry for it. The
// reactor adds its worker when it adds the descriptor to its epoll set (the first wait on it
// there) and removes it when it drops the entry (`closing`, `forget`, shutdown). The M:N
// layer closes through it (MNRuntime.swift, "Closing a descriptor"): the closer drops its own
// entry, then, under the descriptor's stripe lock, either closes at once (nobody else
// watches: the common case, one uncontended lock more than M:1) or asks each watching worker
// to drop its entry (waking its waiters with `.closed`) and waits; then looks again.
//
// Invariants (all under the descriptor's stripe lock):
//   * A worker's bit is set exactly while its reactor has an entry for the number: the
//     epoll_ctl ADD and the bit change under one lock, and so do the removal and the clear.
//   * close(2) through the registry happens under the lock, with no bit set. So a registration
//     that races with a close either came first (the closer sees its bit and asks that worker
//     to drop it first) or comes after the close(2): then epoll_ctl fails with EBADF (thrown
//     to the waiter) or adds the file that reused the number (correct: it is that file's
//     entry). No worker can be left with an entry for a closed file.
//   * Hence the number cannot be reused while any worker has an entry for it: a wake-up a
//     worker delivers for `closing(fd)` only reaches waiters of the file being closed.
//   * Requests to drop an entry are posted while the lock is held, so a worker that shuts down
//     (clearing its bits under the same locks, then answering its mail one last time) cannot
//     miss one.
//
// Shape. 64 stripes by descriptor number (fd & 63), each a pthread mutex on its own cache
// line (ThreadSanitizer sees it, like KernelLock) and a table of 64-bit masks indexed by
// fd >> 6: bit i for worker i < 63. Workers from 63 on (the runtime allows 1024) share bit 63,
// which then says "see the stripe's overflow table", a set of worker indices per descriptor:
// correct for any count, and free for the machines this runs on.
//
// Rejected designs:
//   * One process-wide registry, shared with M:1 runtimes: they share nothing by design and
//     would pay a lock per descriptor.
//   * Asking every worker on every close (a broadcast): a system call per worker per close,
//     where almost every close has no other watcher.
//   * One lock for the whole registry: every first wait and every close of every worker would
//     contend on one line.
//   * A shared bit for all workers ≥ 63 with no overflow table: one of them dropping its entry
//     could not clear a bit that others still need.
import Glibc
import SystemPackage

/// The workers whose reactors have an entry for one descriptor, as read under its stripe lock.
struct DescriptorWatchers {
    /// Bit i: worker i (i < 63). Bit 63: some worker ≥ 63, listed in `high`.
    var mask: UInt64 = 0
    /// Workers ≥ 63, when bit 63 is set.
    var high: [Int] = []

    /// Whether no worker watches the descriptor.
    var isEmpty: Bool { mask == 0 }

    /// How many workers watch it.
    var count: Int { (mask & ~DescriptorRegistry.overflowBit).nonzeroBitCount + high.count }

    /// Calls `body` with each watching worker's index, lowest first. O(count).
    func forEach(_ body: (Int) -> Void) {
        var m = mask & ~DescriptorRegistry.overflowBit
        while m != 0 {
            body(m.trailingZeroBitCount)
            m &= m - 1
        }
        for w in high.sorted() { body(w) }
    }

    /// The indices, lowest first (for tests and descriptions).
    var workers: [Int] {
        var all: [Int] = []
        forEach { all.append($0) }
        return all
    }
}

/// Which workers' reactors of one M:N runtime have an entry for each descriptor number, under
/// 64 striped pthread mutexes (see the essay above). Shared by the runtime's workers.
final class DescriptorRegistry: @unchecked Sendable {
    static let stripeCount = 64
    /// Set for workers ≥ 63 (see `DescriptorWatchers.high`).
    static let overflowBit: UInt64 = 1 << 63
    private static let lockStride = 64

    private struct Stripe {
        /// By fd >> 6: bit i for worker i < 63, bit 63 when `high` has an entry for the fd.
        var masks: [UInt64] = []
        /// Workers ≥ 63 by descriptor (only runtimes with more than 63 workers use it).
        var high: [Int32: Set<Int>] = [:]
    }

    private let locks: UnsafeMutableRawPointer
    private let stripes: UnsafeMutablePointer<Stripe>

    init() {
        precondition(MemoryLayout<pthread_mutex_t>.size <= DescriptorRegistry.lockStride)
        let n = DescriptorRegistry.stripeCount
        locks = .allocate(byteCount: n * DescriptorRegistry.lockStride, alignment: DescriptorRegistry.lockStride)
        stripes = .allocate(capacity: n)
        stripes.initialize(repeating: Stripe(), count: n)
        for i in 0..<n { pthread_mutex_init(lock(i), nil) }
    }

    deinit {
        let n = DescriptorRegistry.stripeCount
        for i in 0..<n { pthread_mutex_destroy(lock(i)) }
        locks.deallocate()
        stripes.deinitialize(count: n)
        stripes.deallocate()
    }

    @inline(__always)
    private func lock(_ stripe: Int) -> UnsafeMutablePointer<pthread_mutex_t> {
        (locks + stripe * DescriptorRegistry.lockStride).assumingMemoryBound(to: pthread_mutex_t.self)
    }

    /// Runs `body` with `fd`'s stripe and its slot there, holding the stripe's lock.
    @inline(__always)
    private func withStripe<R, E: Error>(_ fd: Int32, _ body: (inout Stripe, Int) throws(E) -> R) throws(E) -> R {
        let i = Int(fd) & (DescriptorRegistry.stripeCount - 1)
        let m = lock(i)
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body(&stripes[i], Int(fd) >> 6)
    }

    private static func watchers(_ stripe: Stripe, _ fd: Int32, _ slot: Int) -> DescriptorWatchers {
        guard slot < stripe.masks.count else { return DescriptorWatchers() }
        let mask = stripe.masks[slot]
        guard mask & overflowBit != 0 else { return DescriptorWatchers(mask: mask) }
        return DescriptorWatchers(mask: mask, high: Array(stripe.high[fd] ?? []))
    }

    // MARK: Reactors

    /// Runs `add` (the reactor's epoll_ctl ADD) under `fd`'s stripe lock and, if it returns
    /// true (the descriptor is now watched), records `worker` as watching it. O(1) amortised.
    /// - Precondition: `fd >= 0`.
    func watch(_ fd: Int32, worker: Int, _ add: () throws(UThreadError) -> Bool) throws(UThreadError) -> Bool {
        try withStripe(fd) { (stripe, slot) throws(UThreadError) -> Bool in
            guard try add() else { return false }
            if slot >= stripe.masks.count {
                stripe.masks.append(contentsOf: repeatElement(0, count: max(slot + 1, stripe.masks.count * 2) - stripe.masks.count))
            }
            if worker < 63 {
                stripe.masks[slot] |= 1 << UInt64(worker)
            } else {
                stripe.high[fd, default: []].insert(worker)
                stripe.masks[slot] |= DescriptorRegistry.overflowBit
            }
            return true
        }
    }

    /// Records that `worker`'s reactor dropped its entry for `fd` (after its epoll_ctl DEL).
    /// O(1).
    func unwatch(_ fd: Int32, worker: Int) {
        withStripe(fd) { stripe, slot in
            guard slot < stripe.masks.count else { return }
            if worker < 63 {
                stripe.masks[slot] &= ~(1 << UInt64(worker))
            } else if var set = stripe.high[fd] {
                set.remove(worker)
                if set.isEmpty {
                    stripe.high[fd] = nil
                    stripe.masks[slot] &= ~DescriptorRegistry.overflowBit
                } else {
                    stripe.high[fd] = set
                }
            }
        }
    }

    // MARK: Closing

    /// Under `fd`'s stripe lock: when no worker watches `fd`, closes it (close(2)) and returns
    /// true; otherwise calls `ask` with the watchers, still under the lock (it posts the
    /// requests to drop their entries, see the essay), and returns false. O(watchers).
    /// - Throws: `.system(call: "close", …)` from close(2) (EBADF for a bad descriptor).
    func closeUnlessWatched(_ fd: Int32, otherwise ask: (DescriptorWatchers) -> Void) throws(UThreadError) -> Bool {
        guard fd >= 0 else {
            try DescriptorRegistry.systemClose(fd)  // EBADF
            return true
        }
        return try withStripe(fd) { (stripe, slot) throws(UThreadError) -> Bool in
            let watchers = DescriptorRegistry.watchers(stripe, fd, slot)
            if watchers.isEmpty {
                try DescriptorRegistry.systemClose(fd)
                return true
            }
            ask(watchers)
            return false
        }
    }

    /// The workers watching `fd` now (a snapshot, for tests and diagnostics).
    func watchers(of fd: Int32) -> DescriptorWatchers {
        guard fd >= 0 else { return DescriptorWatchers() }
        return withStripe(fd) { stripe, slot in DescriptorRegistry.watchers(stripe, fd, slot) }
    }

    /// Descriptors some worker watches (for leak tests). O(descriptors).
    var watchedCount: Int {
        var n = 0
        for i in 0..<DescriptorRegistry.stripeCount {
            pthread_mutex_lock(lock(i))
            n += stripes[i].masks.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
            pthread_mutex_unlock(lock(i))
        }
        return n
    }

    /// close(2). EINTR counts as closed (on Linux the descriptor is gone either way).
    /// - Throws: `.system(call: "close", errno: …)`, e.g. EBADF.
    static func systemClose(_ fd: Int32) throws(UThreadError) {
        if Glibc.close(fd) < 0 {
            let e = Errno.lastError
            if e != .interrupted { throw .system(call: "close", errno: e) }
        }
    }
}
