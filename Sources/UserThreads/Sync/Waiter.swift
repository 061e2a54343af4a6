// Layer 8: a parked thread as an object's waiter list sees it, and the one parking protocol
// every primitive uses, on one worker or across workers.
//
// Design essay: waiters and the parking protocol
// ==============================================
//
// A thread that must wait for an object publishes a `Waiter` in the object's list: the
// scheduler it parks on, its row, and a token unique to this wait. It then parks on its own
// scheduler. A waker changes the object's state and removes the waiter from the list (handing
// it the resource first: FIFO handoff, SyncSupport.swift), then wakes it with `syncWake(_:_:)`:
//   * on the waiter's own scheduler (the waker runs on the same kernel thread): directly, after
//     checking that the scheduler still owns the row and that the row's token still matches —
//     the M:1 wake, a queue move;
//   * on another M:N worker: through that worker's mailbox (`WorkerHooks.postWake`), applied
//     by the owner on its own kernel thread after the sleeper's context was saved, so a remote
//     wake never meets a half-switched thread;
//   * on an M:1 runtime, from another kernel thread (a `blocking {}` body, a pthread): through
//     the runtime's inbox of foreign posts (Scheduler/ForeignCancels.swift, which also carries
//     cancels), applied at its next safe point or idle pass. Such a wake can only come for an
//     object shared between kernel threads (SyncState.swift decides which are).
// A token (`uthreads_tcb.mn_token`) is unique per scheduler (M:N workers put their index + 1
// in its high 16 bits, so it is unique in the runtime and says "a worker's" without touching
// the scheduler); a wake whose token no longer matches (the waiter gave up, waits for
// something else now, or finished and its row was reused) is dropped, so a late wake can never
// hit the wrong wait.
//
// Parking (`Scheduler.parkWaiter`): take a token, run `register` (which takes the object's
// lock if it has one, and either takes what it waits for and returns false, or publishes the
// waiter and returns true), then park — never holding the object's lock across the park. A
// wait that ends otherwise (timeout, cancellation, deadlock teardown) withdraws its waiter
// (`syncWait`'s `withdraw`, under the object's lock). If it is no longer there, a waker
// already dequeued it and handed it what it waited for (a lock, a permit, a signal, a barrier
// release): that wake is in flight and will be dropped by its token, so the waiter takes the
// outcome itself — *the wake wins*, the call returns as if woken. Nothing is lost and nothing
// has to be undone or passed on.
//
// What only N > 1 needs sits behind `WorkerHooks` (the scheduler's `worker`, nil under M:1):
// every 64 parks the worker may shed ready threads to idle workers (after `register`, never
// under an object's lock), and before the switch it
// starts one of its queued threads when nothing else is ready (`refillBeforePark`, MN/
// MNWorker.swift); the park is an audited resume site (row flag MOVABLE), so after it only
// the row is used, never a scheduler captured before it. Under M:1 each hook is one load and
// a predicted branch. The hooks are called only when they have work (the 64th park; nothing
// else ready, or a timed policy): a ping-pong pair on one worker parks with its partner
// ready, and reading the worker existential costs a retain and a release per park.
//
// Rejected designs:
//   * A waiter that carries its runtime object and worker index (the M:N runtime's first
//     waiter): the sync layer would name the layer above it, and an M:1 runtime could not be
//     a waiter's home. The scheduler is the home; the hooks reach the worker.
//   * Passing a wake on when its waiter gave up: it needs per-primitive undo logic, and it
//     turns a grant into a spurious wake-up of someone else.
//   * The scheduler's intrusive wait queues for cross-worker waiters: a row's queue links may
//     only be touched by its own kernel thread, and the scheduler unlinks a timed-out waiter
//     itself, which a list under another object's lock cannot allow.
import CUThreads

/// A parked (or about to park) thread in an object's waiter list: where it parks, which row,
/// which wait. Any kernel thread may wake it (`syncWake(_:_:)`); a waiter is only in a list while
/// its runtime runs. `@unchecked Sendable`: another kernel thread uses `scheduler` only as an
/// address, or to reach an M:N worker's mailbox (`syncWake`); the scheduler itself is touched
/// only on its own kernel thread.
@usableFromInline
struct Waiter: @unchecked Sendable, Equatable {
    /// The scheduler (M:1 runtime or M:N worker) the thread parked on.
    unowned(unsafe) let scheduler: Scheduler
    /// The thread's row (`ControlBlock` as an integer: the value crosses kernel threads).
    let block: UInt
    /// Unique to this wait (see the essay).
    let token: UInt64

    /// Whether the waiter parks on an M:N worker (from the token: no scheduler field is read).
    var onWorker: Bool { token >> 48 != 0 }

    /// The first wait token of worker `index`'s scheduler (its index + 1 in the high 16 bits).
    static func firstToken(ofWorker index: Int) -> UInt64 { UInt64(index + 1) << 48 }

    /// The index of the M:N worker a wait token was handed out by; -1 for an M:1 runtime's.
    static func worker(ofToken token: UInt64) -> Int { Int(truncatingIfNeeded: token >> 48) - 1 }

    @usableFromInline
    static func == (a: Waiter, b: Waiter) -> Bool {
        a.token == b.token && a.block == b.block && a.scheduler === b.scheduler
    }
}

