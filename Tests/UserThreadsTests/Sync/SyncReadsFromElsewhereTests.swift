// Snapshot reads of a sync object (a semaphore's `value`, a wait group's `pending`, a thread
// group's `isCancelled` and `running`, their descriptions) from a plain kernel thread while the
// object's runtime changes it. An object made inside an M:1 runtime is bound to it: such a read
// touches only the words the owner keeps for it (SyncSupport.swift, "From elsewhere"), never
// the runtime's bare state; under two workers the object is shared. Either way each read is a
// value the object really had, nothing crashes, and scripts/tsan.sh sees no race.
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
