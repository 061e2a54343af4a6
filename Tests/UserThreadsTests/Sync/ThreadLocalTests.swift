import Testing

@testable import UserThreads

/// One `ThreadLocal` captured by threads on the M:1 runtime and on two workers: each thread sees
/// its own value, the default where it set none, and its value across the yields where it may
/// move to another worker.
@Suite(.timeLimit(.minutes(1)))
struct ThreadLocalTests {
    @Test(arguments: syncWorkerCounts) func eachThreadSeesItsOwnValue(workers: Int) throws {
        let seen = try runOn(workers: workers) { () -> [Int] in
            let slot = ThreadLocal<Int>(default: -1)
            let threads = (0..<8).map { i in
                UThread { () -> Int in
                    let fresh = slot.value
                    slot.value = i
                    for _ in 0..<20 { UThread.yield() }  // others set theirs meanwhile
                    return fresh == -1 && slot.hasValue ? slot.value : -2
                }
            }
            let results = try threads.map { try $0.join() }
            return results + [slot.value]  // the main thread never set it
        }
        #expect(seen == Array(0..<8) + [-1])
    }

    /// A thread's values are released when it exits, not before; `reset` clears the caller's.
    @Test(arguments: syncWorkerCounts) func valuesAreReleasedAtExit(workers: Int) throws {
        final class Tracker: Sendable {
            let released: MNCounter
            init(_ released: MNCounter) { self.released = released }
            deinit { released.add() }
        }
        let released = try runOn(workers: workers) { () -> Int in
            let id = ThreadLocal<Int>(default: -1)
            let tracker = ThreadLocal<Tracker?>(default: nil)
            let released = MNCounter()
            id.value = 0
            let threads = (1...10).map { i in
                UThread { () -> Int in
                    tracker.value = Tracker(released)
                    id.value = i
                    UThread.yield()
                    #expect(released.count < 10)  // its own is still alive
                    return id.value
                }
            }
            for (i, t) in threads.enumerated() {
                let v = try t.join()
                #expect(v == i + 1)
            }
            #expect(id.value == 0)
            id.reset()
            #expect(!id.hasValue)
            return released.count
        }
        #expect(released == 10)
    }

    /// A `ThreadLocal` made after another one was released (the allocator may give it the same
    /// address) reads its own default, never the released one's value.
    @Test(arguments: syncWorkerCounts) func aNewThreadLocalNeverSeesAReleasedOnesValue(workers: Int) throws {
        let stale = try runOn(workers: workers) { () -> Int in
            var stale = 0
            for _ in 0..<1000 {
                do {
                    let released = ThreadLocal<Int>(default: 0)
                    released.value = 7
                }
                let fresh = ThreadLocal<Int>(default: 0)
                if fresh.value != 0 || fresh.hasValue { stale += 1 }
            }
            return stale
        }
        #expect(stale == 0)
    }
}
