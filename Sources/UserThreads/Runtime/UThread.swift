// Layer 11: the user thread handle. Its operations that must tell a thread of one worker from
// one of several (join, cancel) are in UThread+Workers.swift, the public API's M:N half.
import CUThreads

/// A user thread: runs a closure on its own stack, scheduled by the runtime that created it.
/// Create it inside `UThreadRuntime.run` (outside one it never runs: see `init`).
///
/// ```swift
/// let t = UThread(name: "fetch") { try download(url) }
/// let data = try t.join()
/// ```
///
/// The closure is `sending`, as `Task { … }`'s is: it may capture values only the new thread
/// will use, and share state through `Sendable` types (the sync primitives, atomics), because
/// under `run(workers: N)` with N > 1 the thread may start on any worker and move between
/// workers (UThread+Workers.swift). Under `workers: 1` every thread runs on the caller's
/// kernel thread. Threads that must share non-`Sendable` state with their spawner (a captured
/// `var`, a non-`Sendable` object) are `UThread.local { … }`.
public struct UThread<Success>: Hashable, CustomStringConvertible {
    @usableFromInline let object: ThreadObject

    /// Spawns a thread. It starts when the scheduler next picks it (the caller keeps running).
    /// If no stack can be had, or an argument is out of range, or the caller runs no runtime,
    /// the thread is created finished and `join()` throws the reason (outside a runtime
    /// `UThreadError.invalidArgument`, as the throwing calls there); `UThread.spawn` throws it
    /// at once instead.
    ///
    /// - Parameters:
    ///   - name: shown in the thread table, dumps and crash reports.
    ///   - priority: used by priority policies (FIFO ignores it); with several workers the
    ///     policy of the worker that starts the thread gets it, and it moves with the thread.
    ///   - pinned: with several workers, start it now on the caller's worker and never move it
    ///     (for code that needs one kernel thread all its life); no effect under `workers: 1`.
    ///   - stackSize: usable stack bytes (default: the runtime's `stackSize`).
    ///   - body: the thread's code; its value or error is what `join()` returns or throws.
    @inlinable @inline(__always)
    public init(
        name: String = "", priority: Int = 0, pinned: Bool = false, stackSize: Int? = nil,
        _ body: sending @escaping () throws -> Success
    ) {
        var failure: (any Error)?
        // The defaults take entries with fewer arguments and tests (constants where the
        // arguments are the defaults or literals), on one worker and on several
        // (`spawnOnWorkers`). Always inlined: those constants fold only in the caller, and the
        // optimiser left this initialiser out of line where the M:N entries for the defaults
        // made it larger (the M:1 spawn+run+join loop: 420 -> 488 instructions, BENCHMARKS).
        let spawned =
            stackSize == nil && name.isEmpty && priority == 0
            ? spawnThread(
                witness: ThreadObject.witness(for: Success.self), witnessType: ObjectIdentifier(Success.self),
                failure: &failure)
            : stackSize == nil
                ? spawnThread(
                    name: name, named: !name.isEmpty, priority: priority,
                    witness: ThreadObject.witness(for: Success.self),
                    witnessType: ObjectIdentifier(Success.self), failure: &failure)
                : spawnThread(
                    name: name, named: !name.isEmpty, priority: priority, stackSize: stackSize,
                    witness: ThreadObject.witness(for: Success.self), witnessType: ObjectIdentifier(Success.self),
                    failure: &failure)
        guard let object = spawned else {
            self.object = UThread.spawnOnWorkers(
                name: name, priority: priority, pinned: pinned, stackSize: stackSize, body)
            return
        }
        if let failure { object.fail(failure, as: Success.self) } else { object.install(body) }
        self.object = object
    }

