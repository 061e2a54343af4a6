// Layer 11: the M:N public API — `UThreadRuntime.run(workers:)`, `MNThread`, `MNRuntimeHandle`.
//
// Which API is which (Swift 6 checks it):
//   * M:1 (`UThreadRuntime.run { }`, `UThread { }`, UMutex, …): closures may capture
//     non-Sendable state, because every thread of the runtime runs on one kernel thread.
//   * M:N (`UThreadRuntime.run(workers:) { }`, `MNThread { }`, `MNRuntimeHandle.spawn`): the
//     closures are `@Sendable` and results `Sendable`, because the thread may start on any
//     worker. Share state through the M:N primitives (`Channel` and `channelSelect`;
//     MN/Sync: `MNMutex`, `MNCondition`, `MNSemaphore`, `MNRWLock`, `MNBarrier`, `MNOnce`,
//     `MNWaitGroup`), atomics or other Sendable types. The M:1 primitives are not Sendable, so they cannot be captured by an
//     M:N closure: the compiler rejects the cross-worker use instead of a race at run time.
//   * Inside an M:N thread the M:1 API still works, worker-locally: `UThread { }` starts a
//     thread on the same worker (never stolen), and the M:1 primitives work between the
//     threads of that worker. `sleep`, `yield`, I/O and `blocking { }` work in both.
import CUThreads
import Glibc
import Synchronization

/// A user thread of an M:N runtime: it may start on any worker kernel thread (idle workers
/// steal queued threads), and once started it may resume on another worker after a `yield`,
/// a `sleep` or a wait on an M:N primitive, when its worker is busy and another is idle (see
/// MNRuntime.swift); so its closure is `@Sendable` and its result `Sendable`. The Swift
/// exclusivity state, `errno` and `UThreadLocal` values travel with it. It stays on one
/// kernel thread for good once pinned (`pinned:`, `spawn(onWorker:)`, `MNThread.pin()`),
/// once it spawns a worker-local `UThread`, or once it waits for a descriptor (I/O). Create it
/// inside `UThreadRuntime.run(workers:)`; from other kernel threads use `MNRuntimeHandle.spawn`.
///
/// ```swift
/// let sum = try UThreadRuntime.run(workers: 2) {
///     let parts = (0..<8).map { i in MNThread { work(slice: i) } }   // @Sendable closures
///     return try parts.reduce(0) { try $0 + $1.join() }
/// }
/// ```
public struct MNThread<Success: Sendable>: Sendable, Hashable, CustomStringConvertible {
    @usableFromInline let object: MNThreadObject

    /// Spawns an M:N thread. It is queued on the calling worker, where this worker or an idle
    /// one starts it.
    /// - Parameters:
    ///   - name: shown in the thread table (with the worker that runs it) and in dumps.
    ///   - pinned: start it now on the calling worker's kernel thread, never steal it and never
    ///     migrate it (for code that needs the same kernel thread as its parent, all its life).
    ///   - stackSize: usable stack bytes (default: the configuration's `stackSize`).
    ///   - body: the thread's code; `@Sendable`, since it may run on any worker.
    @inlinable
    public init(
        name: String = "", pinned: Bool = false, stackSize: Int? = nil,
        _ body: @escaping @Sendable () throws -> Success
    ) {
        let runtime = MNRuntime.requireUnretained("MNThread.init")
        let object = runtime._withUnsafeGuaranteedRef {
            MNThreadObject.make(runtime: $0, name: name, isMain: false, stackSize: stackSize, body: body)
        }
        runtime._withUnsafeGuaranteedRef { $0.spawn(object, pinned: pinned) }
        self.object = object
    }

    @inlinable
    init(object: MNThreadObject) { self.object = object }

    /// Spawns an M:N thread that starts at once on the calling worker, like `pinned: true`, but
    /// stays migratable: only migration can move it (benchmarks and tests of migration).
    package static func startingHere(name: String = "", _ body: @escaping @Sendable () throws -> Success) -> MNThread {
        let runtime = MNRuntime.requireUnretained("MNThread.startingHere").takeUnretainedValue()
        let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: nil, body: body)
        runtime.spawn(object, pinned: false, startHere: true)
        return MNThread(object: object)
    }

    /// Spawns an M:N thread bound to worker `worker` (0..<workers): it starts there and is
    /// never stolen (e.g. one acceptor per worker). From the calling worker it starts at once.
    /// - Throws: `.invalidArgument` for a worker index out of range.
    @inlinable
    public static func spawn(
        name: String = "", onWorker worker: Int, stackSize: Int? = nil,
        _ body: @escaping @Sendable () throws -> Success
    ) throws -> MNThread {
        let runtime = MNRuntime.requireUnretained("MNThread.spawn(onWorker:)").takeUnretainedValue()
        try runtime.checkWorker(worker)
        let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: stackSize, body: body)
        runtime.spawn(object, pinned: true, onWorker: worker)
        return MNThread(object: object)
    }

    /// Waits for the thread and returns its value or rethrows its error. Call it from an M:N
    /// thread of the same runtime. A finished thread is joined with one atomic load.
    /// - Throws: the thread's error; `CancellationError` if the caller is cancelled while it
    ///   waits; `.invalidArgument` for a self-join; `.foreignRuntime`.
    @inlinable
    public func join() throws -> Success {
        if !object.isFinishedAcquire { try object.waitUntilFinished() }
        return try object.result(Success.self).get()
    }

    /// Asks the thread to stop (see `UThread.cancel()`); works from any worker, and before the
    /// thread has started (it then starts cancelled).
    public func cancel() { object.cancel() }

    /// The name given at spawn.
    public var name: String { object.name }
    /// Whether the body has returned or thrown.
    public var isFinished: Bool { object.isFinishedAcquire }
    /// The thread's id once it has started (nil while queued).
    public var id: ThreadID? {
        let raw = object.startedID
        return raw == 0 ? nil : ThreadID(rawValue: raw)
    }
    public var description: String { "MNThread \"\(object.name)\"" }
    public static func == (a: MNThread, b: MNThread) -> Bool { a.object === b.object }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(object)) }
}

