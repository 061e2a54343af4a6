import Dispatch
import Glibc
import Synchronization
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct BlockingTests {
    @Test func returnsAFilesContent() throws {
        let path = "/tmp/uthreads-blocking-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let content = Array("the quick brown fox\n".utf8)
        let (read, viaBlocking) = try UThreadRuntime.run {
            try IO.writeFile(path, content)
            defer { unlink(path) }
            let viaBlocking = try blocking { () throws -> Int in
                var st = stat()
                guard stat(path, &st) == 0 else {
                    throw UThreadError.system(call: "stat", errno: .init(rawValue: errno))
                }
                return Int(st.st_size)
            }
            return (try IO.readFile(path), viaBlocking)
        }
        #expect(read == content)
        #expect(viaBlocking == content.count)
    }

    struct Oops: Error, Equatable { var code: Int }

    @Test func rethrowsTheClosuresError() throws {
        let result = try UThreadRuntime.run { () -> (any Error)? in
            do { _ = try blocking { () throws -> Int in throw Oops(code: 42) } } catch { return error }
            return nil
        }
        #expect(result as? Oops == Oops(code: 42))
        let missing = try UThreadRuntime.run { () -> (any Error)? in
            do { _ = try IO.readFile("/nonexistent/uthreads") } catch { return error }
            return nil
        }
        #expect(missing as? UThreadError == .system(call: "open", errno: .noSuchFileOrDirectory))
    }

    /// A job blocks a pool kernel thread in poll(2) on an empty pipe; only a ticker user thread
    /// that keeps running meanwhile (5 timer wake-ups) writes the byte that ends the poll. The
    /// poll's return says which happened: 1, the byte came; 0, it timed out after 10 s because
    /// the runtime stopped while the job blocked.
    @Test func otherThreadsRunWhileAJobBlocks() throws {
        let (polled, ticksDuringTheJob) = try UThreadRuntime.run { () -> (Int32, Int) in
            let (r, w) = try IO.pipe()
            defer {
                try? IO.close(r)
                try? IO.close(w)
            }
            let job = UThread { () throws -> Int32 in
                try blocking {
                    var p = pollfd(fd: r, events: Int16(POLLIN), revents: 0)
                    return poll(&p, 1, 10_000)  // a kernel thread blocks here until the pipe is written
                }
            }
            let ticker = UThread { () throws -> Int in
                // Ticks that found the job still waiting on the pool ("blocking call").
                var ticksDuringTheJob = 0
                for _ in 0..<5 {
                    try UThread.sleep(for: .milliseconds(2))
                    if UThreadRuntime.threadTable().threads.contains(where: {
                        $0.id == job.id && $0.waitReason?.kind == .offload
                    }) {
                        ticksDuringTheJob += 1
                    }
                }
                _ = try [UInt8(1)].withUnsafeBytes { try IO.write(w, from: $0) }
                return ticksDuringTheJob
            }
            let ticks = try ticker.join()
            return (try job.join(), ticks)
        }
        #expect(polled == 1, "the job's poll returned \(polled): it was not woken by the ticker's write")
        #expect(ticksDuringTheJob == 5)
    }

    @Test func manyJobsAtOnce() throws {
        let sum = try UThreadRuntime.run {
            let threads = (1...50).map { i in UThread { try blocking { i * 2 } } }
            return try threads.reduce(0) { try $0 + $1.join() }
        }
        #expect(sum == (1...50).reduce(0) { $0 + $1 * 2 })
        #expect(UThreadRuntime.blockingPoolThreads <= UThreadRuntime.blockingPoolSize)
    }

    @Test func noReactorWithoutIO() throws {
        let hasPoller = try UThreadRuntime.run { () -> Bool in
            let t = UThread { try UThread.sleep(for: .milliseconds(1)) }
            try t.join()
            return Scheduler.require("test").poller != nil
        }
        #expect(!hasPoller)
    }
}

/// A pool call the test holds: its body signals `entered`, then waits on `gate` until the test
/// opens it (at the end, after the waiter gave up): so a wait ends by its timeout, deadline or
/// cancellation, never by the call returning, with no sleep to hope on.
final class HeldCall: Sendable {
    let entered = DispatchSemaphore(value: 0)
    let gate = DispatchSemaphore(value: 0)
    /// Signalled by `Token.deinit`: the call's result (or its body's captures) was released.
    let released = DispatchSemaphore(value: 0)

