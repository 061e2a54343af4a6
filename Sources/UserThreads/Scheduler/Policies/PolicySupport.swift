// Layer 6: pieces the built-in policies share — a seeded random source and a keyed min-heap.

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator whose whole state is
/// one word, so a policy seeded with the same value makes the same choices on every run.
/// Passes BigCrush; not for cryptography.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// A generator whose sequence is determined by `seed`: equal seeds give equal sequences.
    /// Any value is valid, including 0.
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<bound (bound > 0), without modulo bias (Lemire's method).
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let t = (0 &- bound) % bound
            while m.low < t { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}

/// A binary min-heap of ready threads keyed by (key, arrival sequence): ties go to the thread
/// that became ready first, so orders are deterministic. Insert and popMin O(log n), min O(1).
struct KeyedThreadHeap {
    struct Entry {
        var key: UInt64
        var seq: UInt64
        var thread: ThreadRef
        @inline(__always) func less(_ o: Entry) -> Bool { key != o.key ? key < o.key : seq < o.seq }
    }
    private(set) var items: [Entry] = []
    private var seq: UInt64 = 0

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var min: Entry? { items.first }

    /// Inserts with a fresh arrival sequence number (returned), or with `seq` to keep an
    /// earlier place among equal keys.
    @discardableResult
    mutating func insert(_ t: ThreadRef, key: UInt64, seq given: UInt64? = nil) -> UInt64 {
        if given == nil { seq &+= 1 }
        let s = given ?? seq
        items.append(Entry(key: key, seq: s, thread: t))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !items[i].less(items[p]) { break }
            items.swapAt(i, p)
            i = p
        }
        return s
    }

    mutating func popMin() -> Entry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown(0)
        }
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < items.count && items[l].less(items[m]) { m = l }
            if r < items.count && items[r].less(items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
    }

    /// Removes up to `max` entries whose thread satisfies `take`, the largest keys first (the
    /// threads that would run last; M:N migration), and returns them. O(n log n).
    mutating func removeLargest(max: Int, where take: (ThreadRef) -> Bool) -> [Entry] {
        guard max > 0 else { return [] }
        let chosen = Set(
            items.indices.filter { take(items[$0].thread) }.sorted { items[$1].less(items[$0]) }.prefix(max))
        guard !chosen.isEmpty else { return [] }
        var taken: [Entry] = []
        var kept: [Entry] = []
        kept.reserveCapacity(items.count - chosen.count)
        for i in items.indices {
            if chosen.contains(i) { taken.append(items[i]) } else { kept.append(items[i]) }
        }
        items = kept
        for i in stride(from: items.count / 2 - 1, through: 0, by: -1) { siftDown(i) }  // Floyd's heapify: O(n)
        return taken
    }

    func checkInvariants(_ name: String) {
        for i in items.indices.dropFirst() {
            precondition(!items[i].less(items[(i - 1) / 2]), "\(name): heap order broken at \(i)")
        }
        for e in items {
            precondition(
                e.thread.block.pointee.state == .stateReady, "\(name): queued thread \(e.thread.id) is not ready")
        }
    }
}

extension Duration {
    /// Throws `UThreadError.invalidArgument` naming `what` unless the duration is positive.
    package func requirePositive(_ what: @autoclosure () -> String) throws(UThreadError) {
        guard self > .zero else { throw .invalidArgument("\(what()) must be positive, not \(self)") }
    }
}
