// Layer 12: user threads from Swift concurrency — a runtime on its own kernel thread that async
// code hands work to and awaits.
//
// Design. `UThreadExecutor` starts one kernel thread that runs `UThreadRuntime.run`. Its main
// user thread waits on an eventfd through the reactor (so the runtime sleeps in epoll_wait
// when idle, costing no CPU). `run { … }` from async code appends a job to a lock-protected
// inbox, signals the eventfd, and suspends on a continuation: no cooperative-pool thread ever
// blocks. The main user thread spawns one user thread per job; that thread runs the closure
// (straight-line blocking code, parked on the runtime's reactor as usual) and resumes the
// continuation with the result. Cancelling the awaiting task marks the job and signals the
// eventfd; the main user thread cancels the job's user thread, which wakes from any wait with
// `CancellationError`.
//
// The closures cross kernel threads, so they and their results are `@Sendable`/`Sendable`;
// inside the closure the M:1 API is used as everywhere else (non-Sendable state may be shared
// between the user threads it spawns).
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
    ///   - name: the main user thread's name in the executor's thread table.
    ///   - configuration: the runtime's configuration (validated by the runtime on its thread;
    ///     an invalid one makes every `run` fail with that error).
    /// - Throws: `UThreadError.system` when the eventfd or the kernel thread cannot be created.
    public init(name: String = "executor", configuration: UThreadRuntime.Configuration = .init()) throws {
        core = try ExecutorCore()
        let start = Unmanaged.passRetained(ExecutorStart(core: core, name: name, configuration: configuration))
        var t = pthread_t()
        let rc = pthread_create(
            &t, nil,
            { raw in
                let start = Unmanaged<ExecutorStart>.fromOpaque(raw!).takeRetainedValue()
                start.core.serve(name: start.name, configuration: start.configuration)
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
    /// cancels the user thread.
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
    /// executor's kernel thread to end. Idempotent. Called from one of the executor's own user
    /// threads it only requests the stop (it cannot wait for itself).
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
    }

    private let inbox = KernelLock(Inbox())
    private let eventFD: Int32
    private let threadID = Atomic<Int32>(0)

    init() throws {
        let fd = uthreads_eventfd_create()
        guard fd >= 0 else { throw UThreadError.system(call: "eventfd", errno: .lastError) }
        eventFD = fd
    }

    deinit { uthreads_sys_close(eventFD) }

    var isExecutorThread: Bool { threadID.load(ordering: .acquiring) == uthreads_gettid() }

    /// From any thread: queue `job`, or refuse it after a stop.
    func submit(_ job: ExecutorJob) {
        let accepted = inbox.withLock { inbox -> Bool in
            guard !inbox.stopping else { return false }
            inbox.jobs.append(job)
            return true
        }
        if accepted {
            _ = uthreads_eventfd_signal(eventFD)
        } else {
            job.finish(refusing: UThreadError.closed("the UThreadExecutor was shut down"))
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

    /// The executor's kernel thread: a runtime whose main user thread dispatches the inbox.
    func serve(name: String, configuration: UThreadRuntime.Configuration) {
        threadID.store(uthreads_gettid(), ordering: .releasing)
        let outcome = Result {
            try UThreadRuntime.run(configuration) {
                try UThread.spawn(name: name) { try self.dispatch() }.join()
            }
        }
        // Whatever is left: jobs that raced the stop, or all of them if the runtime failed.
        let left = inbox.withLock { inbox -> [ExecutorJob] in
            inbox.stopping = true
            defer { inbox.jobs = [] }
            return inbox.jobs
        }
        var reason: any Error = UThreadError.closed("the UThreadExecutor was shut down")
        if case .failure(let error) = outcome { reason = error }
        for job in left { job.finish(refusing: reason) }
    }

    /// The main user thread: spawns a user thread per job, forwards cancellations.
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
/// lock publishes it; afterwards touched only on the executor's kernel thread. Its
/// continuation is resumed exactly once: by `run()` or by `finish(refusing:)`.
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
    let configuration: UThreadRuntime.Configuration
    init(core: ExecutorCore, name: String, configuration: UThreadRuntime.Configuration) {
        self.core = core
        self.name = name
        self.configuration = configuration
    }
}