    /// What the held call returns (and captures): signals `released` when freed.
    final class Token: Sendable {
        let released: DispatchSemaphore
        init(_ released: DispatchSemaphore) { self.released = released }
        deinit { released.signal() }
    }

    /// A body that enters, waits for the gate, and returns a token (also captured, so that a
    /// body dropped unrun releases one too).
    func body() -> @Sendable () -> Token {
        let token = Token(released)
        return { [entered, gate] in
            entered.signal()
            gate.wait()
            return token
        }
    }

    /// From a user thread: yields (1 ms sleeps) until the body has started on a pool thread.
    /// A semaphore wait would block the runtime's kernel thread, and a `blocking {}` wait could
    /// queue behind other tests' held calls.
    func waitUntilEntered() throws {
        let limit = ContinuousClock.now + .seconds(20)
        while entered.wait(timeout: .now()) != .success {
            guard ContinuousClock.now < limit else { throw UThreadError.invalidArgument("the held call never started") }
            try UThread.sleep(for: .milliseconds(1))
        }
        entered.signal()  // for later waiters
    }

    /// Off the runtime, at the end: lets the call return and waits (bounded) for its result to
    /// be released on the pool thread. True when it was.
    func openAndWaitForRelease() -> Bool {
        gate.signal()
        return released.wait(timeout: .now() + 20) == .success
    }
}

