// Layer 10: a worker's queue of not-started M:N threads — pushed by its owner without a lock.
//
// Design. Every `UThread { … }` spawned on a worker goes here until the worker starts it (its
// refill before a park, its idle pass) or an idle worker steals it (MNWorker.swift, "Spawn and
// join, cheaply"). A spawn is the hot path, and only the owner pushes (a spawn runs on its
// worker's kernel thread, with no park between the spawn and the push): so the push is
// Go's `runqput`, a ring of slots with a `tail` only the owner writes, and no lock. Takers (the
// owner's refill and thieves) take from the `head`, oldest first, one batch per lock: they are
// serialised by a pthread mutex among themselves, never with the push.
//
// Orderings. The push writes its slot, then stores `tail` (release: the slot is visible to a
// taker that loads `tail` with acquire); a taker reads its slots, then stores `head` (release:
// the owner, which loads `head` with acquire before it fills a slot, never overwrites one still
// being read). The push's store of `tail` is sequentially consistent because the spawner then
// reads the runtime's sleeper count to decide whether to ring (MNRuntime.enqueue), while a
// worker going to sleep announces it, then reads the counts: one of the two sees the other.
// `count` is `tail - head`, read in that order (never negative); `activity` is `head + tail`,
// which changes with every push and take: a thief that sees it unchanged for a while knows the
// queue's owner is not working on it (MNWorker.steal), without the owner writing anything more.
//
// Full (4,096 threads queued): `push` says so, and the spawner starts the thread at once on its
// own worker instead (as under a policy that orders its threads: it then reaches idle workers by
// migration). A burst larger than the ring does what the one-worker runtime does with every
// spawn.
//
// Rejected: the previous queue, a FIFO under a pthread mutex with a separate count and activity
// counter (a lock, an array append that tests uniqueness and capacity, and a sequentially
// consistent read-modify-write per spawn: ~100 instructions of the spawn path, and its lines
// written by the owner on every spawn and polled by thieves); thieves taking the newest
// threads from the tail (the owner's push would then need a compare-and-swap on `tail` and the
// takers one on each end: Go also steals from the head); an unbounded ring (a reallocation
// under a concurrent taker needs a lock on the push again).
import CUThreads
import Synchronization

/// The queue of a worker's not-started M:N threads: owner-only `push` without a lock, `take`
/// and `steal` by any worker under one. Each queued object is held +1 by its slot.
final class MNSpawnQueue: @unchecked Sendable {
    /// Slots in the ring (a power of two).
    static let capacity = 4096
    private static let mask = capacity - 1
    private let slots = UnsafeMutablePointer<Unmanaged<MNThreadObject>>.allocate(capacity: capacity)
    /// Serialises takers (never the push); only its `lock`/`unlock` are used (ThreadSanitizer
    /// reported the inout access to an empty value that `withLock` makes as a race).
    private let takers = KernelLock(())
    private let padding0: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// The next slot to take: written by takers under `takers`, read by the owner's push.
    private let head = Atomic<Int>(0)
    private let padding1: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// The next slot to fill: written by the owner only.
    private let tail = Atomic<Int>(0)
    private let padding2: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    deinit {
        // None after a clean end: the workers ran them.
        let h = head.load(ordering: .relaxed)
        for i in h..<tail.load(ordering: .relaxed) { slots[i & Self.mask].release() }
        slots.deallocate()
    }

    /// Threads queued now (a hint for anyone; exact for takers under the lock). Sequentially
    /// consistent loads: the sleep re-check and the deadlock census read it.
    var count: Int {
        let h = head.load(ordering: .sequentiallyConsistent)
        return tail.load(ordering: .sequentiallyConsistent) &- h
    }

    /// Whether a thread is queued (relaxed: the spin's poll).
    var isEmptyHint: Bool { tail.load(ordering: .relaxed) == head.load(ordering: .relaxed) }

    /// Changes with every push and take (see the essay); with `takesOnly`, only with takes.
    func activity(takesOnly: Bool) -> Int {
        let h = head.load(ordering: .relaxed)
        return takesOnly ? h : h &+ tail.load(ordering: .relaxed)
    }

    /// Queues `object` (owner only); false, and nothing queued, when the ring is full. O(1).
    @inline(__always)
    func push(_ object: MNThreadObject) -> Bool {
        let u = Unmanaged.passRetained(object)
        if push(retained: u) { return true }
        u.release()
        return false
    }

    /// `push` of an object the caller holds +1 on, which the slot takes over (the spawn's:
    /// MNThreadObject.forSpawn); false when the ring is full, the +1 still the caller's. O(1).
    @inline(__always)
    func push(retained object: Unmanaged<MNThreadObject>) -> Bool {
        let t = tail.load(ordering: .relaxed)  // only this kernel thread writes it
        guard t &- head.load(ordering: .acquiring) < Self.capacity else { return false }
        (slots + (t & Self.mask)).initialize(to: object)
        tail.store(t &+ 1, ordering: .sequentiallyConsistent)
        return true
    }

    /// Moves up to `max` of the oldest threads into `buffer[0..<n]`, oldest first, each with its
    /// +1; returns n. Any worker. O(taken).
    func take(max: Int, into buffer: UnsafeMutablePointer<Unmanaged<MNThreadObject>>) -> Int {
        takers.lock()
        defer { takers.unlock() }
        return takeLocked(max: max, buffer)
    }

    /// Moves half of the queued threads (rounded up, at most `max`) into `buffer`, as `take`:
    /// a thief's batch. O(taken).
    func steal(max: Int, into buffer: UnsafeMutablePointer<Unmanaged<MNThreadObject>>) -> Int {
        takers.lock()
        defer { takers.unlock() }
        let n = tail.load(ordering: .acquiring) &- head.load(ordering: .relaxed)
        return takeLocked(max: Swift.min(max, (n + 1) / 2), buffer)
    }

    private func takeLocked(max: Int, _ buffer: UnsafeMutablePointer<Unmanaged<MNThreadObject>>) -> Int {
        let h = head.load(ordering: .relaxed)  // only takers write it, under the lock
        let n = Swift.min(max, tail.load(ordering: .acquiring) &- h)
        guard n > 0 else { return 0 }
        for i in 0..<n { buffer[i] = slots[(h &+ i) & Self.mask] }
        head.store(h &+ n, ordering: .releasing)
        return n
    }
}
