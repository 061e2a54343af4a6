import CUThreads
import Testing

@testable import UserThreads

/// A finished thread is kept whole (row, stack, object) for the next spawn: the next thread on
/// that row shows nothing of the previous one, and the previous one's handles still answer for it.
@Suite(.timeLimit(.minutes(1))) struct ThreadObjectSlabTests {
    /// What a thread sees of itself, read inside it.
    struct Seen: Equatable {
        var id: ThreadID
        var name: String
        var cancelled: Bool
        var local: Int
        var priority: Int
        var switches: UInt64
        var waiting: Bool
        var parent: ThreadID?
        var stackBase: UInt64
    }

    static func seen(_ local: ThreadLocal<Int>) -> Seen {
        let me = UThread.current
        let row = UThreadRuntime.threadTable().threads.first { $0.id == me.id }!
        return Seen(
            id: me.id, name: me.name, cancelled: UThread.isCancelled, local: local.value, priority: row.priority,
            switches: row.switches, waiting: row.waitReason != nil || row.deadlineInSeconds != nil,
            parent: row.parentID, stackBase: row.stack.base)
    }

    /// The previous thread leaves a name, a priority, a thread-local value, switches, a timed
    /// wait and the cancelled flag behind; the next one on its row starts clean, with a new id.
    /// With the previous handle kept (its object cannot be reused) and dropped (it is).
    @Test(arguments: [StackMode.dense, .guarded], [true, false])
    func aKeptRowLeaksNothingOfItsPreviousThread(mode: StackMode, keepHandle: Bool) throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        try UThreadRuntime.run(configuration) {
            let local = ThreadLocal<Int>(default: 0)
            let mainID = UThread.current.id
            for _ in 0..<3 { try UThread {}.join() }  // the slab holds a row now
            var firstSeen: Seen?
            var first: UThread<Int>? = UThread.local(name: "first", priority: 5) {
                local.value = 99
                for _ in 0..<3 { UThread.yield() }
                _ = try? UThread.sleep(for: .milliseconds(1))  // a timed wait: deadline, wait reason
                UThread.current.cancel()
                firstSeen = Self.seen(local)
                return 7
            }
            #expect(try first!.join() == 7)
            let firstID = first!.id
            if !keepHandle { first = nil }

            let next = UThread.local { Self.seen(local) }
            let seen = try next.join()
            let was = try #require(firstSeen)
            #expect(was.name == "first" && was.cancelled && was.local == 99 && was.priority == 5 && was.switches >= 2)
            #expect(seen.stackBase == was.stackBase)  // the same row and stack...
            #expect(seen.id != firstID && seen.id == next.id)  // ...as a new thread
            #expect(seen.name == "" && !seen.cancelled && seen.local == 0 && seen.priority == 0)
            #expect(seen.switches == 1 && !seen.waiting && seen.parent == mainID)
            #expect(!next.isCancelled && next.name == "")
            if let first {  // the old handle still answers for its own thread
                #expect(first.id == firstID && first.name == "first" && first.isCancelled && first.isFinished)
                #expect(try first.join() == 7)
            }
            #expect(UThreadRuntime.stackStatistics.inUse == 1)  // kept stacks count as pooled
        }
    }

    /// A batch larger than the slab: every thread's handle still joins its own result, and the
    /// rows, stacks and objects beyond the slab's capacity go back where they came from.
    @Test func batchesLargerThanTheSlabJoinTheirOwnResults() throws {
        try UThreadRuntime.run {
            for round in 0..<3 {
                let batch = (0..<(ThreadObjectSlab.capacity + 100)).map { i in UThread { i &+ round } }
                for (i, t) in batch.enumerated() {
                    let value = try t.join()
                    #expect(value == i &+ round)
                }
                #expect(Set(batch.map(\.id)).count == batch.count)
            }
            #expect(UThreadRuntime.stackStatistics.inUse == 1)
            #expect(UThreadRuntime.threadTable().threads.count == 1)
        }
    }

    struct Odd: Error, Equatable { let value: Int }

    /// A kept object is reused only by a thread of its own result type (its witness, the code
    /// that runs the body and destroys the result, is fixed when the object is made): threads
    /// of changing result types, one after another, each join their own result, and the
    /// results that own memory (a string, an error, one too large for the inline room) are
    /// read back intact, also after the next thread of another type has run.
    @Test(arguments: [1, 2])
    func threadsOfChangingResultTypesJoinTheirOwnResults(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            for i in 0..<50 {
                #expect(try UThread { i }.join() == i)
                let text = UThread { "text \(i)" }
                #expect(try text.join() == "text \(i)")
                try UThread {}.join()
                let big = UThread { [Double(i), 1, 2, 3, 4, 5].map { $0 * 2 } + [Double(i)] }
                #expect(try big.join() == [Double(i) * 2, 2, 4, 6, 8, 10, Double(i)])
                let large = try UThread { (i, i &+ 1, i &+ 2, i &+ 3, i &+ 4) }.join()
                #expect(large == (i, i &+ 1, i &+ 2, i &+ 3, i &+ 4))
                #expect(throws: Odd(value: i)) { try UThread { () throws -> UInt8 in throw Odd(value: i) }.join() }
                #expect(try UThread { UInt8(truncatingIfNeeded: i) }.join() == UInt8(truncatingIfNeeded: i))
                #expect(try text.join() == "text \(i)")  // joined again after other types ran
            }
        }
    }

    /// The row of a thread that a help-first join ran to its end waits for the next spawn with
    /// its counts unmoved (Scheduler's "Thread objects"): every figure read meanwhile is the one
    /// the normal exit gives (the pool's, the runtime's, the table's), in any order of reading.
    @Test(arguments: [StackMode.dense, .guarded], [true, false])
    func aHostedThreadsKeptRowLeavesNoFigureBehind(mode: StackMode, statisticsFirst: Bool) throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        try UThreadRuntime.run(configuration) {
            let runtime = try #require(UThread.runtime)
            for _ in 0..<3 { try UThread {}.join() }
            let mapped = UThreadRuntime.stackStatistics.mappedGuarded
            for round in 0..<2 {
                let t = UThread { round }
                #expect(try t.join() == round)
                if statisticsFirst {
                    #expect(UThreadRuntime.stackStatistics.inUse == 1)  // the main thread's
                    #expect(runtime.statistics.live == 1)
                }
                let table = UThreadRuntime.threadTable()
                #expect(table.threads.count == 1 && !table.threads.contains { $0.id == t.id })
                #expect(UThreadRuntime.stackStatistics.inUse == 1)
                #expect(UThreadRuntime.stackStatistics.mappedGuarded == mapped)
                #expect(runtime.statistics.live == 1)
            }
        }
    }

    /// With a pool that keeps no stack, a hosted thread's stack is given back as at the normal
    /// exit by the time anything reads the pool's figures.
    @Test func aHostedThreadsStackIsUnmappedWhenThePoolKeepsNone() throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = .guarded
        configuration.pooledStacks = 0
        try UThreadRuntime.run(configuration) {
            let mapped = UThreadRuntime.stackStatistics.mappedGuarded
            for _ in 0..<3 {
                try UThread {}.join()
                #expect(UThreadRuntime.stackStatistics.mappedGuarded == mapped)
            }
        }
    }

    /// Only a thread spawned with the default stack size leaves its row to the next spawn with
    /// the default: a hosted thread with a stack of its own size does not pass that size on.
    @Test(arguments: [StackMode.dense, .guarded])
    func aHostedThreadOfAnotherStackSizeLeavesNoRowForTheDefault(mode: StackMode) throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        try UThreadRuntime.run(configuration) {
            func ownStackSize() -> Int {
                UThreadRuntime.threadTable().threads.first { $0.id == UThread.current.id }!.stack.size
            }
            let standard = try UThread { ownStackSize() }.join()
            let size = 4 * configuration.stackSize
            #expect(try UThread(stackSize: size) { ownStackSize() }.join() >= size)
            #expect(try UThread { ownStackSize() }.join() == standard)
            #expect(try UThread(stackSize: size) { ownStackSize() }.join() >= size)
        }
    }

    /// The inline uniqueness test and retain of a kept object (`uthreads_retain_if_unique`)
    /// is used on this toolchain: libswiftCore's counts have the layout it assumes.
    @Test func theInlineReferenceCountsAreUsedHere() {
        #expect(Scheduler.refCountsChecked)
    }

    /// `uthreads_retain_if_unique` refuses an object with a second reference and takes one for
    /// an object with a single one, as the runtime's test and retain do.
    @Test func theInlineUniquenessTestAgreesWithTheRuntime() {
        final class Probe {}
        let probe = Unmanaged.passRetained(Probe())  // its only reference
        let raw = probe.toOpaque()
        #expect(uthreads_retain_if_unique_called(raw) == 1)  // two now
        #expect(uthreads_retain_if_unique_called(raw) == 0)
        if Scheduler.refCountsChecked { #expect(uthreads_retain_if_unique(raw) == 0) }
        probe.release()  // one
        if Scheduler.refCountsChecked {
            #expect(uthreads_retain_if_unique(raw) == 1)  // two now
            #expect(uthreads_retain_if_unique_called(raw) == 0)  // the runtime sees two
            probe.release()
        }
        #expect(uthreads_retain_if_unique_called(raw) == 1)  // one again: a second taken
        probe.release()
        probe.release()
    }
}
