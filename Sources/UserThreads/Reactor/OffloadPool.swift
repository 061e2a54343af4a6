// Layer 7: the offload pool — kernel threads for calls that can never be non-blocking.
//
// Regular files (open, read, fsync, stat), getaddrinfo, or any library call that blocks cannot
// be made to return EAGAIN. `blocking { }` hands such a call to this pool and parks the user
// thread; the runtime keeps running its other threads. The pool is shared by all runtimes of
// the process (a job carries its runtime's mailbox, so results go back to the right one), and
// its threads are created lazily, one at a time, only when every existing one is busy, up to a
// configurable maximum (default 4). A program that never calls `blocking {}` has exactly the
// one kernel thread it started with. Idle pool threads wait on a semaphore and cost no CPU;
// they live until the process exits.
//
// Rejected: a pool per runtime (tests and M:N workers would each start their own threads and
// have to join them at shutdown); Dispatch's global queues (pulls in Foundation-era machinery
// and its own thread explosion policy); one thread per call (a clone per getaddrinfo).
//
// Abandoned calls. `blocking(timeout:deadline:)` lets its user thread stop waiting when its
// deadline passes or it is cancelled, but a kernel thread running arbitrary code cannot be
// interrupted: the call runs on to its end. `abandon` decides, under the pool's lock, against
// the pool thread's own transitions (`OffloadJob.PoolState`):
//   * queued (no pool thread took it): removed from the queue and dropped at once, unrun; its
//     body's captures are released by the caller. O(queued jobs), only when abandoning.
//   * running: marked abandoned. The pool thread finishes the call, sees the mark, releases the
//     result and the job's mailbox itself and posts nothing: the runtime never hears of the job
//     again, so a waiter that has since finished, or a runtime that has ended, is never
//     touched (no use of a freed control block, no completion for a dead mailbox), and the
//     result is not leaked (a value whose deinit frees what it owns is freed on the pool
//     thread; getaddrinfo's list is freed inside the call).
//   * finished (the completion is posted or about to be): too late; the waiter takes the
//     result as if it had not timed out. So a call that returned is never thrown away.
// Capacity. An abandoned call still occupies its pool thread until it returns, and a call that
// never returns occupies it for good. So that such calls cannot starve the pool silently, a
// thread running an abandoned call does not count against `maximumThreads`: the pool may start
// one more thread per abandoned call still running, up to twice `maximumThreads` in all (a hard
// bound: a program that abandons calls that never return must not grow the process without
// end). Beyond that, new calls queue (and time out, if they have a deadline), the runtime log
// says so once (a warning with their count), and `blockingPoolStatistics` counts them
// (`abandonedRunning`, `abandonedTotal`) for a dashboard or a test.
// Rejected: interrupting the pool thread (pthread_cancel or a signal: arbitrary code holding a
// lock or a malloc arena cannot be unwound safely, and Swift code is not cancellation-safe);
// posting the abandoned job to the runtime anyway and dropping it there (the result's deinit
// would run on the scheduler's idle path, where nothing may park, and a runtime that ended
// would leave the job in a mailbox nobody drains); an unbounded pool (a hung resolver per
// request would clone a kernel thread per request).
import Logging
import Glibc
import Synchronization

final class OffloadPool: Sendable {
    static let shared = OffloadPool()
    static let defaultMaximumThreads = 4

    private struct State {
        var queue: [OffloadJob] = []
        var head = 0
        var threads = 0
        /// Threads waiting on the semaphore (or about to).
        var idle = 0
        var maximumThreads = OffloadPool.defaultMaximumThreads
        /// Pool threads still running a call whose waiter stopped waiting.
        var abandonedRunning = 0
        /// Calls abandoned in the process's life (queued or running when abandoned).
        var abandonedTotal: UInt64 = 0
        /// The saturation warning was logged (reset when no abandoned call runs).
        var warned = false
        var pending: Int { queue.count - head }
        /// Threads the pool may have: `maximumThreads`, plus one per abandoned call still
        /// running, up to twice `maximumThreads` (essay: "Capacity").
        var limit: Int { maximumThreads + min(abandonedRunning, maximumThreads) }
    }

    private let state = KernelLock(State())
    private nonisolated(unsafe) let semaphore: UnsafeMutablePointer<sem_t>

    /// `shared` is the pool; tests make small ones of their own (their threads, idle, live
    /// until the process exits, as the shared pool's do).
    init(maximumThreads: Int = OffloadPool.defaultMaximumThreads) {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
        state.withLock { $0.maximumThreads = max(1, maximumThreads) }
    }

