// Layer 8: structured concurrency — a scope that owns the threads spawned in it.
//
// Design essay
// ============
//
// `withThreadGroup { group in group.spawn { … } }` runs the body, then waits until every
// child has finished before it returns: no child outlives the scope, so a child may use the
// caller's stack-allocated state safely (that is what makes it "structured"). When a child
// throws, the group records the first error, cancels every sibling (they wake from any wait
// with CancellationError) and, once all have finished, rethrows that first error. If the body
// itself throws, the children are cancelled and awaited the same way and the body's error
// wins. If the *waiting* thread is cancelled, it cancels the children and keeps waiting for
// them (uncancellably): the scope never returns with a child still running, so it never leaks
// a thread.
//
// Children are ThreadObjects spawned directly on the scheduler (not UThread handles): the
// group is their only joiner, and a live-child counter plus one parked waiter replace N joins.
//
// Rejected designs:
//   * Returning child results through the group (TaskGroup's `next()`): children communicate
//     through channels or captured state; the group's job is lifetime, errors and cancellation.
//   * Detaching on scope exit: the whole point is that nothing escapes the scope.
import CUThreads

/// The handle `withThreadGroup` passes to its body.
public final class UThreadGroup: WaitQueue, WaitTarget {
    /// The name given to `withThreadGroup` ("" if none): shown in the wait reason of the thread
    /// waiting for the children.
    public let name: String
    let id: UInt64
    @exclusivity(unchecked) private var children: [ThreadObject] = []
    @exclusivity(unchecked) private(set) var live = 0
    @exclusivity(unchecked) private(set) var firstError: (any Error)?
    /// Whether the group was cancelled: by `cancelAll()`, by a child's error, or because the
    /// waiting thread was cancelled. Children spawned afterwards start cancelled.
    @exclusivity(unchecked) private(set) public var isCancelled = false
    private unowned let scheduler: Scheduler

    init(name: String, scheduler: Scheduler) {
        self.name = name
        self.id = SyncObjectID.allocate()
        self.scheduler = scheduler
        super.init()
    }

    /// Starts a child thread. It runs until its body returns or throws; a throw cancels the
    /// siblings. If the thread cannot be created, the group fails with that error.
    public func spawn(name: String = "", _ body: @escaping () throws -> Void) {
        let child = ThreadObject.make(name: name) { [unowned self] in
            do { try body() } catch { self.childFailed(error) }
            self.childFinished()
        }
        do {
            scheduler.current.clear(.flagMigratable)  // parent and child share one kernel thread
            _ = try scheduler.spawn(child, priority: 0, stackSize: nil)
        } catch {
            child.fail(error, as: Void.self)
            childFailed(error)
            return
        }
        live += 1
        children.append(child)
        if isCancelled, let t = child.controlBlock { scheduler.cancel(t) }
    }

    /// Cancels every running child (and children spawned later).
    public func cancelAll() {
        isCancelled = true
        for c in children where !c.isFinished {
            if let t = c.controlBlock { scheduler.cancel(t) }
        }
    }

    /// Children still running.
    public var running: Int { live }

    private func childFailed(_ error: any Error) {
        if firstError == nil { firstError = error }
        cancelAll()
    }

    private func childFinished() {
        live -= 1
        if live == 0 { scheduler.wakeAll(self, .woken) }
    }

    /// Waits until every child has finished; cancels them if the waiter is cancelled.
    func waitForAll() throws {
        var cancellable = true
        while live > 0 {
            enqueue(scheduler.current)
            let r = scheduler.park(.join, object: id, target: self, cancellable: cancellable)
            switch r {
            case .woken, .timedOut: continue
            case .cancelled:
                cancelAll()
                cancellable = false
            case .closed, .deadlocked:
                cancelAll()
                try r.check()
            }
        }
        children.removeAll()
    }

    var label: String { name.isEmpty ? "thread group \(id)" : "thread group '\(name)'" }

    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(live) running)" }

    public var holders: [ThreadID] {
        children.compactMap { $0.isFinished ? nil : $0.id }
    }
}

/// Runs `body` with a thread group, then waits for every thread spawned in it. If a child
/// throws, its siblings are cancelled and the first error is rethrown after all finished.
///
/// ```swift
/// try withThreadGroup { group in
///     for url in urls { group.spawn { try fetch(url) } }
/// }   // every fetch has finished here
/// ```
/// The children run on the caller's worker and may share its non-`Sendable` state, so with
/// several workers the caller stays on its worker while the scope lasts and may move again
/// after it (unless it was pinned for good meanwhile: `UThread.pin()`, a `UThread.local`
/// spawn).
/// - Throws: the body's error, else the first child error; `CancellationError` if the caller
///   was cancelled (after its children finished).
public func withThreadGroup<R>(name: String = "", _ body: (UThreadGroup) throws -> R) throws -> R {
    let s = Scheduler.require("withThreadGroup")
    guard s.onUserThread else { Scheduler.misuse("withThreadGroup") }
    // The group keeps `s`, and its children share state with the caller: the caller stays on
    // this kernel thread while the scope lasts (on several workers it would otherwise be free to
    // migrate at a yield or a wait inside `body`), and may move again once every child has
    // finished — unless it was pinned for good meanwhile (`UThread.pin()` and a
    // `UThread.local` spawn clear the scope flag too). Nothing under workers: 1.
    let scoped = s.workerIndex >= 0 && s.current.has(.flagMigratable)
    if scoped {
        s.current.clear(.flagMigratable)
        s.current.set(.flagScopePinned)
    }
    defer {
        if scoped && s.current.has(.flagScopePinned) {
            s.current.clear(.flagScopePinned)
            s.current.set(.flagMigratable)
        }
    }
    let group = UThreadGroup(name: name, scheduler: s)
    let result: R
    do {
        result = try body(group)
    } catch {
        group.cancelAll()
        try group.waitForAll()
        throw error
    }
    try group.waitForAll()
    if let error = group.firstError { throw error }
    if s.current.has(.flagCancelled) && group.isCancelled { throw CancellationError() }
    return result
}