    /// Spawns a thread with parameters for the scheduling policies (nice value, tickets,
    /// deadline, priority). FIFO ignores them all. With several workers the policy of the
    /// worker that starts the thread gets them, and they move with the thread (a deadline
    /// counts from this call, whichever worker starts it).
    ///
    /// ```swift
    /// let t = UThread(name: "frame", scheduling: .init(deadline: .milliseconds(16))) { render() }
    /// ```
    @inlinable
    public init(
        name: String = "", scheduling: SchedulingParameters, stackSize: Int? = nil,
        _ body: sending @escaping () throws -> Success
    ) {
        var failure: (any Error)?
        guard
            let object = spawnThread(
                name: name, named: !name.isEmpty, priority: scheduling.priority, stackSize: stackSize,
                parameters: scheduling, witness: ThreadObject.witness(for: Success.self),
                witnessType: ObjectIdentifier(Success.self), failure: &failure)
        else {
            self.object = UThread.spawnOnWorkers(
                name: name, parameters: scheduling, pinned: false, stackSize: stackSize, body)
            return
        }
        if let failure { object.fail(failure, as: Success.self) } else { object.install(body) }
        self.object = object
    }

    /// Spawns a thread that shares non-`Sendable` state with its spawner (a captured `var`, a
    /// non-`Sendable` object): it runs on the spawner's worker and never moves, so the two never
    /// run at once. It pins only itself. Under `workers: 1` it is `init`.
    ///
    /// ```swift
    /// var hits = 0
    /// let t = UThread.local { hits += 1 }
    /// try t.join()   // hits == 1
    /// ```
    ///
    /// With several workers the spawner must not move either while the thread lives: call
    /// `UThread.pin()` first (the main thread of `run` too), or spawn it in a thread group
    /// (`UThreadGroup.spawnLocal`, which keeps its caller on its worker until the scope ends).
    /// Otherwise (a group's scope alone does not pin for this) the thread is created finished
    /// and `join()` throws `UThreadError.invalidArgument` saying so; the spawner is never
    /// pinned behind its back (the rule: Runtime/ThreadGroup.swift, "Who is pinned"). Outside
    /// a runtime the thread is created finished, as `init`'s is.
    @inlinable
    public static func local(
        name: String = "", priority: Int = 0, stackSize: Int? = nil, _ body: @escaping () throws -> Success
    ) -> UThread {
        var failure: (any Error)?
        let object = spawnLocalThread(
            name: name, priority: priority, stackSize: stackSize, witness: ThreadObject.witness(for: Success.self),
            witnessType: ObjectIdentifier(Success.self), failure: &failure)
        if let failure { object.fail(failure, as: Success.self) } else { object.install(body) }
        return UThread(object: object)
    }

    /// `local` with parameters for the scheduling policies (see `init(name:scheduling:…)`).
    @inlinable
    public static func local(
        name: String = "", scheduling: SchedulingParameters, stackSize: Int? = nil,
        _ body: @escaping () throws -> Success
    ) -> UThread {
        var failure: (any Error)?
        let object = spawnLocalThread(
            name: name, priority: scheduling.priority, stackSize: stackSize, parameters: scheduling,
            witness: ThreadObject.witness(for: Success.self), witnessType: ObjectIdentifier(Success.self),
            failure: &failure)
        if let failure { object.fail(failure, as: Success.self) } else { object.install(body) }
        return UThread(object: object)
    }

    /// Spawns a thread, throwing at once if it cannot be created.
    /// - Throws: `UThreadError.invalidArgument` (stack size, or called outside a runtime),
    ///   `.resourceExhausted` (no stack). With several workers the stack is taken by the worker
    ///   that starts the thread, so these come from `join()` instead.
    @inlinable
    public static func spawn(
        name: String = "", priority: Int = 0, pinned: Bool = false, stackSize: Int? = nil,
        _ body: sending @escaping () throws -> Success
    ) throws -> UThread {
        try checkInsideARuntime("UThread.spawn")
        let thread = UThread(name: name, priority: priority, pinned: pinned, stackSize: stackSize, body)
        try thread.throwIfFailedToStart()
        return thread
    }

