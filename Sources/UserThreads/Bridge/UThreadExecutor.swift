// Layer 12: user threads from Swift concurrency — a runtime on its own kernel thread that async
// code hands work to and awaits.
//
// Design. `UThreadExecutor` starts one kernel thread that runs `UThreadRuntime.run(workers:)`
// (with `workers: N`, the first of the runtime's N workers; the runtime starts the others). A
// dispatching user thread waits on an eventfd through its worker's reactor (so the runtime
// sleeps in epoll_wait when idle, costing no CPU). `run { … }` from async code appends a job
// to a lock-protected inbox, signals the eventfd, and suspends on a continuation: no
// cooperative-pool thread ever blocks. The dispatcher spawns one user thread per job; that
// thread runs the closure (straight-line blocking code, parked on the runtime's reactor as
// usual) and resumes the continuation with the result. Cancelling the awaiting task marks the
// job and signals the eventfd; the dispatcher cancels the job's user thread, which wakes from
// any wait with `CancellationError`.
//
// Any number of workers. A job is an ordinary user thread of the runtime: with several
// workers it starts on whichever worker takes it (the dispatcher's, or one that steals it) and
// may migrate like any other, so jobs run in parallel. The executor promises no order and no
// mutual exclusion between jobs at any N (it is not a serial executor: with one worker jobs
// already interleave at every wait), so nothing changes for callers; the closures are
// `@Sendable` and their results `Sendable` because they cross kernel threads anyway. Each
// job's state is written by its submitter before the inbox's lock publishes it, then touched
// by the dispatcher (cancel flag, spawn) and by the job's own thread (body), which the spawn
// orders. "Am I on the executor?" (a `shutdown()` from one of its jobs must not join its own
// kernel thread) compares `Scheduler.runtimeSerial`, one number for all the runtime's
// workers, not a kernel thread id: a job on worker 1 is as much inside the executor as one on
// worker 0. Inside the closure the API is used as everywhere else.
//
// Rejected: making the runtime a Swift `SerialExecutor` (async code would then run on the
// runtime's kernel thread and could hold it across a user-thread switch, and a user thread
// blocking in a wrapped call would stall actor jobs); one kernel thread per `run` call (that is
// the kernel-thread model this project measures against).
import CUThreads
import Glibc
import Synchronization

/// A user-thread runtime on a kernel thread of its own, for async code to hand work to.
///
/// ```swift
/// let executor = try UThreadExecutor()
/// let body = try await executor.run {              // a user thread: blocking calls park it
///     let stream = try TCPStream.connect(host: "127.0.0.1", port: 8080)
///     try stream.write(all: "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
///     return try stream.read(upTo: 4096)
/// }
/// executor.shutdown()
/// ```
public final class UThreadExecutor: Sendable {
    private let core: ExecutorCore
    private let thread = KernelLock<pthread_t?>(nil)

    /// Starts the executor's kernel thread and its runtime.
    ///
    /// - Parameters:
    ///   - name: the dispatching user thread's name in the executor's thread table.
    ///   - workers: the runtime's kernel threads, 1...1024 (`UThreadRuntime.run(workers:)`);
    ///     with several, jobs run in parallel on any of them. Validated by the runtime on its
    ///     thread: a count outside the range makes every `run` fail with
    ///     `UThreadError.invalidArgument`.
    ///   - configuration: the runtime's configuration (validated by the runtime on its thread;
    ///     an invalid one makes every `run` fail with that error).
    /// - Throws: `UThreadError.system` when the eventfd or the kernel thread cannot be created.
    public init(
        name: String = "executor", workers: Int = 1, configuration: UThreadRuntime.Configuration = .init()
    ) throws {
        core = try ExecutorCore()
        let start = Unmanaged.passRetained(
            ExecutorStart(core: core, name: name, workers: workers, configuration: configuration))
        var t = pthread_t()
        let rc = pthread_create(
            &t, nil,
            { raw in
                let start = Unmanaged<ExecutorStart>.fromOpaque(raw!).takeRetainedValue()
                start.core.serve(name: start.name, workers: start.workers, configuration: start.configuration)
                return nil
            }, start.toOpaque())
        guard rc == 0 else {
            start.release()
            throw UThreadError.system(call: "pthread_create", errno: .init(rawValue: rc))
        }
        thread.withLock { $0 = t }
    }

    /// Shuts down: an executor never outlives its last reference, and neither does its thread.
    deinit { shutdown() }

    /// Runs `body` on a new user thread of the executor's runtime and returns its value or
    /// rethrows its error. The calling task suspends (it never blocks a thread); cancelling it
    /// cancels the user thread. Jobs are not serialised: they interleave at their waits, and
    /// with several workers run in parallel, each on whichever worker takes it.
    ///
    /// - Parameters:
    ///   - name: the user thread's name in the thread table.
    ///   - body: straight-line code on a user thread; its blocking calls park it.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws; `CancellationError` when the task was cancelled and the
    ///   user thread honoured it; `UThreadError.closed` after `shutdown()`; the spawn's error
    ///   when no stack could be had.
    public func run<T: Sendable>(name: String = "", _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let job = ExecutorJob(name: name)
        let core = self.core
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                job.body = { continuation.resume(with: Result(catching: body)) }
                job.refusal = { continuation.resume(throwing: $0) }
                core.submit(job)
            }
        } onCancel: {
            core.cancel(job)
        }
    }

    /// Stops accepting work, cancels the user threads still running and waits for the
    /// executor's kernel threads to end. Idempotent. Called from one of the executor's own user
    /// threads (on any of its workers) it only requests the stop (it cannot wait for itself).
    public func shutdown() {
        core.requestStop()
        guard
            let t = thread.withLock({ t -> pthread_t? in
                defer { t = nil }
                return t
            })
        else { return }
        if core.isExecutorThread {
            pthread_detach(t)
        } else {
            pthread_join(t, nil)
        }
    }
}

