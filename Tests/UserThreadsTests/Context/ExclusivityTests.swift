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
}
