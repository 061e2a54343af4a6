// Layer 11: the M:N half of the public API — what `UThreadRuntime.run(workers:)` with more
// than one worker, and `UThread` inside it, do; `UThreadRuntime.Handle` and `.Statistics`;
// the operations of a thread handle that choose between one worker and several (`join`,
// `cancel`, `isFinished`, `isCancelled`). They call down into the workers (MN/, the layer
// below), which never call up: the workers are machinery, the public API is the top.
//
// One API, two runtimes underneath. `run(workers: 1)` is the M:1 runtime (Runtime/
// UThreadRuntime.swift); `run(workers: N)` for N > 1 starts the hybrid runtime
// (MN/MNRuntime.swift) through `runOnWorkers` below, which validates the public configuration
// and turns it into the workers' settings (MN/MNSettings.swift). `UThread.init` asks the
// calling runtime one question, "is it M:N?" (the scheduler's worker index, a field in cache:
// one predicted branch), and under M:N comes here to make an `MNThreadObject`, which any worker
// may start and which may migrate.
//
// From outside, the runtime is the same at any N: `UThread.runtime`'s handle spawns into it
// from any kernel thread (the injection queue; under `workers: 1` the runtime's inbox,
// Runtime/InjectedThread.swift), and such a kernel thread may join (blocking on a futex word:
// Base/OutsideWaiters.swift) and cancel what it spawned.
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
    /// The number of CPUs the calling kernel thread may run on: the usual `workers:` for
    /// `run(workers:)`. Its affinity mask (`sched_getaffinity`), so `taskset -c 0` (or a
    /// container's cpuset) gives 1; the CPUs online if the mask cannot be read.
    public static var processorCount: Int {
        let allowed = Int(uthreads_affinity_cpu_count())
        return max(1, allowed > 0 ? allowed : Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// `run`'s path for `workers != 1`: the M:N runtime (`MNRuntime.runInspecting`).
    static func runOnWorkers<R>(
        _ workers: Int, _ configuration: Configuration,
        policy: (@Sendable () throws -> any SchedulingPolicy)?, _ body: () throws -> R
    ) throws -> R {
        try withoutActuallyEscaping(body) { body in
            try MNRuntime.runInspecting(workers: workers, configuration: configuration, policy: policy, body).value
        }
    }

    /// A reference to a running runtime that any kernel thread may hold, for any number of
    /// workers: spawn threads into it and read its statistics from anywhere. Get it with
    /// `UThread.runtime`.
    ///
    /// A spawn from another kernel thread goes through the runtime's injection queue (several
    /// workers) or its inbox (`workers: 1`, whose one kernel thread owns all of its state: the
    /// runtime starts the thread itself, at once when idle, else at its next safe point); the
    /// thread is then an ordinary thread of the runtime, which that kernel thread may join
    /// (blocking, with a timeout if it likes) and cancel. `statistics` read from another kernel
    /// thread under `workers: 1` asks the runtime the same way (see `statistics`).
    public struct Handle: Sendable {
        /// The coordinator of a runtime with several workers; nil under `workers: 1`.
        @usableFromInline let runtime: MNRuntime?
        /// Under `workers: 1`: the scheduler's address (compared, never dereferenced off its
        /// kernel thread) and its inbox for other kernel threads (ForeignCancels.swift).
        let one: (runtime: UnsafeSendableAddress, inbox: ForeignCancels)?

        @usableFromInline
        init(runtime: MNRuntime) { (self.runtime, one) = (runtime, nil) }

        init(scheduler: Scheduler, inbox: ForeignCancels) {
            runtime = nil
            one = (UnsafeSendableAddress(Unmanaged.passUnretained(scheduler).toOpaque()), inbox)
        }

        /// Number of workers.
        public var workers: Int { runtime?.workers.count ?? 1 }

        /// Spawns a thread from any kernel thread (a worker of this runtime queues it locally,
        /// others through the injection queue or, under `workers: 1`, the runtime's inbox). The
        /// body is `@Sendable`: unlike `UThread.init`, the caller may be outside the runtime,
        /// where no region checking relates it to the thread. `join()` and `cancel()` work from
        /// the calling kernel thread too; when the runtime has ended first, the thread finishes
        /// unstarted and `join()` throws `UThreadError.closed`, at any number of workers.
        @inlinable
        public func spawn<Success: Sendable>(name: String = "", _ body: @escaping @Sendable () throws -> Success)
            -> UThread<Success>
        {
            guard let runtime else { return spawnOnOneWorker(name: name, body) }
            let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: nil, body: body)
            runtime.spawn(object, pinned: false)
            return UThread(object: object)
        }

        /// `spawn` under `workers: 1`: an ordinary spawn on the runtime's own threads, else a
        /// start posted to its inbox (Runtime/InjectedThread.swift).
        @usableFromInline
        func spawnOnOneWorker<Success: Sendable>(name: String, _ body: @escaping @Sendable () throws -> Success)
            -> UThread<Success>
        {
            guard let one else { preconditionFailure("UserThreads: a handle with neither runtime") }
            if let here = uthreads_get_runtime(), here == one.runtime.address, Scheduler.active?.onUserThread == true {
                return UThread(name: name, body)
            }
            return UThread(
                object: InjectedThreadObject.spawn(name: name, runtime: one.runtime.address, inbox: one.inbox, body))
        }

        /// Figures for tests and benchmarks. With several workers they are read at once, from
        /// any kernel thread. Under `workers: 1` they are read at once on the runtime's kernel
        /// thread; another kernel thread asks the runtime and waits for its answer at its next
        /// safe point (at once when it idles: the request rings its bell), up to a second (a thread of it that computes without one for longer, or
        /// a runtime that has ended, gives figures of zero).
        public var statistics: Statistics {
            if let runtime { return runtime.statistics }
            guard let one else { return Statistics(startedPerWorker: [0], stolen: 0, live: 0) }
            if uthreads_get_runtime() == one.runtime.address, let s = Scheduler.active {
                return Statistics(oneWorker: s)
            }
            return one.inbox.call(timeoutNanoseconds: 1_000_000_000) { Statistics(oneWorker: $0) }
                ?? Statistics(startedPerWorker: [0], stolen: 0, live: 0)
        }
    }

    /// An address passed between kernel threads only to be compared, never dereferenced.
    struct UnsafeSendableAddress: @unchecked Sendable {
        let address: UnsafeMutableRawPointer
        init(_ address: UnsafeMutableRawPointer) { self.address = address }
    }

    /// Counters of a runtime (`UThread.runtime?.statistics`); under `workers: 1` nothing is
    /// stolen, migrated, mailed or rung, and those counters stay 0.
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
        /// Idle spins: times a worker with nothing to run looked for other workers' work for a
        /// while before it slept (fewer where its sleeps end by I/O readiness: MNIdleSpin.swift).
        public var idleSpins: Int = 0
    }
}

