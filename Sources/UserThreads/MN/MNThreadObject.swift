// Layer 10: one M:N thread as every worker sees it — its body, its result, where it runs, who
// waits for it. At most one allocation per spawn.
//
// Design
// ======
//
// An M:N thread is a `ThreadObject` subclass (the M:1 runtime's object: the body, then the
// result, type-erased in inline storage, typed only by a `witness` closure made in `@inlinable`
// code the caller specialises) plus
// the few fields other kernel threads touch. The same object is the queued job (the worker
// queues hold it until some worker starts it), the row's object while it runs, and the target
// of `join`. Spawn allocates it and nothing else (the caller's closure context aside), or
// reuses one that finished on the spawner's worker (KeptThreadObjects.swift, `reusable`).
//
// One atomic word (`flags`) orders everything that crosses workers; each transition is a single
// read-modify-write, so the modification order of that word decides every race:
//   * `started`: the worker that started the thread wrote `place` (worker, row, id) first, and
//     publishes it with the RMW (release). A canceller that sees `started` in its own RMW's
//     old value reads `place` (acquire) and sends the cancel there; if it ran first, the
//     starter sees `cancelRequested` in *its* RMW's old value and cancels the thread itself.
//   * `finished`: the result is stored before the RMW (release); a joiner that loads the word
//     with acquire and sees it reads the result without a lock. A finished thread is joined
//     by one load: no lock, no allocation.
//   * `hasWaiters`: a joiner that must wait registers its `Waiter` under a striped lock
//     (`MNJoinerLocks`: a small table of pthread mutexes shared by all threads, indexed by the
//     object's address) and sets the bit with an RMW while it holds that lock. The finisher
//     takes the lock only when its own RMW saw the bit. Either the joiner's RMW comes first in
//     the word's order (then the finisher sees the bit, locks after the joiner unlocked, and
//     finds the waiter) or the finisher's does (then the joiner's RMW returns `finished` and
//     it deregisters instead of parking): no lost wake-up, and no lock at all for a thread
//     nobody waits for.
// Waiters: the first one sits in the object (`firstWaiter`), more go to an array (rare: two
// threads joining the same one at the same time). A kernel thread outside every runtime that
// joins sets `outsideWaiter` with `hasWaiters` and sleeps on a futex word of its stripe
// (Base/OutsideWaiters.swift); the finisher, already on its `hasWaiters` path, wakes it.
//
// Migration (MNWorker.swift's essay). The object is its own migration record: the
// row keeps it alive while the thread lives, and a started thread that moves takes its row
// (which never moves) and this object along, as a pair in the runtime's migrant batches. Of
// the place, only the worker changes: `placeWorker` is atomic, stored by the adopter before it
// reads `flags` for `cancelRequested` (`moved(to:)`), while a canceller sets that bit before
// it loads `placeWorker` (both sequentially consistent). So either the canceller sends the
// cancel to the adopter, or the adopter sees the bit and cancels the thread itself (or both:
// a cancel is idempotent); a cancel sent to the old worker is dropped there (it no longer
// owns the row). `placeBlock` and `placeID` are written once, before `started`. Every other
// field is written by one kernel thread before the object is published (queue lock, mailbox,
// migrant batch), under the `flags` protocol above, or under its stripe lock (the waiters).
//
// Start failure (no stack): the worker stores the error and runs the witness anyway, on its
// own stack; the witness sees `startError` and stores `.failure` instead of calling the body.
// So the non-generic runtime never needs the result type.
//
// Rejected: a separate migration record per thread (the first migration design kept the
// thread's shared core in `ThreadObject.migrant`, retained by hand: a second object, and a
// release on the exit path) — the object is already what every worker reaches; a lock around
// the place for the adopter (the atomic worker index and the `flags` RMWs decide the race);
// a generic `MNThreadBox<Success>` class with a `Mutex`-guarded state and a separate
// `MNJob` (four allocations, a lock per start, finish and join, and unspecialised generic
// metadata lookups in the runtime: ~2 µs per spawn+join on one worker); a lock per object
// (`KernelLock` allocates its pthread mutex: a second allocation); a spin lock per object (a
// preempted holder spins the other CPU for a time slice); waiters as a lock-free list of nodes
// on the joiners' stacks (a cancelled joiner cannot unlink its node safely).
import CUThreads
import Glibc
import Synchronization

