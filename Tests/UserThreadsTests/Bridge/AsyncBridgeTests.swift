import Synchronization
import Testing
@testable import UserThreads

/// Swift concurrency and user threads, both ways, without blocking a cooperative-pool thread,
/// on an executor of one worker and of two.
@Suite(.timeLimit(.minutes(1))) struct AsyncBridgeTests {
    /// The executors' worker counts: the M:1 runtime and two workers.
    static let workerCounts = [1, 2]

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

    @Test(arguments: workerCounts) func aUserThreadAwaitsAnAsyncFunction(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
        defer { executor.shutdown() }
        let ticks = Ticks()
        let value = try await executor.run {
            UThread.pin()  // a job runs on any worker: local threads need a spawner that stays
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

    @Test(arguments: workerCounts) func awaitRethrowsAndCancels(workers: Int) async throws {
        struct Oops: Error {}
        let executor = try UThreadExecutor(workers: workers)
        defer { executor.shutdown() }
        try await executor.run {
            #expect(throws: Oops.self) { try UThread.await { () async throws -> Int in throw Oops() } }
            let waiter = UThread {
                try UThread.await {
                    try await Task.sleep(for: .seconds(3600))
                    return 1
                }
            }
            // Parked on the task: after one yield under one worker; under two it may start on
            // the other worker, so wait for the table to say so (the suite's limit bounds it).
            UThread.yield()
            func waitKind() -> WaitReason.Kind? {
                UThreadRuntime.threadTable().threads.first { $0.id == waiter.id }?.waitReason?.kind
            }
            while waitKind() != .async {
                #expect(workers > 1, "one yield must suffice under one worker")
                UThread.yield()
            }
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

    @Test(arguments: AwaitLimit.allCases, workerCounts)
    func awaitTimesOutAndCancelsTheTask(_ limit: AwaitLimit, workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
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

    @Test(arguments: workerCounts) func asyncCodeAwaitsUserThreads(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
        defer { executor.shutdown() }
        let v = try await executor.run(name: "answer") { 6 * 7 }
        #expect(v == 42)
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await executor.run { () throws -> Int in throw Boom() } }
    }

    /// Many more bridged calls in flight than the cooperative pool has threads, each needing
    /// the pool (the inner task) while the outer task waits: any blocked pool thread would
    /// deadlock this.
    @Test(arguments: workerCounts) func bothDirectionsUnderLoadBlockNoPoolThread(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
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

    @Test(arguments: workerCounts) func cancellingTheAwaitingTaskCancelsTheUserThread(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
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

    @Test(arguments: workerCounts) func shutdownRefusesNewWorkAndEndsRunningThreads(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
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

    /// A job's threads may run on every worker, and `UThread.await` parks and resumes each on
    /// its own worker's reactor.
    @Test(arguments: workerCounts) func aJobsThreadsAwaitOnEveryWorker(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
        defer { executor.shutdown() }
        let seen = try await executor.run { () throws -> [Int] in
            let threads = try (0..<workers).map { w in
                try UThread.spawn(name: "on \(w)", onWorker: w) { () throws -> Int in
                    let value = try UThread.await { () async throws -> Int in
                        try await Task.sleep(for: .milliseconds(1))
                        return w
                    }
                    #expect(value == w)
                    return UThread.worker  // pinned: still on the worker it was spawned on
                }
            }
            return try threads.map { try $0.join() }
        }
        #expect(seen == Array(0..<workers))
    }

    /// `shutdown()` from a job on any worker only requests the stop: joining the executor's
    /// kernel thread from one of its own workers would never return (nor would the runtime).
    @Test(arguments: workerCounts) func shutdownFromAJobOnAnyWorkerOnlyRequestsTheStop(workers: Int) async throws {
        let executor = try UThreadExecutor(workers: workers)
        let stopperWorker = Ticks()
        _ = try await withDeadlockGuard {
            // The job may be cancelled by the stop it caused (the runtime cancels what is still
            // alive when it ends), so its outcome is not the point.
            _ = try? await executor.run {
                try UThread.spawn(name: "stopper", onWorker: workers - 1) {
                    stopperWorker.count.store(UThread.worker, ordering: .relaxed)
                    executor.shutdown()
                }.join()
            }
            executor.shutdown()  // joins the executor's kernel thread: it ends only if the stopper did not wait
            return true
        }
        #expect(stopperWorker.count.load(ordering: .relaxed) == workers - 1)
        await #expect(throws: UThreadError.self) { try await executor.run { 1 } }
    }

    /// Bad input is the runtime's clear error, from every `run`, never a crash.
    @Test func aWorkerCountOutOfRangeFailsEveryRun() async throws {
        for workers in [0, -1, 1025] {
            let executor = try UThreadExecutor(workers: workers)
            defer { executor.shutdown() }
            await #expect(throws: UThreadError.invalidArgument("workers must be 1...1024, not \(workers)")) {
                try await executor.run { 1 }
            }
        }
    }
}

/// A counter shared across kernel threads: ticks of a user thread read by an async function,
/// or the worker a thread ran on.
final class Ticks: Sendable {
    let count = Atomic<Int>(0)
}
