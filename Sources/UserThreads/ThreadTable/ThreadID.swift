// Layer 4: thread identity.
import Synchronization

/// A user thread's id: unique within the process for its whole life, never reused (even after
/// the thread finished and its table slot was recycled). Printed as `#12`.
public struct ThreadID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "#\(rawValue)" }
    public static func < (a: ThreadID, b: ThreadID) -> Bool { a.rawValue < b.rawValue }
}

/// Hands out ids. Each runtime takes a block of ids from the process-wide counter at a time, so
/// that a spawn costs no atomic operation and runtimes on different kernel threads never share
/// an id. O(1).
struct ThreadIDAllocator {
    private static let next = Atomic<UInt64>(1)
    private static let block: UInt64 = 4096
    private var current: UInt64 = 0
    private var end: UInt64 = 0

    /// One id straight from the process-wide counter, for a spawn on a kernel thread that has
    /// no runtime of its own (an M:N runtime's main thread, a spawn through its handle): one
    /// atomic add.
    static func allocateShared() -> UInt64 {
        next.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    mutating func allocate() -> UInt64 {
        if current == end {
            current = Self.next.wrappingAdd(Self.block, ordering: .relaxed).oldValue
            end = current + Self.block
        }
        defer { current &+= 1 }  // below `end`: cannot overflow
        return current
    }
}
