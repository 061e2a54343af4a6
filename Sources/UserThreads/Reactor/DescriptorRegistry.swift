// Layer 7: which reactors of an M:N runtime watch a descriptor, and the deferred close that
// wakes them all.
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
// for every descriptor number, the set of workers whose reactor has an entry for it, and
// whether it is being closed. A reactor adds its worker with the epoll_ctl ADD (the first wait
// on the descriptor there) and removes it when it drops the entry (`closing`, `forget`,
// `release` when the thread that used it migrated away: Reactor.swift, shutdown), both under
// the descriptor's stripe lock.
//
// The deferred close (Go's netpoll: `internal/poll.FD.Close` evicts the pollers, drops its
// reference, and waits on a semaphore until the last reference has closed the descriptor).
// The workers that watch a descriptor are its references. `IO.close(fd)` on a worker
// (`Reactor.closeEverywhere`):
//   1. drops the closer's own entry (its waiters throw `UThreadError.closed`);
//   2. under the stripe lock (`close`): clears the closer's bit; if no other worker watches
//      the descriptor (the common case), close(2) right there, under the lock, and its result
//      is the caller's (one uncontended pthread lock more than M:1). Otherwise the entry is
//      marked *closing* with the count of the other watchers, and each is asked (through the
//      runtime's `DescriptorCloseDelegate`: `MNMail.closeDescriptor`, posted under the lock)
//      to drop its entry. The registry itself never waits (it runs under the lock). The
//      public `IO.close` then parks the closer, not cancellable, on a `DeferredClose`
//      completion until step 3 has run, so that when it returns the file is closed (the peer
//      sees EOF, a listener's port is free) and close(2)'s error is its own, as in Go. The
//      deinits of the descriptor owners pass `waiting: false` and return at once: a deinit
//      may run while its owner holds a lock (the first version parked there and blocked the
//      worker, found in review), and so may a close off a user thread.
//   3. Each addressed worker, on its own kernel thread when it drains its mail, drops its
//      entry (its waiters throw `.closed`) and answers (`answer`); the answer that brings the
//      count to zero removes the mark and calls close(2), under the lock, then completes the
//      waiting closer with its outcome. When nobody waits (a deinit's close), an error goes
//      to stderr: the answer runs on the scheduler's path, where a log handler that does I/O
//      or parks must not be called.
// While the mark is set, a first wait on the descriptor on any worker (`watch`) throws
// `.closed` instead of adding an epoll entry (using a descriptor after closing it is the
// caller's bug, and it must not resurrect a watcher), and a second `IO.close` throws EBADF
// (as close(2) of a closed descriptor does); the pending close still completes.
//
// Invariants (all under the descriptor's stripe lock):
//   * A worker's bit is set exactly while its reactor has an entry for the number (the
//     epoll_ctl ADD and the bit change under one lock; the bit is cleared after the entry is
//     dropped, before anyone can close).
//   * close(2) through the registry happens under the lock, when no bit is set and every
//     addressed worker has answered. So the number cannot be reused while any worker still has
//     an entry for the file or still has to answer for it: every remote wake (`closing(fd)` run
//     for a `closeDescriptor` message) hits waiters of the file being closed, never those of a
//     later file that reused the number.
//   * A registration that races with a close either came first (its bit is set: the closer
//     addresses that worker) or sees the mark (throws `.closed`) or comes after the close(2)
//     (epoll_ctl fails with EBADF, or adds the file that reused the number: that file's entry).
//   * Requests are posted under the lock to workers whose bit is set, and a worker that shuts
//     down clears its bits under the same locks before it answers its mail one last time; so
//     no request is lost, and after every worker has ended no descriptor is left closing
//     (`finish` checks, and closes any anyway).
//
// Closers that are not on a worker of this runtime (a `blocking {}` body on the offload pool,
// another kernel thread, an M:1 runtime's thread): the registry, not `Scheduler.active`, says
// who watches the descriptor. Every live registry is on a process-wide list (`live`, an
// atomic count read first: nothing but one atomic load while no M:N runtime runs); such a
// closer takes the list's lock and each registry's stripe lock in list order (creation order,
// so two such closers cannot deadlock; workers take one stripe lock at a time), and either
// hands the close to the first registry whose workers watch the descriptor (deferred as in 2,
// with no closer's entry to drop) or, if none does, calls close(2) under all of those locks.
// Limits: a descriptor watched in two runtimes at once (two M:N runtimes, or an M:1 runtime,
// which has no registry, and an M:N one) is woken only in one of them. close(2) runs under the
// stripe lock (and, for closers off the workers, under the list's lock): a close(2) that
// blocks (a socket with SO_LINGER and unsent data) holds up, for that long, first waits on
// the descriptors that share its stripe.
//
// Shape. 64 stripes by descriptor number (fd & 63), each a pthread mutex on its own cache
// line (ThreadSanitizer sees it, like KernelLock) and a table of 64-bit words indexed by
// fd >> 6: bit i for worker i < 62, bit 62 the closing mark, bit 63 "see the stripe's
// overflow table" (workers 62 and up, the runtime allows 1024), correct for any count and
// free for the machines this runs on. The count of answers still due is in a per-stripe
// dictionary, touched only by deferred closes.
//
// Rejected designs:
//   * Parking every closer, deinits included, until every watcher has answered (this
//     registry's first version): a deinit that closes while its owner is inside a Mutex parks
//     holding the lock, and the next thread of the worker that takes it blocks the worker
//     (found in review).
//   * Never parking (the second version): `IO.close` returned before close(2), so a listener's
//     port could not be bound again at once and the peer's EOF came late (found in review:
//     Go's `FD.Close` does wait). Explicit closes wait now; only deinits defer.
//   * Closing first and telling the others afterwards: the number may be reused before they
//     drop their entries, and they would wake (or drop) waiters of the new file.
//   * Waking remote waiters with epoll tricks (shutdown(2), EPOLLHUP): only sockets have
//     shutdown, and it changes what the peer sees.
//   * One process-wide registry, shared with M:1 runtimes: they share nothing by design and
//     would pay a lock per descriptor.
//   * Asking every worker on every close (a broadcast): a system call per worker per close,
//     where almost every close has no other watcher.
//   * One lock for the whole registry: every first wait and every close of every worker would
//     contend on one line.
import CUThreads
import Glibc
import Synchronization
import SystemPackage