    /// Spawns a thread bound to worker `worker` (0..<workers): it starts there and never moves
    /// (e.g. one acceptor per worker). From the calling worker it starts at once. Under
    /// `workers: 1` the only worker is 0.
    /// - Throws: `.invalidArgument` for a worker index out of range or a call outside a
    ///   runtime; under `workers: 1` also what `spawn` throws (with several workers `join()`
    ///   reports a bad or missing stack).
    @inlinable
    public static func spawn(
        name: String = "", onWorker worker: Int, stackSize: Int? = nil,
        _ body: sending @escaping () throws -> Success
    ) throws -> UThread {
        try checkInsideARuntime("UThread.spawn(onWorker:)")
        guard runsOnOneWorker("UThread.spawn(onWorker:)") else {
            return UThread(object: try spawnOnWorker(worker, name: name, stackSize: stackSize, body))
        }
        guard worker == 0 else { throw UThreadError.invalidArgument("worker \(worker) is not in 0..<1") }
        return try spawn(name: name, stackSize: stackSize, body)
    }

    @inlinable
    init(object: ThreadObject) { self.object = object }

    /// Throws the error of a thread that could not be created (it is finished at once).
    @inlinable
    func throwIfFailedToStart() throws {
        if !object.isCrossWorker, object.isFinished, case .failure(let error) = object.result(Success.self) {
            throw error
        }
    }

    /// Asks the thread to stop: it wakes from any wait with `CancellationError`, and
    /// `UThread.isCancelled` / `checkCancellation()` tell it. Cooperative: a thread that never
    /// waits or checks runs on. Idempotent; no effect on a finished thread; a thread cancelled
    /// before it started starts cancelled. Any kernel thread may call it (see
    /// `UThreadHandle.cancel()`).
    public func cancel() { handle.cancel() }

    /// The thread's id, unique in the process and never reused (as the thread table shows it),
    /// known from the spawn on.
    public var id: ThreadID { object.id }
    /// The name given at spawn ("" for none).
    public var name: String { object.name }
    /// Whether its closure has returned or thrown (`join()` then returns at once).
    public var isFinished: Bool { handle.isFinished }
    /// Whether `cancel()` was called on it.
    public var isCancelled: Bool { handle.isCancelled }
    /// A type-erased handle to the same thread.
    public var handle: UThreadHandle { UThreadHandle(object: object) }
    /// "UThread #id", with the name in quotes if it has one.
    public var description: String { handle.description }

    /// Whether both are the same thread.
    public static func == (a: UThread, b: UThread) -> Bool { a.object === b.object }
    /// Hashes the thread's identity.
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(object)) }
}

/// A thread may be handed to other threads when its result may: with several workers, they may
/// run on other kernel threads (joins and cancels across workers are built for it).
extension UThread: @unchecked Sendable where Success: Sendable {}

/// The spawn of `UThread.init`: under `workers: 1` takes an empty thread object (with a kept
/// row, see ThreadObjectSlab, else a new one) and spawns a thread for it.
/// Returns the object, still empty: the caller, which knows the types, stores the body in it
/// (`install`), or the spawn error that went to `failure`. The thread cannot run before that: it
/// is only ready, and nothing between here and the caller's `install` switches. Returns nil
/// under several workers, where the caller makes an M:N thread instead (`spawnOnWorkers`).
/// (Installing through a closure passed in here cost a thunk and an indirect call per spawn.)
/// One runtime lookup (inline: `Scheduler.withAtEntry`, hence never inlined itself), not
/// generic: no metadata lookups. `named` is `!name.isEmpty`, decided by the caller, where a
/// default or literal name makes it a constant (the test decodes a `String`: ~8 instructions).
@usableFromInline @inline(never)
func spawnThread(
    name: String, named: Bool, priority: Int, stackSize: Int?, parameters: SchedulingParameters? = nil,
    witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void, witnessType: ObjectIdentifier,
    failure: inout (any Error)?
) -> ThreadObject? {
    spawnThreadBody(name, named, priority, stackSize, parameters, witness, witnessType, &failure)
}

/// `spawnThread` with the default stack size and no scheduling parameters, the common case:
/// two arguments and their tests fewer (~15 instructions per spawn, caller and callee).
@usableFromInline @inline(never)
func spawnThread(
    name: String, named: Bool, priority: Int, witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void,
    witnessType: ObjectIdentifier, failure: inout (any Error)?
) -> ThreadObject? {
    spawnThreadBody(name, named, priority, nil, nil, witness, witnessType, &failure)
}

