// Layer 8: read–write locks without writer starvation.
//
// Design essay
// ============
//
// State: the writer (a control block) or a set of readers, and two FIFO queues, one for
// waiting readers and one for waiting writers. The policy alternates in phases:
//   * a reader arriving while a writer holds the lock *or is waiting* queues — so a stream of
//     readers cannot starve a writer (the rule that plain reader-preference locks lack);
//   * when a writer unlocks, every waiting reader is admitted at once (one read phase), else
//     the next writer gets the lock — so a stream of writers cannot starve readers either;
//   * when the last reader unlocks, the first waiting writer gets the lock (handoff).
// Ownership is handed over before the woken thread runs (as in UMutex): no barging.
//
// Readers are kept in a dictionary (thread → recursion count) so that `holders` can name
// them in deadlock cycles and an unlock by a non-holder throws instead of corrupting the count.
//
// A waiting writer that times out or is cancelled may have been the only thing holding back
// queued readers; it re-admits them when it leaves (`admitReadersIfNoWriterWaits`).
import CUThreads

/// A read–write lock for user threads: many readers or one writer.
public final class URWLock: WaitTarget, CustomStringConvertible {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed lock is shown by `id`.
    public let name: String
    public let id: UInt64
    @exclusivity(unchecked) private var writer: ControlBlock?
    @exclusivity(unchecked) private var readers: [ControlBlock: Int] = [:]
    private let readQueue = WaitQueue()
    private let writeQueue = WaitQueue()

    /// An unlocked read–write lock.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Acquires the lock for reading. Recursive read locks by one thread are counted.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` if the caller
    ///   holds the write lock.
    public func readLock(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let s = Scheduler.require("URWLock.readLock")
        let me = s.current
        if writer == me {
            throw UThreadError.invalidArgument("URWLock.readLock: \(describeThread(me)) holds \(label) for writing")
        }
        if let n = readers[me] {  // already a reader: must not queue behind a writer (self-deadlock)
            readers[me] = n + 1
            return
        }
        if writer == nil && writeQueue.isEmpty {
            readers[me] = 1
            return
        }
        try s.wait(
            on: readQueue, .rwlock, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
        // Admitted by the unlocker, who recorded us as a reader.
    }

    /// Acquires the lock for writing.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock, or
    ///   upgrade from a read lock, which would deadlock).
    public func writeLock(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let s = Scheduler.require("URWLock.writeLock")
        let me = s.current
        if writer == me || readers[me] != nil {
            throw UThreadError.invalidArgument("URWLock.writeLock: \(describeThread(me)) already holds \(label)")
        }
        if writer == nil && readers.isEmpty && writeQueue.isEmpty {
            writer = me
            return
        }
        do {
            try s.wait(
                on: writeQueue, .rwlock, object: id, target: self,
                deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
        } catch {
            admitReadersIfNoWriterWaits(s)
            throw error
        }
    }

    /// Releases a read lock.
    public func readUnlock() throws {
        let s = Scheduler.require("URWLock.readUnlock")
        let me = s.current
        guard let n = readers[me] else {
            throw UThreadError.invalidArgument(
                "URWLock.readUnlock: \(describeThread(me)) does not hold \(label) for reading")
        }
        if n > 1 {
            readers[me] = n - 1
            return
        }
        readers[me] = nil
        if readers.isEmpty, let w = writeQueue.dequeue() {
            writer = w
            s.wake(w, .woken)
        }
    }

    /// Releases the write lock: waiting readers go first (all of them), else the next writer.
    public func writeUnlock() throws {
        let s = Scheduler.require("URWLock.writeUnlock")
        guard writer == s.current else {
            throw UThreadError.invalidArgument(
                "URWLock.writeUnlock: \(describeThread(s.current)) does not hold \(label) for writing")
        }
        writer = nil
        if !readQueue.isEmpty {
            admitAllReaders(s)
        } else if let w = writeQueue.dequeue() {
            writer = w
            s.wake(w, .woken)
        }
    }

    private func admitAllReaders(_ s: Scheduler) {
        while let r = readQueue.dequeue() {
            readers[r] = 1
            s.wake(r, .woken)
        }
    }

    private func admitReadersIfNoWriterWaits(_ s: Scheduler) {
        if writer == nil && writeQueue.isEmpty { admitAllReaders(s) }
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

    /// Active readers (for tests and the thread table).
    public var readerCount: Int { readers.count }
    /// Whether a thread holds the lock for writing now.
    public var isWriteLocked: Bool { writer != nil }

    var label: String { syncLabel("rwlock", name: name, id: id) }

    public func waitDescription(kind: WaitReason.Kind) -> String {
        let queued = writeQueue.isEmpty ? "" : ", \(writeQueue.count) writer(s) queued"
        if let writer { return "\(label) write-held by \(describeThread(writer))\(queued)" }
        return "\(label) read-held by \(readers.count) reader(s)\(queued)"
    }

    public var holders: [ThreadID] {
        if let writer { return [writer.threadID] }
        return readers.keys.map(\.threadID).sorted()
    }

    public var description: String { "URWLock(\(label))" }
}
