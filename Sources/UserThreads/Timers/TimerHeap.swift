// Layer 5: deadlines of parked threads.
//
// Design. An indexed binary min-heap of control blocks keyed by `deadline_ns`; each thread
// records its position in `timer_index`, so a wake-up by any other source cancels its timer in
// O(log n) without a search. Insert, cancel and pop are O(log n), the next deadline O(1). A
// million sleeping threads cost 8 MB of heap array and ~20 comparisons per operation.
//
// Rejected: a hierarchical timing wheel (O(1) insert, but the scheduler needs the exact next
// deadline to size its epoll_wait, which a wheel gives only by scanning; and cancel-heavy
// workloads—every I/O wait with a deadline that is met—gain nothing); a sorted list (O(n)
// insert); swift-collections' Heap (no removal of an arbitrary element by handle).
//
// Layering: this is a data structure over control blocks (layer 3); the scheduler owns one and
// decides what a fired timer means.
import CUThreads

struct TimerHeap {
    private var items: [ControlBlock] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }

    /// The earliest deadline, if any. O(1).
    var nextDeadline: UInt64? { items.first?.pointee.deadline_ns }

    /// Adds `t` with its `deadline_ns` already set. O(log n).
    mutating func insert(_ t: ControlBlock) {
        precondition(!t.has(.flagTimer), "TimerHeap: thread already has a timer")
        t.set(.flagTimer)
        items.append(t)
        t.pointee.timer_index = UInt32(items.count - 1)
        siftUp(items.count - 1)
    }

    /// Removes `t`'s timer if it has one. O(log n).
    mutating func remove(_ t: ControlBlock) {
        guard t.has(.flagTimer) else { return }
        let i = Int(t.pointee.timer_index)
        t.clear(.flagTimer)
        let last = items.removeLast()
        if i < items.count {
            items[i] = last
            last.pointee.timer_index = UInt32(i)
            siftDown(i)
            siftUp(Int(last.pointee.timer_index))
        }
    }

    /// Removes and returns the earliest thread whose deadline is ≤ `now`. O(log n).
    mutating func popExpired(now: UInt64) -> ControlBlock? {
        guard let first = items.first, first.pointee.deadline_ns <= now else { return nil }
        remove(first)
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let t = items[i]
        let key = t.pointee.deadline_ns
        while i > 0 {
            let parent = (i - 1) / 2
            let p = items[parent]
            if p.pointee.deadline_ns <= key { break }
            items[i] = p
            p.pointee.timer_index = UInt32(i)
            i = parent
        }
        items[i] = t
        t.pointee.timer_index = UInt32(i)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let t = items[i]
        let key = t.pointee.deadline_ns
        let n = items.count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && items[l + 1].pointee.deadline_ns < items[l].pointee.deadline_ns { c = l + 1 }
            if key <= items[c].pointee.deadline_ns { break }
            items[i] = items[c]
            items[i].pointee.timer_index = UInt32(i)
            i = c
        }
        items[i] = t
        t.pointee.timer_index = UInt32(i)
    }

    /// Debug check: the heap property and every back-index. O(n).
    func checkInvariants() {
        for (i, t) in items.enumerated() {
            precondition(Int(t.pointee.timer_index) == i, "TimerHeap: stale index at \(i)")
            precondition(t.has(.flagTimer), "TimerHeap: entry without the timer flag")
            if i > 0 {
                precondition(
                    items[(i - 1) / 2].pointee.deadline_ns <= t.pointee.deadline_ns,
                    "TimerHeap: heap order broken at \(i)")
            }
        }
    }
}
