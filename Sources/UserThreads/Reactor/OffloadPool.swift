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
        var pending: Int { queue.count - head }
    }

    private let state = KernelLock(State())
    private nonisolated(unsafe) let semaphore: UnsafeMutablePointer<sem_t>

    private init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    /// Maximum number of pool threads (at least 1). Existing threads above it stay.
    var maximumThreads: Int {
        get { state.withLock { $0.maximumThreads } }
        set { state.withLock { $0.maximumThreads = max(1, newValue) } }
    }

    /// Threads started so far.
    var threadCount: Int { state.withLock { $0.threads } }

    func submit(_ job: OffloadJob) {
        let spawn = state.withLock { s -> Bool in
            s.queue.append(job)
            if s.pending > s.idle && s.threads < s.maximumThreads {
                s.threads += 1
                return true
            }
            return false
        }
        if spawn { startThread() }
        sem_post(semaphore)
    }

    private func startThread() {
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { _ in
                OffloadPool.shared.workerLoop()
            }, nil)
        if rc != 0 {
            state.withLock { $0.threads -= 1 }
            RuntimeLog.makeDefault().warning(
                "could not start an offload thread; jobs wait for the others", metadata: ["errno": "\(rc)"])
            return
        }
        pthread_detach(thread)
    }

    private func workerLoop() -> Never {
        while true {
            state.withLock { $0.idle += 1 }
            while sem_wait(semaphore) != 0 {}  // EINTR
            let job = state.withLock { s -> OffloadJob? in
                s.idle -= 1
                guard s.head < s.queue.count else { return nil }
                let job = s.queue[s.head]
                s.head += 1
                if s.head == s.queue.count {
                    s.queue.removeAll(keepingCapacity: true)
                    s.head = 0
                }
                return job
            }
            job?.runAndPost()
        }
    }
}
