// Layer 4: what a parked thread waits for, as the thread table and the deadlock report show it.
import CUThreads

/// What a blocked thread waits for. `kind` and `object` live in the control block (cheap to set
/// on every park); `detail` is an optional object asked for a description only when a table is
/// rendered, so a park never formats a string.
public struct WaitReason: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The kind of thing waited for. The raw value is kept in the control block (and read by
    /// the debugger scripts, whose lists follow this order). In JSON a kind is its case name
    /// (`"sleep"`, `"channelReceive"`); the first JSON format (no `"version"` key) wrote the raw
    /// value, which decoding still accepts.
    public enum Kind: UInt8, Sendable, Codable, CaseIterable {
        /// Not waiting.
        case none = 0
        /// For a thread to finish (`object`: its id).
        case join
        /// For a deadline only.
        case sleep
        /// For a mutex (`object`: the lock's id).
        case mutex
        /// On a condition variable.
        case condition
        /// For a semaphore permit.
        case semaphore
        /// For a reader-writer lock.
        case rwlock
        /// For room in a channel.
        case channelSend
        /// For a value from a channel.
        case channelReceive
        /// On several channel operations at once.
        case select
        /// For a wait group to reach zero.
        case waitGroup
        /// For the other parties of a barrier.
        case barrier
        /// For another thread's run of a once-initialiser.
        case once
        /// For a descriptor to become readable (`object`: the fd).
        case read
        /// For a descriptor to become writable (`object`: the fd).
        case write
        /// For a connection on a listening socket (`object`: the fd).
        case accept
        /// For a connect to complete (`object`: the fd).
        case connect
        /// For events on a descriptor (`object`: the fd).
        case poll
        /// For a call that cannot be made non-blocking, run on a kernel thread meanwhile.
        case offload
        /// For an async function (Swift concurrency) to complete.
        case async
        /// For something else a library defines.
        case custom

        /// A short human name ("channel send", "blocking call").
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

        /// The name JSON uses: the case's name ("channelSend").
        public var jsonName: String { String(describing: self) }

        /// Decodes a case name, or the raw number the first JSON format wrote; anything else is
        /// a clear error.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let name = try? c.decode(String.self) {
                guard let kind = Kind.allCases.first(where: { $0.jsonName == name }) else {
                    throw DecodingError.dataCorruptedError(
                        in: c,
                        debugDescription:
                            "unknown wait reason kind \"\(name)\" (known: \(Kind.allCases.map(\.jsonName).joined(separator: ", ")))"
                    )
                }
                self = kind
            } else {
                let raw = try c.decode(UInt8.self)
                guard let kind = Kind(rawValue: raw) else {
                    throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown wait reason kind \(raw)")
                }
                self = kind
            }
        }

        /// Encodes the case name.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(jsonName)
        }
    }

    /// What kind of thing is waited for.
    public var kind: Kind
    /// A thread id for `join`, a descriptor for I/O, an object id for sync primitives.
    public var object: UInt64
    /// A longer description (e.g. "mutex 'accounts' held by #12"), when the waited-on object
    /// gives one.
    public var detail: String?

    /// Set in `object` above the descriptor number when the wait is a jacketed C call's
    /// (UserThreadsJacket): the table shows `read fd 7 (jacket)`, or `sleep (jacket)`.
    public static let jacketFlag: UInt64 = 1 << 32

    /// A reason; the runtime makes them from the control block, tests and tools may too.
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
        case .read, .write, .accept, .connect, .poll:
            let fd = "\(kind.label) fd \(object & 0xFFFF_FFFF)"
            return object & WaitReason.jacketFlag != 0 ? fd + " (jacket)" : fd
        case .sleep: return object & WaitReason.jacketFlag != 0 ? "sleep (jacket)" : "sleep"
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