/// The shared state of an M:N thread (see the essay above). Created by `UThread.init`, queued
/// until a worker starts it, retained by its row while it runs and by every `UThread` handle.
@usableFromInline
final class MNThreadObject: ThreadObject, @unchecked Sendable {
    /// Bits of `flags`.
    static let started = 1, cancelRequested = 4, hasWaiters = 8, outsideWaiter = 16
    @usableFromInline static let finished = 2
    /// Set by `failClosed` before the end: the runtime refused the thread (it has ended), so
    /// the end is not counted and no worker is asked to wake anything.
    static let refused = 32

    /// The runtime, unretained (it outlives its threads): a retain would be an atomic write to
    /// the runtime's header, a line every worker's spawn and exit paths would share.
    let runtimeRef: Unmanaged<MNRuntime>
    var mnRuntime: MNRuntime { runtimeRef.takeUnretainedValue() }
    let isMain: Bool
    /// Usable stack bytes, nil for the configuration's default.
    let stackSize: Int?
    /// Never migrates once started (`UThread(pinned:)`, `spawn(onWorker:)`): set by
    /// `MNRuntime.spawn` before the object is published, read by the starting worker.
    @exclusivity(unchecked) var pinned = false
    /// Started at once on the spawner's worker on request (`UThread.startingHere`), not because
    /// an ordering policy stands in for the queue: the spawner's park does not shed it
    /// (`MNWorker.willPark`). Set by `MNRuntime.spawn` before the object is published.
    @exclusivity(unchecked) var startedHere = false
    /// The scheduling parameters given at spawn (`UThread(priority:)`, `UThread(scheduling:)`),
    /// for the starting worker's policy; written before the object is published. A deadline is
    /// kept absolute (`deadlineAt`, CLOCK_MONOTONIC, the clock every worker shares): it counts
    /// from the spawn, not from the start on whichever worker.
    @exclusivity(unchecked) var priority = 0
    @exclusivity(unchecked) var parameters: SchedulingParameters?
    @exclusivity(unchecked) var deadlineAt: UInt64 = .max
    /// `parameters != nil`, as one byte for the start path (the optional struct's copy and test
    /// cost ~20 instructions per start).
    @exclusivity(unchecked) var hasParameters = false
    /// The worker of the last thread that woke this one across workers, and how many such
    /// wakes in a row came from it (`MNWorker.pull`: a repeated partner, not a one-off wake).
    /// Touched only by the worker that owns the parked thread.
    @exclusivity(unchecked) var lastWaker: Int32 = -1
    @exclusivity(unchecked) var wakesFromLastWaker: Int32 = 0
    /// `started`, `finished`, `cancelRequested`, `hasWaiters` (see the essay).
    @usableFromInline let flags = Atomic<Int>(0)
    /// Where it runs: the worker is written by the starting worker before it sets `started`,
    /// and again by each worker that adopts it after a migration (`moved(to:)`), hence atomic;
    /// the row and id are written once, before `started`, and read by others only after they
    /// saw `started` (acquire).
    let placeWorker = Atomic<Int>(-1)
    @exclusivity(unchecked) var placeBlock: UInt = 0
    @exclusivity(unchecked) var placeID: UInt64 = 0
    /// Set by the starting worker when it could not create the thread; read by the witness on
    /// the same kernel thread.
    @usableFromInline @exclusivity(unchecked) var startError: (any Error)?
    /// Joiners waiting for the end; guarded by the object's stripe of `MNJoinerLocks`.
    @exclusivity(unchecked) var firstWaiter: Waiter?
    @exclusivity(unchecked) var moreWaiters: [Waiter] = []
    /// `witness`: `MNThreadObject.mnWitness(for:)` of the thread's result type `witnessType`.
    @usableFromInline
    init(
        runtime: MNRuntime, name: String, isMain: Bool, stackSize: Int?,
        witness: @escaping (ThreadObject, Operation) -> Void, witnessType: ObjectIdentifier
    ) {
        self.runtimeRef = Unmanaged.passUnretained(runtime)
        self.isMain = isMain
        self.stackSize = stackSize
        super.init(name: name, witness: witness, witnessType: witnessType, crossWorker: true)
    }