/// `spawnThread` with every default: no name, priority 0, the default stack size, no
/// scheduling parameters (`UThread {}`): three arguments and their tests fewer.
@usableFromInline @inline(never)
func spawnThread(
    witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void, witnessType: ObjectIdentifier,
    failure: inout (any Error)?
) -> ThreadObject? {
    spawnThreadBody("", false, 0, nil, nil, witness, witnessType, &failure)
}

/// The one body of the three `spawnThread` entries, inlined into each so that their constant
/// arguments fold away: outside a runtime a finished thread (`unstarted`), under several
/// workers nil (the caller makes an M:N thread), else the spawn on this worker.
@inline(__always)
private func spawnThreadBody(
    _ name: String, _ named: Bool, _ priority: Int, _ stackSize: Int?, _ parameters: SchedulingParameters?,
    _ witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void, _ witnessType: ObjectIdentifier,
    _ failure: inout (any Error)?
) -> ThreadObject? {
    Scheduler.withAtEntry {
        unstarted("UThread.init", name: name, witness: witness, witnessType: witnessType, &failure)
    } _: { scheduler in
        if _slowPath(scheduler.workerIndex >= 0) { return nil }  // several workers
        return spawnHere(
            scheduler, name: name, named: named, priority: priority, stackSize: stackSize, parameters,
            witness, witnessType, keptRows: true, &failure)
    }
}

/// Throws `invalidArgument` naming `api` when the caller runs no runtime (the throwing spawns;
/// `UThread.init` and `UThread.local` cannot throw and make a finished thread instead:
/// `unstarted`).
@usableFromInline
func checkInsideARuntime(_ api: StaticString) throws(UThreadError) {
    _ = try Scheduler.requireOrThrow(api)
}

/// Whether the calling runtime is `workers: 1` (stops with a clear message outside one).
@usableFromInline
func runsOnOneWorker(_ api: StaticString) -> Bool {
    Scheduler.with(api) { $0.workerIndex < 0 }
}

/// The thread of a spawn that cannot throw (`UThread.init`, `UThread.local`) called where no
/// runtime runs: an object that never gets a row, with `failure` set to the error the throwing
/// entry points throw there (`invalidArgument` naming `api`); the caller finishes it with that
/// error, so its `join()` throws it. Out of line: the spawn's fast path keeps one test.
@inline(never)
func unstarted(
    _ api: StaticString, name: String, witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void,
    witnessType: ObjectIdentifier, _ failure: inout (any Error)?
) -> ThreadObject {
    failure = Scheduler.outsideUserThread(api)
    return ThreadObject(name: name, witness: witness, witnessType: witnessType)
}

/// The spawn of `UThread.local`: a thread on the calling kernel thread, whatever the runtime.
/// Under several workers the spawner must be pinned (see `local`), else the object comes back
/// finished with the error in `failure`; outside a runtime likewise (`unstarted`).
@usableFromInline
func spawnLocalThread(
    name: String, priority: Int, stackSize: Int?, parameters: SchedulingParameters? = nil, withinScope: Bool = false,
    witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void, witnessType: ObjectIdentifier,
    failure: inout (any Error)?
) -> ThreadObject {
    guard let p = uthreads_get_runtime() else {
        return unstarted("UThread.local", name: name, witness: witness, witnessType: witnessType, &failure)
    }
    return Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { scheduler in
        // Held only by a group's scope, a spawner counts as movable: the thread may outlive the
        // scope (unless it is that group's child, `withinScope`: it ends before the scope does).
        let movable: UInt32 = withinScope ? .flagMigratable : .flagsPinForGood
        if scheduler.workerIndex >= 0, scheduler.onUserThread, scheduler.current.pointee.flags & movable != 0 {
            failure = UThreadError.invalidArgument(
                "UThread.local needs a spawner that stays on its worker: call UThread.pin() before spawning local threads (or spawn the spawner with pinned: true; in a thread group, UThreadGroup.spawnLocal)"
            )
            return ThreadObject(name: name, witness: witness, witnessType: witnessType)
        }
        // An M:N worker's kept rows have no object (ThreadObjectSlab): a new row instead.
        return spawnHere(
            scheduler, name: name, named: !name.isEmpty, priority: priority, stackSize: stackSize, parameters,
            witness, witnessType, keptRows: scheduler.workerIndex < 0, &failure)
    }
}

