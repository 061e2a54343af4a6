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
// queued readers; it re-admits them when it leaves. A waiter that gives up after it was
// admitted keeps what it was given (the wake wins: Waiter.swift). The state is held bare or
// under the object's lock (SyncState), so the same rules serve one worker and many.
import CUThreads

/// A read–write lock for user threads, on one worker or across workers: many readers or one
/// writer, writers not starved.
public final class URWLock: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed lock is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    // Each simple didSet (no `oldValue`: the value is changed in place) keeps a `Relaxed` word
    // beside its field, which readers on any kernel thread read instead of the field.
    @exclusivity(unchecked) private var writer: ControlBlock? {
        didSet { writerID.store(writer.map { Int(truncatingIfNeeded: $0.pointee.id) } ?? 0) }
    }
    @exclusivity(unchecked) private var readers: [ControlBlock: Int] = [:] {
        didSet { readerWord.store(readers.count) }
    }
    @exclusivity(unchecked) private var readQueue = FIFO<Waiter>()
    @exclusivity(unchecked) private var writeQueue = FIFO<Waiter>() {
        didSet { writersQueued.store(writeQueue.count) }
    }
    /// The writer's thread id (0: none), the number of readers holding the lock, the length of
    /// `writeQueue`.
    private let writerID = Relaxed(0)
    private let readerWord = Relaxed(0)
    private let writersQueued = Relaxed(0)

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
        guard let me = uthreads_get_current() else { throw syncOutsideUserThread("URWLock.readLock") }
        let result = try syncWait(
            "URWLock.readLock", .rwlock, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline),
            register: { waiter in
                try sync.with { () throws(UThreadError) -> Bool in
                    if writer == me {
                        throw .invalidArgument("URWLock.readLock: \(describeThread(me)) holds \(label) for writing")
                    }
                    if let n = readers[me] {  // already a reader: must not queue behind a writer (self-deadlock)
                        readers[me] = n + 1
                        return false
                    }
                    if writer == nil && writeQueue.isEmpty {
                        readers[me] = 1
                        return false
                    }
                    readQueue.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked { readQueue.remove { $0 == waiter } ? nil : .woken }  // else admitted
            })
        try result?.check()
    }

    /// Acquires the lock for writing.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock, or
    ///   upgrade from a read lock, which would deadlock).
    public func writeLock(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        guard let me = uthreads_get_current() else { throw syncOutsideUserThread("URWLock.writeLock") }
        var readersToWake: [Waiter] = []
        let result = try syncWait(
            "URWLock.writeLock", .rwlock, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline),
            register: { waiter in
                try sync.with { () throws(UThreadError) -> Bool in
                    if writer == me || readers[me] != nil {
                        throw .invalidArgument("URWLock.writeLock: \(describeThread(me)) already holds \(label)")
                    }
                    if writer == nil && readers.isEmpty && writeQueue.isEmpty {
                        writer = me
                        return false
                    }
                    writeQueue.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked {
                    guard writeQueue.remove(where: { $0 == waiter }) else { return .woken }  // handed the lock
                    if writer == nil && writeQueue.isEmpty { readersToWake = admitReaders() }
                    return nil
                }
            })
        syncWake(readersToWake)
        try result?.check()
    }

    /// Releases a read lock; the last reader hands the lock to the first waiting writer.
    /// - Throws: `.invalidArgument` if the caller does not hold a read lock.
    public func readUnlock() throws {
        let me = uthreads_get_current()
        let next = try sync.with { () throws(UThreadError) -> Waiter? in
            guard let me, let n = readers[me] else {
                throw .invalidArgument(
                    "URWLock.readUnlock: \(me.map(describeThread) ?? "code outside a user thread") does not hold \(label) for reading"
                )
            }
            if n > 1 {
                readers[me] = n - 1
                return nil
            }
            readers[me] = nil
            return readers.isEmpty ? admitWriter() : nil
        }
        if let next { syncWake(next) }
    }

    /// Releases the write lock: waiting readers go first (all of them), else the next writer.
    /// - Throws: `.invalidArgument` if the caller does not hold the write lock.
    public func writeUnlock() throws {
        let me = uthreads_get_current()
        let woken = try sync.with { () throws(UThreadError) -> [Waiter] in
            guard let me, writer == me else {
                throw .invalidArgument(
                    "URWLock.writeUnlock: \(me.map(describeThread) ?? "code outside a user thread") does not hold \(label) for writing"
                )
            }
            writer = nil
            if !readQueue.isEmpty { return admitReaders() }
            return admitWriter().map { [$0] } ?? []
        }
        syncWake(woken)
    }

    /// Admits every queued reader; returns who to wake. Caller: inside `sync`.
    private func admitReaders() -> [Waiter] {
        var woken: [Waiter] = []
        while let w = readQueue.pop() {
            readers[ControlBlock(bitPattern: w.block)!] = 1
            woken.append(w)
        }
        return woken
    }

    /// Hands the lock to the next writer, if any. Caller: inside `sync`.
    private func admitWriter() -> Waiter? {
        guard let w = writeQueue.pop() else { return nil }
        writer = ControlBlock(bitPattern: w.block)
        return w
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

    /// Active readers (a snapshot, from any kernel thread).
    public var readerCount: Int { readerWord.load() }
    /// Whether a thread holds the lock for writing now (a snapshot, from any kernel thread).
    public var isWriteLocked: Bool { writerID.load() != 0 }

    var label: String { syncLabel("rwlock", name: name, id: id) }

    /// "rwlock 'db' write-held by #12, 1 writer(s) queued", for the thread table (from any
    /// kernel thread; from elsewhere the writer by its id alone: `describeHolder`).
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let writer = sync.read {
            self.writer.map { describeHolder(UInt64(writerID.load()), row: $0) }
        } elsewhere: {
            let w = writerID.load()
            return w == 0 ? nil : "#\(w)"
        }
        let writers = writersQueued.load()
        let queued = writers == 0 ? "" : ", \(writers) writer(s) queued"
        if let writer { return "\(label) write-held by \(writer)\(queued)" }
        return "\(label) read-held by \(readerCount) reader(s)\(queued)"
    }

    /// The writer, or the readers, for wait-for cycles. From elsewhere only the writer (the
    /// readers are the runtime's state).
    public var holders: [ThreadID] {
        sync.read {
            if let writer { return [writer.threadID] }
            return readers.keys.map(\.threadID).sorted()
        } elsewhere: {
            let writer = writerID.load()
            return writer == 0 ? [] : [ThreadID(rawValue: UInt64(writer))]
        }
    }

    /// `URWLock(rwlock 'db')`.
    public var description: String { "URWLock(\(label))" }
}