    /// Gives the new object its thread id, before any other kernel thread can see it (so that
    /// `UThread.id` is never optional and never read while written): from the calling kernel
    /// thread's runtime, whichever it is (every runtime's ids come from one process-wide
    /// counter), else from that counter itself.
    @usableFromInline
    func assignID() {
        let local = uthreads_get_runtime().map {
            Unmanaged<Scheduler>.fromOpaque($0)._withUnsafeGuaranteedRef { $0.allocateID() }
        }
        id = ThreadID(rawValue: local ?? ThreadIDAllocator.allocateShared())
    }

    /// A thread object the calling worker kept (KeptThreadObjects.swift), made as new for a
    /// thread of `runtime` named `name`, with an id; nil when the caller is not a worker of
    /// `runtime`, none is kept, or the one on top is still referenced elsewhere (then it is let
    /// go: its last handle frees it) or was made for the main thread, another stack size or
    /// another result type (its witness is a `let`: ThreadObject.swift).
    @usableFromInline
    static func reusable(_ runtime: MNRuntime, name: String, witnessType: ObjectIdentifier) -> MNThreadObject? {
        guard let p = uthreads_get_runtime() else { return nil }
        return Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { s -> MNThreadObject? in
            guard s.workerIndex >= 0 else { return nil }
            return reusable(s, Unmanaged.passUnretained(runtime), name: name, witnessType: witnessType)
        }
    }

    /// `reusable` on the worker whose scheduler is `s` (the caller checked that it is one),
    /// with its +1.
    @inline(__always)
    private static func reusable(
        _ s: Scheduler, _ runtime: Unmanaged<MNRuntime>, name: String, witnessType: ObjectIdentifier
    ) -> MNThreadObject? {
        guard let object = reusableTwice(s, runtime, name: name, named: !name.isEmpty, witnessType: witnessType)
        else { return nil }
        object.release()  // one of its two
        return object.takeRetainedValue()
    }

    /// `reusable` as an unmanaged object with two references, both the caller's: the handle's
    /// and the queue slot's or row's (see `forSpawn`). The kept list's +1 is the first; the
    /// uniqueness test adds the second when it passes (`uthreads_retain_if_unique`: inline, one
    /// load and a store, where the runtime's count layout was checked, `Scheduler.inlineRefCounts`;
    /// else the runtime's two calls), and without a locked instruction: nothing but the kept
    /// list references the object then, so no other kernel thread can change its count
    /// meanwhile (KeptThreadObjects.swift's essay). A failed test leaves the count as it was,
    /// and the kept list's +1 is given up (the other references free it).
    @inline(__always)
    private static func reusableTwice(
        _ s: Scheduler, _ runtime: Unmanaged<MNRuntime>, name: String, named: Bool, witnessType: ObjectIdentifier
    ) -> Unmanaged<MNThreadObject>? {
        guard let kept = s.takeKeptObject() else { return nil }
        // Acquire load of the count: after the last release elsewhere (the essay).
        let unique =
            s.inlineRefCounts
            ? uthreads_retain_if_unique(kept.toOpaque()) != 0 : uthreads_retain_if_unique_called(kept.toOpaque()) != 0
        guard unique else {
            kept.release()
            return nil
        }
        let object = Unmanaged<MNThreadObject>.fromOpaque(kept.toOpaque())  // only M:N objects are kept
        let reusable = object._withUnsafeGuaranteedRef { mn in
            // Its witness is a `let` (ThreadObject.swift): reused only for the same result type.
            guard mn.runtimeRef.toOpaque() == runtime.toOpaque(), !mn.isMain, mn.stackSize == nil,
                mn.witnessType == witnessType
            else { return false }
            mn.recycle(name: name, named: named, id: s.allocateID(), check: s.checks)
            return true
        }
        guard reusable else {
            object.release()
            object.release()
            return nil
        }
        s.objectsReused &+= 1
        return object
    }

