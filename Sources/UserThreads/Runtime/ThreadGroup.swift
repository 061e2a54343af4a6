// Layer 11: structured concurrency — a scope that owns the threads spawned in it.
//
// Design essay
// ============
//
// `withThreadGroup { group in try group.spawn { … } }` runs the body, then waits until every
// child has finished before it returns: no child outlives the scope (that is what makes it
// "structured"). When a child throws, the group records the first error, cancels every sibling
// (they wake from any wait with CancellationError) and, once all have finished, rethrows that
// first error. If the body itself throws, the children are cancelled and awaited the same way
// and the body's error wins. If the *waiting* thread is cancelled, it cancels the children and
// keeps waiting for them (uncancellably): the scope never returns with a child still running,
// so it never leaks a thread.
//
// Children are ordinary threads. `spawn` takes a `sending` body, as `UThread.init` does, and
// starts a `UThread`, which under `run(workers:)` may start and move on any worker, as any
// thread does; the group is `Sendable` and its few fields (the children, the first error, the
// cancelled flag) are held bare or under a lock by the binding rule of every sync object
// (SyncState.swift), since children on other workers report their errors into it. `spawnLocal`
// keeps the other form: a child that shares non-`Sendable` state with the caller (a captured
// `var`), a `UThread.local` that runs on the caller's worker and never moves.
//
// Who is pinned, and for how long (the rule for local threads; `UThread.local`'s doc points
// here). A local thread shares state with its spawner, so the two must never run at once:
// while it lives, the spawner must stay on its worker too. A free-standing `UThread.local` may
// outlive anything that could unpin its spawner, so it asks the user to pin the spawner
// (`UThread.pin()`, for good) and otherwise fails its thread with that advice; it never pins
// the spawner behind its back, and a spawner held only by a group's scope counts as not
// pinned. A group knows when its local children end (its scope waits for them), so
// `spawnLocal` pins the caller of `withThreadGroup` itself: at its first `spawnLocal`, not
// before (a scope that only uses `spawn` leaves its caller free to move), until the scope
// ends. Scopes nest and a group may be handed into an inner scope, so the pin is counted per
// thread (a thread-local count of the scopes that hold it) and the caller becomes migratable
// again when the last of them ends, unless it was pinned for good meanwhile (`UThread.pin()`
// clears the scope's flag too). Only the scope's own caller is pinned so: a `spawn` child that
// calls `spawnLocal` is refused as a movable `UThread.local` spawner would be.
//
// The scope ends when the waiter's last look finds every recorded child joined; that look
// marks the group ended in the same access to its state, and a spawn checks the mark and
// records its child in one access too (the child is made inside it: a spawn never parks). So a
// group that escaped its scope (stored, captured by a thread that outlives it) throws
// `UThreadError.closed` on `spawn`: a child spawned then would be joined by nobody.
//
// Spawns come only from user threads of the group's runtime. The group records its runtime
// (`Scheduler.runtimeSerial`, one number for all the workers of an M:N runtime) and a spawn
// compares it with the caller's before it touches anything: a kernel thread outside every
// runtime (a pthread, a `blocking {}` body) gets `invalidArgument` (no user thread to spawn
// from), a user thread of another runtime `.foreignRuntime`, whatever the two runtimes' worker
// counts; the group and both runtimes are then as before the call. The state's binding alone
// does not do it: it refuses a thread of another runtime only for a group of an M:1 runtime,
// while a group made on M:N workers is shared (under its lock), so another runtime's thread
// would spawn its child in its own runtime and record it, and the group's waiter could not
// join it. `cancelAll()`, which does not wait, may come from any kernel thread, by the rule of
// every sync object (Sync/SyncSupport.swift).
//
// Waiting for all is joining each child in turn (uncancellably once the waiter was cancelled):
// the waiter is a joiner like any other (Waiter.swift across workers), the thread table shows
// which child it waits for, and a child whose thread could not be started (its join throws
// that error) fails the group like a child that threw.
//
// The limit (`timeout:`, `deadline:`; the earlier wins, counted from the call on the runtime's
// clock, as every wait's) bounds that wait: when it passes while a child still runs, the group
// fails with `UThreadError.timedOut` as if a child had thrown it (the first error wins, so a
// child's earlier error stays the one thrown) and cancels its children, and the waiter goes on
// waiting for them without a limit: the scope never returns while a child runs, so a child
// that ignores cancellation holds it past the limit. The body is the caller's own code and is
// not interrupted; a limit that passed while it ran is found at the first wait for a child
// (children all finished by then: no wait, no error, as a wait group at zero).
//
// Rejected designs:
//   * Returning child results through the group (TaskGroup's `next()`): children communicate
//     through channels or captured state; the group's job is lifetime, errors and cancellation.
//   * Detaching on scope exit: the whole point is that nothing escapes the scope.
//   * Pinning the caller for the whole scope (what this had): a group that never spawned a
//     local child kept its caller from moving; and a `UThread.local` inside a scope made the
//     scope's pin permanent, so the spawner stayed pinned for good without having asked.
//   * A per-thread count of live local children that unpins the spawner when a free-standing
//     local thread ends: the count would have to be kept in the spawner's row or object after
//     the spawner itself may have finished, from the exit path of every local thread.
//   * A limit (`timeout:`/`deadline:`) that leaves the children running when it passes, as
//     `join(timeout:)` does: the scope would have to return with children alive.
//   * Children as worker-local threads always (the first group): with several workers every
//     group's work stayed on its caller's worker.
//   * A live-child counter and one parked group waiter: a child whose start failed on another
//     worker never runs the code that counts it out, so the waiter would wait forever.
//   * A spawn into an ended group that runs the child anyway (what this had): an orphan nobody
//     joins, whose error nobody sees; or that stops the process: the caller can handle a throw.
//   * A spawn from another runtime's thread that starts the child in the group's runtime (as
//     `UThreadRuntime.Handle.spawn` does from outside): a group of an M:1 runtime is bare, so
//     the spawn would be posted and could not say now whether the scope had ended (`.closed`);
//     and a thread of another runtime has no place in a scope that its runtime does not run.
//     Work for the group's runtime is handed to its threads (a channel) or to `Handle.spawn`.
import CUThreads