    /// Maximum number of pool threads (at least 1). Existing threads above it stay.
    var maximumThreads: Int {
        get { state.withLock { $0.maximumThreads } }
        set { state.withLock { $0.maximumThreads = max(1, newValue) } }
    }

    /// Threads started so far.
    var threadCount: Int { state.withLock { $0.threads } }

    /// The pool's figures at one moment (public as `UThreadRuntime.BlockingPoolStatistics`).
    struct Figures {
        var threads, maximumThreads, queued, abandonedRunning: Int
        var abandonedTotal: UInt64
    }

    var statistics: Figures {
        state.withLock { s in
            Figures(
                threads: s.threads, maximumThreads: s.maximumThreads, queued: s.pending,
                abandonedRunning: s.abandonedRunning, abandonedTotal: s.abandonedTotal)
        }
    }

    /// Where `job` is (tests).
    func state(of job: OffloadJob) -> OffloadJob.PoolState { state.withLock { _ in job.poolState } }

    func submit(_ job: OffloadJob) {
        let (spawn, starved) = state.withLock { s -> (Bool, (abandoned: Int, threads: Int)?) in
            job.poolState = .queued
            s.queue.append(job)
            guard s.pending > s.idle else { return (false, nil) }
            if s.threads < s.limit {
                s.threads += 1
                return (true, nil)
            }
            if s.abandonedRunning > 0 && !s.warned {
                s.warned = true
                return (false, (s.abandonedRunning, s.threads))
            }
            return (false, nil)
        }
        if spawn { startThread() }
        if let starved {
            RuntimeLog.makeDefault().warning(
                "blocking calls wait for an offload thread: abandoned calls (timed out or cancelled) still run on some",
                metadata: ["abandoned": "\(starved.abandoned)", "threads": "\(starved.threads)"])
        }
        sem_post(semaphore)
    }

    /// The waiter of `job` stops waiting (its deadline passed or it was cancelled). True when
    /// the job is abandoned: nothing will be posted for it (a queued job is dropped unrun, a
    /// running one is released by its pool thread when the call returns). False when the call
    /// has already finished: its completion is posted or about to be. O(queued jobs).
    func abandon(_ job: OffloadJob) -> Bool {
        let unqueued = state.withLock { s -> Bool? in
            switch job.poolState {
            case .queued:
                job.poolState = .abandoned
                s.abandonedTotal += 1
                if let i = s.queue[s.head...].firstIndex(where: { $0 === job }) { s.queue.remove(at: i) }
                return true
            case .running:
                job.poolState = .abandoned
                s.abandonedTotal += 1
                s.abandonedRunning += 1
                return false
            case .finished, .abandoned:
                return nil
            }
        }
        guard let unqueued else { return false }
        if unqueued { job.discard() }  // no pool thread will see it: release its captures here
        return true
    }

    private func startThread() {
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, offloadThreadStart, Unmanaged.passRetained(self).toOpaque())
        if rc != 0 {
            Unmanaged.passUnretained(self).release()
            state.withLock { $0.threads -= 1 }
            RuntimeLog.makeDefault().warning(
                "could not start an offload thread; jobs wait for the others", metadata: ["errno": "\(rc)"])
            return
        }
        pthread_detach(thread)
    }

    fileprivate func workerLoop() -> Never {
        while true {
            state.withLock { $0.idle += 1 }
            while sem_wait(semaphore) != 0 {}  // EINTR
            let job = state.withLock { s -> OffloadJob? in
                s.idle -= 1
                guard s.head < s.queue.count else { return nil }  // an abandoned job was removed
                let job = s.queue[s.head]
                s.head += 1
                if s.head == s.queue.count {
                    s.queue.removeAll(keepingCapacity: true)
                    s.head = 0
                }
                job.poolState = .running
                return job
            }
            guard let job else { continue }
            job.execute()
            let abandoned = state.withLock { s -> Bool in
                guard job.poolState == .abandoned else {
                    job.poolState = .finished
                    return false
                }
                s.abandonedRunning -= 1
                if s.abandonedRunning == 0 { s.warned = false }
                return true
            }
            if abandoned { job.discard() } else { job.postCompletion() }
        }
    }
}

/// A pool thread's start routine: the pool (retained for the thread's life, which is the
/// process's) runs its loop.
private func offloadThreadStart(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<OffloadPool>.fromOpaque(argument!).takeUnretainedValue().workerLoop()
}