    /// The object of a thread that `UThread.init` spawns on the calling worker, as `make`
    /// takes it (a kept one when it can, else a new one, with its id), with two references
    /// (the handle's and the one the queue's slot or the row takes over: `reusableTwice`), and
    /// the worker's scheduler, unretained, for `MNRuntime.spawnFromWorker`: one look-up of the
    /// calling worker for the whole spawn (three before: ~60 instructions), read inline (its entry,
    /// `MNSpawn.object`, is never inlined and reads it once, first: see Scheduler's
    /// "Per-kernel-thread state"). Unmanaged until the caller's handle takes it: with a strong reference the
    /// caller retained and released the object around the body's install and the push (~45
    /// instructions per spawn), and the push retained it for its slot (an atomic retain, ~22).
    /// The caller must not park before it has published the object (it would run on whatever
    /// worker then). Stops with a clear message when the caller is
    /// not an M:N thread.
    /// `named`: `!name.isEmpty`, which the caller knows (a constant for the default name).
    /// Called through `MNSpawn.object`, which the caller reaches without a metadata look-up.
    @inline(__always)
    static func forSpawn(
        name: String, named: Bool, stackSize: Int?, witness: @escaping (ThreadObject, Operation) -> Void,
        witnessType: ObjectIdentifier, _ api: StaticString
    ) -> (
        object: Unmanaged<MNThreadObject>, scheduler: UnsafeMutableRawPointer
    ) {
        guard let p = uthreads_get_runtime_here() else { MNWorker.misuse(api) }
        let object = Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { s -> Unmanaged<MNThreadObject> in
            guard let w = s.workerOpaque, s.onUserThread else { MNWorker.misuse(api) }
            let runtime = Unmanaged<MNWorker>.fromOpaque(w)._withUnsafeGuaranteedRef { $0.runtimeRef }
            if stackSize == nil,
                let kept = reusableTwice(s, runtime, name: name, named: named, witnessType: witnessType)
            {
                return kept
            }
            return newForSpawn(s, runtime, name: name, stackSize: stackSize, witness, witnessType)
        }
        return (object, p)
    }

    /// `forSpawn`'s new object, with its id and two references, the second taken without a
    /// locked instruction (no other kernel thread knows the object yet). Out of line: the spawn
    /// reuses one.
    @inline(never)
    private static func newForSpawn(
        _ s: Scheduler, _ runtime: Unmanaged<MNRuntime>, name: String, stackSize: Int?,
        _ witness: @escaping (ThreadObject, Operation) -> Void, _ witnessType: ObjectIdentifier
    ) -> Unmanaged<MNThreadObject> {
        let object = MNThreadObject(
            runtime: runtime.takeUnretainedValue(), name: name, isMain: false, stackSize: stackSize,
            witness: witness, witnessType: witnessType)
        object.id = ThreadID(rawValue: s.allocateID())
        let retained = Unmanaged.passRetained(object)
        _ = uthreads_retain_unshared(retained.toOpaque())
        return retained
    }

    /// Makes a finished object that nothing else references as new (ThreadObject.recycle, and
    /// every field of this class a thread's life may have changed), with the id `id`; `check`:
    /// `Configuration.checkInvariants`. Its runtime, `isMain` and `stackSize` stay (the caller
    /// checked them). Inlined into the spawn's reuse (a call cost ~12 instructions).
    @inline(__always)
    private func recycle(name: String, named: Bool, id: UInt64, check: Bool) {
        if check {
            precondition(
                firstWaiter == nil && moreWaiters.isEmpty && startError == nil && controlBlock == nil,
                "reusable M:N thread object \(self.id) is still in use")
        }
        recycle(name: name, named: named)
        self.id = ThreadID(rawValue: id)
        flags.store(0, ordering: .relaxed)
        placeWorker.store(-1, ordering: .relaxed)
        placeBlock = 0
        placeID = 0
        pinned = false
        startedHere = false
        if hasParameters || priority != 0 {
            priority = 0
            parameters = nil
            deadlineAt = .max
            hasParameters = false
        }
        lastWaker = -1
        wakesFromLastWaker = 0
        home = 0
        migrations = 0
        lastDescriptor = -1
        savedErrno = 0
    }

