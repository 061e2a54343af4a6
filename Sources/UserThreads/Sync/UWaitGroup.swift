// Layer 8: wait groups — wait until a count of tasks reaches zero (Go's sync.WaitGroup).
//
// Design essay: a counter and a queue. add(n) raises the counter, done() lowers it; when it
// reaches zero every waiter wakes. A negative counter is a thrown error (a done() too many).
// Waiting when the counter is zero returns at once. Waiters hold nothing, so a timeout or
// cancellation needs no cleanup; a waiter that times out while a zero is being announced
// returns normally (the wake wins: Waiter.swift).
//
// add and done from anywhere. Go's `Done` and Java's `countDown` may be called from any thread,
// and so may these: from a `blocking {}` body, a pthread or a thread of another runtime, on a
// group bound to an M:1 runtime too (whose state only that runtime touches: SyncSupport.swift,
// "Bare or locked"). So the counter is not part of the bare state: it is an atomic word that
// every caller changes with a compare-and-swap, which checks the bounds first. The caller
// elsewhere gets what a caller on the runtime gets: the count has changed when `add` returns
// (so a pthread's `add` that happens before a `wait`, Go's rule, is seen by that wait, and
// `pending` says so at once), and misuse (below zero, overflow) throws `invalidArgument` to
// the caller that made it, with the count unchanged. Only the waiters stay the owner's (bare,
// or under the lock): when a caller elsewhere brings the count to zero, the wake is posted to
// the group's runtime (`SyncState.enter(orPost:)`, its inbox: at once when it idles, else at
// its next safe point), which wakes the waiters if the count is still zero then; dropped when
// the runtime has ended (nobody waits). As for every call from outside, the runtime's deadlock
// check does not wait for one: when all its threads wait with no deadline, it reports a
// deadlock even if a pthread would call `done` later (Scheduler/ForeignCancels.swift). A
// waiter can tell only if an `add` raises the count again before the post is applied, which
// Go's rule for reuse forbids (new adds after every wait has returned): it then waits on for
// the next zero (or its deadline), and never returns while tasks are pending. On the
// runtime's own thread the price is a locked compare-and-swap instead of a plain store, in a
// path made cheaper at the same time (an add that finds no waiter leaves the list alone):
// docs/BENCHMARKS.md, "Wait groups from anywhere".
//
// Rejected designs:
//   * Posting add and done themselves to the bound runtime (as a semaphore's signal is): the
//     count would change only at the runtime's next safe point, so a wait could miss a
//     pthread's add that happened before it, `pending` would lag, and a done too many would
//     be found where nobody can be told (the caller has returned).
//   * Refusing them (`.foreignRuntime`, what this had): a `blocking {}` body or a pthread
//     finishing a task is what a wait group is for.
//   * A zero-crossing count in the counter's word, so that a posted wake wakes exactly the
//     waiters that came before its zero: a 32-bit count (Go's), for a case Go's rule forbids.
import CUThreads
import Synchronization

/// Waits for a collection of user threads (or any tasks) to finish, on one worker or across
/// workers (Go's sync.WaitGroup).
public final class UWaitGroup: WaitTarget, CustomStringConvertible, @unchecked Sendable {
    /// The name given at creation ("" if none): shown in wait reasons, deadlock reports and
    /// `description`; an unnamed wait group is shown by `id`.
    public let name: String
    /// Process-wide object id (the wait reason's object).
    public let id: UInt64
    /// Bare or locked (SyncState.swift); guards `waiters`.
    let sync = SyncState()
    /// Pending tasks: changed by a compare-and-swap from any kernel thread, read by any
    /// (`pending`); not guarded by `sync` (the essay).
    private let counter = Atomic<Int>(0)
    @exclusivity(unchecked) private var waiters = FIFO<Waiter>()