/// The handle `withThreadGroup` passes to its body. `Sendable`: children on any worker may
/// spawn more children or cancel the group.
public final class UThreadGroup: @unchecked Sendable {
    /// The name given to `withThreadGroup` ("" if none).
    public let name: String
    let id: UInt64
    /// The runtime whose threads may spawn into the group (`Scheduler.runtimeSerial`).
    let runtime: UInt
    /// Bare or locked (SyncState.swift); guards every field below.
    let sync = SyncState()
    @exclusivity(unchecked) private var children: [UThread<Void>] = []
    @exclusivity(unchecked) private var error: (any Error)?
    /// Set by `cancelAll`, readable from any kernel thread (`isCancelled`): 1 when cancelled,
    /// a `Relaxed` word.
    private let cancelled = Relaxed(0)
    /// Children recorded and whose body has not returned (nor whose start failed): kept beside
    /// `children` so that `running` from another kernel thread never walks the array.
    private let live = Relaxed(0)
    /// Set when `waitForAll` found every child finished: the scope is over, spawns throw.
    @exclusivity(unchecked) private var ended = false
    /// The thread that called `withThreadGroup` (its row, its own wherever it runs), which a
    /// `spawnLocal` of its own pins until the scope ends (the essay's "Who is pinned").
    private let owner: ControlBlock
    /// Whether this scope holds a pin of `owner` (counted in `scopePins`). Only `owner`
    /// touches it, on its own thread.
    @exclusivity(unchecked) private var pinsOwner = false

    init(name: String, runtime: UInt, owner: ControlBlock) {
        self.name = name
        self.id = SyncObjectID.allocate()
        self.runtime = runtime
        self.owner = owner
    }

    /// Starts a child thread that may run on any worker. It runs until its body returns or
    /// throws; a throw cancels the siblings. If the thread cannot be created, the group fails
    /// with that error. The body is `sending`, as `UThread.init`'s: it may capture values only
    /// the child will use; state shared with the caller goes through `Sendable` types, or the
    /// child is a `spawnLocal`. (A noncopyable local of an enclosing closure, such as an
    /// `Atomic` or a `Mutex`, is captured by reference, which a `sending` body may not do:
    /// keep it in a `Sendable` class.)
    /// - Throws: `UThreadError.closed` once the scope has ended (`withThreadGroup` returned or
    ///   is returning: a group that escaped it takes no more children);
    ///   `UThreadError.invalidArgument` when not called on a user thread; `.foreignRuntime` from
    ///   a thread of another runtime than the group's.
    public func spawn(name: String = "", _ body: sending @escaping () throws -> Void) throws {
        // Made between `admit` and `adopt`, not in a closure: the region checker cannot follow
        // a `sending` value into a closure that is not itself sent.
        let locked = try admit("UThreadGroup.spawn")
        adopt(UThread(name: name) { [self] in run(body) }, locked)
    }