extension UThreadRuntime.Statistics {
    /// The counters of a runtime of one worker, read on its kernel thread: every spawn is
    /// started there.
    init(oneWorker s: Scheduler) {
        s.settleHostedRow()  // the live count exact (Scheduler's "Thread objects")
        self.init(startedPerWorker: [Int(s.spawnCount)], stolen: 0, live: s.table.liveCount)
    }

    /// The counters of a runtime of several workers (MN/MNCounters.swift).
    init(_ c: MNCounters) {
        self.init(
            startedPerWorker: c.startedPerWorker, stolen: c.stolen, live: c.live, migrations: c.migrations,
            mailedWakes: c.mailedWakes, doorbells: c.doorbells, idleSpins: c.idleSpins)
    }
}

extension MNRuntime {
    /// The runtime's counters now.
    var statistics: UThreadRuntime.Statistics { UThreadRuntime.Statistics(counters) }

    /// `run(workers:)` for N > 1, also returning what the workers left behind (for leak tests):
    /// the public half of the M:N runtime's start — validation, the refusals of what needs one
    /// kernel thread, the policies, the workers' settings and what makes the runtime visible
    /// from outside (Observability+Workers.swift) — around `MNRuntime.run`.
    static func runInspecting<R>(
        workers n: Int, configuration: UThreadRuntime.Configuration = .init(),
        policy: (@Sendable () throws -> any SchedulingPolicy)? = nil,
        _ body: @escaping () throws -> R
    ) throws -> (value: R, teardown: Teardown) {
        try configuration.validate()
        guard n >= 1 && n <= 1024 else { throw UThreadError.invalidArgument("workers must be 1...1024, not \(n)") }
        guard configuration.clock == .real else {
            throw UThreadError.invalidConfiguration(
                "the virtual clock needs one kernel thread (a simulation): use UThreadRuntime.run(workers: 1)")
        }
        guard uthreads_get_runtime() == nil else { throw UThreadError.nestedRuntime }
        let policies = try (0..<n).map { _ in try policy?() ?? FIFOPolicy() }  // one per worker
        return try MNRuntime.run(
            settings: configuration.mnSettings, policies: policies,
            observe: { runtime in
                let attachment = try MNObservability.attach(runtime, configuration)
                return { MNObservability.detach(attachment) }
            }, body)
    }
}

extension MNRuntime.Teardown {
    /// The counters when the workers' loops ended, as the public statistics.
    var statistics: UThreadRuntime.Statistics { UThreadRuntime.Statistics(counters) }
}