@Suite(.timeLimit(.minutes(1))) struct BlockingLimitTests {
    /// The outcome of a call, as the table of timed calls names it.
    enum Ended: Equatable {
        case returned, timedOut, cancelled
        case other(String)
    }

    static func ended(_ body: () throws -> Void) -> Ended {
        do {
            try body()
            return .returned
        } catch UThreadError.timedOut {
            return .timedOut
        } catch is CancellationError {
            return .cancelled
        } catch {
            return .other("\(error)")
        }
    }

    @Test(arguments: [1, 2]) func aTimeoutEndsTheWait(workers: Int) throws {
        let held = HeldCall()
        let ended = try UThreadRuntime.run(workers: workers) {
            Self.ended { _ = try blocking(timeout: .milliseconds(30), held.body()) }
        }
        #expect(ended == .timedOut)
        #expect(held.openAndWaitForRelease(), "the abandoned call's result (or body) was not released")
    }

    @Test(arguments: [1, 2]) func aDeadlineEndsTheWait(workers: Int) throws {
        let held = HeldCall()
        let ended = try UThreadRuntime.run(workers: workers) {
            Self.ended { _ = try blocking(deadline: .now + .milliseconds(30), held.body()) }
        }
        #expect(ended == .timedOut)
        #expect(held.openAndWaitForRelease())
    }

    /// The earlier of timeout and deadline wins (`Deadline.earliest`): a far deadline does not
    /// lengthen a short timeout, nor a far timeout a near deadline.
    @Test(arguments: [1, 2]) func theEarlierLimitWins(workers: Int) throws {
        let (a, b) = (HeldCall(), HeldCall())
        let (first, second) = try UThreadRuntime.run(workers: workers) {
            (
                Self.ended { _ = try blocking(timeout: .milliseconds(20), deadline: .now + .seconds(3600), a.body()) },
                Self.ended { _ = try blocking(timeout: .seconds(3600), deadline: .now + .milliseconds(20), b.body()) }
            )
        }
        #expect(first == .timedOut)
        #expect(second == .timedOut)
        #expect(a.openAndWaitForRelease())
        #expect(b.openAndWaitForRelease())
    }

    /// A thread whose call is running on a pool thread is cancelled: it throws at once, the
    /// runtime ends while the call still runs, and the call's result is released on its pool
    /// thread when it returns (nothing is posted to the ended runtime).
    @Test(arguments: [1, 2]) func cancellationEndsTheWaitOfARunningCall(workers: Int) throws {
        let held = HeldCall()
        let before = UThreadRuntime.blockingPoolStatistics.abandonedTotal
        let (ended, abandonedRunning) = try UThreadRuntime.run(workers: workers) { () -> (Ended, Int) in
            let waiter = UThread { Self.ended { _ = try blocking(held.body()) } }
            try held.waitUntilEntered()
            waiter.cancel()
            let ended = try waiter.join()
            return (ended, UThreadRuntime.blockingPoolStatistics.abandonedRunning)
        }
        #expect(ended == .cancelled)
        #expect(abandonedRunning >= 1, "the held call was not counted as abandoned and running")
        #expect(UThreadRuntime.blockingPoolStatistics.abandonedTotal > before)
        #expect(held.openAndWaitForRelease(), "the abandoned call's result was not released")
    }

    /// A thread already cancelled, a timeout not above zero, a past deadline: the call throws
    /// at once and never runs (its body's captures are released).
    @Test(arguments: [1, 2]) func aDueLimitOrACancelledThreadNeverRunsTheCall(workers: Int) throws {
        let ran = RunCount()
        let released = DispatchSemaphore(value: 0)
        let outcomes = try UThreadRuntime.run(workers: workers) { () -> [Ended] in
            let cancelled = UThread { () -> Ended in
                while !UThread.isCancelled { UThread<Never>.yield() }
                return Self.call(timeout: nil, deadline: nil, ran, released)
            }
            cancelled.cancel()
            return [
                Self.call(timeout: .zero, deadline: nil, ran, released),
                Self.call(timeout: .milliseconds(-5), deadline: nil, ran, released),
                Self.call(timeout: nil, deadline: .now - .milliseconds(300), ran, released),
                try cancelled.join(),
            ]
        }
        #expect(outcomes == [.timedOut, .timedOut, .timedOut, .cancelled])
        #expect(ran.value.load(ordering: .relaxed) == 0)
        for _ in 0..<4 { #expect(released.wait(timeout: .now() + 20) == .success) }
    }

    final class RunCount: Sendable {
        let value = Atomic<Int>(0)
    }

    /// A `blocking` call that counts its runs and returns (and captures) a token.
    static func call(
        timeout: Duration?, deadline: ContinuousClock.Instant?, _ ran: RunCount, _ released: DispatchSemaphore
    ) -> Ended {
        let token = HeldCall.Token(released)
        return ended {
            _ = try blocking(timeout: timeout, deadline: deadline) {
                ran.value.add(1, ordering: .relaxed)
                return token
            }
        }
    }

    /// With limits that do not come due, the call returns its value as before, and its error.
    @Test(arguments: [1, 2]) func theNormalPathIsUnchanged(workers: Int) throws {
        let released = DispatchSemaphore(value: 0)
        let (value, error, tokenBack) = try UThreadRuntime.run(workers: workers) { () -> (Int, Ended, Bool) in
            let value = try blocking(timeout: .seconds(3600), deadline: .now + .seconds(3600)) { 6 * 7 }
            let error = Self.ended {
                _ = try blocking(timeout: .seconds(3600)) { () throws -> Int in throw UThreadError.closed("x") }
            }
            let token = try blocking(timeout: .seconds(3600)) { HeldCall.Token(released) }
            return (value, error, released.wait(timeout: .now()) == .timedOut && token.released === released)
        }
        #expect(value == 42)
        #expect(error == .other("\(UThreadError.closed("x"))"))
        #expect(tokenBack, "a returned result was released before its caller had it")
        #expect(released.wait(timeout: .now() + 20) == .success)
    }

    /// The thread table shows a thread waiting in a timed `blocking {}` as a blocking call,
    /// and the pool's statistics stay within their bound.
    @Test(arguments: [1, 2]) func aTimedWaitShowsAsABlockingCall(workers: Int) throws {
        let held = HeldCall()
        let shown = try UThreadRuntime.run(workers: workers) { () -> Bool in
            let waiter = UThread(pinned: true) { Self.ended { _ = try blocking(timeout: .seconds(3600), held.body()) } }
            try held.waitUntilEntered()
            let shown = UThreadRuntime.threadTable().threads.contains {
                $0.id == waiter.id && $0.waitReason?.kind == .offload
            }
            waiter.cancel()
            _ = try waiter.join()
            return shown
        }
        #expect(shown)
        let stats = UThreadRuntime.blockingPoolStatistics
        #expect(stats.threads <= 2 * stats.maximumThreads)
        #expect(held.openAndWaitForRelease())
    }
}