    /// A wait group with no pending tasks.
    ///
    /// - Parameter name: shown in wait reasons and deadlock reports ("" for none).
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Adds `n` pending tasks (n may be negative; the count must stay >= 0); at zero every
    /// waiter is woken, on whatever worker. From any kernel thread (the essay). O(waiters).
    /// - Throws: `UThreadError.invalidArgument` when the count would go negative or overflow.
    public func add(_ n: Int = 1) throws {
        guard let locked = try? sync.enter() else {
            // Bound to another runtime: the count changes here, the waiters are woken there.
            if try change(by: n) == 0 && n != 0 { wakeAtZero() }
            return
        }
        let sum: Int
        do { sum = try change(by: n) } catch {
            sync.leave(locked)
            throw error
        }
        let all = sum == 0 && !waiters.isEmpty ? waiters.popAll() : []
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        syncWake(all)
    }

    /// Adds `n` to the count (a compare-and-swap: any kernel thread may, the essay) unless it
    /// would go negative or overflow. Returns the new count.
    @inline(__always)
    private func change(by n: Int) throws(UThreadError) -> Int {
        var old = counter.load(ordering: .relaxed)
        while true {
            let (sum, overflow) = old.addingReportingOverflow(n)
            if overflow || sum < 0 { throw outOfRange(n, pending: old) }
            let (exchanged, now) = counter.weakCompareExchange(
                expected: old, desired: sum, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if exchanged { return sum }
            old = now
        }
    }

    @inline(never)
    private func outOfRange(_ n: Int, pending: Int) -> UThreadError {
        let what = n < 0 ? "go negative" : "overflow"
        return .invalidArgument("UWaitGroup.add(\(n)): \(label) would \(what) (\(pending) pending)")
    }

    /// Wakes every waiter if no task is pending: on the group's runtime, posted there from
    /// another kernel thread when the group is bound to it (the essay).
    private func wakeAtZero() {
        guard let locked = sync.enter(orPost: { [self] in wakeAtZero() }) else { return }
        let all = counter.load(ordering: .acquiring) == 0 && !waiters.isEmpty ? waiters.popAll() : []
        if syncChecking() { checkInvariants() }
        sync.leave(locked)
        syncWake(all)
    }

    /// Marks one task done.
    /// - Throws: `UThreadError.invalidArgument` when no task is pending.
    public func done() throws { try add(-1) }

    /// Waits until no task is pending.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`.
    public func wait(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let result = try syncWait(
            "UWaitGroup.wait", .waitGroup, object: id, target: self,
            deadline: syncDeadline(timeout: timeout, deadline: deadline),
            register: { waiter in
                try sync.with { () -> Bool in
                    defer { if syncChecking() { checkInvariants() } }
                    if counter.load(ordering: .acquiring) == 0 { return false }
                    waiters.push(waiter)
                    return true
                }
            },
            withdraw: { waiter in
                sync.locked {
                    defer { if syncChecking() { checkInvariants() } }
                    return waiters.remove { $0 == waiter } ? nil : .woken
                }
            })
        try result?.check()  // woken: the count reached zero (even if it has risen again since)
    }

    /// Tasks added and not yet done (a snapshot, from any kernel thread); `wait` returns once
    /// it is 0. Never negative.
    public var pending: Int { counter.load(ordering: .relaxed) }

    var label: String { syncLabel("wait group", name: name, id: id) }

    /// "wait group 'jobs' (3 pending)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String { "\(label) (\(pending) pending)" }

    /// `UWaitGroup(wait group 'jobs', 3 pending)`.
    public var description: String { "UWaitGroup(\(label), \(pending) pending)" }

    // MARK: Invariants

    /// The group's invariants (SyncSupport.swift, "Invariants"). Inside `sync`. O(1). "No
    /// waiter at zero" holds for a shared group, whose every change is made under its lock; a
    /// bound group's count may reach zero elsewhere, its wake posted (the essay).
    @inline(never)
    func checkInvariants() {
        let count = counter.load(ordering: .acquiring)
        syncInvariant(count >= 0, label, "pending >= 0")
        syncInvariant(!sync.isSharedNow || count > 0 || waiters.isEmpty, label, "shared: pending == 0 ⇒ no waiters")
    }
}