extension UThread {
    /// Waits for the thread to finish and returns its value or rethrows its error. Any number
    /// of threads may join the same thread, any number of times; a finished thread is joined
    /// without waiting. A user thread parks; a kernel thread outside every runtime (one that
    /// spawned the thread through `UThread.runtime`'s handle) blocks, for any number of workers.
    /// Under `workers: 1` with the FIFO policy, a thread that has not started yet runs at once,
    /// called from the join on its own stack (the help-first join: no switch); if it parks, the
    /// caller becomes an ordinary waiting joiner, so the join behaves exactly as when the thread
    /// was switched to (cancellation ends the wait at once).
    /// - Throws: the thread's error; `CancellationError` if the *caller* is cancelled while it
    ///   waits; `UThreadError.invalidArgument` when a thread joins itself, or when code outside
    ///   every runtime joins a thread of one worker that was not spawned through the handle;
    ///   `.foreignRuntime` for a thread of another runtime (or, for a `local` thread, of another
    ///   worker).
    @inlinable
    public func join() throws -> Success {
        if _slowPath(object.isCrossWorker) {
            if _slowPath(object.isInjected) {
                try waitForInjectedEnd(object)
            } else {
                let mn = unsafeDowncast(object, to: MNThreadObject.self)
                if !mn.isFinishedAcquire { try mn.waitUntilFinished() }
            }
        } else if !object.isFinished {
            try waitUntilFinished(object)
        }
        return try object.result(Success.self).get()
    }

    /// Waits for the thread to finish, giving up after `timeout` or at `deadline` (the earlier
    /// wins; nil: no limit), and returns its value or rethrows its error. The thread keeps
    /// running when the wait gives up; join it again later. From a kernel thread outside every
    /// runtime, as `join()`, it blocks (on CLOCK_MONOTONIC).
    /// - Throws: the thread's error; `UThreadError.timedOut` when the limit passed first;
    ///   `CancellationError` if the caller is cancelled while it waits;
    ///   `.invalidArgument` (self-join), `.foreignRuntime`, as `join()`.
    public func join(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> Success {
        try handle.waitForEnd(deadline: syncDeadline(timeout: timeout, deadline: deadline))
        return try object.result(Success.self).get()
    }

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
        // One look-up of the calling worker for the object and the queue (nothing parks between).
        // The object unmanaged, +2 ours, until the queue's slot (or the row) takes one and the
        // handle the other (MNThreadObject.forSpawn).
        // With every default (`UThread {}`) the halves' entries that take no name, stack size
        // or `pinned` (constants here where the caller's are literals or defaults).
        let defaults = name.isEmpty && stackSize == nil && !pinned
        let (object, scheduler) =
            defaults
            ? MNSpawn.object(
                witness: MNThreadObject.mnWitness(for: Success.self), witnessType: ObjectIdentifier(Success.self))
            : MNSpawn.object(
                name: name, named: !name.isEmpty, stackSize: stackSize,
                witness: MNThreadObject.mnWitness(for: Success.self),
                witnessType: ObjectIdentifier(Success.self), "UThread.init")
        object._withUnsafeGuaranteedRef { object in
            object.install(mn: body)
            if priority != 0 || parameters != nil { object.setScheduling(priority: priority, parameters) }
        }
        if defaults {
            MNSpawn.publish(object, scheduler: scheduler)
        } else {
            MNSpawn.publish(object, scheduler: scheduler, pinned: pinned)
        }
        return object.takeRetainedValue()
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
    /// Under `workers: 1` it is `init` (nothing can move).
    package static func startingHere(name: String = "", _ body: sending @escaping () throws -> Success) -> UThread {
        guard !runsOnOneWorker("UThread.startingHere") else { return UThread(name: name, body) }
        let runtime = MNRuntime.requireUnretained("UThread.startingHere").takeUnretainedValue()
        let object = MNThreadObject.make(runtime: runtime, name: name, isMain: false, stackSize: nil, body: body)
        runtime.spawn(object, pinned: false, startHere: true)
        return UThread(object: object)
    }
}

/// `join()` of a thread spawned into a runtime of one worker from another kernel thread (out of
/// line: `join` is inlined into every caller).
@usableFromInline @inline(never)
func waitForInjectedEnd(_ object: ThreadObject) throws {
    try UThreadHandle(object: object).waitForEnd(deadline: nil)
}

extension UThreadHandle {
    /// Parks the caller until the thread has finished or `deadline` (scheduler clock) passed;
    /// `cancellable: false` ignores the caller's cancellation (a thread group that already
    /// cancelled its children and must still wait for them).
    func waitForEnd(deadline: UInt64?, cancellable: Bool = true) throws {
        if object.isCrossWorker && object.isInjected {
            try unsafeDowncast(object, to: InjectedThreadObject.self).waitUntilFinished(
                deadline: deadline, cancellable: cancellable)
        } else if object.isCrossWorker {
            let mn = unsafeDowncast(object, to: MNThreadObject.self)
            if !mn.isFinishedAcquire { try mn.waitUntilFinished(deadline: deadline, cancellable: cancellable) }
        } else if !object.isFinished {
            try waitUntilFinished(object, deadline: deadline, cancellable: cancellable)
        }
    }

