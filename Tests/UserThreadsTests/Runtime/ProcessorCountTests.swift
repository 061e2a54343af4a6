// `UThreadRuntime.processorCount` counts the CPUs the calling kernel thread may run on (its
// affinity mask, as `taskset -c 0` sets for a whole process), not every CPU online.
import CUThreads
import Foundation
import Glibc
import Testing

@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct ProcessorCountTests {
    /// On a helper kernel thread pinned to CPU 0 (its mask dies with it: the test's own threads
    /// keep theirs) the count is 1; on an unpinned helper it is the mask's count, at most the
    /// CPUs online.
    @Test func processorCountFollowsTheAffinityMask() throws {
        let pinned = onHelperThread { () -> Int in
            guard uthreads_pin_current_thread(0) == 0 else { return -Int(errno) }
            return UThreadRuntime.processorCount
        }
        #expect(pinned == 1)
        let free = try #require(onHelperThread { (UThreadRuntime.processorCount, Int(uthreads_affinity_cpu_count())) })
        #expect(free.0 >= 1 && free.0 <= Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #expect(free.0 == free.1)
    }

    /// Runs `body` on a new kernel thread and returns its value (nil if it did not answer in
    /// 30 s). The test's thread runs no runtime, so it may block.
    private func onHelperThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T? {
        let answer = KernelLock<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let value = body()
            answer.withLock { $0 = value }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + 30) == .success else { return nil }
        return answer.withLock { $0 }
    }
}
