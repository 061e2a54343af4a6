import CUThreads
import Foundation
import Testing
@testable import UserThreads

final class Shared {
    var buffers: [[Int]] = []
    var counter = 0
}

@Suite(.timeLimit(.minutes(1))) struct ExclusivityTests {
    /// 10,000 threads park *inside* an exclusive access to a class property; other threads'
    /// accesses must neither trap ("simultaneous access") nor slow down.
    @Test(.disabled(if: Sanitizers.thread, Comment(rawValue: Sanitizers.tooManyFibers)))
    func threadsParkedInsideExclusiveAccesses() throws {
        try UThreadRuntime.run {
            let shared = Shared()
            shared.buffers = Array(repeating: [0], count: 10_000)
            let parked = (0..<10_000).map { i in
                UThread.local {
                    shared.buffers[i].withUnsafeMutableBufferPointer { buffer in
                        buffer[0] = i
                        UThread.yield()  // parked with the access open
                        buffer[0] += 1
                    }
                }
            }
            UThread.yield()  // all 10,000 now sit inside their accesses
            let start = ContinuousClock.now
            for _ in 0..<100_000 { shared.counter += 1 }  // would trap or crawl if accesses leaked
            let elapsed = ContinuousClock.now - start
            for t in parked { try t.join() }
            #expect(shared.counter == 100_000)
            #expect(shared.buffers.enumerated().allSatisfy { $0.element[0] == $0.offset + 1 })
            // 100k accesses walking 10k leaked entries would take seconds; clean ones take ~ms.
            #expect(elapsed < .seconds(2))
        }
    }

    /// The switch's skip of an empty save needs the live access-set head. On this toolchain and
    /// architecture it must be found (else every switch silently pays the runtime call again
    /// and the instruction figures no longer describe the shipped path), stable for the kernel
    /// thread and different on another kernel thread.
    @Test(.enabled(if: Self.onX86))
    func liveHeadIsFoundPerKernelThread() throws {
        let here = try #require(uthreads_exclusivity_head())
        #expect(uthreads_exclusivity_head() == here)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var there: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        let thread = Thread {
            there = uthreads_exclusivity_head()
            done.signal()
        }
        thread.start()
        done.wait()
        #expect(there != nil)
        #expect(there != here)
    }

    /// Threads that switch with no access open (the skipped save) and threads that switch
    /// inside one (the runtime's save) take turns on one kernel thread, and each finds its own
    /// access set again: a leaked or lost access would trap as a simultaneous access or leave
    /// the counters wrong.
    @Test(arguments: [1, 50])
    func skippedAndRealSavesInterleave(threads: Int) throws {
        try UThreadRuntime.run {
            let shared = Shared()
            shared.buffers = Array(repeating: [0], count: threads)
            let workers = (0..<threads).map { i in
                UThread.local {
                    for round in 0..<20 {
                        UThread.yield()  // nothing open: the save is skipped
                        shared.buffers[i].withUnsafeMutableBufferPointer { buffer in
                            buffer[0] += 1
                            UThread.yield()  // inside the access: saved and restored by the runtime
                            buffer[0] += round
                        }
                        shared.counter += 1
                    }
                }
            }
            for _ in 0..<40 { UThread.yield() }
            for t in workers { try t.join() }
            #expect(shared.counter == 20 * threads)
            #expect(shared.buffers.allSatisfy { $0[0] == 20 + (0..<20).reduce(0, +) })
        }
    }

    static var onX86: Bool {
        #if arch(x86_64)
            true
        #else
            false
        #endif
    }
}