    /// Records the scheduling parameters of `UThread.init` (before the object is published).
    @usableFromInline
    func setScheduling(priority: Int, _ parameters: SchedulingParameters?) {
        self.priority = parameters?.priority ?? priority
        guard let parameters else { return }
        self.parameters = parameters
        hasParameters = true
        if let d = parameters.deadline { deadlineAt = Deadline.after(d, now: uthreads_monotonic_ns()) ?? .max }
    }

    /// The parameters for the starting worker's `Scheduler.spawn`: a deadline as what is left
    /// of it now (the scheduler adds its clock's now back: the same instant).
    func parametersAtStart() -> SchedulingParameters? {
        guard var p = parameters else { return nil }
        if p.deadline != nil, deadlineAt != .max {
            let now = uthreads_monotonic_ns()
            p.deadline = .nanoseconds(Int64(clamping: deadlineAt &- min(deadlineAt, now)))
        }
        return p
    }

    /// Whether `cancel()` was called (any kernel thread may ask).
    var isCancelRequested: Bool { flags.load(ordering: .acquiring) & MNThreadObject.cancelRequested != 0 }

    /// Whether the body has returned or thrown (acquire: its result is then readable). Inlined
    /// into `join()` (the call cost ~7 instructions per join of a finished thread).
    @inlinable
    var isFinishedAcquire: Bool { flags.load(ordering: .acquiring) & MNThreadObject.finished != 0 }

    /// Called by the worker that started it, on that worker. Returns whether a cancel came first.
    func started(worker: Int, block: UInt, id: UInt64) -> Bool {
        placeWorker.store(worker, ordering: .relaxed)
        placeBlock = block
        placeID = id
        // acq_rel: releases `place` to a later canceller; acquires nothing we need, but the
        // RMW's old value decides the race with `cancel` (see the essay).
        let old = flags.bitwiseOr(MNThreadObject.started, ordering: .acquiringAndReleasing).oldValue
        return old & MNThreadObject.cancelRequested != 0
    }

    /// Called by the worker that adopts the thread after it migrated, on that worker,
    /// before the thread can run there. Returns whether a cancel is pending (one that raced with
    /// the move may have been posted to the old worker, which dropped it). See the essay.
    func moved(to worker: Int) -> Bool {
        placeWorker.store(worker, ordering: .sequentiallyConsistent)
        return flags.load(ordering: .sequentiallyConsistent) & MNThreadObject.cancelRequested != 0
    }

    /// Publishes the end (the result is stored): wakes the joiners, then counts the thread out.
    /// Called by the witness on the thread's own stack (or on its worker after a start failure).
    @usableFromInline
    func finish() {
        // Release: the result stored just before is visible to whoever sees `finished`.
        let old = flags.bitwiseOr(MNThreadObject.finished, ordering: .acquiringAndReleasing).oldValue
        if old & MNThreadObject.hasWaiters != 0 {
            var first: Waiter?
            var more: [Waiter] = []
            MNJoinerLocks.with(self) {
                first = firstWaiter
                firstWaiter = nil
                swap(&more, &moreWaiters)
            }
            // A refused thread's joiners inside the runtime are threads of an abandoned
            // runtime (the deadlock's end): no worker runs them again.
            if old & MNThreadObject.refused == 0 {
                if let first { syncWake(first) }
                syncWake(more)
            }
            if old & MNThreadObject.outsideWaiter != 0 { OutsideWaiters.wake(self) }
        }
        guard old & MNThreadObject.refused == 0 else { return }  // never counted live
        // The runtime borrowed through a local function forced inline (a closure literal there
        // stayed a function of its own: a second frame and call per thread).
        @inline(__always) func count(_ runtime: MNRuntime) {
            if isMain { runtime.mainFinished() }
            // A started thread finishes on the worker that runs it, which `placeWorker` names
            // (its starter or adopter stored it, on this kernel thread, before it ran here): no
            // look-up of the calling worker. -1: it never started (a start failure).
            runtime.threadFinished(onWorker: placeWorker.load(ordering: .relaxed))
        }
        runtimeRef._withUnsafeGuaranteedRef(count)
    }

    /// The worker could not create the thread: record why and end it unstarted (the witness
    /// stores `.failure(error)` and calls `finish`).
    func failBeforeStart(_ error: any Error) {
        startError = error
        run()
    }

