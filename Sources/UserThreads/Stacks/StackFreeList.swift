// Layer 3: a LIFO of free stacks.

/// A growable LIFO of `Stack` values without copy-on-write or bounds checks on the hot path
/// (a Swift Array's push/pop cost ~25 instructions each here, a third of a pooled spawn's
/// stack handling). Owned by one `StackPool`; never copied. push and pop are O(1) amortised.
struct StackFreeList {
    private var base: UnsafeMutablePointer<Stack>?
    private var capacity = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func push(_ stack: Stack) {
        if count == capacity { grow() }
        (base.unsafelyUnwrapped + count).initialize(to: stack)  // grown above
        count &+= 1
    }

    @inline(__always)
    mutating func pop() -> Stack? {
        guard count > 0 else { return nil }
        count &-= 1
        return (base.unsafelyUnwrapped + count).move()  // count > 0: allocated
    }

    private mutating func grow() {
        let newCapacity = max(64, capacity * 2)
        let newBase = UnsafeMutablePointer<Stack>.allocate(capacity: newCapacity)
        if let base {
            newBase.moveInitialize(from: base, count: count)
            base.deallocate()
        }
        base = newBase
        capacity = newCapacity
    }

    /// Calls `body` for every stack, then empties the list.
    mutating func drain(_ body: (Stack) -> Void) {
        while let s = pop() { body(s) }
    }

    /// Frees the list's own storage (not the stacks).
    mutating func deallocate() {
        base?.deallocate()
        base = nil
        capacity = 0
        count = 0
    }
}
