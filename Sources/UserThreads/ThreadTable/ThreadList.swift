// Layer 4: intrusive lists of control blocks — the run queue and every wait queue.
//
// A thread is on at most one list at a time (see ThreadState.swift), so one pair of links in
// its control block serves every queue, and enqueueing never allocates. All operations O(1) but the walks (`forEach`, `removeFromBack`).
import CUThreads

/// A FIFO of threads linked through their control blocks' `next`/`prev`.
public struct ThreadList {
    var head: ControlBlock?
    var tail: ControlBlock?
    /// Threads linked.
    public private(set) var count = 0

    /// An empty list.
    public init() {}

    /// Whether no thread is linked.
    public var isEmpty: Bool { head == nil }

    @inline(__always)
    mutating func append(_ t: ControlBlock) {
        t.pointee.next = nil
        t.pointee.prev = tail
        if let tail { tail.pointee.next = t } else { head = t }
        tail = t
        count &+= 1  // wrapping: a list cannot hold Int.max rows (no overflow check on the hot path)
    }

    @inline(__always)
    mutating func prepend(_ t: ControlBlock) {
        t.pointee.prev = nil
        t.pointee.next = head
        if let head { head.pointee.prev = t } else { tail = t }
        head = t
        count &+= 1
    }

    @inline(__always)
    mutating func popFirst() -> ControlBlock? {
        guard let t = head else { return nil }
        head = t.pointee.next
        if let head { head.pointee.prev = nil } else { tail = nil }
        t.pointee.next = nil
        count &-= 1
        return t
    }

    /// Unlinks `t`, which must be on this list.
    @inline(__always)
    mutating func remove(_ t: ControlBlock) {
        if let p = t.pointee.prev { p.pointee.next = t.pointee.next } else { head = t.pointee.next }
        if let n = t.pointee.next { n.pointee.prev = t.pointee.prev } else { tail = t.pointee.prev }
        t.pointee.next = nil
        t.pointee.prev = nil
        count &-= 1
    }

    var first: ControlBlock? { head }

    /// Walks the list front to back. O(n).
    func forEach(_ body: (ControlBlock) throws -> Void) rethrows {
        var t = head
        while let c = t {
            t = c.pointee.next
            try body(c)
        }
    }

    /// Debug check: links are consistent and the count matches. O(n).
    /// Unlinks up to `max` threads for which `take` is true, walking from the back (the
    /// threads that would run last), and returns them back to front. O(n).
    mutating func removeFromBack(max: Int, where take: (ControlBlock) -> Bool) -> [ControlBlock] {
        var taken: [ControlBlock] = []
        var t = tail
        while let c = t, taken.count < max {
            t = c.pointee.prev
            if take(c) {
                remove(c)
                taken.append(c)
            }
        }
        return taken
    }

    func checkInvariants() {
        var n = 0
        var prev: ControlBlock? = nil
        var t = head
        while let c = t {
            precondition(c.pointee.prev == prev, "ThreadList: broken prev link")
            prev = c
            t = c.pointee.next
            n += 1
        }
        precondition(prev == tail, "ThreadList: tail is not the last element")
        precondition(n == count, "ThreadList: count \(count) but \(n) linked")
    }
}

/// A queue of parked threads owned by one waitable thing (a mutex, a channel, a thread being
/// joined). Its identity is stable (a class), so a parked thread's control block records which
/// queue it is on (`wait_queue`), and a timeout or cancel() can unlink it at once: a cancelled
/// waiter leaves no trace. Wake order is FIFO.
public class WaitQueue {
    @exclusivity(unchecked) var list = ThreadList()

    /// A queue with no waiters.
    public init() {}

    /// Whether no thread waits.
    public var isEmpty: Bool { list.isEmpty }
    /// Threads waiting.
    public var count: Int { list.count }

    @inline(__always)
    func enqueue(_ t: ControlBlock) {
        list.append(t)
        t.pointee.wait_queue = Unmanaged.passUnretained(self).toOpaque()
    }

    /// The first waiter, unlinked. O(1).
    @inline(__always)
    func dequeue() -> ControlBlock? {
        guard let t = list.popFirst() else { return nil }
        t.pointee.wait_queue = nil
        return t
    }

    /// Unlinks `t` if it is on this queue. O(1).
    @inline(__always)
    func remove(_ t: ControlBlock) {
        guard t.pointee.wait_queue == Unmanaged.passUnretained(self).toOpaque() else { return }
        list.remove(t)
        t.pointee.wait_queue = nil
    }

    /// Unlinks `t` from whichever queue it is on. O(1).
    static func unlink(_ t: ControlBlock) {
        guard let q = t.pointee.wait_queue else { return }
        Unmanaged<WaitQueue>.fromOpaque(q).takeUnretainedValue().remove(t)
    }
}
