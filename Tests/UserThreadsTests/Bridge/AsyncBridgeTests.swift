import Synchronization
import Testing
@testable import UserThreads

/// Swift concurrency and user threads, both ways, without blocking a cooperative-pool thread.
@Suite(.timeLimit(.minutes(1))) struct AsyncBridgeTests {
    /// Fails the test instead of hanging if `body` never finishes (a deadlock guard, not a
    /// speed assertion: nothing here should take more than a fraction of a second).
    func withDeadlockGuard<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                Issue.record("deadlocked: not finished within 60 s")
                throw CancellationError()
            }
            return value
        }
    }

    // The runtimes of these tests run on an executor's kernel thread, not on the test's own
    // thread: Swift Testing calls synchronous tests on the cooperative pool (2 threads here), and
    // a runtime that occupies a pool thread while its user thread waits for a task that needs
    // the pool is exactly the deadlock the bridge exists to avoid.

    @Test func aUserThreadAwaitsAnAsyncFunction() async throws {
        let executor = try UThreadExecutor()
        defer { executor.shutdown() }
        let ticks = Ticks()
        let value = try await executor.run {
            var done = false
            let ticker = UThread.local(name: "ticker") {
                while !done {
                    ticks.count.add(1, ordering: .relaxed)
                    try UThread.sleep(for: .milliseconds(1))
                }
            }
            // The async function returns once the ticker has ticked 3 times: only if the other
            // user thread runs while this one awaits (else it gives up after 20 s).
            let value = try UThread.await { () async throws -> Int in
                let end = ContinuousClock.now + .seconds(20)  // a bound, never expected
                while ticks.count.load(ordering: .relaxed) < 3 && ContinuousClock.now < end {
                    try await Task.sleep(for: .milliseconds(1))
                }
                return 42
            }
            done = true
            try ticker.join()
            return value
        }
        #expect(value == 42)
        #expect(ticks.count.load(ordering: .relaxed) >= 3)  // the other user thread ran while this one awaited
    }

    @Test func awaitRethrowsAndCancels() async throws {
        struct Oops: Error {}
        let executor = try UThreadExecutor()
        defer { executor.shutdown() }
        try await executor.run {
            #expect(throws: Oops.self) { try UThread.await { () async throws -> Int in throw Oops() } }
            let waiter = UThread {
                try UThread.await {
                    try await Task.sleep(for: .seconds(3600))
                    return 1
                }
            }
            UThread.yield()  // it is parked on the task now
            #expect(UThreadRuntime.threadTable().threads.first { $0.id == waiter.id }?.waitReason?.kind == .async)
            waiter.cancel()
            #expect(throws: CancellationError.self) { try waiter.join() }
        }
    }

    /// The limits `awaitTimesOutAndCancelsTheTask` gives: 5 ms as a timeout, as a deadline, and
    /// each beside a far limit of the other kind (the earlier wins).
    enum AwaitLimit: String, CaseIterable, CustomStringConvertible {
        case timeout, deadline, nearTimeoutFarDeadline, nearDeadlineFarTimeout
        var description: String { rawValue }
        /// The `timeout:` and `deadline:` arguments, computed at the call.
        var arguments: (Duration?, ContinuousClock.Instant?) {
            let (near, far) = (Duration.milliseconds(5), Duration.seconds(3600))
            return switch self {
            case .timeout: (near, nil)
            case .deadline: (nil, .now + near)
            case .nearTimeoutFarDeadline: (near, .now + far)
            case .nearDeadlineFarTimeout: (far, .now + near)
            }
        }
    }

    @Test(arguments: AwaitLimit.allCases)
    func awaitTimesOutAndCancelsTheTask(_ limit: AwaitLimit) async throws {
        let executor = try UThreadExecutor()
        defer { executor.shutdown() }
        let sawCancel = try await executor.run { () throws -> Bool in
            let cancelled = Atomic<Bool>(false)
            let (timeout, deadline) = limit.arguments
            #expect(throws: UThreadError.timedOut) {
                try UThread.await(timeout: timeout, deadline: deadline) { () async throws -> Int in
                    do { try await Task.sleep(for: .seconds(3600)) } catch {
                        cancelled.store(true, ordering: .releasing)
                        throw error
                    }
                    return 1
                }
            }
            return cancelled.load(ordering: .acquiring)  // the task ended before the call returned
        }
        #expect(sawCancel)
    }

    @Test func asyncCodeAwaitsUserThreads() async throws {
        let executor = try UThreadExecutor()
        defer { executor.shutdown() }
        let v = try await executor.run(name: "answer") { 6 * 7 }
        #expect(v == 42)
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await executor.run { () throws -> Int in throw Boom() } }
    }

    /// Many more bridged calls in flight than the cooperative pool has threads, each needing
    /// the pool (the inner task) while the outer task waits: any blocked pool thread would
    /// deadlock this.
    @Test func bothDirectionsUnderLoadBlockNoPoolThread() async throws {
        let executor = try UThreadExecutor()
        defer { executor.shutdown() }
        let sum = try await withDeadlockGuard {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        try await executor.run(name: "job \(i)") {
                            try UThread.sleep(for: .milliseconds(1))  // parks on the reactor
                            return try UThread.await {  // back into async
                                try await Task.sleep(for: .milliseconds(2))
                                return i
                            }
                        }
                    }
                }
                var sum = 0
                for try await v in group { sum += v }
                return sum
            }
        }
        #expect(sum == 199 * 200 / 2)
    }

    @Test func cancellingTheAwaitingTaskCancelsTheUserThread() async throws {
        let executor = try UThreadExecutor()
        defer { executor.shutdown() }
        let started = Atomic<Bool>(false)
        let task = Task {
            try await executor.run(name: "sleeper") { () throws -> Int in
                started.store(true, ordering: .releasing)
                try UThread.sleep(for: .seconds(3600))
                return 0
            }
        }
        while !started.load(ordering: .acquiring) { await Task.yield() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test func shutdownRefusesNewWorkAndEndsRunningThreads() async throws {
        let executor = try UThreadExecutor()
        let started = Atomic<Bool>(false)
        let long = Task {
            try await executor.run { () throws -> Int in
                started.store(true, ordering: .releasing)
                try UThread.sleep(for: .seconds(3600))
                return 0
            }
        }
        while !started.load(ordering: .acquiring) { await Task.yield() }
        executor.shutdown()
        await #expect(throws: CancellationError.self) { try await long.value }
        await #expect(throws: UThreadError.self) { try await executor.run { 1 } }
    }
}

/// A tick counter shared by a user thread and an async function.
final class Ticks: Sendable {
    let count = Atomic<Int>(0)
}
