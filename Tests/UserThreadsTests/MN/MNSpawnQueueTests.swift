import CUThreads
import Synchronization
import Testing
@testable import UserThreads

/// A worker's queue of not-started threads (MNSpawnQueue.swift): pushed by its owner without a
/// lock, taken oldest first by the owner and by thieves, and a burst larger than the ring.
@Suite(.timeLimit(.minutes(1))) struct MNSpawnQueueTests {
    /// A burst of more threads than the ring holds: the ones that do not fit start at once on
    /// the spawner's worker; every thread runs exactly once and is joined with its own value.
    @Test func aBurstLargerThanTheQueueRunsEveryThreadOnce() throws {
        let n = MNSpawnQueue.capacity + 904
        let (runs, sum) = try UThreadRuntime.run(workers: 2) { () throws -> ([Int], Int) in
            UThread.pin()
            let runs = KernelLock([Int](repeating: 0, count: n))
            let threads = (0..<n).map { i in
                UThread { () -> Int in
                    runs.withLock { $0[i] += 1 }
                    return i
                }
            }
            var sum = 0
            for t in threads { sum += try t.join() }
            return (runs.withLock { $0 }, sum)
        }
        #expect(runs == [Int](repeating: 1, count: n))
        #expect(sum == n * (n - 1) / 2)
    }

    /// A spawner that holds its worker without a safe point loses its queued threads to the idle
    /// worker: each thread runs once, and the thief takes the oldest (the first thread spawned
    /// ran on it: nothing had taken from the queue before the first steal).
    @Test func stolenThreadsRunOnceAndTheOldestIsStolen() throws {
        let n = 64
        let (workers, stolen) = try UThreadRuntime.run(workers: 2) { () throws -> ([Int], Int) in
            UThread.pin()  // the spawner's worker is 0
            let ranOn = KernelLock([Int](repeating: -1, count: n))
            let runs = MNCounter()
            let threads = (0..<n).map { i in
                UThread { () -> Int in
                    runs.add()
                    ranOn.withLock { $0[i] = UThread.worker }
                    return i
                }
            }
            // No safe point until a thief has taken some (bounded: 20 s).
            let end = uthreads_monotonic_ns() + 20_000_000_000
            while UThread.runtime!.statistics.stolen == 0 && uthreads_monotonic_ns() < end {}
            for (i, t) in threads.enumerated() { #expect(try t.join() == i) }
            #expect(runs.count == n)
            return (ranOn.withLock { $0 }, UThread.runtime!.statistics.stolen)
        }
        #expect(stolen >= 1)
        #expect(!workers.contains(-1))
        #expect(workers[0] == 1)
    }
}
