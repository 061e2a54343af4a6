import Foundation
import Testing
@testable import UserThreads

/// A runtime reached from a kernel thread outside it (a Foundation `Thread`), the same at one
/// worker as at two: threads spawned from there run as ordinary threads of the runtime, are
/// joined and cancelled from there, and an idle runtime answers at once. In each test the
/// runtime's main thread parks on a channel with a timeout far away, which only a thread
/// spawned from outside can end: what is asked from outside is answered while it is parked.
@Suite(.timeLimit(.minutes(1))) struct InjectedThreadTests {
    /// Runs `body` on a new Foundation thread; the semaphore is signalled when it returns.
    static func outside(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let ended = DispatchSemaphore(value: 0)
        Thread {
            body()
            ended.signal()
        }.start()
        return ended
    }

    /// Ends the main thread's wait on `done` with a thread spawned from outside.
    static func release(_ done: Channel<Int>, through handle: UThreadRuntime.Handle) {
        let stopper = handle.spawn(name: "stopper") { try done.send(1) }
        _ = try? stopper.join(timeout: .seconds(30))
    }

    @Test(arguments: [1, 2])
    func aThreadSpawnedFromOutsideRunsAndIsJoinedThereAndInside(workers: Int) throws {
        let joinedOutside = KernelLock<Result<Int, any Error>?>(nil)
        let ended = KernelLock<DispatchSemaphore?>(nil)
        let joinedInside = try UThreadRuntime.run(workers: workers) { () -> Int in
            let handle = try #require(UThread.runtime)
            let handles = Channel<UThread<Int>>(name: "handles")
            let gate = Channel<Int>(name: "gate")
            let outside = Self.outside {
                let t = handle.spawn(name: "injected") { () throws -> Int in
                    guard let n = try gate.receive(timeout: .seconds(30)) else { return -1 }
                    return n * 7
                }
                // A second thread from outside hands the first to the main thread.
                let courier = handle.spawn(name: "courier") { try handles.send(t) }
                joinedOutside.withLock { $0 = Result { try t.join(timeout: .seconds(30)) } }
                _ = try? courier.join(timeout: .seconds(30))
            }
            ended.withLock { $0 = outside }
            let t = try #require(try handles.receive(timeout: .seconds(30)))
            #expect(!t.isFinished)  // it waits for the gate
            try gate.send(6)
            return try t.join()  // a user thread of the runtime joins it
        }
        #expect(joinedInside == 42)
        #expect(ended.withLock { $0 }?.wait(timeout: .now() + 30) == .success)
        let outsideResult = joinedOutside.withLock { $0 }
        #expect(try outsideResult?.get() == 42)
    }

    @Test(arguments: [1, 2])
    func aJoinFromOutsideTimesOutAndACancelFromOutsideEndsTheThread(workers: Int) throws {
        let report = KernelLock<[String]>([])
        try UThreadRuntime.run(workers: workers) {
            let handle = try #require(UThread.runtime)
            let done = Channel<Int>(name: "done")
            _ = Self.outside {
                var lines: [String] = []
                let t = handle.spawn(name: "sleeper") { () throws -> Int in
                    try UThread.sleep(for: .seconds(3600))
                    return 1
                }
                do {
                    _ = try t.join(timeout: .milliseconds(10))
                    lines.append("joined")
                } catch UThreadError.timedOut {
                    lines.append("timed out")
                } catch { lines.append("\(error)") }
                lines.append("finished \(t.isFinished) cancelled \(t.isCancelled)")
                t.cancel()
                do {
                    _ = try t.join(timeout: .seconds(30))
                    lines.append("joined")
                } catch is CancellationError {
                    lines.append("cancelled")
                } catch { lines.append("\(error)") }
                lines.append("finished \(t.isFinished) cancelled \(t.isCancelled)")
                report.withLock { $0 = lines }
                Self.release(done, through: handle)
            }
            _ = try done.receive(timeout: .seconds(30))
        }
        #expect(
            report.withLock { $0 } == [
                "timed out", "finished false cancelled false", "cancelled", "finished true cancelled true",
            ])
    }

    @Test(arguments: [1, 2])
    func statisticsFromOutsideAreAnsweredWhileTheRuntimeIdles(workers: Int) throws {
        let seen = KernelLock<UThreadRuntime.Statistics?>(nil)
        try UThreadRuntime.run(workers: workers) {
            let handle = try #require(UThread.runtime)
            let done = Channel<Int>(name: "done")
            _ = Self.outside {
                // Under `workers: 1` the runtime answers through its inbox, or after a second
                // not at all (figures of zero): its only thread is parked on `done` meanwhile.
                seen.withLock { $0 = handle.statistics }
                Self.release(done, through: handle)
            }
            _ = try done.receive(timeout: .seconds(30))
        }
        let statistics = try #require(seen.withLock { $0 })
        #expect(statistics.live == 1)  // the main thread
        #expect(statistics.startedPerWorker.count == workers)
        #expect(statistics.startedPerWorker.reduce(0, +) >= 1)
    }

    @Test(arguments: [1, 2])
    func aSpawnIntoARuntimeThatHasEndedFinishesWithAnError(workers: Int) throws {
        let handle = try UThreadRuntime.run(workers: workers) { try #require(UThread.runtime) }
        let t = handle.spawn(name: "late") { 1 }
        #expect(t.isFinished)
        #expect(!t.isCancelled)
        #expect {
            try t.join()  // no timeout: it must not wait at all
        } throws: { error in
            guard case UThreadError.closed = error else { return false }
            return true
        }
    }

    /// A spawn from outside made while the runtime ends: the main thread returns as soon as it
    /// has handed its handle out. Whichever wins, the thread runs (started cancelled when main
    /// had returned; its body does not look) or its join throws `.closed`; never is it queued
    /// and left unrun (the join would time out).
    @Test(arguments: [1, 2])
    func aSpawnRacingTheEndEitherRunsOrReportsClosed(workers: Int) throws {
        for round in 0..<300 {
            let handed = DispatchSemaphore(value: 0)
            let handle = KernelLock<UThreadRuntime.Handle?>(nil)
            let outcome = KernelLock<String?>(nil)
            let spawner = Self.outside {
                handed.wait()
                guard let handle = handle.withLock({ $0 }) else { return }
                let t = handle.spawn(name: "racer") { 7 }
                var line: String
                do {
                    line = "ran \(try t.join(timeout: .seconds(30)))"
                } catch UThreadError.closed {
                    line = "closed"
                } catch { line = "\(error)" }
                if !t.isFinished { line += " but unfinished" }
                outcome.withLock { $0 = line }
            }
            try UThreadRuntime.run(workers: workers) {
                handle.withLock { $0 = UThread.runtime }
                handed.signal()
            }
            #expect(spawner.wait(timeout: .now() + 60) == .success)
            let line = outcome.withLock { $0 }
            #expect(line == "ran 7" || line == "closed", "round \(round): \(line ?? "no outcome")")
        }
    }

    @Test func aUserThreadOfAnotherRuntimeCannotJoinIt() throws {
        let handle = KernelLock<UThreadRuntime.Handle?>(nil)
        let done = Channel<Int>(name: "done")
        let ready = DispatchSemaphore(value: 0)
        let owner = Self.outside {
            _ = try? UThreadRuntime.run {
                handle.withLock { $0 = UThread.runtime }
                ready.signal()
                _ = try done.receive(timeout: .seconds(30))
            }
        }
        #expect(ready.wait(timeout: .now() + 30) == .success)
        let runtime = try #require(handle.withLock { $0 })
        try UThreadRuntime.run {
            let t = runtime.spawn(name: "theirs") { () throws -> Int in
                try UThread.sleep(for: .seconds(3600))
                return 5
            }
            #expect(throws: UThreadError.foreignRuntime) { try t.join(timeout: .seconds(10)) }
            t.cancel()
        }
        Self.release(done, through: runtime)
        #expect(owner.wait(timeout: .now() + 30) == .success)
    }
}
