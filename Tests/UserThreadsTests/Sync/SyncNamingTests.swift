// A file importing both Synchronization and UserThreads must compile without ambiguity.
import Synchronization
import Testing
import UserThreads

@Suite("Sync: names do not clash with the Synchronization module", .timeLimit(.minutes(1)))
struct SyncNamingTests {
    @Test func bothModulesSideBySide() throws {
        let kernelMutex = Mutex(0)  // Synchronization's
        let atomic = Atomic<Int>(0)
        try UThreadRuntime.run {
            let m = UMutex()
            let c = UCondition()
            let sem = try USemaphore(value: 1)
            let rw = URWLock()
            let ch = try Channel<Int>(capacity: 1)
            let wg = UWaitGroup()
            let b = try UBarrier(parties: 1)
            let once = UOnce()
            let local = ThreadLocal<Int>(default: 0)
            // Here, not in the child: a `sending` body (the group's, `UThread`'s) cannot capture
            // a noncopyable local of an enclosing closure, such as a `Mutex` or an `Atomic`
            // (captured by reference: the region checker refuses it).
            try m.withLock { kernelMutex.withLock { $0 += 1 } }
            try once.run { atomic.add(1, ordering: .relaxed) }
            try withThreadGroup { g in
                try g.spawn {
                    try sem.wait()
                    sem.signal()
                    try rw.withReadLock {}
                    try ch.send(1)
                    _ = try ch.receive()
                    try wg.add()
                    try wg.done()
                    try wg.wait()
                    try b.arriveAndWait()
                    try once.run {}
                    local.value = 1
                    c.signal()
                }
            }
        }
        #expect(kernelMutex.withLock { $0 } == 1)
        #expect(atomic.load(ordering: .relaxed) == 1)
    }
}
