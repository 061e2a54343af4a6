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

    /// Spawns a thread on worker 0 that takes `l` (for writing or reading) and ends holding it;
    /// returns its id and the address of its row.
    static func endHolding(_ l: URWLock, write: Bool) throws -> (ThreadID, UInt) {
        try UThread.spawn(name: "gone", onWorker: 0) { () -> (ThreadID, UInt) in
            if write { try l.writeLock() } else { try l.readLock() }
            return (UThread.current.id, UInt(bitPattern: uthreads_get_current()))
        }.join()
    }
}
