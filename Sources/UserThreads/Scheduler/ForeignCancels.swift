// Layer 6: the inbox of a runtime of one worker — what other kernel threads (a pthread, a Swift
// task, the offload pool) ask of it: `cancel()` of one of its threads, the wake of a thread's
// wait on an object shared between kernel threads (Sync/Waiter.swift), a call that reads what
// only the runtime may read (its statistics), a thread to start (`UThreadRuntime.Handle.spawn`),
// an operation of a sync object bound to it that does not wait (a signal, a broadcast, a
// destroy, a group's `cancelAll`, a wait group's wake at zero: Sync/SyncState.swift, found by
// the runtime's serial), and the bell that ends its idle sleep.
//
// An M:1 scheduler has no lock: only its own kernel thread may touch it. So another kernel
// thread never cancels; it *posts* the thread's object to the runtime's inbox and wakes the
// runtime, which applies the cancel itself at its next safe point — `maintenance` (every 64th
// yield, when threads keep running) or its idle loop, before it sleeps. The thread then wakes
// at its wait with CancellationError, as if a user thread of its own runtime had cancelled it.
// A wake is posted the same way (row and wait token) and applied by `Scheduler.wakeWaiting`,
// which drops it when the row's wait has another token by then; so is a call (its statistics,
// whose caller waits for the answer; the start of a thread spawned from outside, whose caller
// does not wait). A call the runtime never applies (it ended first) is run with no scheduler
// when the inbox closes, so that its caller learns it at once (a statistics call answers
// nothing, a spawned thread finishes with an error) instead of waiting for a timeout.
//
// Finding the inbox. A handle may outlive its runtime, and the object's `runtime` field is
// then a dangling address (possibly reused by a later runtime). The canceller therefore never
// dereferences it: it looks the address up in a process-wide table of live M:1 runtimes
// (under a lock), which `UThreadRuntime.run` fills when it starts and empties before the
// scheduler is freed. A missing entry means the runtime has ended and the thread is gone: the
// cancel does nothing. A later runtime at the same address receives the post and drops it,
// because it applies a cancel only to an object whose row it owns (`ControlBlockTable.contains`,
// the row pointing back to the object). The canceller reads only `runtime`, written once at
// spawn before the handle could be handed over, so nothing it reads races with the runtime.
//
// Waking: the idle sleep of a runtime of one worker is always interruptible by a bell. The
// inbox carries a 32-bit generation word (futex.c). The poster appends under the lock, then
// bumps the word and futex-wakes it; it also rings the reactor's eventfd if the runtime has one
// (`bell`, set by the reactor when it is made), since the idle loop then sleeps in epoll_wait.
// The idle loop reads the word, applies what was posted, and sleeps (instead of nanosleep) only
// while the word is unchanged, so a post between its look and its sleep ends the sleep at once.
// The same word is the runtime's dump bell (dump_signal.c: the signal handler, on whichever
// kernel thread the kernel chose, bumps and wakes it), and the control socket's thread rings it
// after posting a request (`ring()`): a dump or a control request is answered at once by an
// idle runtime, as by a worker of several, instead of at its next timer. So the kernel still
// sees one thread: no bell descriptor until the reactor exists, no helper kernel thread, and no
// periodic wake-up. The cost to a runtime nobody reaches from outside: one allocation, one
// table insert and removal and one bell slot per `run`, no system call; one load and compare
// per `maintenance` (never on the switch or spawn path).
//
// The deadlock check ignores outside kernel threads, as Go's does: when every thread waits
// with no timer, no I/O and nothing posted, the runtime reports a deadlock even if a pthread
// still holds a handle and might cancel later (a runtime cannot know whether it will; waiting
// for it would turn every real deadlock in such a program into a hang).
//
// Rejected designs:
//   * Stopping the process (what this replaced): Go and Java let any thread interrupt another.
//   * A lock in the scheduler: every switch would pay for what almost no program does.
//   * A strong reference from each thread object to its runtime's inbox: a retain and a store
//     on every spawn, the hottest path there is.
//   * An inbox made lazily on the first foreign cancel: publishing it to the runtime's thread
//     needs the same lock and table, and the idle loop still needs a wakeable sleep.
//   * A pthread condition variable for the idle sleep: it does not return on a signal, so the
//     dump signal would wait for the next timer.
import CUThreads

