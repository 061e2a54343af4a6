import Dispatch
import Glibc
import Testing
@testable import UserThreads

/// The offload pool's abandonment and capacity rules, on a pool of its own (no runtime: the
/// jobs have no mailbox, so a finished job posts nothing).
@Suite(.timeLimit(.minutes(1))) struct OffloadPoolTests {
    /// A job that signals `started`, waits on `gate`, then signals `done`.
    static func heldJob(started: DispatchSemaphore, gate: DispatchSemaphore, done: DispatchSemaphore)
        -> TypedOffloadJob<Int>
    {
        TypedOffloadJob {
            started.signal()
            gate.wait()
            done.signal()
            return 1
        }
    }

    static func waited(_ s: DispatchSemaphore) -> Bool { s.wait(timeout: .now() + 20) == .success }

    /// A held job with its three semaphores.
    struct Held {
        let started = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        var job: TypedOffloadJob<Int> { OffloadPoolTests.heldJob(started: started, gate: gate, done: done) }
    }

    /// Submits a held job to `pool` and waits until it runs.
    static func running(on pool: OffloadPool) -> (Held, TypedOffloadJob<Int>) {
        let held = Held()
        let job = held.job
        pool.submit(job)
        #expect(waited(held.started), "the pool did not run a submitted job")
        return (held, job)
    }

    /// With `maximumThreads` 1: a running call abandoned lets the pool start a second thread
    /// for the next call; a second abandoned call reaches the bound (twice the maximum), so a
    /// third queues (counted) until an abandoned call returns.
    @Test func abandonedCallsDoNotStarveThePoolWithinItsBound() throws {
        let pool = OffloadPool(maximumThreads: 1)
        let (heldA, a) = Self.running(on: pool)
        let (gateA, doneA) = (heldA.gate, heldA.done)
        #expect(pool.abandon(a), "a running job was not abandoned")
        #expect(pool.statistics.abandonedRunning == 1)

        // B runs beside the abandoned A on a second thread.
        let heldB = Held()
        let (startedB, gateB, doneB) = (heldB.started, heldB.gate, heldB.done)
        let b = heldB.job
        pool.submit(b)
        #expect(Self.waited(startedB), "the pool did not start a thread beside an abandoned call")
        #expect(pool.statistics.threads == 2)
        #expect(pool.abandon(b))

        // Two abandoned calls on two threads: the bound (2 × 1). C queues.
        let heldC = Held()
        let (startedC, gateC, doneC) = (heldC.started, heldC.gate, heldC.done)
        let c = heldC.job
        pool.submit(c)
        #expect(startedC.wait(timeout: .now()) == .timedOut)
        let stats = pool.statistics
        #expect(stats.threads == 2 && stats.queued == 1 && stats.abandonedRunning == 2 && stats.abandonedTotal == 2)

        gateA.signal()  // A returns; its thread takes C
        #expect(Self.waited(doneA))
        #expect(Self.waited(startedC))
        gateC.signal()
        #expect(Self.waited(doneC))
        gateB.signal()
        #expect(Self.waited(doneB))
        // C's thread marks it finished just after its body returned (after `doneC`).
        let limit = ContinuousClock.now + .seconds(20)
        while pool.state(of: c) != .finished && ContinuousClock.now < limit { usleep(1000) }
        #expect(!pool.abandon(c), "a finished job was abandoned")
        #expect(c.result.map { (try? $0.get()) == 1 } == true)
    }

    /// A queued job abandoned is removed and never runs; its body is released at once.
    @Test func aQueuedJobAbandonedNeverRuns() throws {
        let pool = OffloadPool(maximumThreads: 1)
        let (held, _) = Self.running(on: pool)
        let (gate, done) = (held.gate, held.done)
        final class Token: Sendable {
            let released: DispatchSemaphore
            init(_ r: DispatchSemaphore) { released = r }
            deinit { released.signal() }
        }
        let (ran, released) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let queued: TypedOffloadJob<Int> = {
            let token = Token(released)
            return TypedOffloadJob {
                ran.signal()
                return token === token ? 2 : 0
            }
        }()
        pool.submit(queued)
        #expect(pool.statistics.queued == 1)
        #expect(pool.abandon(queued))
        #expect(pool.statistics.queued == 0)
        #expect(released.wait(timeout: .now()) == .success, "the abandoned body's captures were kept")
        gate.signal()
        #expect(Self.waited(done))
        // The pool thread goes back to its semaphore; a later job runs, the abandoned one did not.
        let (s2, g2, d2) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        g2.signal()  // (a DispatchSemaphore must not end below its initial value)
        pool.submit(Self.heldJob(started: s2, gate: g2, done: d2))
        #expect(Self.waited(d2))
        #expect(ran.wait(timeout: .now()) == .timedOut)
        #expect(pool.statistics.abandonedRunning == 0)
    }
}
