// Layer 1: the FIFO every queue of jobs and waiters uses.

/// A FIFO with O(1) push and pop (amortised) and O(n) removal, for queues of jobs and of an
/// object's waiters. Inlinable: the primitives' and channels' paths are specialised in their
/// callers.
@usableFromInline
struct FIFO<Element> {
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

    /// Removes and returns the newest element. O(1).
    @inlinable mutating func popLast() -> Element? {
        guard head < items.count else { return nil }
        let e = items.removeLast()
        if head == items.count {
            items.removeAll(keepingCapacity: true)
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

    /// Removes and returns every element.
    @inlinable mutating func popAll() -> [Element] {
        let all = Array(items[head...])
        items.removeAll()
        head = 0
        return all
    }
}