final class ForeignCancels: @unchecked Sendable {
    /// What another kernel thread asks of the runtime.
    fileprivate enum Post {
        case cancel(ThreadObject)
        case wake(block: UInt, token: UInt64, WakeResult)
        /// Run on the runtime's kernel thread, or with nil when the runtime ended first.
        case call(@Sendable (Scheduler?) -> Void)
    }

    private struct State {
        var open = true
        var posted: [Post] = []
        var bell: (@Sendable () -> Void)?
    }

    private let state = KernelLock(State())
    /// The generation word (futex.c); bumped after every post.
    private let word: UnsafeMutablePointer<UInt32>
    /// The generation the runtime last applied (read and written on its kernel thread only).
    private var applied: UInt32 = 0
    /// The dump handler's slot for `word` (dump_signal.c), or -1.
    private var dumpBellSlot: Int32 = -1

    /// Live M:1 runtimes: their scheduler addresses, serials (`Scheduler.serial`, what a sync
    /// object bound to one records) and inboxes (a few: one per kernel thread running one). An
    /// array, not a dictionary: its first use then needs no runtime lookup of the key's Hashable
    /// conformance (~200,000 instructions of start-up, measured).
    private static let live = KernelLock<[(runtime: UnsafeMutableRawPointer, serial: UInt, inbox: ForeignCancels)]>([])

    private init() {
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
    }

    deinit { word.deallocate() }

    // MARK: The runtime's side

    /// Makes `runtime`'s inbox and lists it as live with the scheduler's `serial` (when an M:1
    /// `run` starts); `dumpBell`: its word is also rung by the dump signal's handler
    /// (dump_signal.c).
    static func open(for runtime: UnsafeMutableRawPointer, serial: UInt, dumpBell: Bool) -> ForeignCancels {
        let inbox = ForeignCancels()
        if dumpBell { inbox.dumpBellSlot = uthreads_dump_bell_add_futex(inbox.word) }
        live.withLock { $0.append((runtime, serial, inbox)) }
        return inbox
    }

    /// Unlists `runtime` (before its scheduler is freed); later posts do nothing. Calls posted
    /// and never applied run with no scheduler (their callers learn that the runtime ended).
    func close(for runtime: UnsafeMutableRawPointer) {
        ForeignCancels.live.withLock { $0.removeAll { $0.runtime == runtime && $0.inbox === self } }
        uthreads_dump_bell_remove(dumpBellSlot)  // before `word` can be freed
        dumpBellSlot = -1
        let dropped = state.withLock { s in
            s.open = false
            s.bell = nil
            defer { s.posted = [] }
            return s.posted
        }
        for case .call(let body) in dropped { body(nil) }
    }

    /// Sets what else wakes the idle runtime (its reactor's eventfd), or nil.
    func setBell(_ bell: (@Sendable () -> Void)?) {
        state.withLock { $0.bell = bell }
    }

    /// Whether something was posted since the last `take()`. One load.
    @inline(__always) var hasPosts: Bool { uthreads_futex_load(word) != applied }

    /// The posts since the last call.
    fileprivate func take() -> [Post] {
        applied = uthreads_futex_load(word)
        return state.withLock { s in
            let taken = s.posted
            s.posted = []
            return taken
        }
    }

    /// Sleeps for at most `nanoseconds` unless something was posted since the last `take()`;
    /// a post, a signal or the timeout ends it.
    func sleep(nanoseconds: UInt64) {
        guard nanoseconds > 0 else { return }
        _ = uthreads_futex_wait(word, applied, nanoseconds)
    }

    // MARK: Any kernel thread's side

    /// Posts a cancel of `object` to the M:1 runtime at `runtime`, if it is still live; wakes
    /// it. Returns false when that runtime has ended (the thread is gone).
    @discardableResult
    static func post(_ object: ThreadObject, to runtime: UnsafeMutableRawPointer) -> Bool {
        guard let inbox = live.withLock({ $0.first { $0.runtime == runtime }?.inbox }) else { return false }
        return inbox.post(.cancel(object))
    }

    /// Posts the wake of row `block`'s wait `token` to the M:1 runtime at `runtime`, if it is
    /// still live; wakes it. Returns false when that runtime has ended.
    @discardableResult
    static func postWake(block: UInt, token: UInt64, _ result: WakeResult, to runtime: UnsafeMutableRawPointer)
        -> Bool
    {
        guard let inbox = live.withLock({ $0.first { $0.runtime == runtime }?.inbox }) else { return false }
        return inbox.post(.wake(block: block, token: token, result))
    }

