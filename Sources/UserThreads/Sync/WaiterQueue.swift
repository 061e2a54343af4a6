// Layer 8: the FIFO of waiters every primitive keeps (the essay: SyncSupport.swift).

/// A FIFO with O(1) push and pop (amortised) and O(n) removal, for an object's waiters
/// (`Waiter` plus what the primitive needs to know of each). Inlinable: primitives' paths are
/// specialised in their callers.
@usableFromInline
struct WaiterQueue<Element> {
    @usableFromInline var items: [Element] = []
    @usableFromInline var head = 0

    @inlinable init() {}

    @inlinable var count: Int { items.count - head }
    @inlinable var isEmpty: Bool { head == items.count }

    @inlinable mutating func push(_ e: Element) { items.append(e) }

    @inlinable mutating func pop() -> Element? {
        guard head < items.count else { return nil }
        let e = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }

    /// Removes the first element matching `predicate`; false when none does. O(n).
    @inlinable mutating func remove(where predicate: (Element) -> Bool) -> Bool {
        guard let i = items[head...].firstIndex(where: predicate) else { return false }
        items.remove(at: i)
        return true
    }

    /// The next element `pop` would return.
    @inlinable var first: Element? { head < items.count ? items[head] : nil }

    /// Removes and returns every element, oldest first.
    @inlinable mutating func popAll() -> [Element] {
        let all = Array(items[head...])
        items.removeAll()
        head = 0
        return all
    }

    /// The elements, oldest first (for descriptions).
    var elements: ArraySlice<Element> { items[head...] }
}
