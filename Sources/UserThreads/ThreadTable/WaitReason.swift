// Layer 3: what a parked thread waits for, as the thread table and the deadlock report show it.
import CUThreads

/// What a blocked thread waits for. `kind` and `object` live in the control block (cheap to set
/// on every park); `detail` is an optional object asked for a description only when a table is
/// rendered, so a park never formats a string.
public struct WaitReason: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable, Codable, CaseIterable {
        case none = 0
        case join, sleep, mutex, condition, semaphore, rwlock
        case channelSend, channelReceive, select, waitGroup, barrier, once
        case read, write, accept, connect, poll
        case offload, async, custom

        public var label: String {
            switch self {
            case .none: "-"
            case .join: "join"
            case .sleep: "sleep"
            case .mutex: "mutex"
            case .condition: "condition"
            case .semaphore: "semaphore"
            case .rwlock: "rwlock"
            case .channelSend: "channel send"
            case .channelReceive: "channel receive"
            case .select: "select"
            case .waitGroup: "wait group"
            case .barrier: "barrier"
            case .once: "once"
            case .read: "read"
            case .write: "write"
            case .accept: "accept"
            case .connect: "connect"
            case .poll: "poll"
            case .offload: "blocking call"
            case .async: "async"
            case .custom: "wait"
            }
        }
    }

    public var kind: Kind
    /// A thread id for `join`, a descriptor for I/O, an object id for sync primitives.
    public var object: UInt64
    /// A longer description (e.g. "mutex 'accounts' held by #12"), when the waited-on object
    /// gives one.
    public var detail: String?

    public init(kind: Kind, object: UInt64 = 0, detail: String? = nil) {
        self.kind = kind
        self.object = object
        self.detail = detail
    }

    public var description: String {
        if let detail { return detail }
        switch kind {
        case .none: return "-"
        case .join: return "join #\(object)"
        case .read, .write, .accept, .connect, .poll: return "\(kind.label) fd \(object)"
        case .sleep: return "sleep"
        default: return object == 0 ? kind.label : "\(kind.label) \(object)"
        }
    }
}

/// Something threads wait on that can describe itself for the thread table and name the
/// threads that hold it, for deadlock cycles (a mutex names its holder).
public protocol WaitTarget: AnyObject {
    /// A description such as "mutex 'db' held by #12".
    func waitDescription(kind: WaitReason.Kind) -> String
    /// Threads whose progress would release a waiter (a lock's holder). Empty when unknown.
    var holders: [ThreadID] { get }
}

extension WaitTarget {
    public var holders: [ThreadID] { [] }
}