    /// Runs `body` on the kernel thread of the live M:1 runtime whose scheduler has `serial`,
    /// at its next safe point, without waiting for it (an operation of a sync object bound to
    /// that runtime, called from another kernel thread: Sync/SyncState.swift). Returns false,
    /// and never runs `body`, when no live runtime has that serial (it has ended); `body`
    /// runs with nil when the runtime ends before it applied the post.
    @discardableResult
    static func send(toSerial serial: UInt, _ body: @escaping @Sendable (Scheduler?) -> Void) -> Bool {
        guard let inbox = live.withLock({ $0.first { $0.serial == serial }?.inbox }) else { return false }
        return inbox.post(.call(body))
    }

    /// Runs `body` on the runtime's kernel thread at its next safe point and waits for its
    /// value, up to `timeoutNanoseconds` (blocking the calling kernel thread); nil when the
    /// runtime has ended or did not answer in time. For figures only the runtime may read
    /// (`UThreadRuntime.Handle.statistics` from another kernel thread).
    func call<R: Sendable>(timeoutNanoseconds: UInt64, _ body: @escaping @Sendable (Scheduler) -> R) -> R? {
        let answer = CallAnswer<R>()
        guard
            post(
                .call { s in
                    let value = s.map(body)
                    answer.value.withLock { $0 = (true, value) }
                    uthreads_futex_bump_and_wake(answer.word)
                })
        else { return nil }
        let deadline = uthreads_monotonic_ns() &+ timeoutNanoseconds
        while true {
            let seen = uthreads_futex_load(answer.word)
            if let (answered, value) = answer.value.withLock({ $0 }), answered { return value }
            let now = uthreads_monotonic_ns()
            guard now < deadline else { return nil }
            _ = uthreads_futex_wait(answer.word, seen, deadline - now)
        }
    }

    /// Runs `body` on the runtime's kernel thread at its next safe point, without waiting for
    /// it; `body(nil)` instead, on the calling kernel thread or when the inbox closes, when the
    /// runtime has ended. (`UThreadRuntime.Handle.spawn` from another kernel thread.)
    func send(_ body: @escaping @Sendable (Scheduler?) -> Void) {
        if !post(.call(body)) { body(nil) }
    }

    /// Ends the runtime's idle sleep now without posting anything (a control-socket request
    /// is waiting: SnapshotChannel.swift). Any kernel thread.
    func ring() {
        guard let bell = state.withLock({ s in s.open ? .some(s.bell) : nil }) else { return }
        uthreads_futex_bump_and_wake(word)
        bell?()
    }

    private func post(_ post: Post) -> Bool {
        let bell: (@Sendable () -> Void)?? = state.withLock { s in
            guard s.open else { return .none }
            s.posted.append(post)
            return .some(s.bell)
        }
        guard case .some(let ring) = bell else { return false }
        uthreads_futex_bump_and_wake(word)
        ring?()
        return true
    }
}

/// The value of a posted call (nil inside when the runtime ended first) and the futex word its
/// caller waits on (`ForeignCancels.call`).
private final class CallAnswer<R: Sendable>: @unchecked Sendable {
    let value = KernelLock<(answered: Bool, value: R?)?>(nil)
    let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    init() { word.initialize(to: 0) }
    deinit { word.deallocate() }
}

extension Scheduler {
    /// Applies the cancels and wakes other kernel threads posted (ForeignCancels.swift).
    @inline(never)
    func applyForeignCancels(_ inbox: ForeignCancels) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        for post in inbox.take() {
            switch post {
            case .wake(let block, let token, let result): wakeWaiting(block: block, token: token, result)
            case .cancel(let object): applyForeignCancel(object, me)
            case .call(let body): body(self)
            }
        }
    }

    private func applyForeignCancel(_ object: ThreadObject, _ me: UnsafeMutableRawPointer) {
        if object.runtime == me && !object.isFinished {
            guard let t = object.controlBlock else {
                object.isCancelled = true
                return
            }
            // A row of this table that still belongs to this object (not a thread of an earlier
            // runtime that lived at the same address).
            guard table.contains(t), t.pointee.state != .stateFinished,
                t.pointee.object == Unmanaged.passUnretained(object).toOpaque()
            else { return }
            cancel(t)
        }
    }
}