    /// Ends, unstarted and uncounted, a thread that its runtime will never start because it has
    /// ended (MNRuntime.swift, "Spawns from outside at the end"): the witness stores
    /// `.failure(UThreadError.runtimeEnded)` and `finish` publishes it. Any kernel thread.
    func failClosed() {
        flags.bitwiseOr(MNThreadObject.refused, ordering: .relaxed)  // read by `finish`'s RMW, same thread
        startError = UThreadError.runtimeEnded
        run()
    }

    /// Asks the thread to stop: before it starts (it then starts cancelled), or on its worker
    /// (wherever it migrated: see the essay).
    func cancel() {
        // Sequentially consistent: pairs with `moved(to:)` (store worker, load flags).
        let old = flags.bitwiseOr(MNThreadObject.cancelRequested, ordering: .sequentiallyConsistent).oldValue
        guard old & MNThreadObject.finished == 0, old & MNThreadObject.started != 0 else { return }
        let (worker, block, id) = (placeWorker.load(ordering: .sequentiallyConsistent), placeBlock, placeID)
        if let (w, s) = MNWorker.current(), w.runtimeRef.toOpaque() == runtimeRef.toOpaque(), w.index == worker {
            // `owns`: the thread may be between workers (given up, not adopted yet).
            if let t = ControlBlock(bitPattern: block), s.table.owns(t), t.pointee.id == id,
                t.pointee.state != .stateFree, t.pointee.state != .stateFinished
            {
                s.cancel(t)
            }
        } else {
            // A hand-in when it comes from outside (MNHandIns.swift); a worker's post is
            // covered by the census, and pays the bracket too (cancels are rare).
            let runtime = mnRuntime
            runtime.handIns.handIn { runtime.withWorker(worker) { $0.post(.cancel(block: block, id: id)) } }
        }
    }

    /// Parks the calling M:N thread until this one has finished or `deadline` (scheduler clock)
    /// passes, with the parking protocol of every primitive (Sync/Waiter.swift); with
    /// `cancellable: false` the caller's cancellation does not end the wait. O(1) unless
    /// several threads join it at once. A kernel thread outside every runtime blocks instead
    /// (`deadline` on CLOCK_MONOTONIC).
    /// - Throws: `CancellationError` (the caller was cancelled), `UThreadError.timedOut`,
    ///   `.invalidArgument` (self-join), `.foreignRuntime`.
    @usableFromInline
    func waitUntilFinished(deadline: UInt64? = nil, cancellable: Bool = true) throws {
        guard let (w, s) = MNWorker.current(), s.onUserThread else {
            try checkOutsideJoin("UThread.join()")
            flags.bitwiseOr(MNThreadObject.hasWaiters | MNThreadObject.outsideWaiter, ordering: .acquiringAndReleasing)
            guard OutsideWaiters.wait(for: self, deadline: deadline, until: { isFinishedAcquire }) else {
                throw UThreadError.timedOut
            }
            return
        }
        guard w.runtimeRef.toOpaque() == runtimeRef.toOpaque() else { throw UThreadError.foreignRuntime }
        // A row is this thread's for its whole life, wherever it runs (rows never move).
        let me = s.current
        if flags.load(ordering: .acquiring) & MNThreadObject.started != 0,
            placeBlock == UInt(bitPattern: me), placeID == me.pointee.id
        {
            throw UThreadError.invalidArgument("thread \(id) cannot join itself")
        }
        // After a park the caller may run on another worker: `syncWait` finds its scheduler.
        while !isFinishedAcquire {
            let result = try syncWait(
                "UThread.join()", .join, object: id.rawValue, target: nil, deadline: deadline, cancellable: cancellable,
                register: { waiter in
                    MNJoinerLocks.with(self) { () -> Bool in
                        if firstWaiter == nil { firstWaiter = waiter } else { moreWaiters.append(waiter) }
                        let old = flags.bitwiseOr(MNThreadObject.hasWaiters, ordering: .acquiringAndReleasing).oldValue
                        if old & MNThreadObject.finished != 0 {
                            removeWaiter(waiter)
                            return false
                        }
                        return true
                    }
                },
                withdraw: { waiter in
                    // Not registered any more: the finisher took it, and its wake is in flight.
                    MNJoinerLocks.with(self) { removeWaiter(waiter) } ? nil : .woken
                })
            guard let result, result != .woken else { continue }
            try result.check()
        }
    }

