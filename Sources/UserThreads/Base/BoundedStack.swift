// Layer 1: the fixed-capacity stack a scheduler keeps finished threads' parts in for its next
// spawns (ThreadTable/ThreadObjectSlab.swift and ThreadTable/KeptThreadObjects.swift say what
// each keeps and why a stack of raw slots, not a Swift Array: its append and popLast check
// uniqueness and capacity on every call).

/// A last-in-first-out stack of at most `capacity` elements in one allocation, touched only by
/// its owner's kernel thread. The owner empties it (`take` until nil) and then calls
/// `deallocate`; a stored struct, so the spawn and exit paths pay no extra load.
struct BoundedStack<Element> {
    /// The most elements kept.
    static var capacity: Int {
        @inline(__always) get { 1024 }
    }
    private let slots = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
    /// Elements kept now.
    private(set) var count = 0

    /// Whether `keep` has no room.
    var isFull: Bool {
        @inline(__always) get { count == Self.capacity }
    }

    /// Keeps `element`. Must not be full. O(1).
    @inline(__always)
    mutating func keep(_ element: Element) {
        (slots + count).initialize(to: element)
        count &+= 1  // below `capacity`
    }

    /// The most recently kept element, if any. O(1).
    @inline(__always)
    mutating func take() -> Element? {
        guard count > 0 else { return nil }
        count &-= 1
        return (slots + count).move()
    }

    /// Frees the slots. The stack must be empty, and is unusable after it.
    mutating func deallocate() {
        precondition(count == 0, "BoundedStack: deallocated with \(count) elements kept")
        slots.deallocate()
    }
}