/// What a registry asks of the runtime that owns it (the M:N layer implements it; this layer
/// does not name it).
protocol DescriptorCloseDelegate: AnyObject {
    /// Asks `worker` to drop its entry for `fd` (waking its waiters with `.closed`) and then to
    /// call `DescriptorRegistry.answer`, on its own kernel thread. Called under `fd`'s stripe
    /// lock: it must not take a stripe lock nor block.
    func askToDrop(_ fd: Int32, worker: Int)
}

/// The workers whose reactors have an entry for one descriptor, as read under its stripe lock.
struct DescriptorWatchers {
    /// Bit i: worker i (i < 62). Bit 62: the closing mark. Bit 63: some worker ≥ 62, listed in
    /// `high`.
    var mask: UInt64 = 0
    /// Workers ≥ 62, when bit 63 is set.
    var high: [Int] = []

    /// Whether no worker watches the descriptor.
    var isEmpty: Bool { mask & ~DescriptorRegistry.closingBit == 0 }

    /// Whether a deferred close of the descriptor is pending.
    var isClosing: Bool { mask & DescriptorRegistry.closingBit != 0 }

    /// How many workers watch it.
    var count: Int { (mask & DescriptorRegistry.lowMask).nonzeroBitCount + high.count }

    /// Calls `body` with each watching worker's index, lowest first. O(count).
    func forEach(_ body: (Int) -> Void) {
        var m = mask & DescriptorRegistry.lowMask
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

/// Which workers' reactors of one M:N runtime have an entry for each descriptor number, and
/// the deferred closes in flight, under 64 striped pthread mutexes (see the essay above).
/// Shared by the runtime's workers.
final class DescriptorRegistry: @unchecked Sendable {
    static let stripeCount = 64
    /// Workers below this have their own bit.
    static let bitWorkers = 62
    /// The closing mark.
    static let closingBit: UInt64 = 1 << 62
    /// Set for workers ≥ 62 (see `DescriptorWatchers.high`).
    static let overflowBit: UInt64 = 1 << 63
    static let lowMask: UInt64 = (1 << 62) - 1
    private static let lockStride = 64

    private struct Stripe {
        /// By fd >> 6: bit i for worker i < 62, the closing mark, the overflow bit.
        var masks: [UInt64] = []
        /// Workers ≥ 62 by descriptor (only runtimes with more than 62 workers use it).
        var high: [Int32: Set<Int>] = [:]
        /// Answers still due, and the closer waiting for the close(2) if any, per descriptor
        /// marked closing.
        var pending: [Int32: (due: Int, closer: DeferredClose?)] = [:]
    }

    private let locks: UnsafeMutableRawPointer
    private let stripes: UnsafeMutablePointer<Stripe>
    /// The runtime (unowned: it owns the registry, and `finish` runs before it goes). Set
    /// once, before any other kernel thread sees the registry.
    private unowned(unsafe) var delegate: (any DescriptorCloseDelegate)?

    init() {
        precondition(MemoryLayout<pthread_mutex_t>.size <= DescriptorRegistry.lockStride)
        let n = DescriptorRegistry.stripeCount
        locks = .allocate(byteCount: n * DescriptorRegistry.lockStride, alignment: DescriptorRegistry.lockStride)
        stripes = .allocate(capacity: n)
        stripes.initialize(repeating: Stripe(), count: n)
        for i in 0..<n { pthread_mutex_init(lock(i), nil) }
    }

    /// Sets the runtime that posts the requests (before any other kernel thread sees it).
    func attach(_ delegate: any DescriptorCloseDelegate) { self.delegate = delegate }

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
    /// - Precondition: `fd >= 0`.
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

    private static func clear(_ stripe: inout Stripe, _ fd: Int32, _ slot: Int, worker: Int) {
        guard slot < stripe.masks.count else { return }
        if worker < bitWorkers {
            stripe.masks[slot] &= ~(1 << UInt64(worker))
        } else if var set = stripe.high[fd] {
            set.remove(worker)
            if set.isEmpty {
                stripe.high[fd] = nil
                stripe.masks[slot] &= ~overflowBit
            } else {
                stripe.high[fd] = set
            }
        }
    }

    // MARK: Reactors

    /// Runs `add` (the reactor's epoll_ctl ADD) under `fd`'s stripe lock and, if it returns
    /// true (the descriptor is now watched), records `worker` as watching it. O(1) amortised.
    /// - Precondition: `fd >= 0`.
    /// - Throws: `.closed` while a deferred close of `fd` is pending (nothing is added);
    ///   whatever `add` throws.
    func watch(_ fd: Int32, worker: Int, _ add: () throws(UThreadError) -> Bool) throws(UThreadError) -> Bool {
        try withStripe(fd) { (stripe, slot) throws(UThreadError) -> Bool in
            if slot < stripe.masks.count, stripe.masks[slot] & DescriptorRegistry.closingBit != 0 {
                throw .closed("descriptor \(fd) is being closed (IO.close was called on it)")
            }
            guard try add() else { return false }
            if slot >= stripe.masks.count {
                stripe.masks.append(
                    contentsOf: repeatElement(0, count: max(slot + 1, stripe.masks.count * 2) - stripe.masks.count))
            }
            if worker < DescriptorRegistry.bitWorkers {
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
        guard fd >= 0 else { return }
        withStripe(fd) { stripe, slot in DescriptorRegistry.clear(&stripe, fd, slot, worker: worker) }
    }

    // MARK: Closing

    /// What `close` did.
    enum CloseOutcome: Equatable {
        /// close(2) returned (successfully) under the lock.
        case closed
        /// Other workers watch the descriptor: they were asked to drop it (this many), and the
        /// last of them will close it.
        case deferred(Int)
    }

    /// Closes `fd` for the whole runtime (step 2 of the essay): under its stripe lock, clears
    /// `worker`'s bit (the caller's reactor has dropped its entry; nil for a closer that is
    /// not a worker), then either calls close(2) (no other watcher) or marks the descriptor
    /// closing and asks each watcher to drop it. Never waits itself; when the close is
    /// deferred, the last answer completes `closer` (if given) with close(2)'s outcome, for a
    /// caller that parks until then. O(watchers).
    /// - Throws: `.system(call: "close", …)` from close(2) (EBADF for a bad descriptor), or
    ///   EBADF when a deferred close of `fd` is already pending (a second close).
    @discardableResult
    func close(_ fd: Int32, worker: Int?, closer: DeferredClose? = nil) throws(UThreadError) -> CloseOutcome {
        guard fd >= 0 else {
            try DescriptorRegistry.systemClose(fd)  // EBADF
            return .closed
        }
        return try withStripe(fd) { (stripe, slot) throws(UThreadError) -> CloseOutcome in
            if let worker { DescriptorRegistry.clear(&stripe, fd, slot, worker: worker) }
            return try closeLocked(&stripe, fd, slot, closer: closer)
        }
    }

    /// The decision of `close`, with the stripe's lock held.
    private func closeLocked(_ stripe: inout Stripe, _ fd: Int32, _ slot: Int, closer: DeferredClose? = nil)
        throws(UThreadError) -> CloseOutcome
    {
        let watchers = DescriptorRegistry.watchers(stripe, fd, slot)
        if watchers.isClosing { throw .system(call: "close", errno: .badFileDescriptor) }
        if watchers.isEmpty {
            try DescriptorRegistry.systemClose(fd)
            return .closed
        }
        stripe.masks[slot] |= DescriptorRegistry.closingBit
        stripe.pending[fd] = (watchers.count, closer)
        watchers.forEach { delegate?.askToDrop(fd, worker: $0) }
        return .deferred(watchers.count)
    }

    /// `worker`, asked to drop `fd`, has dropped its entry (step 3 of the essay): clears its
    /// bit and counts the answer; the last answer removes the mark and calls close(2) under
    /// the lock, then (after the lock) completes the waiting closer with close(2)'s outcome.
    /// Returns close(2)'s error only when no closer waits for it (the caller reports it:
    /// nobody else can see it). O(1).
    func answer(_ fd: Int32, worker: Int) -> UThreadError? {
        guard fd >= 0 else { return nil }
        let (error, closer) = withStripe(fd) { stripe, slot -> (UThreadError?, DeferredClose?) in
            DescriptorRegistry.clear(&stripe, fd, slot, worker: worker)
            guard let (due, closer) = stripe.pending[fd] else { return (nil, nil) }  // not asked (cannot happen)
            if due > 1 {
                stripe.pending[fd] = (due - 1, closer)
                return (nil, nil)
            }
            stripe.pending[fd] = nil
            stripe.masks[slot] &= ~DescriptorRegistry.closingBit
            do throws(UThreadError) { try DescriptorRegistry.systemClose(fd) } catch { return (error, closer) }
            return (nil, closer)
        }
        guard let closer else { return error }
        closer.finish(error)
        return nil
    }

    /// The workers watching `fd` now (a snapshot, for tests and diagnostics).
    func watchers(of fd: Int32) -> DescriptorWatchers {
        guard fd >= 0 else { return DescriptorWatchers() }
        return withStripe(fd) { stripe, slot in DescriptorRegistry.watchers(stripe, fd, slot) }
    }

    /// Descriptors some worker watches or that are being closed (for leak tests).
    /// O(descriptors).
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
    /// The jacket (if the program has one) forgets the number first: it may be reused at once.
    static func systemClose(_ fd: Int32) throws(UThreadError) {
        uthreads_jacket_forget_descriptor(fd)
        if uthreads_sys_close(fd) < 0 {
            let e = Errno.lastError
            if e != .interrupted { throw .system(call: "close", errno: e) }
        }
    }

    // MARK: The registries of the process

    /// Every live registry, in creation order (for closers that are not workers).
    private static let live = KernelLock<[DescriptorRegistry]>([])
    /// `live.count`, read without the lock first (0: no M:N runtime runs).
    private static let liveCount = Atomic<Int>(0)

    /// Puts the registry on the process's list (when its runtime starts).
    func activate() {
        DescriptorRegistry.live.withLock { list in
            list.append(self)
            DescriptorRegistry.liveCount.store(list.count, ordering: .releasing)
        }
    }

    /// Takes the registry off the process's list once every worker has ended, and closes any
    /// descriptor still marked closing (none, by the invariants: returned for tests and logs).
    /// O(stripes + descriptors).
    @discardableResult
    func finish() -> [Int32] {
        DescriptorRegistry.live.withLock { list in
            list.removeAll { $0 === self }
            DescriptorRegistry.liveCount.store(list.count, ordering: .releasing)
        }
        var left: [Int32] = []
        for i in 0..<DescriptorRegistry.stripeCount {
            pthread_mutex_lock(lock(i))
            for fd in stripes[i].pending.keys {
                left.append(fd)
                // No closer can still wait: its thread ended with the runtime (and its reactor,
                // which its completion would have gone to).
                try? DescriptorRegistry.systemClose(fd)
            }
            stripes[i] = Stripe()
            pthread_mutex_unlock(lock(i))
        }
        return left
    }

    /// `IO.close(fd)` by a closer that is not a worker of an M:N runtime (see the essay): the
    /// first live registry whose workers watch `fd` closes it (deferred); if none does, close(2)
    /// under every registry's stripe lock. One atomic load when no M:N runtime runs.
    /// - Throws: `.system(call: "close", …)` (EBADF for a bad descriptor or a second close).
    static func closeOutsideWorkers(_ fd: Int32) throws(UThreadError) {
        guard fd >= 0, liveCount.load(ordering: .acquiring) > 0 else { return try systemClose(fd) }
        try live.withLock { (list: inout [DescriptorRegistry]) throws(UThreadError) in
            _ = try closeThrough(fd, list[...])
        }
    }

    private static func closeThrough(_ fd: Int32, _ rest: ArraySlice<DescriptorRegistry>) throws(UThreadError)
        -> CloseOutcome
    {
        guard let registry = rest.first else {
            try systemClose(fd)
            return .closed
        }
        return try registry.withStripe(fd) { (stripe, slot) throws(UThreadError) -> CloseOutcome in
            let watchers = DescriptorRegistry.watchers(stripe, fd, slot)
            if watchers.isEmpty && !watchers.isClosing { return try closeThrough(fd, rest.dropFirst()) }
            return try registry.closeLocked(&stripe, fd, slot)
        }
    }
}

/// The completion a closer parks on while its close is deferred (`Reactor.closeEverywhere`):
/// the last watcher's answer calls close(2) and then `finish`, which posts it to the closer's
/// reactor like an offload's completion. Shown in the thread table as the closer's wait.
final class DeferredClose: OffloadJob, WaitTarget, @unchecked Sendable {
    let fd: Int32
    /// close(2)'s error, set once by `finish` before the completion is posted.
    private(set) var error: UThreadError?

    init(fd: Int32) { self.fd = fd }

    /// Called once, by the last answer, on its worker's kernel thread; the post (under the
    /// mailbox's lock) orders `error` before the closer reads it.
    func finish(_ error: UThreadError?) {
        self.error = error
        postCompletion()
    }

    /// "close of descriptor 7 (other workers still watch it)", for the thread table.
    func waitDescription(kind: WaitReason.Kind) -> String {
        "close of descriptor \(fd) (waiting for the other workers that watch it to let go)"
    }

    /// Nobody holds a descriptor: no wait-for edge.
    var holders: [ThreadID] { [] }
}
