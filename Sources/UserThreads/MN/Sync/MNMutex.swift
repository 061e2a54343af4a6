// Layer 11: the M:N mutex — FIFO handoff between threads on any worker.
//
// Design: the owner's thread id and a FIFO of waiters behind the object's KernelLock. unlock
// hands the mutex to the first waiter (it becomes the owner before it runs: no barging, no
// starvation) and wakes it after releasing the lock. A waiter whose wait ends by timeout or
// cancellation withdraws; if it was already handed the mutex, it keeps it and returns (the
// wake wins, see MNSyncSupport.swift). MNCondition reacquires through `lockUncancellable`.
import CUThreads

/// A mutex for M:N threads on any worker. FIFO handoff to waiters, like `UMutex`.
///
/// ```swift
/// try UThreadRuntime.run(workers: 2) {
///     let m = MNMutex(name: "counter")
///     let counter = Counter()                       // some Sendable box
///     let ts = (0..<4).map { _ in UThread { for _ in 0..<1000 { try m.withLock { counter.bump() } } } }
///     for t in ts { try t.join() }
/// }
/// ```
public final class MNMutex: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var owner: UInt64 = 0  // thread id; 0 when free
        var waiters = MNFIFO<(MNWaiter, UInt64)>()
        mutating func releaseToNext() -> MNWaiter? {
            if let (w, id) = waiters.pop() {
                owner = id
                return w
            }
            owner = 0
            return nil
        }
    }
    private let state = KernelLock(State())
    /// Shown in wait reasons and deadlock reports.
    public let name: String
    /// A process-wide id, shown when the mutex has no name.
    public let id: UInt64

    /// An unlocked mutex usable from every worker of an M:N runtime.
    /// - Parameter name: shown in wait reasons and deadlock reports.
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Acquires the mutex, parking while another thread holds it. O(1) (O(waiters) to give up).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock).
    public func lock(timeout: Duration? = nil) throws {
        try lock(mnCurrentThread("MNMutex.lock"), deadline: mnDeadline(timeout), cancellable: true)
    }

    /// Reacquires for `MNCondition.wait`: no deadline, cancellation ignored.
    func lockUncancellable(_ me: UInt64) throws {
        try lock(me, deadline: nil, cancellable: false)
    }

    private func lock(_ me: UInt64, deadline: UInt64?, cancellable: Bool) throws {
        let result = try mnWait(
            "MNMutex.lock", .mutex, object: id, target: self, deadline: deadline, cancellable: cancellable,
            register: { waiter in
                try state.withLock { st throws(UThreadError) -> Bool in
                    if st.owner == 0 {
                        st.owner = me
                        return false
                    }
                    if st.owner == me { throw .invalidArgument("MNMutex.lock: thread #\(me) already holds \(label)") }
                    st.waiters.push((waiter, me))
                    return true
                }
            },
            withdraw: { waiter in
                state.withLock { st in st.waiters.remove { $0.0 == waiter } ? nil : .woken }  // else: handed over
            })
        try result?.check()
    }

    /// Acquires the mutex if it is free; never waits.
    public func tryLock() -> Bool {
        let me = mnCurrentThread("MNMutex.tryLock")
        return state.withLock { st in
            guard st.owner == 0 else { return false }
            st.owner = me
            return true
        }
    }

    /// Releases the mutex; the first waiter becomes the owner. O(1).
    /// - Throws: `.invalidArgument` if the caller does not hold it.
    public func unlock() throws {
        let me = mnCurrentThread("MNMutex.unlock")
        let next = try state.withLock { st throws(UThreadError) -> MNWaiter? in
            guard st.owner == me else { throw .invalidArgument("MNMutex.unlock: thread #\(me) does not hold \(label)") }
            return st.releaseToNext()
        }
        if let next { mnWake(CollectionOfOne(next)) }
    }

    /// Releases a mutex the caller was checked to hold (MNCondition.wait).
    func unlockOwned() {
        if let next = state.withLock({ $0.releaseToNext() }) { mnWake(CollectionOfOne(next)) }
    }

    /// Whether thread `me` holds the mutex.
    func isHeld(by me: UInt64) -> Bool { state.withLock { $0.owner == me } }

    /// Runs `body` holding the mutex.
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { try? unlock() }
        return try body()
    }

    /// Whether some thread holds it (a snapshot).
    public var isLocked: Bool { state.withLock { $0.owner != 0 } }

    var label: String { syncLabel("mutex", name: name, id: id) }

    /// "mutex 'db' held by #12, 2 waiting", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let (owner, waiting) = state.withLock { ($0.owner, $0.waiters.count) }
        return label + (owner == 0 ? " (free)" : " held by \(mnThreadLabel(owner))")
            + (waiting > 0 ? ", \(waiting) waiting" : "")
    }

    /// The owner, for wait-for cycles.
    public var holders: [ThreadID] {
        let owner = state.withLock { $0.owner }
        return owner == 0 ? [] : [ThreadID(rawValue: owner)]
    }

    public var description: String { "MNMutex(\(label)\(isLocked ? ", locked" : ""))" }
}
