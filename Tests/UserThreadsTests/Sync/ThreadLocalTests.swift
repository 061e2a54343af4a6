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
}
