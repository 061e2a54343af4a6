import Synchronization
import Testing

@testable import UserThreads

/// UWaitGroup on the M:1 runtime and across two workers: waiters released at zero, every
/// thread counted, timeouts, deadlines and the below-zero error.
@Suite(.timeLimit(.minutes(1)))
struct UWaitGroupTests {
    @Test(arguments: syncWorkerCounts) func aWaitGroupReleasesItsWaitersAtZero(workers: Int) throws {
        try runOn(workers: workers) { try Self.waitGroupScenario(workers: workers) }
    }

    /// A function, not a closure literal: Swift 6.3.1's region checker crashed (SendNonSendable,
    /// `map::at`) on this body written inline.
    static func waitGroupScenario(workers: Int) throws {
        let g = UWaitGroup(name: "jobs")
        try g.add(3)
        let first = UThread { try g.wait() }
        let second = UThread { try g.wait() }
        #expect(throws: UThreadError.timedOut) { try g.wait(timeout: .milliseconds(5)) }
        #expect(throws: UThreadError.timedOut) { try g.wait(deadline: .now) }
        for _ in 0..<3 { try UThread { try g.done() }.join() }
        try first.join()
        try second.join()
        #expect(g.pending == 0)
        expectInvalidArgument { try g.done() }  // below zero
        try g.wait()  // zero: at once
    }

    /// Fifty threads each add and finish: the wait returns when every one is done.
    @Test(arguments: syncWorkerCounts) func aWaitGroupCountsEveryThread(workers: Int) throws {
        let done = try runOn(workers: workers) { () -> Int in
            let wg = UWaitGroup()
            let done = MNCounter()
            for _ in 0..<50 {
                try wg.add()
                _ = UThread {
                    UThread.yield()
                    done.add()
                    try wg.done()
                }
            }
            try wg.wait()
            #expect(expectError(sameCaseAs: .invalidArgument("")) { try wg.done() }?.contains("negative") == true)
            return done.count
        }
        #expect(done == 50)
    }
}
