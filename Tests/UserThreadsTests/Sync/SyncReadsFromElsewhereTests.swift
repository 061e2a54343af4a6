// Snapshot reads of a sync object (a semaphore's `value`, a wait group's `pending`, a thread
// group's `isCancelled` and `running`, a barrier's counts, a mutex's holder and waiters, a
// condition's waiters, a read–write lock's counts and holders, a channel's count and close,
// their descriptions) from a plain kernel thread while the object's runtime changes it. An
// object made inside an M:1 runtime is bound to it: such a read touches only the words the
// owner keeps for it (SyncSupport.swift, "Reads from elsewhere"), never the runtime's bare
// state; under two workers the object is shared. Either way each read is a value the object
// really had, nothing crashes, and scripts/tsan.sh sees no race.
import Foundation
import Synchronization
import Testing

@testable import UserThreads

/// A kernel thread outside every runtime that runs `read` over and over until told to stop,
/// counting its reads and recording the first read that was out of bounds.
final class ElsewhereReader: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let doneFlag = Atomic<Bool>(false)
    private let count = Atomic<Int>(0)
    let bad = KernelLock<String?>(nil)

    /// Starts reading: `read` returns nil when what it read was right, else what was wrong.
    init(_ read: @escaping @Sendable () -> String?) {
        Thread { [self] in
            while !stopFlag.load(ordering: .acquiring) {
                if let wrong = read() { bad.withLock { $0 = $0 ?? wrong } }
                count.add(1, ordering: .releasing)
            }
            doneFlag.store(true, ordering: .releasing)
        }.start()
    }

    var reads: Int { count.load(ordering: .acquiring) }
    var isDone: Bool { doneFlag.load(ordering: .acquiring) }

    /// Stops it and waits (parking) until it has returned.
    func stop() throws {
        stopFlag.store(true, ordering: .releasing)
        try waitFor { isDone }
    }

    /// Reads with `read` on a kernel thread of its own while `change` runs: from a first read
    /// before `change` to one after it. Returns the first read that was wrong, or nil.
    static func reading(_ read: @escaping @Sendable () -> String?, while change: () throws -> Void) throws -> String? {
        let reader = ElsewhereReader(read)
        try waitFor { reader.reads > 0 }
        try change()
        let before = reader.reads
        try waitFor { reader.reads > before }  // a read after the last change
        try reader.stop()
        return reader.bad.withLock { $0 }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SyncReadsFromElsewhereTests {
    /// A semaphore's `value` and description read elsewhere while the runtime's threads signal
    /// and take permits: never negative, never more than were signalled.
    @Test(arguments: syncWorkerCounts)
    func semaphoreValueReadElsewhereStaysInBounds(workers: Int) throws {
        let bad = try runOn(workers: workers) { () -> String? in
            let permits = USemaphore(name: "permits")
            return try ElsewhereReader.reading {
                let v = permits.value
                let d = permits.description
                guard (0...2_000).contains(v), d.hasPrefix("USemaphore(semaphore 'permits', value ") else {
                    return "value \(v), \(d)"
                }
                return nil
            } while: {
                let taker = UThread(name: "taker") {
                    for _ in 0..<2_000 { try permits.wait(timeout: .seconds(20)) }
                }
                for _ in 0..<2_000 {
                    permits.signal()
                    UThread.yield()
                }
                try taker.join()
                #expect(permits.value == 0)
            }
        }
        #expect(bad == nil)
    }

    /// A wait group's `pending` and description read elsewhere while the runtime adds and
    /// finishes tasks: always 0 or 1.
    @Test(arguments: syncWorkerCounts)
    func waitGroupPendingReadElsewhereStaysInBounds(workers: Int) throws {
        let bad = try runOn(workers: workers) { () -> String? in
            let jobs = UWaitGroup(name: "jobs")
            return try ElsewhereReader.reading {
                let p = jobs.pending
                let d = jobs.description
                return (0...1).contains(p) && d.hasPrefix("UWaitGroup(wait group 'jobs', ") ? nil : "pending \(p), \(d)"
            } while: {
                for _ in 0..<2_000 {
                    try jobs.add()
                    let worker = UThread(name: "job") { try jobs.done() }
                    try jobs.wait(timeout: .seconds(20))
                    try worker.join()
                }
                #expect(jobs.pending == 0)
            }
        }
        #expect(bad == nil)
    }

    /// A thread group's `running` and `isCancelled` read elsewhere while the runtime spawns
    /// children, they finish and the group is cancelled: never a crash (the child list is never
    /// walked from there), `running` within 0...children, and once cancelled, cancelled.
    @Test(arguments: syncWorkerCounts)
    func threadGroupReadElsewhereNeverWalksItsChildren(workers: Int) throws {
        let children = 200
        let bad = try runOn(workers: workers) { () -> String? in
            try withThreadGroup(name: "crew") { group -> String? in
                let sawCancelled = Atomic<Bool>(false)
                return try ElsewhereReader.reading {
                    let r = group.running
                    let c = group.isCancelled
                    if sawCancelled.load(ordering: .relaxed) && !c { return "cancelled, then not" }
                    if c { sawCancelled.store(true, ordering: .relaxed) }
                    return (0...children).contains(r) ? nil : "running \(r)"
                } while: {
                    for i in 0..<children {
                        try group.spawn(name: "child \(i)") { UThread.yield() }
                        if i % 3 == 0 { UThread.yield() }
                    }
                    group.cancelAll()
                    try waitFor { group.running == 0 }
                    #expect(group.isCancelled)
                }
            }
        }
        #expect(bad == nil)
    }

    /// Read from elsewhere once the runtime has quiesced, a thread group's `running` counts the
    /// children whose body has not returned: those parked, not those finished.
    @Test func threadGroupRunningElsewhereCountsUnfinishedChildren() throws {
        try UThreadRuntime.run {
            let gate = USemaphore(name: "gate")
            try withThreadGroup(name: "crew") { group in
                for _ in 0..<3 { try group.spawn { try gate.wait(timeout: .seconds(20)) } }
                try group.spawn {}
                try waitFor { group.running == 3 }
                let seen = Atomic<Int>(-1)
                let done = Elsewhere.kernelThread.run { seen.store(group.running, ordering: .releasing) }
                try waitFor { done.isSet }
                #expect(seen.load(ordering: .acquiring) == 3)
                for _ in 0..<3 { gate.signal() }
            }
        }
    }
}

extension SyncReadsFromElsewhereTests {
    /// A barrier's `arrived` and `generation` read elsewhere while the runtime's threads pass
    /// it round after round: `arrived` within 0..<parties, `generation` never going back.
    @Test(arguments: syncWorkerCounts)
    func barrierCountsReadElsewhereStayInBounds(workers: Int) throws {
        let rounds = 500
        let bad = try runOn(workers: workers) { () -> String? in
            let phase = try UBarrier(parties: 2, name: "phase")
            let last = Atomic<Int>(0)
            return try ElsewhereReader.reading {
                let a = phase.arrived
                let g = phase.generation
                let before = last.exchange(g, ordering: .relaxed)
                return (0..<2).contains(a) && g >= before && g <= rounds ? nil : "arrived \(a), generation \(g)"
            } while: {
                let other = UThread(name: "other") {
                    for _ in 0..<rounds { _ = try phase.arriveAndWait(timeout: .seconds(20)) }
                }
                for _ in 0..<rounds { _ = try phase.arriveAndWait(timeout: .seconds(20)) }
                try other.join()
                #expect(phase.generation == rounds)
            }
        }
        #expect(bad == nil)
    }
}

/// Mutexes, conditions, read–write locks and channels read from elsewhere: their counts, holders
/// and descriptions, which the runtime keeps in words beside its state (SyncSupport.swift,
/// "Reads from elsewhere").
extension SyncReadsFromElsewhereTests {
    /// A mutex's `holder`, `isLocked`, `waiting` and descriptions read elsewhere while the
    /// runtime's threads contend for it: the holder is always one of the lockers (or nobody),
    /// never more waiting than the lockers that are not holding it.
    @Test(arguments: syncWorkerCounts)
    func mutexReadElsewhereStaysInBounds(workers: Int) throws {
        let lockers = 3
        let bad = try runOn(workers: workers) { () -> String? in
            let m = UMutex(name: "m")
            let go = USemaphore(name: "go")
            let threads = (0..<lockers).map { i in
                UThread(name: "locker \(i)") {
                    try go.wait(timeout: .seconds(20))
                    for _ in 0..<1_000 {
                        try m.lock(timeout: .seconds(20))
                        UThread.yield()
                        try m.unlock()
                        UThread.yield()
                    }
                }
            }
            let ids = Set(threads.map(\.id.rawValue))
            return try ElsewhereReader.reading {
                let holder = m.holder?.rawValue
                let waiting = m.waiting
                let locked = m.isLocked
                let d = m.description
                let w = m.waitDescription(kind: .mutex)
                guard holder.map(ids.contains) ?? true, (0..<lockers).contains(waiting),
                    d.hasPrefix("UMutex(mutex 'm', "), w.hasPrefix("mutex 'm' held by ")
                else { return "holder \(holder ?? 0), \(waiting) waiting, locked \(locked), \(d), \(w)" }
                return nil
            } while: {
                for _ in 0..<lockers { go.signal() }
                for t in threads { try t.join() }
                #expect(!m.isLocked && m.holder == nil && m.waiting == 0)
            }
        }
        #expect(bad == nil)
    }

    /// Read from elsewhere once the runtime has quiesced, a mutex held by the main thread names
    /// it as its holder, with no waiter (the fast word) and with one (the slow state).
    @Test(arguments: syncWorkerCounts)
    func mutexHolderReadElsewhereIsTheHolder(workers: Int) throws {
        let seen = try runOn(workers: workers) { () -> [String] in
            let m = UMutex(name: "m")
            let me = UThread.current.id.rawValue
            func readElsewhere() throws -> String {
                let text = KernelLock<String>("")
                let done = Elsewhere.kernelThread.run {
                    let read = "\(m.holder.map { "\($0.rawValue)" } ?? "-") \(m.isLocked) \(m.waiting)"
                    text.withLock { $0 = "\(read) | \(m.description) | \(m.waitDescription(kind: .mutex))" }
                }
                try waitFor { done.isSet }
                return text.withLock { $0 }
            }
            try m.lock()
            let alone = try readElsewhere()
            let waiter = UThread(name: "waiter") {
                try m.lock(timeout: .seconds(20))
                try m.unlock()
            }
            try waitFor { m.waiting == 1 }
            let queued = try readElsewhere()
            try m.unlock()
            try waiter.join()
            let free = try readElsewhere()
            return [
                alone, "\(me) true 0 | UMutex(mutex 'm', held by #\(me)) | mutex 'm' held by #\(me)",
                queued, "\(me) true 1 | UMutex(mutex 'm', held by #\(me)) | mutex 'm' held by #\(me), 1 waiting",
                free, "- false 0 | UMutex(mutex 'm', free) | mutex 'm' held by nobody",
            ]
        }
        #expect(seen[0] == seen[1])
        #expect(seen[2] == seen[3])
        #expect(seen[4] == seen[5])
    }

    /// A condition's `waiting` and descriptions read elsewhere while round after round of
    /// threads wait on it and are broadcast: never more than the round's waiters.
    @Test(arguments: syncWorkerCounts)
    func conditionWaitingReadElsewhereStaysInBounds(workers: Int) throws {
        let waiters = 3
        let bad = try runOn(workers: workers) { () -> String? in
            let m = UMutex(name: "m")
            let ready = UCondition(name: "ready")
            let round = SharedCount()  // rounds released
            return try ElsewhereReader.reading {
                let n = ready.waiting
                let d = ready.description
                let w = ready.waitDescription(kind: .condition)
                guard (0...waiters).contains(n), d.hasPrefix("UCondition(condition 'ready', "),
                    w.hasPrefix("condition 'ready' (")
                else { return "\(n) waiting, \(d), \(w)" }
                return nil
            } while: {
                for r in 1...200 {
                    let threads = (0..<waiters).map { _ in
                        UThread(name: "waiter") {
                            try m.lock(timeout: .seconds(20))
                            try ready.wait(m, until: { round.value >= r }, timeout: .seconds(20))
                            try m.unlock()
                        }
                    }
                    try waitFor { ready.waiting == waiters }
                    try m.withLock { round.add() }
                    ready.broadcast()
                    for t in threads { try t.join() }
                }
                #expect(ready.waiting == 0)
            }
        }
        #expect(bad == nil)
    }

    /// A read–write lock's counts, holders and descriptions read elsewhere while readers and
    /// writers take it in turn: never more readers than there are, never more holders.
    @Test(arguments: syncWorkerCounts)
    func rwLockCountsReadElsewhereStayInBounds(workers: Int) throws {
        let readers = 3
        let bad = try runOn(workers: workers) { () -> String? in
            let rw = URWLock(name: "rw")
            return try ElsewhereReader.reading {
                let n = rw.readerCount
                let writing = rw.isWriteLocked
                let holders = rw.holders.count
                let w = rw.waitDescription(kind: .rwlock)
                guard (0...readers).contains(n), holders <= readers, rw.description == "URWLock(rwlock 'rw')",
                    w.hasPrefix("rwlock 'rw' write-held by ") || w.hasPrefix("rwlock 'rw' read-held by ")
                else { return "\(n) readers, writing \(writing), \(holders) holders, \(w)" }
                return nil
            } while: {
                let threads =
                    (0..<readers).map { _ in
                        UThread(name: "reader") {
                            for _ in 0..<500 {
                                try rw.readLock(timeout: .seconds(20))
                                UThread.yield()
                                try rw.readUnlock()
                            }
                        }
                    } + [
                        UThread(name: "writer") {
                            for _ in 0..<500 {
                                try rw.writeLock(timeout: .seconds(20))
                                UThread.yield()
                                try rw.writeUnlock()
                            }
                        }
                    ]
                for t in threads { try t.join() }
                #expect(rw.readerCount == 0 && !rw.isWriteLocked)
            }
        }
        #expect(bad == nil)
    }

    /// Read from elsewhere once the runtime has quiesced, a read–write lock written by the main
    /// thread with a writer queued says so: the writer, no reader, one writer queued.
    @Test(arguments: syncWorkerCounts)
    func rwLockWriterReadElsewhereIsTheWriter(workers: Int) throws {
        let (seen, me) = try runOn(workers: workers) { () -> (String, UInt64) in
            let rw = URWLock(name: "rw")
            try rw.writeLock()
            let writer = UThread(name: "writer") {
                try rw.writeLock(timeout: .seconds(20))
                try rw.writeUnlock()
            }
            try waitFor { rw.waitDescription(kind: .rwlock).hasSuffix(", 1 writer(s) queued") }
            let text = KernelLock<String>("")
            let done = Elsewhere.kernelThread.run {
                let holders = rw.holders.map { "\($0.rawValue)" }.joined(separator: ",")
                text.withLock {
                    $0 = "\(rw.isWriteLocked) \(rw.readerCount) [\(holders)] \(rw.waitDescription(kind: .rwlock))"
                }
            }
            try waitFor { done.isSet }
            try rw.writeUnlock()
            try writer.join()
            return (text.withLock { $0 }, UThread.current.id.rawValue)
        }
        #expect(seen.hasPrefix("true 0 [\(me)] rwlock 'rw' write-held by #\(me)"))
        #expect(seen.hasSuffix(", 1 writer(s) queued"))
    }

    /// A channel's `count`, `isClosed` and descriptions read elsewhere while a producer fills its
    /// buffer, a consumer drains it and the channel is closed: the count within the capacity,
    /// and once closed, closed.
    @Test(arguments: syncWorkerCounts)
    func channelCountReadElsewhereStaysInBounds(workers: Int) throws {
        let bad = try runOn(workers: workers) { () -> String? in
            let jobs = try Channel<Int>(capacity: 4, name: "jobs")
            let sawClosed = Atomic<Bool>(false)
            return try ElsewhereReader.reading {
                let n = jobs.count
                let closed = jobs.isClosed
                if sawClosed.load(ordering: .relaxed) && !closed { return "closed, then not" }
                if closed { sawClosed.store(true, ordering: .relaxed) }
                let d = jobs.description
                let w = jobs.core.waitDescription(kind: .channelReceive)
                guard (0...4).contains(n), d.hasPrefix("Channel(channel 'jobs', "),
                    w.hasPrefix("channel receive on 'jobs' (")
                else { return "count \(n), \(d), \(w)" }
                return nil
            } while: {
                let consumer = UThread(name: "consumer") {
                    while try jobs.receive(timeout: .seconds(20)) != nil {}
                }
                for i in 0..<2_000 {
                    try jobs.send(i, timeout: .seconds(20))
                    if i % 7 == 0 { UThread.yield() }
                }
                jobs.close()
                try consumer.join()
                #expect(jobs.isClosed && jobs.count == 0)
            }
        }
        #expect(bad == nil)
    }
}

extension SyncReadsFromElsewhereTests {
    /// Read from elsewhere while a thread runs a once's body, the once names that thread as its
    /// holder and in its description.
    @Test(arguments: syncWorkerCounts)
    func onceRunnerReadElsewhereIsTheRunner(workers: Int) throws {
        let (seen, runner) = try runOn(workers: workers) { () -> (String, UInt64) in
            let once = UOnce(name: "cfg")
            let gate = USemaphore(name: "gate")
            let started = USemaphore(name: "started")
            let t = UThread(name: "runner") {
                try once.run {
                    started.signal()
                    try gate.wait(timeout: .seconds(20))
                }
            }
            try started.wait(timeout: .seconds(20))
            let text = KernelLock<String>("")
            let done = Elsewhere.kernelThread.run {
                let holders = once.holders.map { "\($0.rawValue)" }.joined(separator: ",")
                text.withLock { $0 = "[\(holders)] \(once.waitDescription(kind: .once))" }
            }
            try waitFor { done.isSet }
            gate.signal()
            try t.join()
            return (text.withLock { $0 }, t.id.rawValue)
        }
        #expect(seen == "[\(runner)] once 'cfg' running in #\(runner)")
    }
}
