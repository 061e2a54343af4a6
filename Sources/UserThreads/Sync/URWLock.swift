// Layer 8: read–write locks without writer starvation.
//
// Design essay
// ============
//
// State: the writer or a set of readers, and two FIFO queues, one for waiting readers and one
// for waiting writers. A holder is its thread id, never its row alone (the rule and why:
// UMutex.swift's essay, "The owner is its thread id"): a thread spawned on the row of one that
// ended holding the lock is another thread, and its unlock throws. The row is kept beside the
// id only to name the holder (`describeHolder`). A lock held by a thread that ended stays held
// by it, as a mutex does (UMutex.swift, "A holder that ended"). The policy alternates in phases:
//   * a reader arriving while a writer holds the lock *or is waiting* queues — so a stream of
//     readers cannot starve a writer (the rule that plain reader-preference locks lack);
//   * when a writer unlocks, every waiting reader is admitted at once (one read phase), else
//     the next writer gets the lock — so a stream of writers cannot starve readers either;
//   * when the last reader unlocks, the first waiting writer gets the lock (handoff).
// Ownership is handed over before the woken thread runs (as in UMutex): no barging.
//
// Readers are kept in a dictionary (thread id → recursion count and row) so that `holders` can
// name them in deadlock cycles and an unlock by a non-holder throws instead of corrupting the
// count.
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
    /// The row the writer ran on when it took the lock, for its name only (`writerID` is the
    /// writer): nil when no thread holds it for writing.
    @exclusivity(unchecked) private var writerRow: ControlBlock?
    /// The readers by thread id: how many read locks each holds, and its row (for names).
    @exclusivity(unchecked) private var readers: [UInt64: Reader] = [:] {
        didSet { readerWord.store(readers.count) }
    }
    @exclusivity(unchecked) private var readQueue = FIFO<Waiter>()
    @exclusivity(unchecked) private var writeQueue = FIFO<Waiter>() {
        didSet { writersQueued.store(writeQueue.count) }
    }
    /// The writer's thread id (0: none; the state itself, read from anywhere), the number of
    /// readers holding the lock, the length of `writeQueue`.
    private let writerID = Relaxed(0)
    private let readerWord = Relaxed(0)
    private let writersQueued = Relaxed(0)

    /// A reader's entry: its read locks (recursive ones counted) and the row it ran on, as an
    /// integer. With the row as a `ControlBlock` field, a debug build (swiftc 6.3.1) returned a
    /// value, not nil, for a missing key's `readers[id]?.count` (seen by printing it), so a
    /// non-holder's unlock went through; with an integer it is nil.
    private struct Reader {
        var count: Int
        let row: UInt
    }

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
                    defer { if syncChecking() { checkInvariants() } }
                    let id = me.pointee.id
                    if writer == id {
                        throw .invalidArgument("URWLock.readLock: \(describeThread(me)) holds \(label) for writing")
                    }
                    if readers[id] != nil {  // already a reader: must not queue behind a writer (self-deadlock)
                        readers[id]!.count += 1
                        return false
                    }
                    if writer == 0 && writeQueue.isEmpty {
                        readers[id] = Reader(count: 1, row: UInt(bitPattern: me))
                        return false
                    }
                    readQueue.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked {
                    defer { if syncChecking() { checkInvariants() } }
                    return readQueue.remove { $0 == waiter } ? nil : .woken  // else admitted
                }
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
                    defer { if syncChecking() { checkInvariants() } }
                    if writer == me.pointee.id || readers[me.pointee.id] != nil {
                        throw .invalidArgument("URWLock.writeLock: \(describeThread(me)) already holds \(label)")
                    }
                    if writer == 0 && readers.isEmpty && writeQueue.isEmpty {
                        setWriter(me)
                        return false
                    }
                    writeQueue.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked {
                    defer { if syncChecking() { checkInvariants() } }
                    guard writeQueue.remove(where: { $0 == waiter }) else { return .woken }  // handed the lock
                    if writer == 0 && writeQueue.isEmpty { readersToWake = admitReaders() }
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
            defer { if syncChecking() { checkInvariants() } }
            guard let me, let n = readers[me.pointee.id]?.count else {
                throw .invalidArgument(
                    "URWLock.readUnlock: \(me.map(describeThread) ?? "code outside a user thread") does not hold \(label) for reading\(heldBy)"
                )
            }
            if n > 1 {
                readers[me.pointee.id]!.count = n - 1
                return nil
            }
            readers[me.pointee.id] = nil
            return readers.isEmpty ? admitWriter() : nil
        }
        if let next { syncWake(next) }
    }

    /// Releases the write lock: waiting readers go first (all of them), else the next writer.
    /// - Throws: `.invalidArgument` if the caller does not hold the write lock.
    public func writeUnlock() throws {
        let me = uthreads_get_current()
        let woken = try sync.with { () throws(UThreadError) -> [Waiter] in
            defer { if syncChecking() { checkInvariants() } }
            guard let me, writer == me.pointee.id else {
                throw .invalidArgument(
                    "URWLock.writeUnlock: \(me.map(describeThread) ?? "code outside a user thread") does not hold \(label) for writing\(heldBy)"
                )
            }
            setWriter(nil)
            if !readQueue.isEmpty { return admitReaders() }
            return admitWriter().map { [$0] } ?? []
        }
        syncWake(woken)
    }

    /// Admits every queued reader; returns who to wake. Caller: inside `sync`.
    private func admitReaders() -> [Waiter] {
        var woken: [Waiter] = []
        while let w = readQueue.pop() {
            let row = ControlBlock(bitPattern: w.block)!  // parked in this wait: its id is stable
            readers[row.pointee.id] = Reader(count: 1, row: w.block)
            woken.append(w)
        }
        return woken
    }

    /// Hands the lock to the next writer, if any. Caller: inside `sync`.
    private func admitWriter() -> Waiter? {
        guard let w = writeQueue.pop() else { return nil }
        setWriter(ControlBlock(bitPattern: w.block))
        return w
    }

    /// The writer's thread id (0: none). Caller: inside `sync` (or a snapshot: the word).
    private var writer: UInt64 { UInt64(truncatingIfNeeded: writerID.load()) }

    /// Makes `row`'s thread the writer (nil: none). Caller: inside `sync`.
    private func setWriter(_ row: ControlBlock?) {
        writerID.store(row.map { Int(truncatingIfNeeded: $0.pointee.id) } ?? 0)
        writerRow = row
    }

    /// " (held by #12 (finished))" or " (read-held by #3, #4)", for a not-holder error: who holds
    /// the lock, if anyone. Caller: inside `sync`.
    private var heldBy: String {
        if writer != 0 { return " (held by \(describeHolder(writer, row: writerRow)))" }
        if readers.isEmpty { return " (not locked)" }
        let names = readers.sorted { $0.key < $1.key }.map {
            describeHolder($0.key, row: ControlBlock(bitPattern: $0.value.row))
        }
        return " (read-held by \(names.joined(separator: ", ")))"
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
            self.writer == 0 ? nil : describeHolder(self.writer, row: writerRow)
        } elsewhere: {
            self.writer == 0 ? nil : "#\(self.writer)"
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
            if writer != 0 { return [ThreadID(rawValue: writer)] }
            return readers.keys.sorted().map(ThreadID.init(rawValue:))
        } elsewhere: {
            writer == 0 ? [] : [ThreadID(rawValue: writer)]
        }
    }

    /// `URWLock(rwlock 'db')`.
    public var description: String { "URWLock(\(label))" }

    // MARK: Invariants

    /// The lock's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(readers).
    @inline(never)
    func checkInvariants() {
        syncInvariant(writer == 0 || readers.isEmpty, label, "a writer ⇒ no readers")
        syncInvariant(writer == 0 || writerRow != nil, label, "a writer ⇒ its row is kept")
        syncInvariant(readers.values.allSatisfy { $0.count >= 1 }, label, "every reader holds a read lock")
        syncInvariant(
            readQueue.isEmpty || writer != 0 || !writeQueue.isEmpty, label,
            "queued readers ⇒ a writer holds the lock or waits for it")
        syncInvariant(
            writeQueue.isEmpty || writer != 0 || !readers.isEmpty, label, "queued writers ⇒ the lock is held")
        syncInvariant(readerWord.load() == readers.count, label, "readerCount == the readers' count")
        syncInvariant(writersQueued.load() == writeQueue.count, label, "the writers' word == the writer queue's length")
    }
}