extension Scheduler {
    /// Parks the running thread as a waiter (the protocol in the essay). `register` publishes
    /// the waiter and returns true, or returns false when there is no need to wait. Returns nil
    /// when it did not park, else the waiter and the wake result. Only the row is used after
    /// the park: under M:N the thread may resume on another worker.
    /// `cancellable: false` only for waits that must not end early (a condition's mutex
    /// reacquisition, a table request).
    @inline(__always)
    func parkWaiter(
        _ kind: WaitReason.Kind, object: UInt64, target: WaitTarget? = nil, deadline: UInt64?,
        cancellable: Bool = true, _ register: (Waiter) throws -> Bool
    ) rethrows -> (Waiter, WakeResult)? {
        let me = current
        nextWaitToken &+= 1
        let waiter = Waiter(scheduler: self, block: UInt(bitPattern: me), token: nextWaitToken)
        me.pointee.mn_token = waiter.token
        let wait: Bool
        do { wait = try register(waiter) } catch {
            me.pointee.mn_token = 0
            throw error
        }
        guard wait else {
            me.pointee.mn_token = 0
            return nil
        }
        // The worker is reached only when it has something to do (`workerOpaque`: no retain),
        // after `register` (which may have been entered with the object's lock held: a
        // channel's poll and registration are one critical section, Channel.swift).
        if workerOpaque != nil {
            parksUntilShed &-= 1
            if parksUntilShed <= 0 {
                parksUntilShed = 64
                worker?.registeredWaiter(self)
            }
            if timed || !hasReadyThreads { worker?.willPark(self) }
        }
        // An audited resume site: after the park only `me` is used (never `self`).
        me.set(.flagMovable)
        let result = park(kind, object: object, target: target, deadline: deadline, cancellable: cancellable)
        me.clear(.flagMovable)
        me.pointee.mn_token = 0
        return (waiter, result)
    }
}

extension Scheduler {
    /// Whether row `t` is parked on this scheduler in the wait that took `token`: owned here
    /// (checked first: only an owned row's fields may be read) and still blocked with that
    /// token. Call on this scheduler's kernel thread. Then nothing but this kernel thread can
    /// end the wait until it yields (a timer or a cancel is applied here): the local claim of a
    /// channel node (ChannelWaiter.swift). O(1) for the first chunk's rows.
    @inline(__always)
    func isBlocked(_ t: ControlBlock, inWait token: UInt64) -> Bool {
        table.owns(t) && t.pointee.mn_token == token && t.pointee.state == .stateBlocked
    }
}

/// Parks the calling user thread on an object's waiter list (the protocol in the essay), on
/// whatever runtime it runs: M:1 or any worker of an M:N runtime.
///
/// `register` takes the object's lock (if it has one) and either takes what it waits for and
/// returns false (no park), or publishes the waiter and returns true. When the wait ends
/// otherwise than by a wake, `withdraw` removes the waiter (under the object's lock) and
/// returns nil, or returns the result of the wake in flight when the waiter was already
/// dequeued (the wake wins).
///
/// - Returns: nil when it did not park; else `.woken`, `.closed`, or the timeout, cancellation
///   or deadlock result that ended it.
/// - Throws: whatever `register` throws; `UThreadError.invalidArgument` outside a user thread.
@usableFromInline
func syncWait(
    _ api: StaticString, _ kind: WaitReason.Kind, object: UInt64, target: WaitTarget?,
    deadline: UInt64?, cancellable: Bool = true,
    register: (Waiter) throws -> Bool, withdraw: (Waiter) -> WakeResult?
) throws -> WakeResult? {
    guard let s = Scheduler.active, s.onUserThread else { throw syncOutsideUserThread(api) }
    guard
        let (waiter, result) = try s.parkWaiter(
            kind, object: object, target: target, deadline: deadline, cancellable: cancellable, register)
    else { return nil }
    if result == .woken || result == .closed { return result }
    return withdraw(waiter) ?? result
}

/// The error of a wait called where no user thread runs (a pthread, the idle loop, a deinit on
/// the offload pool).
@inline(never)
func syncOutsideUserThread(_ api: StaticString) -> UThreadError {
    Scheduler.outsideUserThread(api)
}

/// Wakes `waiter` with `result`, from any kernel thread (after the object's lock is released):
/// directly on its own scheduler, else through its worker's mailbox or its M:1 runtime's inbox
/// (the essay).
@usableFromInline
func syncWake(_ waiter: Waiter, _ result: WakeResult = .woken) {
    let home = Unmanaged.passUnretained(waiter.scheduler)
    if uthreads_get_runtime() == home.toOpaque() {
        // Unretained: the caller's own scheduler (a retain and release cost ~40 instructions).
        home._withUnsafeGuaranteedRef { $0.wakeWaiting(block: waiter.block, token: waiter.token, result) }
    } else if waiter.onWorker {
        // A worker's scheduler lives as long as its runtime, and so do waiters in lists.
        waiter.scheduler.worker?.postWake(block: waiter.block, token: waiter.token, result)
    } else {
        // An M:1 runtime may have ended: found by address in the live table, never dereferenced.
        ForeignCancels.postWake(block: waiter.block, token: waiter.token, result, to: home.toOpaque())
    }
}

/// `syncWake` by a user thread of `s` that has not parked since it took the waiter from the
/// object (so `s` is still its scheduler): a waiter of `s` is woken in line, without reading
/// the current scheduler from TLS (the common case of a pair on one worker: ~35 instructions
/// fewer per wake); any other goes through `syncWake(_:_:)`.
@inline(__always)
func syncWake(_ waiter: Waiter, from s: Scheduler, _ result: WakeResult = .woken) {
    if waiter.scheduler === s {
        s.wakeWaiting(block: waiter.block, token: waiter.token, result)
    } else {
        syncWake(waiter, result)
    }
}

/// Wakes several waiters (after the object's lock is released).
@inline(__always)
func syncWake(_ waiters: some Sequence<Waiter>, _ result: WakeResult = .woken) {
    for waiter in waiters { syncWake(waiter, result) }
}
