// Layer 11: the M:N half of the public API — what `UThreadRuntime.run(workers:)` with more
// than one worker, and `UThread` inside it, do; `UThreadRuntime.Handle` and `.Statistics`.
//
// One API, two runtimes underneath. `run(workers: 1)` is the M:1 runtime (Runtime/
// UThreadRuntime.swift); `run(workers: N)` for N > 1 starts the hybrid runtime (MNRuntime.swift)
// through `runOnWorkers` below. `UThread.init` asks the calling runtime one question, "is it
// M:N?" (the scheduler's worker index, a field in cache: one predicted branch), and under M:N
// comes here to make an `MNThreadObject`, which any worker may start and which may migrate.
//
// Why the closures need not be `@Sendable`. A thread's body is taken as `sending` (as
// `Task { … }` takes its operation): the compiler's region checking then proves that nothing
// the closure captures is used by the spawner afterwards, so running it on another kernel thread
// cannot race. What threads share goes through Sendable types (the sync primitives, atomics).
// `run`'s own body is not `sending` either: its caller is blocked in `run` until it has
// returned, so the only code that touches its captures meanwhile is the body itself, wherever
// it runs. Threads that do share non-Sendable state with their spawner are `UThread.local`:
// they run on the spawner's worker and never move (Runtime/UThread.swift).
//
// Rejected: two thread types (`UThread` worker-local, `MNThread` with `@Sendable` closures and
// an id known only once started): every user had to pick a runtime before writing a line, and
// the worker-local spawn silently pinned its parent; a protocol over two handle types (every
// join and id read would go through an existential).
import CUThreads
import Glibc
import Synchronization

extension UThreadRuntime {
    /// The number of CPUs online: the usual `workers:` for `run(workers:)`.
    public static var processorCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// `run`'s path for `workers != 1` (and `runHybrid`'s): validates the count and runs the
    /// M:N runtime.
    static func runOnWorkers<R>(
        _ workers: Int, _ configuration: Configuration,
        policy: (@Sendable () throws -> any SchedulingPolicy)?, _ body: () throws -> R
    ) throws -> R {
        guard workers >= 1 && workers <= 1024 else {
            throw UThreadError.invalidArgument("workers must be 1...1024, not \(workers)")
        }
        return try withoutActuallyEscaping(body) { body in
            try MNRuntime.run(workers: workers, configuration: configuration, policy: policy, body)
        }
    }

    /// `run` with the M:N runtime even for `workers: 1` (one worker kernel thread with its
    /// mailbox, queues and M:N primitives): for the benchmarks that compare the M:N runtime on
    /// one and on two workers, and the tests of its machinery on one worker, as long as the
    /// `MN`-prefixed primitives work only there.
    @discardableResult
    package static func runHybrid<R>(
        workers: Int, _ configuration: Configuration = Configuration(),
        policy: (@Sendable () throws -> any SchedulingPolicy)? = nil, _ body: () throws -> R
    ) throws -> R {
        try runOnWorkers(workers, configuration, policy: policy, body)
    }

    /// A reference to a running runtime that any kernel thread may hold: spawns from outside
    /// its workers go through the runtime's injection queue. Get it with `UThread.runtime`.
    public struct Handle: Sendable {
        @usableFromInline let runtime: MNRuntime

        @usableFromInline
        init(runtime: MNRuntime) { self.runtime = runtime }

        /// Number of workers.
        public var workers: Int { runtime.workers.count }

        /// Spawns a thread from any kernel thread (a worker of this runtime queues it locally,
        /// others through the injection queue). The body is `@Sendable`: unlike `UThread.init`,
        /// the caller may be outside the runtime, where no region checking relates it to the
        /// thread.
        @inlinable
        public func spawn<Success: Sendable>(name: String = "", _ body: @escaping @Sendable () throws -> Success)
            -> UThread<Success>
        {
            let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: nil, body: body)
            runtime.spawn(object, pinned: false)
            return UThread(object: object)
        }

