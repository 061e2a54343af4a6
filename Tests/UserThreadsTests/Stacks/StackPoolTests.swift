import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct StackPoolTests {
    @Test func stacksAreReusedNotRemapped() throws {
        var c = UThreadRuntime.Configuration()
        c.stackMode = .guarded
        try UThreadRuntime.run(c) {
            for _ in 0..<10 { try UThread {}.join() }
            let mapped = UThreadRuntime.stackStatistics.mappedGuarded
            for _ in 0..<5000 { try UThread {}.join() }
            #expect(UThreadRuntime.stackStatistics.mappedGuarded == mapped)
            #expect(UThreadRuntime.stackStatistics.inUse == 1)  // the main thread's
        }
    }

    @Test(.disabled(if: Sanitizers.thread, Comment(rawValue: Sanitizers.tooManyFibers)))
    func denseModeRunsManyThreads() throws {
        var c = UThreadRuntime.Configuration()
        c.stackMode = .dense
        let n = try UThreadRuntime.run(c) {
            let ts = (0..<20_000).map { i in
                UThread {
                    UThread.yield()
                    return i
                }
            }
            let table = UThreadRuntime.threadTable()
            #expect(table.threads.filter { $0.stack.mode == .dense }.count == 20_000)
            return try ts.reduce(0) { try $0 + $1.join() }
        }
        #expect(n == 20_000 * 19_999 / 2)
    }

    @Test func poolDirectly() throws {
        let pool = StackPool(mode: .dense, defaultSize: 64 * 1024, denseSize: 32 * 1024, maxPooled: 2)
        var stacks: [Stack] = []
        for _ in 0..<300 { stacks.append(try pool.allocate(size: nil)) }  // more than one slab
        #expect(Set(stacks.map(\.lo)).count == 300)
        for s in stacks {
            #expect(s.mode == .dense)
            #expect(s.size == 32 * 1024 - 64)
            s.canaryAddress.pointee = 1  // writable: inside the slab
        }
        for s in stacks { pool.release(s) }
        #expect(pool.inUse == 0)
        // A size larger than a dense slot gets a guarded stack.
        let big = try pool.allocate(size: 128 * 1024)
        #expect(big.mode == .guarded && big.size == 128 * 1024)
        pool.release(big)
    }
}