    /// Removes `waiter` if it is still registered (caller holds the stripe lock).
    @discardableResult
    private func removeWaiter(_ waiter: Waiter) -> Bool {
        if firstWaiter == waiter {
            firstWaiter = nil
            return true
        }
        if let i = moreWaiters.firstIndex(of: waiter) {
            moreWaiters.remove(at: i)
            return true
        }
        return false
    }
}

extension MNThreadObject {
    /// An M:N thread object for `body`, with its id (one the calling worker kept, when it can:
    /// KeptThreadObjects.swift): its witness runs the body, stores its `Result` and calls
    /// `finish`, or destroys what is stored. The body need not be `Sendable`:
    /// `UThread.init` takes it as `sending` (nothing else can reach what it captures), and `run`'s
    /// main thread runs while its caller waits. Specialised into the caller (no metadata lookups
    /// in the runtime).
    @inlinable
    static func make<Success>(
        runtime: MNRuntime, name: String, isMain: Bool, stackSize: Int?,
        body: @escaping () throws -> Success
    ) -> MNThreadObject {
        let object: MNThreadObject
        let type = ObjectIdentifier(Success.self)
        if !isMain, stackSize == nil, let reused = MNThreadObject.reusable(runtime, name: name, witnessType: type) {
            object = reused
        } else {
            object = MNThreadObject(
                runtime: runtime, name: name, isMain: isMain, stackSize: stackSize,
                witness: MNThreadObject.mnWitness(for: Success.self), witnessType: type)
            object.assignID()
        }
        object.install(mn: body)
        return object
    }

    /// Stores `body` in a new or reused object made with `mnWitness(for: Success.self)`.
    @inlinable @inline(__always)
    func install<Success>(mn body: @escaping () throws -> Success) {
        store(body, as: .body)
    }

    /// The specialised code of an M:N thread returning `Success`: runs the body, stores its
    /// `Result` and calls `finish`, or destroys what is stored (a non-capturing closure once
    /// specialised into the caller).
    @inlinable @inline(__always)
    static func mnWitness<Success>(for _: Success.Type) -> (ThreadObject, Operation) -> Void {
        { object, operation in
            switch operation {
            case .run:
                let body = object.take((() throws -> Success).self)
                let mn = unsafeDowncast(object, to: MNThreadObject.self)
                if let error = mn.startError {
                    object.store(Result<Success, any Error>.failure(error), as: .result)
                } else {
                    let result = Result<Success, any Error>(catching: body)
                    // Nothing to release: the worker may keep the object for reuse (its reap).
                    if _isPOD(Success.self), case .success = result { object.resultIsTrivial = true }
                    object.store(result, as: .result)
                }
                mn.finish()
            case .destroy: object.destroy(storedFor: Success.self)
            }
        }
    }
}

/// The striped locks that guard the joiner lists of M:N thread objects: 64 pthread mutexes,
/// one cache line each, picked by the object's address. Held for a few stores; two objects that
/// share a stripe only wait for each other's few stores. pthread mutexes (not `Mutex`) so that
/// ThreadSanitizer sees them (see KernelLock.swift).
enum MNJoinerLocks {
    static let count = 64
    private static let stride = 64
    nonisolated(unsafe) private static let base: UnsafeMutableRawPointer = {
        precondition(MemoryLayout<pthread_mutex_t>.size <= stride)
        let p = UnsafeMutableRawPointer.allocate(byteCount: count * stride, alignment: stride)
        for i in 0..<count { pthread_mutex_init((p + i * stride).assumingMemoryBound(to: pthread_mutex_t.self), nil) }
        return p
    }()

    /// Runs `body` holding the stripe of `object`.
    @inline(__always)
    static func with<R>(_ object: AnyObject, _ body: () throws -> R) rethrows -> R {
        let address = UInt(bitPattern: ObjectIdentifier(object))
        let i = Int((address >> 6) ^ (address >> 12)) & (count - 1)
        let m = (base + i * stride).assumingMemoryBound(to: pthread_mutex_t.self)
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}