    /// Starts a child that may share non-`Sendable` state with the caller (a captured `var`):
    /// a `UThread.local`, which runs on the caller's worker and never moves. With several
    /// workers, the caller of `withThreadGroup` stays on its worker from its first
    /// `spawnLocal` until the scope ends, and may move again after it (unless it was pinned
    /// for good meanwhile). Otherwise as `spawn`. Called from a child that may move, the child
    /// fails with `UThread.local`'s error.
    /// - Throws: as `spawn`.
    public func spawnLocal(name: String = "", _ body: @escaping () throws -> Void) throws {
        let locked = try admit("UThreadGroup.spawnLocal")
        pinOwnerForTheScope()
        var failure: (any Error)?
        let object = spawnLocalThread(
            name: name, priority: 0, stackSize: nil, withinScope: true,
            witness: ThreadObject.witness(for: Void.self), witnessType: ObjectIdentifier(Void.self),
            failure: &failure)
        if let failure { object.fail(failure, as: Void.self) } else { object.install { [self] in run(body) } }
        adopt(UThread(object: object), locked)
    }

    /// At a `spawnLocal` of the scope's caller under several workers, keeps the caller on its
    /// worker until the scope ends (`unpinOwner`), once per scope; a caller pinned for good
    /// stays so, and any other spawner is left as it is (`spawnLocalThread` refuses a movable
    /// one). Inside the spawn's access, after `admit` found the scope not ended: `owner` is
    /// then alive, and a thread whose row is `owner` is the caller itself.
    private func pinOwnerForTheScope() {
        guard !pinsOwner, let s = Scheduler.active, s.workerIndex >= 0, s.current == owner else { return }
        if owner.has(.flagMigratable) {
            owner.clear(.flagMigratable)
            owner.set(.flagScopePinned)
        }
        guard owner.has(.flagScopePinned) else { return }  // pinned for good: nothing to undo
        pinsOwner = true
        scopePins.value += 1
    }

    /// At the end of the scope, on the caller: gives back this scope's pin, and makes the
    /// caller migratable again when no other scope holds one and it was not pinned for good
    /// meanwhile (`UThread.pin()` clears the scope flag).
    fileprivate func unpinOwner() {
        guard pinsOwner else { return }
        pinsOwner = false
        let left = scopePins.value - 1
        if left > 0 {
            scopePins.value = left
            return
        }
        scopePins.reset()
        if owner.has(.flagScopePinned) {
            owner.clear(.flagScopePinned)
            owner.set(.flagMigratable)
        }
    }

    /// A child's body: its error fails the group.
    private func run(_ body: () throws -> Void) {
        do { try body() } catch { fail(error) }
        sync.locked { live.store(live.load() - 1) }
    }

    /// A spawn is one access to the group's state: `admit` begins it, the caller makes the
    /// child, `adopt` records it and ends the access. So the end of the scope (`waitForAll`'s
    /// last look, in the same kind of access) comes either before the spawn, which then
    /// throws, or after the child is recorded and joined: never a child nobody joins.
    /// Returns `enter`'s answer for `adopt`; throws with the access ended (or never begun).
    private func admit(_ api: StaticString) throws -> Bool {
        guard let s = Scheduler.active, s.onUserThread else { throw Scheduler.outsideUserThread(api) }
        guard s.runtimeSerial == runtime else { throw UThreadError.foreignRuntime }
        let locked = try sync.enter()
        if ended {
            sync.leave(locked)
            throw UThreadError.closed(
                "\(label) has ended: \(api) after withThreadGroup returned (spawn children inside its body or in its children)"
            )
        }
        return locked
    }

    /// Records `child`, made since `admit`, and ends the access; cancels the child at once
    /// when the group is cancelled. (Nothing between the two parks: a spawn never does.)
    private func adopt(_ child: UThread<Void>, _ locked: Bool) {
        children.append(child)
        live.store(live.load() + 1)
        let cancelNow = cancelled.load() != 0
        sync.leave(locked)
        if cancelNow { child.cancel() }
    }

    var label: String { syncLabel("thread group", name: name, id: id) }

    /// Cancels every running child (and children spawned later). Any kernel thread may call it
    /// (a pthread, a thread of another runtime): a group of an M:1 runtime is cancelled by a
    /// post to that runtime, applied on its kernel thread at its next safe point (the rule of
    /// every sync object: Sync/SyncSupport.swift, "Bare or locked").
    public func cancelAll() {
        guard let locked = sync.enter(orPost: { [self] in cancelAll() }) else { return }
        cancelled.store(1)
        let running = children
        sync.leave(locked)
        // Every child, finished or not: `cancel()` is safe from any kernel thread and does
        // nothing to a finished thread, but `isFinished` of a child that runs on another worker
        // (a `spawnLocal` child, bound to the scope's worker, while a child on this one failed)
        // is that worker's to read.
        for c in running { c.cancel() }
    }