/// What the executor's kernel thread shares with the public handle (which it does not retain,
/// so dropping the handle shuts the executor down).
private final class ExecutorCore: Sendable {
    private struct Inbox {
        var jobs: [ExecutorJob] = []
        var cancelled: [ExecutorJob] = []
        var stopping = false
        /// Why the runtime ended, when it failed (an invalid worker count or configuration):
        /// what every later `run` is refused with.
        var failure: (any Error)?
    }

    private let inbox = KernelLock(Inbox())
    private let eventFD: Int32
    /// The runtime's `Scheduler.runtimeSerial` once it runs (0 before; serials start at 2). Kept
    /// after the runtime ends: serials are never reused, and the jobs that finish while the
    /// runtime drains are still inside it.
    private let runtimeSerial = Atomic<UInt>(0)

    init() throws {
        let fd = uthreads_eventfd_create()
        guard fd >= 0 else { throw UThreadError.system(call: "eventfd", errno: .lastError) }
        eventFD = fd
    }

    deinit { uthreads_sys_close(eventFD) }

    /// Whether the caller runs on one of the executor's workers (any of them).
    var isExecutorThread: Bool {
        guard let s = Scheduler.active else { return false }
        return s.runtimeSerial == runtimeSerial.load(ordering: .acquiring)
    }

    /// From any thread: queue `job`, or refuse it after a stop.
    func submit(_ job: ExecutorJob) {
        let refusal = inbox.withLock { inbox -> (any Error)? in
            guard !inbox.stopping else {
                return inbox.failure ?? UThreadError.closed("the UThreadExecutor was shut down")
            }
            inbox.jobs.append(job)
            return nil
        }
        if let refusal {
            job.finish(refusing: refusal)
        } else {
            _ = uthreads_eventfd_signal(eventFD)
        }
    }

    /// From any thread: ask for `job`'s user thread to be cancelled.
    func cancel(_ job: ExecutorJob) {
        inbox.withLock { $0.cancelled.append(job) }
        _ = uthreads_eventfd_signal(eventFD)
    }

    func requestStop() {
        inbox.withLock { $0.stopping = true }
        _ = uthreads_eventfd_signal(eventFD)
    }

    /// The executor's kernel thread: a runtime whose dispatching user thread serves the inbox.
    func serve(name: String, workers: Int, configuration: UThreadRuntime.Configuration) {
        let outcome = Result {
            try UThreadRuntime.run(workers: workers, configuration) {
                if let s = Scheduler.active { runtimeSerial.store(s.runtimeSerial, ordering: .releasing) }
                try UThread.spawn(name: name) { try self.dispatch() }.join()
            }
        }
        // Whatever is left: jobs that raced the stop, or all of them if the runtime failed (and
        // the jobs submitted later get the same error).
        var reason: any Error = UThreadError.closed("the UThreadExecutor was shut down")
        if case .failure(let error) = outcome { reason = error }
        let left = inbox.withLock { inbox -> [ExecutorJob] in
            inbox.stopping = true
            if case .failure(let error) = outcome { inbox.failure = error }
            defer { inbox.jobs = [] }
            return inbox.jobs
        }
        for job in left { job.finish(refusing: reason) }
    }

    /// The dispatching user thread: spawns a user thread per job, forwards cancellations.
    private func dispatch() throws {
        var running: [ObjectIdentifier: UThreadHandle] = [:]
        while true {
            _ = uthreads_eventfd_drain(eventFD)
            let (jobs, cancelled, stopping) = inbox.withLock { inbox in
                defer {
                    inbox.jobs = []
                    inbox.cancelled = []
                }
                return (inbox.jobs, inbox.cancelled, inbox.stopping)
            }
            for job in cancelled {
                job.cancelRequested = true  // a cancel can overtake its job (a task cancelled early)
                running[ObjectIdentifier(job)]?.cancel()
            }
            for job in jobs {
                do {
                    let thread = try UThread.spawn(name: job.name) { job.run() }
                    if job.cancelRequested { thread.cancel() }
                    running[ObjectIdentifier(job)] = thread.handle
                } catch {
                    job.finish(refusing: error)
                }
            }
            running = running.filter { !$0.value.isFinished }
            if stopping { return }  // run() then cancels the threads still alive and drains them
            try IO.waitReadable(eventFD)
        }
    }
}

/// One unit of work handed to the executor. Filled by the submitting task before the inbox's
/// lock publishes it; afterwards touched only by the dispatcher (`cancelRequested`, and
/// `finish(refusing:)` when no thread could be spawned) and by the job's own thread (`run()`,
/// ordered after the spawn), on whichever workers they run. Its continuation is resumed
/// exactly once: by `run()` or by `finish(refusing:)`.
private final class ExecutorJob: @unchecked Sendable {
    let name: String
    var body: (() -> Void)?
    var refusal: ((any Error) -> Void)?
    var cancelRequested = false
    init(name: String) { self.name = name }

    func run() {
        let body = self.body
        self.body = nil
        refusal = nil
        body?()
    }

    func finish(refusing error: any Error) {
        let refusal = self.refusal
        self.refusal = nil
        body = nil
        refusal?(error)
    }
}

private final class ExecutorStart: @unchecked Sendable {
    let core: ExecutorCore
    let name: String
    let workers: Int
    let configuration: UThreadRuntime.Configuration
    init(core: ExecutorCore, name: String, workers: Int, configuration: UThreadRuntime.Configuration) {
        self.core = core
        self.name = name
        self.workers = workers
        self.configuration = configuration
    }
}
