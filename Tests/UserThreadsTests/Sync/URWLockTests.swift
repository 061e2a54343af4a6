import CUThreads
import Testing

@testable import UserThreads

/// URWLock on the M:1 runtime and across two workers: the phases (no writer or reader
/// starvation), holders by thread id, timeouts, cancellation and misuse errors.
@Suite(.timeLimit(.minutes(1)))
struct URWLockTests {
    /// A thread that ends holding the write lock keeps it; the next thread spawned on its
    /// (reused) row is a different thread: its unlocks throw, its locks wait like anyone's.
    @Test(arguments: syncWorkerCounts) func aWriteLockHeldByAnEndedThreadIsNotHeldByTheNextThreadOnItsRow(
        workers: Int
    ) throws {
        try runOn(workers: workers) {
            let l = URWLock(name: "rw")
            let (gone, goneRow) = try Self.endHolding(l, write: true)
            let (row, refused, timedOut) = try UThread.spawn(name: "next", onWorker: 0) {
                () -> (UInt, Int, Int) in
                var refused = 0
                do { try l.writeUnlock() } catch UThreadError.invalidArgument { refused += 1 }
                do { try l.readUnlock() } catch UThreadError.invalidArgument { refused += 1 }
                var timedOut = 0
                do { try l.writeLock(timeout: .milliseconds(1)) } catch UThreadError.timedOut { timedOut += 1 }
                do { try l.readLock(timeout: .milliseconds(1)) } catch UThreadError.timedOut { timedOut += 1 }
                return (UInt(bitPattern: uthreads_get_current()), refused, timedOut)
            }.join()
            #expect(row == goneRow)  // the case this test is about: the row was reused
            #expect(refused == 2)
            #expect(timedOut == 2)
            #expect(l.isWriteLocked)
            #expect(l.holders == [gone])
            #expect(l.waitDescription(kind: .rwlock) == "rwlock 'rw' write-held by \(gone) (finished)")
            let error = expectError(sameCaseAs: .invalidArgument("")) { try l.writeUnlock() }
            #expect(error?.contains("held by \(gone) (finished)") == true, "\(error ?? "")")
        }
    }

    /// A thread that ends holding a read lock keeps it; the next thread spawned on its (reused)
    /// row does not hold it: its read unlock throws, and its own read lock is counted apart.
    @Test(arguments: syncWorkerCounts) func aReadLockHeldByAnEndedThreadIsNotHeldByTheNextThreadOnItsRow(
        workers: Int
    ) throws {
        try runOn(workers: workers) {
            let l = URWLock(name: "rw")
            let (gone, goneRow) = try Self.endHolding(l, write: false)
            let (row, next, refused, timedOut, shared) = try UThread.spawn(name: "next", onWorker: 0) {
                () -> (UInt, ThreadID, Int, Bool, [ThreadID]) in
                var refused = 0
                do { try l.readUnlock() } catch UThreadError.invalidArgument { refused += 1 }
                do { try l.writeUnlock() } catch UThreadError.invalidArgument { refused += 1 }
                var timedOut = false
                do { try l.writeLock(timeout: .milliseconds(1)) } catch UThreadError.timedOut { timedOut = true }
                try l.readLock()  // shares the read phase as a reader of its own
                let shared = l.holders
                try l.readUnlock()
                do { try l.readUnlock() } catch UThreadError.invalidArgument { refused += 1 }
                return (UInt(bitPattern: uthreads_get_current()), UThread.current.id, refused, timedOut, shared)
            }.join()
            #expect(row == goneRow)  // the case this test is about: the row was reused
            #expect(next != gone)
            #expect(refused == 3)
            #expect(timedOut)
            #expect(shared == [gone, next])
            #expect(l.readerCount == 1)
            #expect(l.holders == [gone])
            let error = expectError(sameCaseAs: .invalidArgument("")) { try l.readUnlock() }
            #expect(error?.contains("read-held by \(gone) (finished)") == true, "\(error ?? "")")
        }
    }

    @Test(arguments: syncWorkerCounts) func aWaitingWriterHoldsBackNewReaders(workers: Int) throws {
        try runOn(workers: workers) {
            let l = URWLock(name: "db")
            try l.readLock()
            let writer = UThread { try l.withWriteLock {} }
            try waitFor { l.waitDescription(kind: .rwlock).contains("1 writer(s) queued") }
            // A new reader queues behind the waiting writer: no writer starvation.
            let reader = UThread { () -> Bool in
                try l.readLock(timeout: .milliseconds(5))
                try l.readUnlock()
                return true
            }
            #expect(throws: UThreadError.timedOut) { try reader.join() }
            try l.readUnlock()
            try writer.join()
            #expect(!l.isWriteLocked && l.readerCount == 0)
            expectInvalidArgument { try l.readUnlock() }
            try l.writeLock(deadline: .now + .seconds(1))
            expectInvalidArgument { try l.readLock() }  // holds it for writing
            try l.writeUnlock()
        }
    }