/// Spawns a thread on `scheduler`'s kernel thread: on a kept row when the spawn takes the
/// defaults and `keptRows` (M:1: ThreadObjectSlab), else for a new object. `named`:
/// `!name.isEmpty`.
@inline(__always)
private func spawnHere(
    _ scheduler: Scheduler, name: String, named: Bool, priority: Int, stackSize: Int?,
    _ parameters: SchedulingParameters?, _ witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void,
    _ witnessType: ObjectIdentifier, keptRows: Bool, _ failure: inout (any Error)?
) -> ThreadObject {
    if keptRows, stackSize == nil, parameters == nil,
        let object = scheduler.spawnKept(
            name: name, named: named, priority: priority, witness: witness, witnessType: witnessType)
    {
        return object
    }
    let object = ThreadObject(name: name, witness: witness, witnessType: witnessType)
    do {
        _ = try scheduler.spawn(object, priority: priority, stackSize: stackSize, parameters: parameters)
    } catch {
        failure = error
    }
    return object
}

/// The slow path of `UThread.checkpoint()` (out of line: the fast path is one decrement).
@usableFromInline @inline(never)
func checkpointSlowPath() {
    guard let p = uthreads_get_runtime() else {
        uthreads_checkpoint_arm(Int64.max / 2)
        return
    }
    Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { $0.checkpointSlow(audited: true) }
}

/// Parks the caller until `object`'s thread, of the caller's runtime and worker, has finished.
/// Never inlined: it reads the runtime inline (`Scheduler.withOrThrowAtEntry`). The scheduler
/// is borrowed through `_withUnsafeGuaranteedRef`, given a local function forced inline: a
/// closure literal there stayed a function of its own (a second frame and call per join, 16
/// instructions), and holding the scheduler `unowned(unsafe)` instead cost two retains and
/// releases of it per join (+74 instructions).
@usableFromInline @inline(never)
func waitUntilFinished(_ object: ThreadObject) throws {
    @inline(__always) func wait(_ scheduler: Scheduler) throws {
        let me = try joiner(of: object, scheduler)
        // A thread that has not started runs here, on its own stack (Scheduler's "Help-first join").
        if let t = object.controlBlock, let result = scheduler.host(t, joiner: me) {
            try result.check()
        } else {
            // The first wait inlined, any further one (a wake that was not the exit) called:
            // the inlined park inside a loop had the compiler load and spill eight scheduler
            // fields before it (~20 instructions per join).
            object.enqueue(me)
            try scheduler.park(inlined: .join, object: object.id.rawValue).check()
        }
        while !object.isFinished {
            object.enqueue(me)
            try scheduler.park(.join, object: object.id.rawValue).check()
        }
    }
    try Scheduler.withOrThrowAtEntry("UThread.join", wait)
}

/// The calling thread of `scheduler` as a joiner of `object`'s thread.
/// - Throws: `.foreignRuntime` (another runtime's thread), `.invalidArgument` (self-join).
@inline(__always)
func joiner(of object: ThreadObject, _ scheduler: Scheduler) throws -> ControlBlock {
    // Compared as addresses: an optional compared with a pointer tests for nil first.
    guard UInt(bitPattern: object.runtime) == UInt(bitPattern: Unmanaged.passUnretained(scheduler).toOpaque())
    else {
        throw UThreadError.foreignRuntime
    }
    let me = scheduler.current
    guard UInt(bitPattern: object.controlBlock) != UInt(bitPattern: me) else {
        throw UThreadError.invalidArgument("thread \(object.id) cannot join itself")
    }
    return me
}

/// Parks the caller until `object`'s thread has finished or `deadline` (scheduler clock) has
/// passed (`join(timeout:deadline:)`; `join()` keeps its own inlined path).
func waitUntilFinished(_ object: ThreadObject, deadline: UInt64?, cancellable: Bool) throws {
    try Scheduler.withOrThrow("UThread.join") { scheduler in
        let me = try joiner(of: object, scheduler)
        while !object.isFinished {
            object.enqueue(me)
            try scheduler.park(.join, object: object.id.rawValue, deadline: deadline, cancellable: cancellable).check()
        }
    }
}

