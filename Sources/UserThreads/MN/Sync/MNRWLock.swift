// Layer 11: M:N read–write locks without writer starvation.
//
// Design: as URWLock — the writer (a thread id) or a set of readers (id → recursion count),
// and two FIFOs of waiters, behind the object's KernelLock. Phases alternate:
//   * a reader arriving while a writer holds the lock *or waits* queues — a stream of readers
//     cannot starve a writer;
//   * when a writer unlocks, every waiting reader is admitted at once (one read phase), else
//     the next writer gets the lock — a stream of writers cannot starve readers either;
//   * when the last reader unlocks, the first waiting writer gets the lock.
// Ownership is handed over before the woken thread runs: no barging. A waiting writer that
// gives up (timeout, cancellation) may have been all that held queued readers back: it admits
// them as it leaves. A waiter that gives up just as it is admitted keeps the lock and returns
// normally (the wake wins).
import CUThreads

/// A read–write lock for M:N threads on any worker: many readers or one writer, writers not
/// starved.
public final class MNRWLock: Sendable, WaitTarget, CustomStringConvertible {
    struct State {
        var writer: UInt64 = 0
        var readers: [UInt64: Int] = [:]
        var readQueue = MNFIFO<(MNWaiter, UInt64)>()
        var writeQueue = MNFIFO<(MNWaiter, UInt64)>()

        /// Admits every queued reader; returns who to wake.
        mutating func admitReaders() -> [MNWaiter] {
            var woken: [MNWaiter] = []
            while let (w, id) = readQueue.pop() {
                readers[id] = 1
                woken.append(w)
            }
            return woken
        }

        /// Hands the lock to the next writer, if any.
        mutating func admitWriter() -> MNWaiter? {
            guard let (w, id) = writeQueue.pop() else { return nil }
            writer = id
            return w
        }
    }
    private let state = KernelLock(State())
    /// Shown in wait reasons and `description` ("" for none).
    public let name: String
    /// A process-wide id, shown when the lock has no name.
    public let id: UInt64

    /// An unlocked read–write lock.
    /// - Parameter name: shown in wait reasons ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Acquires the lock for reading. Recursive read locks by one thread are counted. O(1).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` if the caller
    ///   holds the write lock.
    public func readLock(timeout: Duration? = nil) throws {
        let me = mnCurrentThread("MNRWLock.readLock")
        let result = try mnWait(
            "MNRWLock.readLock", .rwlock, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                try state.withLock { st throws(UThreadError) -> Bool in
                    if st.writer == me {
                        throw .invalidArgument("MNRWLock.readLock: thread #\(me) holds \(label) for writing")
                    }
                    if let n = st.readers[me] {  // already a reader: must not queue behind a writer
                        st.readers[me] = n + 1
                        return false
                    }
                    if st.writer == 0 && st.writeQueue.isEmpty {
                        st.readers[me] = 1
                        return false
                    }
                    st.readQueue.push((waiter, me))
                    return true
                }
            },
            withdraw: { waiter in
                state.withLock { st in st.readQueue.remove { $0.0 == waiter } ? nil : .woken }  // else admitted
            })
        try result?.check()
    }

    /// Acquires the lock for writing. O(1).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock, or
    ///   an upgrade from a read lock, which would deadlock).
    public func writeLock(timeout: Duration? = nil) throws {
        let me = mnCurrentThread("MNRWLock.writeLock")
        var readersToWake: [MNWaiter] = []
        let result = try mnWait(
            "MNRWLock.writeLock", .rwlock, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                try state.withLock { st throws(UThreadError) -> Bool in
                    if st.writer == me || st.readers[me] != nil {
                        throw .invalidArgument("MNRWLock.writeLock: thread #\(me) already holds \(label)")
                    }
                    if st.writer == 0 && st.readers.isEmpty && st.writeQueue.isEmpty {
                        st.writer = me
                        return false
                    }
                    st.writeQueue.push((waiter, me))
                    return true
                }
            },
            withdraw: { waiter in
                state.withLock { st in
                    guard st.writeQueue.remove(where: { $0.0 == waiter }) else { return .woken }  // handed the lock
                    if st.writer == 0 && st.writeQueue.isEmpty { readersToWake = st.admitReaders() }
                    return nil
                }
            })
        mnWake(readersToWake)
        try result?.check()
    }

    /// Releases a read lock; the last reader hands the lock to the first waiting writer.
    /// - Throws: `.invalidArgument` if the caller does not hold a read lock.
    public func readUnlock() throws {
        let me = mnCurrentThread("MNRWLock.readUnlock")
        let next = try state.withLock { st throws(UThreadError) -> MNWaiter? in
            guard let n = st.readers[me] else {
                throw .invalidArgument("MNRWLock.readUnlock: thread #\(me) does not hold \(label) for reading")
            }
            if n > 1 {
                st.readers[me] = n - 1
                return nil
            }
            st.readers[me] = nil
            return st.readers.isEmpty ? st.admitWriter() : nil
        }
        if let next { mnWake(CollectionOfOne(next)) }
    }

    /// Releases the write lock: every waiting reader goes next (all at once), else the next
    /// writer. O(readers admitted).
    /// - Throws: `.invalidArgument` if the caller does not hold the write lock.
    public func writeUnlock() throws {
        let me = mnCurrentThread("MNRWLock.writeUnlock")
        let woken = try state.withLock { st throws(UThreadError) -> [MNWaiter] in
            guard st.writer == me else {
                throw .invalidArgument("MNRWLock.writeUnlock: thread #\(me) does not hold \(label) for writing")
            }
            st.writer = 0
            if !st.readQueue.isEmpty { return st.admitReaders() }
            return st.admitWriter().map { [$0] } ?? []
        }
        mnWake(woken)
    }

    /// Runs `body` holding the read lock.
    public func withReadLock<R>(_ body: () throws -> R) throws -> R {
        try readLock()
        defer { try? readUnlock() }
        return try body()
    }

    /// Runs `body` holding the write lock.
    public func withWriteLock<R>(_ body: () throws -> R) throws -> R {
        try writeLock()
        defer { try? writeUnlock() }
        return try body()
    }

    /// Threads holding a read lock now (a snapshot).
    public var readerCount: Int { state.withLock { $0.readers.count } }
    /// Whether a thread holds the write lock now (a snapshot).
    public var isWriteLocked: Bool { state.withLock { $0.writer != 0 } }

    var label: String { syncLabel("rwlock", name: name, id: id) }

    /// "rwlock 'db' write-held by #12, 1 writer(s) queued", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let (writer, readers, writers) = state.withLock { ($0.writer, $0.readers.count, $0.writeQueue.count) }
        let queued = writers == 0 ? "" : ", \(writers) writer(s) queued"
        if writer != 0 { return "\(label) write-held by \(mnThreadLabel(writer))\(queued)" }
        return "\(label) read-held by \(readers) reader(s)\(queued)"
    }

    /// The writer, or the readers, for wait-for cycles.
    public var holders: [ThreadID] {
        state.withLock { st in
            st.writer != 0 ? [ThreadID(rawValue: st.writer)] : st.readers.keys.sorted().map { ThreadID(rawValue: $0) }
        }
    }

    public var description: String { "MNRWLock(\(label))" }
}