    /// A writer that waits holds back later readers (no writer starvation), and when it
    /// unlocks every queued reader is admitted at once.
    @Test(arguments: syncWorkerCounts) func aWaitingWriterHoldsBackLaterReadersThenAdmitsThemAll(workers: Int) throws {
        let log = try UThreadRuntime.run(workers: workers) { () -> [String] in
            let l = URWLock(name: "rw")
            let log = MNLog()
            try l.readLock()
            let writer = try UThread.spawn(onWorker: workers - 1) {
                try l.writeLock()
                log.add("writer in")
                try l.writeUnlock()
            }
            #expect(try waitUntilParked(writer, .rwlock))
            let reader = try UThread.spawn(onWorker: workers - 1) {
                try l.readLock()
                log.add("late reader in")
                try l.readUnlock()
            }
            #expect(try waitUntilParked(reader, .rwlock))  // queued behind the waiting writer
            #expect(l.readerCount == 1)
            log.add("first reader out")
            try l.readUnlock()
            try writer.join()
            try reader.join()
            return log.all
        }
        #expect(log == ["first reader out", "writer in", "late reader in"])
    }

    @Test(arguments: syncWorkerCounts) func readersShareWritersExcludeAndErrorsThrow(workers: Int) throws {
        let (violations, writes, out) = try UThreadRuntime.run(workers: workers) { () -> (Int, Int, [String]) in
            let l = URWLock()
            let readers = MNCounter()
            let writersIn = MNCounter()
            let violations = MNCounter()
            let guarded = MNGuarded()
            let ts = try (0..<8).map { i in
                try UThread.spawn(onWorker: i % workers) {
                    for k in 0..<300 {
                        if (i + k) % 4 == 0 {
                            try l.withWriteLock {
                                writersIn.add()
                                if writersIn.count != 1 || readers.count != 0 { violations.add() }
                                guarded.value += 1
                                UThread.yield()
                                writersIn.add(-1)
                            }
                        } else {
                            try l.withReadLock {
                                readers.add()
                                if writersIn.count != 0 { violations.add() }
                                UThread.yield()
                                readers.add(-1)
                            }
                        }
                    }
                }
            }
            for t in ts { try t.join() }
            var out: [String] = []
            do { try l.readUnlock() } catch UThreadError.invalidArgument { out.append("readUnlock not held") }
            do { try l.writeUnlock() } catch UThreadError.invalidArgument { out.append("writeUnlock not held") }
            try l.readLock()
            try l.readLock()  // recursive read: counted
            do { try l.writeLock() } catch UThreadError.invalidArgument { out.append("upgrade refused") }
            // A waiting writer that gives up while readers hold the lock admits the readers
            // queued behind it.
            let writer = try UThread.spawn(onWorker: workers - 1) { () -> String in
                do {
                    try l.writeLock()
                    return "writer got it"
                } catch is CancellationError { return "writer cancelled" }
            }
            #expect(try waitUntilParked(writer, .rwlock))
            let reader = try UThread.spawn(onWorker: workers - 1) { () -> String in
                try l.readLock()
                try l.readUnlock()
                return "reader admitted"
            }
            #expect(try waitUntilParked(reader, .rwlock))
            writer.cancel()
            out.append(try writer.join())
            out.append(try reader.join())
            try l.readUnlock()
            try l.readUnlock()
            #expect(l.readerCount == 0 && !l.isWriteLocked)
            return (violations.count, guarded.value, out)
        }
        #expect(violations == 0)
        #expect(writes == 8 * 300 / 4)
        #expect(
            out == [
                "readUnlock not held", "writeUnlock not held", "upgrade refused", "writer cancelled", "reader admitted",
            ])
    }

    /// A reader queued behind a writer that gives up is admitted at once; unlocking a read lock
    /// the caller does not hold is an error naming that.
    @Test(arguments: syncWorkerCounts) func readersQueuedBehindAWriterThatTimesOutAreAdmitted(workers: Int) throws {
        try runOn(workers: workers) {
            let l = URWLock()
            try l.readLock()
            let w = UThread { try l.writeLock(timeout: .milliseconds(5)) }
            try waitFor { l.waitDescription(kind: .rwlock).contains("1 writer(s) queued") }
            let r = UThread {
                try l.readLock()
                try l.readUnlock()
            }  // queues behind the writer
            #expect(throws: UThreadError.timedOut) { try w.join() }
            try r.join()  // admitted when the writer gave up
            try l.readUnlock()
            #expect(
                expectError(sameCaseAs: .invalidArgument("")) { try l.readUnlock() }?.contains("does not hold") == true)
        }
    }

    /// Spawns a thread on worker 0 that takes `l` (for writing or reading) and ends holding it;
    /// returns its id and the address of its row.
    static func endHolding(_ l: URWLock, write: Bool) throws -> (ThreadID, UInt) {
        try UThread.spawn(name: "gone", onWorker: 0) { () -> (ThreadID, UInt) in
            if write { try l.writeLock() } else { try l.readLock() }
            return (UThread.current.id, UInt(bitPattern: uthreads_get_current()))
        }.join()
    }
}