    /// Whether the group was cancelled: by `cancelAll()`, by a child's error, or because the
    /// waiting thread was cancelled. Children spawned afterwards start cancelled.
    /// From any kernel thread.
    public var isCancelled: Bool { cancelled.load() != 0 }

    /// Children still running. From another kernel thread than the group's runtime: the
    /// children whose body has not returned yet (a snapshot kept beside the list, which only
    /// the runtime may walk).
    public var running: Int {
        sync.read {
            children.count(where: { !$0.isFinished })
        } elsewhere: {
            live.load()
        }
    }

    /// The first error of a child (or of a child's start), if any.
    var firstError: (any Error)? { sync.locked { error } }

    private func fail(_ error: any Error) {
        sync.locked { if self.error == nil { self.error = error } }
        cancelAll()
    }

    /// Waits until every child has finished; cancels them if the waiter is cancelled, or when
    /// `deadline` (scheduler clock) passes first, which also fails the group with `.timedOut`;
    /// either way it then waits for them without a limit (the essay).
    func waitForAll(deadline: UInt64?) throws {
        var cancellable = true
        var deadline = deadline
        var next = 0
        // The last look ends the scope in the same access: a spawn after it throws (`admit`).
        while let child = sync.locked({ () -> UThread<Void>? in
            if next < children.count { return children[next] }
            ended = true
            return nil
        }) {
            do {
                try child.handle.waitForEnd(deadline: deadline, cancellable: cancellable)
            } catch is CancellationError {
                cancelAll()
                cancellable = false
                continue
            } catch UThreadError.timedOut {
                fail(UThreadError.timedOut)  // first error wins; cancels every child
                deadline = nil
                continue
            }
            // The body's errors were caught in `run`: a failure here is a failed start.
            if case .failure(let error) = child.object.result(Void.self) {
                sync.locked { live.store(live.load() - 1) }  // its body never ran
                fail(error)
            }
            next += 1
        }
        sync.locked { children.removeAll() }
    }
}

/// A thread's count of the thread-group scopes that keep it on its worker (the essay's "Who is
/// pinned"): more than one when scopes nest.
private let scopePins = ThreadLocal<Int>(default: 0)

/// Runs `body` with a thread group, then waits for every thread spawned in it. If a child
/// throws, its siblings are cancelled and the first error is rethrown after all finished.
///
/// ```swift
/// try withThreadGroup(timeout: .seconds(5)) { group in
///     for url in urls { try group.spawn { try fetch(url) } }
/// }   // every fetch has finished here
/// ```
/// Children of `spawn` are ordinary threads (any worker); children of `spawnLocal` run on the
/// caller's worker and may share its non-`Sendable` state, so with several workers the caller
/// stays on its worker from its first `spawnLocal` until the scope ends, and may move again
/// after it (unless it was pinned for good meanwhile: `UThread.pin()`).
///
/// The limit, `timeout` or `deadline` (the earlier wins; nil: none), counts from the call and
/// bounds the wait for the children after `body` returns: when it passes with a child still
/// running, every child is cancelled, the scope waits until all have finished (it never
/// returns while a child runs), then throws `UThreadError.timedOut`. A timeout of zero or
/// less, or a deadline that has passed, is already due: the scope then waits only for
/// children that have finished. `body` itself is not interrupted.
/// - Throws: the body's error, else the first child error (or `UThreadError.timedOut` if the
///   limit passed first); `CancellationError` if the caller was cancelled (after its children
///   finished); `UThreadError.invalidArgument` when called outside a user thread.
public func withThreadGroup<R>(
    name: String = "", timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil,
    _ body: (UThreadGroup) throws -> R
) throws -> R {
    let s = try Scheduler.requireOrThrow("withThreadGroup")
    guard s.onUserThread else { throw Scheduler.outsideUserThread("withThreadGroup") }
    let limit = syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
    // `me`, not `s` after `body`: the caller's row is its own wherever it runs.
    let me = s.current
    let group = UThreadGroup(name: name, runtime: s.runtimeSerial, owner: me)
    defer { group.unpinOwner() }  // after every child has finished
    let result: R
    do {
        result = try body(group)
    } catch {
        group.cancelAll()
        try group.waitForAll(deadline: nil)
        throw error
    }
    try group.waitForAll(deadline: limit)
    if let error = group.firstError { throw error }
    if me.has(.flagCancelled) && group.isCancelled { throw CancellationError() }
    return result
}