        /// Figures for tests and benchmarks.
        public var statistics: Statistics { runtime.statistics }
    }

    /// Counters of a runtime with several workers (`UThread.runtime?.statistics`).
    public struct Statistics: Sendable, Hashable {
        /// Threads started by each worker so far.
        public var startedPerWorker: [Int]
        /// Threads a worker took from another's queue.
        public var stolen: Int
        /// Threads spawned and not finished.
        public var live: Int
        /// Times a started thread resumed on another worker than the one it last ran on.
        public var migrations: Int = 0
        /// Wakes of a thread parked on another worker, sent through that worker's mailbox.
        public var mailedWakes: Int = 0
        /// Doorbells rung: eventfd writes that woke a sleeping worker (a system call on each side).
        public var doorbells: Int = 0
    }
}

extension MNRuntime {
    /// The runtime's counters now.
    var statistics: UThreadRuntime.Statistics {
        UThreadRuntime.Statistics(
            startedPerWorker: workers.map { $0.startedCount.load(ordering: .relaxed) },
            stolen: stolen.load(ordering: .relaxed),
            live: liveCount(),
            migrations: migrations.load(ordering: .relaxed),
            mailedWakes: workers.reduce(0) { $0 + $1.mailedWakes.load(ordering: .relaxed) },
            doorbells: workers.reduce(0) { $0 + $1.doorbellRings.load(ordering: .relaxed) })
    }
}

extension UThread {
    /// `init`'s path under a runtime with several workers: an M:N thread, queued on the calling
    /// worker (where this worker or an idle one starts it), or started here when `pinned` or when
    /// the worker's policy orders its threads (MNRuntime.spawn). The scheduling parameters go to
    /// the policy of the worker that starts it, and travel with the thread's row when it moves.
    /// `body` was `init`'s `sending` argument (not declared so here: the checker does not see
    /// that `init`'s other use of it is on the other branch).
    @inlinable
    static func spawnOnWorkers(
        name: String, priority: Int = 0, parameters: SchedulingParameters? = nil, pinned: Bool, stackSize: Int?,
        _ body: @escaping () throws -> Success
    ) -> MNThreadObject {
        let runtime = MNRuntime.requireUnretained("UThread.init")
        let object = runtime._withUnsafeGuaranteedRef {
            MNThreadObject.make(runtime: $0, name: name, isMain: false, stackSize: stackSize, body: body)
        }
        if priority != 0 || parameters != nil { object.setScheduling(priority: priority, parameters) }
        runtime._withUnsafeGuaranteedRef { $0.spawn(object, pinned: pinned) }
        return object
    }

    /// `spawn(name:onWorker:…)` under several workers.
    @inlinable
    static func spawnOnWorker(
        _ worker: Int, name: String, stackSize: Int?, _ body: @escaping () throws -> Success
    ) throws -> MNThreadObject {
        let runtime = MNRuntime.requireUnretained("UThread.spawn(onWorker:)").takeUnretainedValue()
        try runtime.checkWorker(worker)
        let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: stackSize, body: body)
        runtime.spawn(object, pinned: true, onWorker: worker)
        return object
    }

    /// Spawns a thread that starts at once on the calling worker, like `pinned: true`, but
    /// stays migratable: only migration can move it (benchmarks and tests of migration).
    /// Needs a runtime with several workers.
    package static func startingHere(name: String = "", _ body: sending @escaping () throws -> Success) -> UThread {
        let runtime = MNRuntime.requireUnretained("UThread.startingHere").takeUnretainedValue()
        let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: nil, body: body)
        runtime.spawn(object, pinned: false, startHere: true)
        return UThread(object: object)
    }
}

extension UThread where Success == Never {
    /// The runtime of the calling thread, as a handle other kernel threads may use to spawn
    /// threads into it and read its statistics. Nil under `workers: 1` (its threads are spawned
    /// from its own kernel thread only) and outside a runtime.
    public static var runtime: UThreadRuntime.Handle? {
        MNWorker.current().map { UThreadRuntime.Handle(runtime: $0.worker.runtime) }
    }
}