/// A type-erased reference to a user thread (any result type).
public struct UThreadHandle: Hashable, CustomStringConvertible {
    let object: ThreadObject

    /// See `UThread.id`.
    public var id: ThreadID { object.id }
    /// See `UThread.name`.
    public var name: String { object.name }
    /// `cancel()` of a thread of a runtime with one worker (`UThread.local` threads included):
    /// at once on the runtime's kernel thread, posted from any other (ForeignCancels.swift).
    /// `isFinished`, `isCancelled`, `cancel()` and `UThread.join()` choose between this and a
    /// thread of several workers in UThread+Workers.swift.
    func cancelOnItsKernelThread() {
        guard let runtime = object.runtime, runtime == uthreads_get_runtime() else {
            // Another kernel thread: read nothing the runtime writes (ForeignCancels.swift).
            if let runtime = object.runtime { ForeignCancels.post(object, to: runtime) }
            return
        }
        guard !object.isFinished else { return }
        if let t = object.controlBlock {
            Unmanaged<Scheduler>.fromOpaque(runtime)._withUnsafeGuaranteedRef { $0.cancel(t) }
        } else {
            object.isCancelled = true
        }
    }

    /// "UThread #id", with the name in quotes if it has one.
    public var description: String { "UThread \(object.id)\(object.name.isEmpty ? "" : " \"\(object.name)\"")" }
    /// Whether both are the same thread.
    public static func == (a: UThreadHandle, b: UThreadHandle) -> Bool { a.object === b.object }
    /// Hashes the thread's identity.
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(object)) }
}

extension UThread where Success == Never {
    /// The index of the worker that runs the calling thread: 0..<workers, 0 under `workers: 1`
    /// (and outside a runtime). A thread that is not pinned may be on another worker after
    /// its next wait.
    public static var worker: Int {
        guard let s = Scheduler.active, s.workerIndex >= 0 else { return 0 }
        return Int(s.workerIndex)
    }

    /// Pins the calling thread to the kernel thread it runs on now, for the rest of its life:
    /// it never migrates after this call (for code that keeps kernel-thread state: thread-local
    /// C libraries, `pthread_self`-keyed resources, signal masks; and before spawning
    /// `UThread.local` threads). No effect under `workers: 1` (nothing moves), on a thread that
    /// is already pinned, or outside a user thread. O(1).
    public static func pin() {
        guard let s = Scheduler.active, s.workerIndex >= 0, s.onUserThread else { return }
        s.current.clear(.flagsPinForGood)
    }

    /// Whether the calling thread may still move to another worker: false once pinned, for
    /// threads that never could (`pinned:`, `spawn(onWorker:)`, `local`), under `workers: 1`
    /// and outside a user thread. Waiting for a descriptor does not pin.
    public static var isMigratable: Bool {
        guard let s = Scheduler.active, s.workerIndex >= 0, s.onUserThread else { return false }
        return s.current.has(.flagMigratable)
    }

    /// Lets other ready threads run; returns at once when none is ready. ~20 ns per switch.
    /// Outside a runtime no user thread can be ready on the calling kernel thread, so it
    /// returns at once there too (as `checkpoint()` does).
    @inline(__always)
    public static func yield() {
        guard let p = uthreads_get_runtime() else { return }
        Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { $0.yield() }
    }

    /// A safe point: switches the calling thread out if it has used up its time slice (or the
    /// policy wants another thread to run now); returns at once otherwise. Call it in long
    /// CPU-bound loops so that round-robin, MLFQ, CFS, … can share the CPU: a user thread is
    /// never switched out between safe points (see the design essay in Scheduler.swift).
    ///
    /// Cost when no switch is due: one decrement of a per-kernel-thread counter and a branch
    /// (~1 ns; `uthreads sched --bench-checkpoint` measures it). Every few thousand calls the
    /// slow path reads the clock. Under FIFO, or outside a runtime, it never switches.
    @inlinable @inline(__always)
    public static func checkpoint() {
        if uthreads_checkpoint_tick() != 0 { checkpointSlowPath() }
    }

