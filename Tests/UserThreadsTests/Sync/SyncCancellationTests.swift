import Testing
import UserThreads

/// Cancellation mid-wait on every primitive, on one worker and two: the waiter throws
/// CancellationError, leaves no trace (the next waiter gets what the cancelled one waited for),
/// and nothing hangs. The threads are `UThread.local` (on the caller's worker).
@Suite("Sync: cancellation mid-wait", .timeLimit(.minutes(1)))
struct SyncCancellationTests {
    enum Primitive: String, CaseIterable { case rwlockRead, rwlockWrite, waitGroup, barrier, once, select, condition }

    @Test(arguments: syncWorkerCounts, Primitive.allCases)
    func cancelledWaiterLeavesNoTrace(workers: Int, _ primitive: Primitive) throws {
        try UThreadRuntime.run(workers: workers) {
            UThread.pin()  // spawns `UThread.local` threads (which need a spawner that stays)
            var release: () throws -> Void = {}
            var wait: () throws -> Void = {}
            switch primitive {
            case .rwlockRead, .rwlockWrite:
                let rw = URWLock()
                try rw.writeLock()
                wait =
                    primitive == .rwlockRead
                    ? {
                        try rw.readLock()
                        try rw.readUnlock()
                    }
                    : {
                        try rw.writeLock()
                        try rw.writeUnlock()
                    }
                release = { try rw.writeUnlock() }
            case .waitGroup:
                let wg = UWaitGroup()
                try wg.add()
                wait = { try wg.wait() }
                release = { try wg.done() }
            case .barrier:
                let b = try UBarrier(parties: 3)
                wait = { try b.arriveAndWait() }
                // Two more parties meet the live waiter; had the cancelled arrival counted,
                // the barrier would trip early or never.
                release = {
                    let helper = UThread.local { try b.arriveAndWait() }
                    try b.arriveAndWait()
                    _ = try helper.join()
                    #expect(b.arrived == 0 && b.generation == 1)
                }
            case .once:
                let once = UOnce()
                let gate = try USemaphore(value: 0)
                let runner = UThread.local { try once.run { try gate.wait() } }
                try waitFor { Self.isBlocked(runner.id) }
                wait = { try once.run {} }
                release = {
                    gate.signal()
                    try runner.join()
                }
            case .select:
                let ch = Channel<Int>()
                wait = { _ = try channelSelect { s in s.receive(from: ch) { $0 ?? -1 } } }
                release = { try ch.send(1) }
            case .condition:
                let m = UMutex()
                let c = UCondition()
                var ready = false
                wait = { try m.withLock { try c.wait(m, until: { ready }) } }
                release = {
                    try m.withLock { ready = true }
                    c.broadcast()
                }
            }
            let cancelled = UThread.local(name: "cancelled") { try wait() }
            let live = UThread.local(name: "live") { try wait() }
            try waitFor { Self.isBlocked(cancelled.id) && Self.isBlocked(live.id) }
            cancelled.cancel()
            #expect(throws: CancellationError.self) { try cancelled.join() }
            try release()
            try live.join()
        }
    }

    /// Whether thread `id` is parked now (the thread table).
    static func isBlocked(_ id: ThreadID) -> Bool {
        UThreadRuntime.threadTable().threads.first { $0.id == id }?.state == .blocked
    }
}