    /// See `UThread.isFinished`.
    public var isFinished: Bool {
        guard object.isCrossWorker else { return object.isFinished }
        if object.isInjected { return unsafeDowncast(object, to: InjectedThreadObject.self).isFinishedAcquire }
        return unsafeDowncast(object, to: MNThreadObject.self).isFinishedAcquire
    }
    /// See `UThread.isCancelled`.
    public var isCancelled: Bool {
        guard object.isCrossWorker else { return object.isCancelled }
        if object.isInjected { return unsafeDowncast(object, to: InjectedThreadObject.self).isCancelRequested }
        return unsafeDowncast(object, to: MNThreadObject.self).isCancelRequested
    }

    /// See `UThread.cancel()`. May be called from any kernel thread at any time: a user thread
    /// of the thread's own runtime cancels at once; another kernel thread (a pthread, a Swift
    /// task, an M:N worker, the offload pool) posts the cancel to the thread's runtime, which
    /// applies it at its next safe point and wakes the thread's wait with CancellationError
    /// (with several workers through the worker's mailbox; with one:
    /// Scheduler/ForeignCancels.swift). When the runtime has already ended, the thread is gone
    /// and the call does nothing.
    public func cancel() {
        if object.isCrossWorker {
            if object.isInjected { return unsafeDowncast(object, to: InjectedThreadObject.self).cancel() }
            return unsafeDowncast(object, to: MNThreadObject.self).cancel()
        }
        cancelOnItsKernelThread()
    }
}

extension UThread where Success == Never {
    /// The runtime of the calling thread, as a handle other kernel threads may use to spawn
    /// threads into it (and join and cancel them) and read its statistics, for any number of
    /// workers (see `UThreadRuntime.Handle`). Nil outside a runtime.
    public static var runtime: UThreadRuntime.Handle? {
        if let (worker, _) = MNWorker.current() { return UThreadRuntime.Handle(runtime: worker.runtime) }
        guard let s = Scheduler.active, s.workerIndex < 0, let inbox = s.foreignCancels else { return nil }
        return UThreadRuntime.Handle(scheduler: s, inbox: inbox)
    }
}

/// The two halves of `UThread.init`'s spawn on a worker, around the install of the body (which
/// needs the result type, so it is inlined into the caller): the object
/// (`MNThreadObject.forSpawn`), then its queueing (`MNRuntime.spawnFromWorker`). Static
/// functions of an enum, not of those classes: a class's static function takes its metatype,
/// which the caller in another module gets from a metadata accessor call (~5 instructions each).
@usableFromInline
enum MNSpawn {
    /// `MNThreadObject.forSpawn`: the object with its two references, and the calling worker's
    /// scheduler.
    @usableFromInline @inline(never)
    static func object(
        name: String, named: Bool, stackSize: Int?, witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void,
        witnessType: ObjectIdentifier, _ api: StaticString
    ) -> (object: Unmanaged<MNThreadObject>, scheduler: UnsafeMutableRawPointer) {
        MNThreadObject.forSpawn(
            name: name, named: named, stackSize: stackSize, witness: witness, witnessType: witnessType, api)
    }

    /// `object` with every default: no name, the default stack size (three arguments fewer).
    @usableFromInline @inline(never)
    static func object(
        witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void, witnessType: ObjectIdentifier
    ) -> (object: Unmanaged<MNThreadObject>, scheduler: UnsafeMutableRawPointer) {
        MNThreadObject.forSpawn(
            name: "", named: false, stackSize: nil, witness: witness, witnessType: witnessType, "UThread.init")
    }

    /// `publish` of a thread not pinned.
    @usableFromInline @inline(never)
    static func publish(_ object: Unmanaged<MNThreadObject>, scheduler: UnsafeMutableRawPointer) {
        MNRuntime.spawnFromWorker(retained: object, scheduler: scheduler, pinned: false)
    }

    /// `MNRuntime.spawnFromWorker` of the object `object` returned, with its body installed:
    /// one of its two references goes to the queue's slot (or the row), the caller keeps the
    /// other for the handle.
    @usableFromInline @inline(never)
    static func publish(_ object: Unmanaged<MNThreadObject>, scheduler: UnsafeMutableRawPointer, pinned: Bool) {
        MNRuntime.spawnFromWorker(retained: object, scheduler: scheduler, pinned: pinned)
    }
}