    /// Simulated CPU work: keeps the calling thread busy for `duration` of its own CPU time,
    /// with safe points so that time slices apply. Under the virtual clock it advances virtual
    /// time instead of spinning (so a scheduling experiment is exact and reproducible).
    public static func simulateWork(for duration: Duration) {
        let scheduler = Scheduler.require("UThread.simulateWork(for:)")
        guard scheduler.onUserThread else { Scheduler.misuse("UThread.simulateWork(for:)") }
        scheduler.simulateWork(nanoseconds: Deadline.clampedNanoseconds(duration))
    }

    /// Sets (or with nil clears) the calling thread's deadline, `duration` from now on the
    /// runtime's clock. Used by `EDFPolicy`; other policies ignore it.
    public static func setDeadline(_ duration: Duration?) {
        let scheduler = Scheduler.require("UThread.setDeadline(_:)")
        guard scheduler.onUserThread else { Scheduler.misuse("UThread.setDeadline(_:)") }
        scheduler.current.pointee.sched_deadline_ns =
            duration.flatMap { Deadline.after($0, now: scheduler.now()) } ?? .max
    }

    /// Parks the calling thread for `duration` (a non-positive duration just yields; one of
    /// ~146 years or more sleeps until cancelled: see Timers/Deadline.swift).
    /// - Throws: `CancellationError` if cancelled before or while sleeping;
    ///   `UThreadError.invalidArgument` when called outside a runtime.
    public static func sleep(for duration: Duration) throws {
        let scheduler = try Scheduler.requireOrThrow("UThread.sleep(for:)")
        try checkCancellation()
        guard duration > .zero else {
            scheduler.yield()
            return
        }
        try sleep(scheduler, until: Deadline.after(duration, now: scheduler.now()))
    }

    /// Parks the calling thread until `instant` (an instant that has passed just yields).
    /// - Throws: `CancellationError` if cancelled before or while sleeping;
    ///   `UThreadError.invalidArgument` when called outside a runtime.
    public static func sleep(until instant: ContinuousClock.Instant) throws {
        let scheduler = try Scheduler.requireOrThrow("UThread.sleep(until:)")
        try checkCancellation()
        guard instant > ContinuousClock.now else {
            scheduler.yield()
            return
        }
        try sleep(scheduler, until: Deadline.at(instant, now: scheduler.now()))
    }

    /// Parks until `deadline` (nil: until cancelled).
    private static func sleep(_ scheduler: Scheduler, until deadline: UInt64?) throws {
        // A site audited for resuming on another M:N worker (only `me` is used after).
        let me = scheduler.current
        if scheduler.migrating { me.set(.flagMovable) }
        let result = scheduler.park(.sleep, deadline: deadline)
        me.clear(.flagMovable)
        switch result {
        case .timedOut, .woken: return
        case let other: try other.check()
        }
    }

    /// Throws `CancellationError` if the calling thread was cancelled.
    /// - Throws: also `UThreadError.invalidArgument` when called outside a runtime.
    public static func checkCancellation() throws {
        if try Scheduler.requireOrThrow("UThread.checkCancellation()").current.has(.flagCancelled) {
            throw CancellationError()
        }
    }

    /// Whether the calling thread was cancelled. False outside a user thread (a kernel thread
    /// outside every runtime, a `blocking { }` body): no `cancel()` reaches code there.
    public static var isCancelled: Bool {
        guard let scheduler = Scheduler.active, scheduler.onUserThread else { return false }
        return scheduler.current.has(.flagCancelled)
    }

    /// The calling thread. Call it on a user thread: elsewhere (outside every runtime, in a
    /// `blocking { }` body) there is no thread to name, and a property that cannot throw stops
    /// the process with a message naming the call; `UThreadRuntime.isRunning` tells first.
    public static var current: UThreadHandle {
        let scheduler = Scheduler.require("UThread.current")
        guard scheduler.onUserThread else { Scheduler.misuse("UThread.current") }
        return UThreadHandle(object: scheduler.objectOf(scheduler.current))
    }
}