extension MNThread where Success == Never {
    /// The index of the worker running the caller (0..<workers), or nil outside an M:N runtime.
    public static var worker: Int? {
        guard let s = Scheduler.active, s.worker != nil else { return nil }
        return Int(s.workerIndex)
    }

    /// Pins the calling M:N thread to the kernel thread it runs on now, for the rest of its life:
    /// it never migrates after this call (for code that keeps kernel-thread state: thread-local
    /// C libraries, `pthread_self`-keyed resources, signal masks). No effect on a thread that is
    /// already pinned, outside an M:N runtime, or in the idle loop. O(1).
    public static func pin() {
        guard let (_, s) = MNWorker.current(), s.onUserThread else { return }
        s.current.clear(.flagMigratable)
    }

    /// Whether the calling thread may still migrate to another worker (false once pinned, and
    /// for threads that were never migratable: see `MNThread`). False outside an M:N thread.
    public static var isMigratable: Bool {
        guard let (_, s) = MNWorker.current(), s.onUserThread else { return false }
        return s.current.has(.flagMigratable)
    }

    /// The runtime of the calling M:N thread, as a handle other kernel threads may use.
    public static var runtime: MNRuntimeHandle? {
        MNWorker.current().map { MNRuntimeHandle(runtime: $0.worker.runtime) }
    }
}

/// A reference to a running M:N runtime that any kernel thread may hold: spawns from outside
/// the workers go through the runtime's injection queue.
public struct MNRuntimeHandle: Sendable {
    @usableFromInline let runtime: MNRuntime

    /// Number of workers.
    public var workers: Int { runtime.workers.count }

    /// Spawns an M:N thread from any kernel thread (a worker of this runtime queues it locally).
    @inlinable
    public func spawn<Success: Sendable>(name: String = "", _ body: @escaping @Sendable () throws -> Success)
        -> MNThread<Success>
    {
        let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: nil, body: body)
        runtime.spawn(object, pinned: false)
        return MNThread(object: object)
    }

    /// Figures for tests and benchmarks.
    public var statistics: MNStatistics {
        MNStatistics(
            startedPerWorker: runtime.workers.map { $0.startedCount.load(ordering: .relaxed) },
            stolen: runtime.stolen.load(ordering: .relaxed),
            live: runtime.liveCount(),
            migrations: runtime.migrations.load(ordering: .relaxed))
    }
}

/// Counters of an M:N runtime.
public struct MNStatistics: Sendable, Hashable {
    /// Threads started by each worker so far.
    public var startedPerWorker: [Int]
    /// Threads a worker took from another's queue.
    public var stolen: Int
    /// M:N threads not finished.
    public var live: Int
    /// Times a started thread resumed on another worker than the one it last ran on.
    public var migrations: Int = 0
}

extension UThreadRuntime {
    /// The number of CPUs online: the usual `workers:` for `run(workers:)`.
    public static var processorCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Runs `body` as the main thread of an M:N runtime: `workers` kernel threads (the caller
    /// is worker 0) each with its own scheduler and run queue; idle workers steal queued
    /// threads. Returns when the main thread has returned and every thread has finished (the
    /// others are cancelled when main returns, as with `run`).
    ///
    /// ```swift
    /// let total = try UThreadRuntime.run(workers: UThreadRuntime.processorCount) {
    ///     let counter = MNMutex()
    ///     let threads = (0..<100).map { _ in MNThread { try counter.withLock { … } } }
    ///     for t in threads { try t.join() }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - workers: worker kernel threads, 1...1024 (`processorCount` is the usual choice).
    ///   - configuration: stacks, accounting and logging, as for the M:1 runtime (the virtual
    ///     clock and tracing are M:1 only).
    ///   - policy: makes each worker's scheduling policy (policies are per worker); FIFO if nil.
    ///   - body: the runtime's main thread; `run` returns its value once every thread has ended.
    /// - Throws: `.invalidArgument`, `.invalidConfiguration` (virtual clock, tracing: M:1 only),
    ///   `.nestedRuntime`, `.deadlock`, or the main thread's error; `.system` naming
    ///   `pthread_create` when a worker's kernel thread cannot be started (then no user code
    ///   has run and every worker started is gone).
    @discardableResult
    public static func run<R: Sendable>(
        workers: Int,
        _ configuration: Configuration = Configuration(),
        policy: (@Sendable () -> any SchedulingPolicy)? = nil,
        _ body: @escaping @Sendable () throws -> R
    ) throws -> R {
        try MNRuntime.run(workers: workers, configuration: configuration, policy: policy, body)
    }
}
