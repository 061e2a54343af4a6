// Layer 10: one M:N worker — a kernel thread running an M:1 scheduler.
//
// Design essay: the worker
// =========================
//
// MNRuntime.swift has the shape (a coordinator over N workers, each an M:1 scheduler with its
// own reactor) and what workers share; this essay is about what one worker does: stealing
// queued threads, shedding and adopting started ones (migration), sleeping, and deadlock.
//
// Spawn and join, cheaply. An M:N thread costs at most one allocation (its object: job, result
// and join state at once; none when the spawner's worker reuses one that finished there:
// KeptThreadObjects.swift), no new row or stack when the starting worker kept a finished
// thread's row whole (Scheduler.swift's "Thread objects"), no lock to queue it
// (MNSpawnQueue.swift) and no lock unless someone must wait for it (MNThreadObject.swift). The
// spawn looks the calling worker up once (`MNThreadObject.forSpawn`) and holds the object
// unmanaged until its handle takes it (no retain and release around the install and the push),
// with the queue slot's reference taken at once with the handle's (a reused object's uniqueness
// test adds it inline, no atomic retain: KeptThreadObjects.swift), a spawn rings only a worker that sleeps without a deadline for its next look
// (`MNRuntime.ringableSleepers`), the queue slot's reference to the object becomes its row's
// when it starts, and a finishing thread is counted on the worker its object names
// (`placeWorker`), with no look-up. The paths are built so that two workers do not write the
// same cache line per thread:
//   * Locality first (Go's runnext, in effect). A worker's own new threads run on it while it
//     keeps up: a thread about to park on a cross-worker wait with nothing else ready starts
//     its worker's queued threads first (`refillBeforePark`: one, or a batch, below), so a
//     spawn-then-join runs the child with one switch, not through the idle loop; thieves leave a queue alone
//     while its owner works on it. The refill runs before the park's MOVABLE window opens
//     and uses the worker only before the switch, so the park stays an audited resume site
//     (Migration, below).
//   * "Behind" means: the queue is not empty, and its owner has neither pushed to it nor taken
//     from it for `stealAfterNanoseconds` (50 µs), as the thief sees on its own clock
//     (the queue's `activity`, its head plus its tail: nothing more for the owner to write, and
//     no clock read on the owner's path; the queue itself: MNSpawnQueue.swift).
//     So a worker that spawns a burst and then joins it keeps its threads, and a worker held
//     by a long thread (CPU-bound, no safe point, or in a system call) loses its queued ones
//     within 50 µs — the fork–join case, and the monitor for threads that have
//     not started (started ones move by migration, below). Measured: when
//     thieves took the threads of a spawning worker (the previous rule: "has not *taken* for
//     5 µs"), two workers ran empty spawn+join at 0.45–0.6× of one, because every stolen
//     thread moves its object, closure and join state between CPUs (~1 µs of cache misses and
//     cross-arena frees), more than the thread's own work. Trade-off: one thread that spawns
//     continuously keeps its queue to itself until it pauses (a single acceptor spawning an
//     M:N thread per connection under steady load); per-worker acceptors (`uthreads serve`)
//     or `UThread.spawn(onWorker:)` spread such work explicitly. Why 50 µs and not 5: on
//     this shared VM a spawning worker often pauses for more than 5 µs (a page fault, a
//     preemption), and each such pause let a thief take a batch of short threads: 13–25 k of
//     200 k stolen and 0.53× at 5 µs, 0–350 stolen and 0.91–1.01× at 50 µs (same load, same
//     binary); 50 µs is nothing next to a thread worth moving.
//   * Refill in batches. A joiner that waits for each of a burst of short threads in turn
//     parked once per thread when the refill started one at a time (a park, a wake and two
//     switches per thread, where M:1, whose spawn makes the thread ready at once, parks once
//     per burst). The refill therefore starts a batch, doubling (up to `stealMax`) while the
//     previous batch's threads averaged under 2 µs each (the time to the next refill, one
//     clock read per refill), and back to one thread otherwise: started threads are no longer
//     on the queue thieves take from, so long threads (a fork–join) are started one at a time
//     and the rest stay stealable. Cost: up to 31 started short threads wait behind one that
//     turns out long, until a safe point sheds them.
//   * Thieves take the oldest half, as the owner does (Go's runqsteal): the owner pushes
//     without a lock, so only the head is shared by takers. (Taking the newest from the tail
//     would let the owner keep the ones it joins first, but needs a compare-and-swap on every
//     push.) Stealing is rare for short threads anyway (the 50 µs rule).
//   * A worker sleeping with a steal timer (it saw a queue whose owner is still working on it)
//     is not rung for further spawns: it looks again within a millisecond anyway. Ringing it
//     per spawn cost an eventfd write every few spawns. A batch of migrants does ring it
//     (rare, and only an idle worker should take it).
//   * Idle workers spin briefly (at most half of them) polling their own lines often and
//     other workers' counts about once a microsecond; hot per-worker atomics sit on their own
//     cache lines (padding), and other workers are reached through an unretained table (a
//     retain of a shared object is an atomic write to a line every worker uses). The spin's
//     length follows what ended the worker's recent sleeps: a worker woken by I/O readiness
//     rather than by other workers stops spinning (MNIdleSpin.swift).
//   * A thread may finish on another worker than the one that spawned it (stealing,
//     migration): the spawn is counted where it happened, the end where it happened, and only
//     the sum (`liveCount`) means anything, so migration needs no transfer of counts.
//   * Orderings: the counters that pair with the sleep announcement (queue counts, mail
//     counts, finished counts, migrant batches, `mainDone`, `sleeping`) use sequentially
//     consistent RMWs and loads (the store→load pattern needs it); counters read only as
//     hints (the queue's `activity`, `startedCount`, `stolen`, the spin checks) are relaxed;
//     `spawnedThreads` is a release store by its only writer (read, acquire, after every
//     `finishedThreads`).
//
// Migration. Stealing moves queued, never-started threads. A *started* M:N
// thread may also resume on another worker: when a worker has ready threads waiting behind the
// running one while another worker is idle, it gives some up. The rules that keep it safe:
//   * Who may move: M:N threads spawned unpinned (row flag MIGRATABLE). Pinning clears the flag
//     for good: `UThread(pinned:)`, `spawn(onWorker:)`, `UThread.pin()`; `UThread.local`
//     threads never have it, and need a spawner that has lost it (parent and children share
//     non-Sendable state and M:1 primitives, so they must stay on one kernel thread; the parent
//     pins itself explicitly, never silently). Waiting for a descriptor does not pin: the
//     registration follows the thread (Reactor.swift, "Threads that waited on a descriptor
//     move"), so connection threads of one acceptor spread like any others.
//   * When: only a *ready* thread moves (its context is saved and it is on the run queue: no
//     half-switched thread can be resumed elsewhere, so Go's gopark/unlockf dance is not
//     needed), and only one that is suspended at a site audited for resuming elsewhere:
//     `UThread.sleep` and every wait of a sync primitive (`Scheduler.parkWaiter`, Sync/Waiter.swift:
//     the mutex, channels, `channelSelect`, …; UThread.join) set flag MOVABLE around their park; `UThread.yield()` and a
//     thread that never ran are recognised by their empty wait kind (every park sets one and
//     clears it only when the thread runs again), so the M:1 yield path pays nothing. A
//     time-slice preemption (policies other than FIFO) is audited when it happens in
//     `UThread.checkpoint()` (nothing uses the scheduler after it), not when it happens in
//     the runtime's own safe points (`simulateWork`): those mark the thread UNAUDITED while it
//     is ready. Other suspensions (M:1 primitives, I/O, `blocking {}`) keep the thread where
//     it is; they may capture their worker's scheduler or reactor across the park, the
//     audited sites do not (`Scheduler.mayMove` is the test).
//   * Who decides: the busy worker itself, at its safe points (every 64 yields in
//     `maintenance`, every 64 cross-worker parks, and every 4096 `UThread.checkpoint()` calls
//     of a thread that runs long without yielding, or at its time slices' checks): when some
//     worker sleeps or spins, its policy gives up ready migratable threads, the ones it would
//     run last (the front runs next here, with warm caches), enough for an even split with the
//     idle workers, and the worker publishes them as one batch in `migrants` (object, row and
//     policy state: the object is the thread's migration record, MNThreadObject.swift); an idle
//     worker adopts the whole batch. One batch in flight at a time, and adopters are busy
//     afterwards, so nothing flows back unless a worker runs dry again: no ping-pong.
//   * Policies. The policy's per-thread state travels with the thread, and the policy protocol
//     says how (`SchedulingPolicy.emigrate` / `immigrate`): the giving policy removes the
//     threads it would run last from its own queues (FIFO, round-robin, lottery: the back of
//     the queue; priority: lowest effective priority; MLFQ: lowest level; stride, fair share:
//     largest pass or virtual runtime; EDF: latest deadline) and returns each with a Sendable
//     snapshot of what the row does not hold; the receiving policy (another instance of the
//     same type: `run(workers:policy:)` makes one per worker) queues it, rebasing anything
//     relative to its own clock: a CFS virtual runtime or a stride pass travels as the lead
//     over the old queue's minimum or global pass and lands at the same lead over the new one
//     (Linux's `vruntime -= min_vruntime` on migration), a priority thread keeps its age, an
//     MLFQ thread its level and used allotment. Priority, nice, tickets and the EDF deadline
//     (absolute, on the monotonic clock every worker shares) are in the row. The protocol's
//     defaults keep a user-written policy correct without any code: it gives nothing up (the
//     scheduler cannot reach into its private queues), and it receives a thread as woken
//     (every policy must accept those). Rejected: the scheduler removing threads itself
//     through a generic "remove this thread" call (it would have to pick the victims without
//     knowing the order), and a fixed two-word state (CFS needs a signed lag, MLFQ two fields,
//     a user's policy may need more).
//   * Rows stay put: code on the thread's stack holds its control block's address across every
//     switch (Scheduler.park, MNWorker.park, sync code), so the row is never copied. Ownership
//     moves instead (ControlBlockTable): the home table marks it abroad and stops listing and
//     counting it; the adopter lists it as an immigrant (snapshots, cancelAll, deadlock
//     teardown and the table's live count all see it there), and updates `tcb.runtime`,
//     `tcb.worker` and the object's `placeWorker` (atomic, so that cancel finds it:
//     MNThreadObject.swift). An immigrant
//     that finishes sends its row and stack home (`.reclaim` mail): dense stacks are slots of
//     the home pool's slabs. A worker's loop does not end while rows of its are abroad.
//   * Mail that names a row checks ownership first (`table.owns`, which reads no field another
//     kernel thread may write): a wake or cancel for a thread that moved away is dropped. A
//     cancel that raced with the move is not lost: it set `cancelRequested` (in the object's
//     flags word) before it read the place, and the adopter reads that flag after it updated
//     the place. Wait tokens carry the worker
//     index in their high bits, so they are unique in the runtime.
//   * `self` after a switch. A migrated thread resumes in the middle of the code that
//     suspended it, whose `self` is the *old* worker's Scheduler. The switch therefore returns
//     the scheduler that resumed the thread (the switcher passes itself in the third argument
//     register and the assembly returns it: Context/ContextSwitch.swift), and the post-switch
//     bookkeeping (reaping the previous thread, restoring exclusivity) runs on that one. Above
//     the switch, the audited sites use only the control block after a park; MN primitives
//     re-read `MNWorker.current()` on each loop round.
//   * The compiler hazard. Swift and LLVM may keep a thread-local's address (or a value read
//     through it) in a register across a call, since nothing in the language lets a call
//     change the calling kernel thread. After a migration it has. Hence: every read of "the
//     current scheduler/thread" goes through out-of-line C accessors (`uthreads_get_runtime`,
//     `uthreads_get_current`), never an inlined TLS access, and nothing keeps such a read
//     across a suspension. The one inlined TLS access, the checkpoint countdown, is a hint (an
//     early or late slow path re-reads everything). errno is TLS too: see below.
//   * What travels with the thread: the Swift exclusivity access set (saved in the row at every
//     switch-out and restored at switch-in, on whatever kernel thread: ContextSwitch.swift);
//     errno (an M:N worker saves it in the thread's object at switch-out and restores it at
//     switch-in, in the switch hooks, so M:1 FIFO pays nothing; not in the row, which stays at
//     256 bytes: a bigger row is zeroed by a memset call at every spawn); `UThreadLocal`
//     values (in the thread's object, not in TLS); the checkpoint countdown is the worker's (a
//     hint). ThreadSanitizer builds announce every switch as a fiber switch, and a fiber may be
//     resumed by any thread.
//   * Limits. A thread that never reaches a safe point (no yield, park, sleep or checkpoint)
//     cannot be preempted (no signal preemption: Scheduler.swift says why), so the ready
//     threads queued behind it wait; its worker's not-started threads are still stolen (the
//     staleness test in `steal`). A thread in `blocking {}` parks, so its worker runs the
//     others meanwhile.
//
// Wakes: a woken thread goes where it runs soonest; a pair stays together. A wake across workers is mail to the
// sleeper's worker (a parked thread belongs to its worker: only it may touch the row). Two threads ping-ponging from
// two workers would pay a cross-CPU message, and a doorbell whenever the other worker had gone to sleep, per handoff,
// and each message wakes a worker that then waits again. Go answers with `runnext`: the waker's P takes the woken
// goroutine and runs it next, so a pair ends on one P. Here the mail names the waker's worker (`wakeNear`, only from a
// user thread: an idle loop's wake, such as a table request's answer, has no partner), and the sleeper's worker,
// applying it, hands the woken thread to that worker (`pull`: woken here, taken back from the policy with its state,
// sent as `.adopt` mail) when the thread may move (migratable, parked at an audited site: MOVABLE), threads of that
// worker woke it twice in a row (a partner; a child waking its joiner once as it ends moves nobody), and the waker's
// worker is idle (`idleNow`: set at the start of an idle pass, cleared when a thread is ready again). That is the
// common case of a request/response: the waker parked right after waking, to wait for the answer, so the thread runs
// there at once, and from then on the two wake each other locally (no mail, no doorbell, shared caches). When the
// waker's worker is busy, the thread stays: it would wait there, and the idle check is what keeps a producer from
// pulling its consumers onto its own CPU. Keeping the pair together then needs one more rule: shedding at a park
// (`shed(parking: true)`) does not count the parking thread among those that want the worker, so the partner it just
// woke is not sent away while it waits. Measured (docs/BENCHMARKS.md, "a woken thread goes to its waker's idle
// worker"): an unpinned pair on 2 workers went from 94 % mailed wakes and 65 % doorbells per handoff to none. Rejected:
// the waker taking the woken thread itself (a parked row may be touched only by its owner, and the owner may be
// resuming it); a request "send it to me" posted when the waker parks (the owner has run the thread by then); pulling
// regardless of the waker's worker's state (Go's choice, with its spinning Ms stealing runnext back; here shedding is
// periodic, and a producer would hold its consumers on its own CPU for up to 64 parks); the Sendable wait token naming
// the waker (a wait may be woken by anyone: the mail is the place).
//
// Policies at spawn. A policy other than FIFO orders its ready threads (priority, deadline, tickets, virtual
// runtime), so it must see every new thread of its worker at once: a queue of not-started threads taken one at a time
// would start a low-priority thread spawned first before a high-priority one spawned next. Under such a policy a spawn
// from a worker therefore starts the thread at once, on the spawner's worker (Go's local run queue, with the policy as
// the queue), with the spawn's parameters (`UThread(priority:)`, `UThread(scheduling:)`, kept in the thread's object
// until a worker starts it; an EDF deadline counts from the spawn). Such threads reach idle workers by migration, not by
// stealing: the parameters are in the row and the policy's own state travels through `emigrate`/`immigrate`
// (Migration, above), and a spawner that parks with ready threads behind it while another worker is idle sheds their
// share at that park (`willPark`: so a fork–join spreads at its first join). Trade-off: a worker held by a thread with
// no safe point keeps its not-yet-run threads (a FIFO worker would lose them to thieves after 50 µs); under FIFO, the
// queue and its staleness rule stay (FIFO's order is the queue's).
//
// A stalled worker (a thread that runs long): its queue's activity stops, so after 50 µs idle
// workers take its queued threads without any monitor — the queue lock is the only thing a
// thief needs. Its started ready threads move at the running thread's next safe point
// (checkpoint, yield, cross-worker park), when the idle workers' sleeping/spinning counters
// (the monitor) say someone has nothing to do; with no safe point at all they wait.
//
// Deadlock. A worker that would sleep with no timer, no I/O waiter and no offload in flight
// counts itself `stuck`; when every active worker is stuck, no queue holds a thread and no
// mailbox holds a message, and no worker left that state while it looked (MNStuckCensus.swift
// has the lock-free argument), no thread can ever run again. The report is written in two
// phases: every worker first writes its own thread table to stderr and the report, and adds
// its wait-for edges to the runtime's graph; the last one searches that graph once for cycles
// (so a cycle whose edges span workers is named: Scheduler/DeadlockReport.swift), and only
// then does every worker wake its parked threads with `.deadlocked` so they
// unwind (`deadlockUnwindEpoch`); `run` throws `UThreadError.deadlock`. Waking in the same pass
// let one worker's unwinding (a mutex released on the way out and handed to a waiter on
// another worker) change a table not yet written, so the report lost waits. (Kernel threads outside the runtime could in
// principle still spawn through a handle; like Go, they do not count.)
//
// Rejected designs:
//   * "A thread migrates only before it first runs" (this runtime's first version): simple,
//     but one worker could hold every started thread while the others idle.
//   * Moving any ready thread, whatever suspended it (Go): every park site would have to be
//     free of captured per-worker state, the M:1 primitives included, and the non-Sendable
//     state a thread shares with its local children would cross kernel threads.
//     Opt-in audited sites (MOVABLE) and sticky pinning keep that premise.
//   * Thieves taking ready threads from a busy worker's run queue (Go's runqsteal): the run
//     queue would need atomics or a lock on every M:1 switch. The owner sheds instead.
//   * Copying the row into the adopter's table: pointers to it live on the thread's stack.
//   * Re-reading the current scheduler through TLS after every switch instead of the
//     returned handoff: an extra out-of-line call on the M:1 switch path.
//   * Go's unconditional stealing (an idle P takes half of any non-empty run queue): right
//     for CPU-bound threads, 2× slower here for short ones (see "Spawn and join" above).
//   * A worker that polls to decide whether a victim is behind by reading the victim's clock
//     stamp (`lastTake`, the previous design): a clock read per take on the owner's path.
//   * A help-first join across workers (Cilk's and ForkJoinPool's tryUnpush: a joiner takes
//     its child back from its own queue while no thief has, starts it and runs it hosted,
//     Scheduler.swift's "Help-first join"; an unhosted joiner then waits in the child's waiter
//     list, so the child may still migrate): spawn+join in batches went from 1,364 to 1,631
//     instructions per thread (docs/BENCHMARKS.md). The refill already starts a joiner's queued
//     children in a batch and runs them with direct switches and no park per child, so hosting
//     saved little, while the take-back (the queue's takers lock) and the join's look-up of its
//     worker cost more. It would pay for a joiner that waits for each child alone.
import CUThreads
import Glibc
import SystemPackage
import Synchronization

/// One worker: a kernel thread running an M:1 scheduler, plus what other workers may touch.
/// Fields are grouped by who writes them, so that the lines other CPUs poll are not the ones
/// the owner writes on every spawn and exit.
final class MNWorker: WorkerHooks, @unchecked Sendable {
    let index: Int
    unowned(unsafe) let runtime: MNRuntime
    /// The same, for the hot paths: `rt { … }` reaches it without a retain (a retain is an
    /// atomic write to the runtime's header, a line every worker would share).
    let runtimeRef: Unmanaged<MNRuntime>
    /// Queued M:N threads of this worker (not started; any worker may take them; only this
    /// worker pushes: MNSpawnQueue.swift).
    let queue = MNSpawnQueue()
    /// The same, for the spawn path: reached without a retain (as `runtimeRef`).
    let queueRef: Unmanaged<MNSpawnQueue>
    let mailbox = KernelLock<[MNMail]>([])
    /// The eventfd in the worker's epoll set that other kernel threads write to wake it.
    let doorbell: Int32
    private static let doorbellToken = UInt64(Int.max)

    // Written by other kernel threads (posters, thieves, ringers); read by the owner.
    private let padding0: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    let mailCount = Atomic<Int>(0)
    /// Wakes posted to this mailbox, and doorbells rung on this worker (statistics: the share
    /// of cross-worker handoffs that cost a system call). On the posters' line already.
    let mailedWakes = Atomic<Int>(0)
    let doorbellRings = Atomic<Int>(0)
    /// Non-zero while the worker sleeps (or is about to): `MNWorker.asleep`, or
    /// `MNWorker.asleepDeferred` when it sleeps with a timeout because another worker's queue
    /// holds threads that their owner is still taking (it looks again then, so new threads do
    /// not ring it). Whoever flips it to 0 rings.
    let sleeping = Atomic<Int>(0)
    static let asleep = 1, asleepDeferred = 2

    // Written by the owner; read by idle workers.
    private let padding1: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Threads this worker spawned and threads that finished on it (`MNRuntime.liveCount`).
    let spawnedThreads = Atomic<Int>(0)
    let finishedThreads = Atomic<Int>(0)
    /// Threads this worker started (stolen ones included).
    let startedCount = Atomic<Int>(0)
    /// True from the start of an idle pass until a thread is ready again: a thread woken by one
    /// of this worker's threads may be handed here (`pull`). A hint, relaxed.
    let idleNow = Atomic<Bool>(false)
    /// Idle spins started (statistics; owner-only writer).
    let idleSpins = Atomic<Int>(0)
    private let padding2: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    // Touched only on the worker's own kernel thread (or before it starts / after it ended);
    // the ones on the spawn and park paths skip Swift's dynamic exclusivity check (never
    // accessed re-entrantly).
    private(set) var scheduler: Scheduler?
    private let reactor: Reactor
    var initial: MNThreadObject?
    private var shutdownHandled = false
    private var deadlockSeen = 0
    private var deadlockUnwound = 0
    private var spare: [MNMail] = []
    /// Per victim: its queue's `activity` last seen, and when (this worker's clock).
    private var seenActivity: [Int] = []
    private var seenAt: [UInt64] = []
    /// Threads taken in one steal or refill (kept: no allocation per steal).
    /// Each slot holds a taken thread's +1 until it is started (raw slots, not an array: an
    /// array's append, iteration and removal cost ~60 instructions and a retain per thread).
    private let takenBuffer = UnsafeMutablePointer<Unmanaged<MNThreadObject>>.allocate(
        capacity: max(1, MNRuntime.stealMax, MNRuntime.refillMax))
    /// Threads the last refill before a park started, and when (CLOCK_MONOTONIC ns).
    @exclusivity(unchecked) private var refillBatch = 1
    @exclusivity(unchecked) private var lastRefill: UInt64 = 0
    /// How long the next idle spin may take (MNIdleSpin.swift: it follows what woke the worker).
    @exclusivity(unchecked) private var spin = MNIdleSpin()
    /// A refilled thread that took less than this (on average over its batch, counted to the
    /// next refill) was short: the next batch doubles.
    static let quickThreadNanoseconds = UInt64(
        getenv("UTHREADS_REFILL_QUICK_NS").flatMap { Int(String(cString: $0)) } ?? 2_000)

    init(index: Int, runtime: MNRuntime, scheduler: Scheduler) throws(UThreadError) {
        self.index = index
        self.runtime = runtime
        self.runtimeRef = Unmanaged.passUnretained(runtime)
        self.queueRef = Unmanaged.passUnretained(queue)
        let fd = uthreads_eventfd_create()
        if fd < 0 { throw .system(call: "eventfd", errno: .lastError) }
        doorbell = fd
        do {
            reactor = try Reactor.of(scheduler)
        } catch {
            uthreads_sys_close(fd)
            throw error
        }
        if uthreads_epoll_ctl(reactor.epollFD, 1, fd, UInt32(UTHREADS_EV_IN), MNWorker.doorbellToken) < 0 {
            let e = Errno.lastError
            uthreads_sys_close(fd)
            throw .system(call: "epoll_ctl", errno: e)
        }
        reactor.join(runtime.descriptors, worker: index)
        self.scheduler = scheduler
        scheduler.workerIndex = Int32(index)
        // Wait tokens: the worker index + 1 in the high 16 bits (Sync/Waiter.swift), so a token
        // is unique in the runtime (a stale wake can never match a wait its thread began on
        // another worker) and says that its waiter parks on a worker.
        scheduler.nextWaitToken = Waiter.firstToken(ofWorker: index)
        scheduler.worker = self
        scheduler.workerOpaque = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        uthreads_sys_close(doorbell)
        takenBuffer.deallocate()
    }

    /// The eventfd the dump signal's handler rings to wake this worker (its reactor drains it
    /// on every event: a ring with no offload completed costs one empty pass).
    var dumpBell: Int32 { reactor.mailbox.eventFD }

    func detach() {
        scheduler?.worker = nil
        scheduler?.workerOpaque = nil
        scheduler = nil
    }

    /// Runs `body` with the runtime, without retaining it.
    @inline(__always)
    func rt<R>(_ body: (MNRuntime) throws -> R) rethrows -> R { try runtimeRef._withUnsafeGuaranteedRef(body) }

    /// The worker and scheduler of the calling kernel thread, if it is an M:N worker.
    @inline(__always)
    static func current() -> (worker: MNWorker, scheduler: Scheduler)? {
        guard let s = Scheduler.active, let w = s.worker else { return nil }
        return (unsafeDowncast(w, to: MNWorker.self), s)
    }

    /// Runs `body` with the worker and scheduler of the calling kernel thread, without
    /// retaining either (both outlive every thread that runs on them); nil when the calling
    /// kernel thread is not an M:N worker. `body` must not park: after a switch the thread may
    /// run on another worker. The spawn and exit paths use it (`current()` costs two retains
    /// and two releases).
    @inline(__always)
    static func withCurrent<R>(_ body: (MNWorker, Scheduler) throws -> R) rethrows -> R? {
        guard let p = uthreads_get_runtime() else { return nil }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { s -> R? in
            guard let w = s.workerOpaque else { return nil }
            return try Unmanaged<MNWorker>.fromOpaque(w)._withUnsafeGuaranteedRef { try body($0, s) }
        }
    }

    /// `current()`, or a clear stop for M:N API used elsewhere.
    static func require(_ api: StaticString) -> (worker: MNWorker, scheduler: Scheduler) {
        if let c = current(), c.scheduler.onUserThread { return c }
        let message =
            "UserThreads: \(api) must be called from an M:N thread (inside UThreadRuntime.run(workers:) { … })."
        uthreads_write_stderr("\n" + message + "\n")
        preconditionFailure(message)
    }

    /// `require`'s stop, for callers that found no M:N thread calling them.
    static func misuse(_ api: StaticString) -> Never {
        _ = require(api)
        preconditionFailure("UserThreads: \(api) must be called from an M:N thread")
    }

    /// The kernel thread's body.
    func main() {
        guard let s = scheduler else { return }
        if runtime.settings.installFaultHandler { _ = uthreads_install_fault_handler() }
        uthreads_set_runtime(Unmanaged.passUnretained(s).toOpaque())
        let registered = registerForDebuggers(s)
        defer { uthreads_registry_remove(registered) }
        // `UThread.checkpoint()` reaches the worker's maintenance now and then (FIFO;
        // other policies arm the countdown for their time slices).
        if !s.timed { uthreads_checkpoint_arm(Scheduler.checkpointBatch) }
        seenActivity = Array(repeating: 0, count: runtime.table.count)
        seenAt = Array(repeating: 0, count: runtime.table.count)
        if let object = initial {
            initial = nil
            start(object, s)
        }
        s.runLoop()
        runtime.activeWorkers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        // What a clean end leaves: nothing (tests read these through `runInspecting`).
        runtime.rowsLeft.wrappingAdd(s.table.liveCount + s.table.abroadCount, ordering: .relaxed)
        runtime.stacksLeft.wrappingAdd(s.stacks.inUse, ordering: .relaxed)
        s.shutdown()  // the reactor clears its bits in the descriptor registry
        answerClosesAfterShutdown()
        uthreads_set_runtime(nil)
        uthreads_set_current(nil)
        uthreads_checkpoint_arm(Int64.max / 2)
    }

    // MARK: Messages

    func post(_ mail: MNMail) {
        // The count is raised (seq-cst RMW) before `sleeping` is read in `ring`; a worker going
        // to sleep sets `sleeping` before it reads the count: one of them sees the other.
        mailbox.withLock { m in
            m.append(mail)
            mailCount.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }
        switch mail {
        case .wake, .wakeNear: mailedWakes.wrappingAdd(1, ordering: .relaxed)
        default: break
        }
        _ = ring()
    }

    /// Wakes the worker if it sleeps; true if this call rang it. A worker that runs or spins
    /// is never rung (no system call): it looks at its mailbox and the queues by itself. With
    /// `forQueuedThread`, a worker in a deferred sleep is not rung either: it already waits
    /// for a queue to go stale and looks again within a millisecond (ringing it for every
    /// spawn of a busy spawner made a system call per few spawns and halved spawn+join).
    @discardableResult
    func ring(forQueuedThread: Bool = false) -> Bool {
        let state = sleeping.load(ordering: .sequentiallyConsistent)
        guard state == MNWorker.asleep || (state == MNWorker.asleepDeferred && !forQueuedThread) else { return false }
        guard sleeping.compareExchange(expected: state, desired: 0, ordering: .sequentiallyConsistent).exchanged else {
            return false
        }
        _ = uthreads_eventfd_signal(doorbell)
        doorbellRings.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    /// Applies every message in the mailbox: all of them under one lock, with no allocation
    /// (two buffers swapped).
    private func drainMail(_ s: Scheduler) {
        var taken = spare
        spare = []
        mailbox.withLock { m in
            swap(&m, &taken)
            // Relaxed is enough: posters raise the count under the same lock.
            mailCount.wrappingSubtract(taken.count, ordering: .relaxed)
        }
        defer {
            taken.removeAll(keepingCapacity: true)
            spare = taken
        }
        for mail in taken {
            switch mail {
            case .wake(let block, let token, let result):
                s.wakeWaiting(block: block, token: token, result)
            case .wakeNear(let block, let token, let result, let waker):
                if !pull(block: block, token: token, result, toward: waker, s) {
                    s.wakeWaiting(block: block, token: token, result)
                }
            case .adopt(let migrant):
                adopt(migrant, s)
            case .cancel(let block, let id):
                // A thread that migrated away meanwhile is cancelled by its adopter (which sees
                // `cancelRequested` when it updates the thread's place).
                guard let t = ControlBlock(bitPattern: block), s.table.owns(t), t.pointee.id == id else { continue }
                let state = t.pointee.state
                if state != .stateFree && state != .stateFinished { s.cancel(t) }
            case .start(let object):
                start(object, s)
            case .snapshot(let request):
                request.answer(worker: index, s)
            case .reclaim(let block):
                s.reclaim(ControlBlock(bitPattern: block)!)
            case .closeDescriptor(let fd):
                answerClose(fd)
            }
        }
    }

    /// Mail: a deferred close of `fd` (Reactor/DescriptorRegistry.swift). Drops this worker's
    /// entry (its waiters throw `.closed`) and answers; the last answer closes `fd` and wakes
    /// the closer if it waits (it gets close(2)'s error). An error nobody waits for (a deinit's
    /// close) goes to stderr: this runs on the scheduler's path, where a log handler that does
    /// I/O or parks must not be called. The number cannot have been reused yet: this worker's
    /// entry, if any, is the closing file's.
    func answerClose(_ fd: Int32) {
        reactor.dropEntry(fd)
        if let error = runtime.descriptors.answer(fd, worker: index) {
            uthreads_write_stderr("uthreads: a deferred close of descriptor \(fd) failed: \(error)\n")
        }
    }

    /// After the worker's loop ended and its reactor left the registry: answers the deferred
    /// closes still in the mailbox (every request for a bit this worker had is there by now:
    /// requests are posted under the stripe lock, the bits were cleared under it). Other mail
    /// stays where it is, as before.
    private func answerClosesAfterShutdown() {
        let closes: [Int32] = mailbox.withLock { m in
            var fds: [Int32] = []
            m.removeAll { mail in
                guard case .closeDescriptor(let fd) = mail else { return false }
                fds.append(fd)
                return true
            }
            mailCount.wrappingSubtract(fds.count, ordering: .sequentiallyConsistent)
            return fds
        }
        for fd in closes { answerClose(fd) }
    }

    // MARK: Starting and stealing

    /// Creates the thread of `object` on this worker and makes it ready. When that fails (no
    /// stack), the thread ends at once with the error — or, with `retryLater` (a thread about to
    /// park is running: the failed thread's joiners might include it, and a wake cannot reach
    /// a thread that has not parked yet), the object goes to the own mailbox, and the idle
    /// loop tries again.
    func start(_ object: MNThreadObject, _ s: Scheduler, retryLater: Bool = false) {
        start(retained: Unmanaged.passRetained(object), s, retryLater: retryLater)
    }

    /// `start` of an object the caller holds +1 on (a queue slot's, or the spawn's:
    /// MNRuntime.spawnFromWorker): the row takes that +1 over, instead of a retain of its own
    /// and the slot's release (~40 instructions per queued thread); on failure it is released
    /// here.
    @inline(__always)
    func start(retained u: Unmanaged<MNThreadObject>, _ s: Scheduler, retryLater: Bool = false) {
        let consumed = u._withUnsafeGuaranteedRef { object -> Bool in
            do {
                // A row kept whole with its stack by a thread that finished here (the default
                // stack size; parameters are validated on the new-row path).
                let kept = object.stackSize == nil && !object.hasParameters ? s.takeKeptRow() : nil
                let t = try s.spawn(
                    object, priority: object.priority, stackSize: object.stackSize,
                    flags: object.pinned ? 0 : .flagMigratable,
                    parameters: object.hasParameters ? object.parametersAtStart() : nil,
                    presetID: object.id.rawValue, keptRow: kept, objectRetained: true)
                if !object.pinned { object.home = Int32(index) }
                startedCount.store(startedCount.load(ordering: .relaxed) &+ 1, ordering: .relaxed)  // owner-only writer
                let cancel = object.started(worker: index, block: UInt(bitPattern: t), id: t.pointee.id)
                if cancel || shutdownHandled { s.cancel(t) }
                return true
            } catch {
                if retryLater { post(.start(object)) } else { object.failBeforeStart(error) }
                return false
            }
        }
        if !consumed { u.release() }
    }

    enum Work { case took, none, deferred }

    /// Starts the first `n` threads of `takenBuffer` in order, each slot's +1 consumed.
    @inline(__always)
    private func startTaken(_ n: Int, _ s: Scheduler, retryLater: Bool) {
        for i in 0..<n { start(retained: takenBuffer[i], s, retryLater: retryLater) }
    }

    /// Starts one thread from the own queue, else from the injection queue. The counts are
    /// read first (no lock when both are empty, the common case of a busy worker).
    private func takeOwn(_ s: Scheduler, retryLater: Bool = false) -> Bool {
        if queueRef._withUnsafeGuaranteedRef({ !$0.isEmptyHint && $0.take(max: 1, into: takenBuffer) > 0 }) {
            startTaken(1, s, retryLater: retryLater)
            return true
        }
        let injected: MNThreadObject? = rt { runtime in
            guard runtime.injected.load(ordering: .relaxed) > 0 else { return nil }
            return runtime.injection.withLock { q -> MNThreadObject? in
                guard let o = q.pop() else { return nil }
                runtime.injected.wrappingSubtract(1, ordering: .relaxed)
                return o
            }
        }
        if let injected {
            start(injected, s, retryLater: retryLater)
            return true
        }
        return false
    }

    /// Before a thread of this worker parks with nothing else ready: start some of the own
    /// queued threads now, so that the park switches straight to them instead of through the
    /// idle loop (Go's runnext, in effect: a worker's own new threads run on it first, while
    /// it keeps up). One thread, or a batch while refills come quickly (`refillBatch`). Its
    /// cost when the queue is empty: one load. Called before the park's MOVABLE window opens,
    /// with the parking thread's own worker (it has not switched yet).
    func refillBeforePark(_ s: Scheduler) {
        guard !s.hasReadyThreads else { return }
        guard queueRef._withUnsafeGuaranteedRef({ $0.count }) > 1, MNRuntime.refillMax > 1 else {
            _ = takeOwn(s, retryLater: true)
            return
        }
        // The batch adapts to how long the last one's threads took (the essay's "Refill in
        // batches"): doubled while each took under `quickThreadNanoseconds`, else one.
        let now = uthreads_monotonic_ns()
        refillBatch =
            now &- lastRefill < UInt64(refillBatch) &* MNWorker.quickThreadNanoseconds
            ? min(refillBatch &* 2, MNRuntime.refillMax) : 1
        lastRefill = now
        let batch = refillBatch
        let n = queueRef._withUnsafeGuaranteedRef { $0.take(max: batch, into: takenBuffer) }
        startTaken(n, s, retryLater: true)
    }

    /// Takes up to half (at most `stealMax`) of another worker's queued threads — only from a
    /// worker that is behind: its queue is not empty and it has not taken from it for
    /// `stealAfterNanoseconds`, as seen on this worker's clock (it is busy with a long thread,
    /// blocked, or spawning a burst). A worker that drains its queue quickly keeps its threads
    /// (and their caches) instead of paying cross-CPU traffic for short threads. That is also
    /// the monitor: a thread that runs long without a safe point stops its
    /// worker's takes, and its queued threads then go to other workers.
    private func steal(_ s: Scheduler, now: UInt64) -> Work {
        rt { runtime in steal(s, now: now, runtime) }
    }

    private func steal(_ s: Scheduler, now: UInt64, _ runtime: MNRuntime) -> Work {
        let n = runtime.table.count
        var deferred = false
        var stolenCount = 0
        for offset in 1..<max(n, 1) {
            let v = (index + offset) % n
            let took: Bool? = runtime.withWorker(v) { victim -> Bool? in
                guard !victim.queue.isEmptyHint else { return false }
                let activity = victim.queue.activity(takesOnly: MNRuntime.stealDuringSpawns)
                if activity != seenActivity[v] || seenAt[v] == 0 {
                    seenActivity[v] = activity
                    seenAt[v] = now
                    return nil
                }
                if now &- seenAt[v] < MNRuntime.stealAfterNanoseconds { return nil }
                stolenCount = victim.queue.steal(max: MNRuntime.stealMax, into: takenBuffer)
                return stolenCount > 0
            }
            guard let took else {
                deferred = true
                continue
            }
            guard took else { continue }
            seenAt[v] = 0
            runtime.stolen.wrappingAdd(stolenCount, ordering: .relaxed)
            startTaken(stolenCount, s, retryLater: false)  // oldest first
            return .took
        }
        return deferred ? .deferred : .none
    }

    /// Shutdown (main returned) and deadlock teardown requests. False: abandon the loop.
    private func checkRuntime(_ s: Scheduler) -> Bool {
        if !shutdownHandled && runtime.mainDone.load(ordering: .sequentiallyConsistent) {
            shutdownHandled = true
            s.cancelAll(except: nil)
            runtime.shutdownsHandled.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }
        let epoch = runtime.deadlockEpoch.load(ordering: .sequentiallyConsistent)
        if epoch > deadlockSeen {
            deadlockSeen = epoch
            if epoch >= 2 { return false }  // threads parked again while unwinding: abandon them
            // Phase 1: each worker adds its own table and its part of the wait-for graph to
            // the report (only it may read its table); the last one to do so searches the
            // merged graph (a cycle may span workers: Scheduler/DeadlockReport.swift) and opens
            // phase 2 for all. Every part was merged before its worker's count below, so the
            // last count sees them all.
            let part = DeadlockReport(scheduler: s)
            let table = "worker \(index):\n" + part.table.render(limit: 200)
            uthreads_write_stderr(table + "\n")
            runtime.deadlockReport.withLock {
                $0.tables += "\n" + table
                $0.graph.merge(part.graph)
            }
            let written = runtime.deadlockTables.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            if written >= runtime.activeWorkers.load(ordering: .sequentiallyConsistent) {  // >=: never stuck below
                let cycles = runtime.deadlockReport.withLock { r in
                    r.cycles = r.graph.cycleLines(r.graph.cycles)
                    return r.cycles
                }
                uthreads_write_stderr(cycles)
                runtime.deadlockUnwindEpoch.store(epoch, ordering: .sequentiallyConsistent)
                runtime.ringAll()
            }
        }
        // Phase 2: every table is in the report; wake the parked threads so that they unwind.
        let unwind = runtime.deadlockUnwindEpoch.load(ordering: .sequentiallyConsistent)
        if unwind > deadlockUnwound {
            deadlockUnwound = unwind
            s.wakeAllParked(.deadlocked)
            runtime.deadlockWokenWorkers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }
        return true
    }

    /// Main returned, no thread is live, and none can come from outside any more.
    private var finished: Bool { runtime.finishedAndClosed() }

    /// The worker's loop may end: the runtime is finished, and this worker has no thread left
    /// (worker-local `UThread`s count) and no row abroad (rows abroad must come home first:
    /// their stacks belong to this worker's pool). The idle pass ends on it, and the sleep
    /// re-check looks at the same condition (once they differed, and a worker whose last
    /// worker-local thread waited for I/O spun without ever polling its reactor).
    private func mayEnd(_ s: Scheduler) -> Bool {
        finished && s.table.liveCount == 0 && s.table.abroadCount == 0
    }

    // MARK: Migration

    /// Gives up ready migratable threads for idle workers, when some worker is idle (sleeping or
    /// spinning) and this one has ready threads waiting behind the running one. Takes from the
    /// back of the run queue (the front is about to run here, with warm caches), and only
    /// enough for an even split between this worker and the idle ones: the adopters are busy
    /// afterwards, so nothing flows back unless a worker runs dry again (no ping-pong).
    /// O(ready). Called at safe points: every 64 yields and every 64 cross-worker parks.
    /// `parking`: the running thread is about to park, so it does not count among the threads
    /// that want this worker (a thread that woke its partner and now waits for the answer
    /// keeps the partner here: the pair stays together). `keepStartedHere`: threads started here on
    /// request (`startedHere`) stay (`willPark`).
    func shed(_ s: Scheduler, parking: Bool = false, keepStartedHere: Bool = false) {
        let idle = runtime.sleepers.load(ordering: .relaxed) + runtime.spinning.load(ordering: .relaxed)
        guard idle > 0, !shutdownHandled else { return }
        let ready = s.readyCountForShedding
        guard ready > 0 else { return }
        // One batch in flight at a time: the previous one has not been adopted yet.
        guard runtime.migrantBatches.load(ordering: .relaxed) == 0 else { return }
        let wanting = parking ? ready : ready + 1
        let n = min(MNRuntime.stealMax, wanting * idle / (idle + 1))
        let rows = s.shedMigratable(max: n) { t in
            keepStartedHere && unsafeDowncast(s.objectOf(t), to: MNThreadObject.self).startedHere  // migratable: M:N
        }
        guard !rows.isEmpty else { return }
        let batch = rows.map { migrant($0, s) }
        let now = uthreads_monotonic_ns()
        rt { runtime in
            runtime.migrants.withLock { q in
                q.push((batch, now))
                // Under the lock (an adopter decrements under it: never below 0); seq-cst before
                // `sleepers` is read in `ringOne`, pairing with the re-check of a worker going
                // to sleep (it reads `migrantBatches`).
                runtime.migrantBatches.wrappingAdd(1, ordering: .sequentiallyConsistent)
            }
            runtime.ringOne(except: index, forQueuedThread: false)
        }
    }

    /// The migration record of a thread this worker's policy gave up. Only M:N threads are
    /// migratable (worker-local UThreads never are): the row's object is an MNThreadObject,
    /// kept alive by the row.
    /// The registration of the descriptor it last waited on follows it: dropped here when no
    /// thread here waits on it (Reactor.swift, "Threads that waited on a descriptor move").
    private func migrant(_ e: Emigrant, _ s: Scheduler) -> MNMigrant {
        let t = e.thread.block
        let object = unsafeDowncast(s.objectOf(t), to: MNThreadObject.self)
        if object.lastDescriptor >= 0 {
            reactor.release(object.lastDescriptor)
            object.lastDescriptor = -1
        }
        return MNMigrant(object: object, block: t, policyState: e.state)
    }

    /// Adopts one batch of migrating threads (only one given up before `before`, if given);
    /// false when there is none.
    private func adoptMigrants(_ s: Scheduler, before: UInt64? = nil) -> Bool {
        rt { runtime in
            guard runtime.migrantBatches.load(ordering: .relaxed) > 0 else { return false }
            let batch: [MNMigrant]? = runtime.migrants.withLock { q in
                if let before, let age = q.first?.at, age > before { return nil }
                guard let b = q.pop() else { return nil }
                runtime.migrantBatches.wrappingSubtract(1, ordering: .sequentiallyConsistent)  // under the lock
                return b.threads
            }
            guard let batch else { return false }
            for m in batch { adopt(m, s) }
            return true
        }
    }

    /// Takes ownership of a migrating thread: its row (which stays in its home's table), its
    /// place (so that cancel and join find it here), and makes it ready on this worker.
    private func adopt(_ m: MNMigrant, _ s: Scheduler) {
        let t = m.block
        s.adopt(t, state: m.policyState)
        _ = rt { $0.migrations.wrappingAdd(1, ordering: .relaxed) }
        let cancel = m.object.moved(to: index)
        if cancel || shutdownHandled { s.cancel(t) }
    }

    /// Applies a wake that a thread on worker `waker` sent to a thread parked here, by handing
    /// the woken thread to `waker` when it may move (migratable, parked at an audited site),
    /// threads on `waker` woke it at least twice in a row (a partner, not a one-off such as a
    /// finished thread waking its joiner), and `waker` is idle: the waker has parked,
    /// typically to wait for this thread's answer, so the
    /// thread runs there at once, and a ping-pong pair ends on one worker, where its wakes are
    /// local from then on (no mail, no doorbell). False: the caller applies the wake here
    /// (the thread stays, as when the waker's worker is busy: it would run later there).
    /// Go's `runnext` plus waking on the waker's P, for a runtime whose parked threads belong
    /// to their worker (the essay's "Wakes").
    private func pull(block: UInt, token: UInt64, _ result: WakeResult, toward waker: Int, _ s: Scheduler) -> Bool {
        guard waker != index, !shutdownHandled, let t = ControlBlock(bitPattern: block), s.table.owns(t),
            t.pointee.mn_token == token, t.has(.flagMigratable), t.has(.flagMovable)
        else { return false }
        let object = unsafeDowncast(s.objectOf(t), to: MNThreadObject.self)  // migratable: an M:N thread
        if object.lastWaker == Int32(waker) {
            object.wakesFromLastWaker &+= 1
        } else {
            object.lastWaker = Int32(waker)
            object.wakesFromLastWaker = 1
        }
        guard object.wakesFromLastWaker >= 2, rt({ $0.withWorker(waker) { $0.idleNow.load(ordering: .relaxed) } })
        else { return false }
        object.wakesFromLastWaker = 0
        // Woken here first (its wait ends with `result`, timers and wait queues cleared), then
        // taken back from the policy and handed over; a policy that keeps its threads keeps it.
        guard s.wake(t, result), let e = s.emigrate(t) else { return true }
        let m = migrant(e, s)
        rt { $0.withWorker(waker) { $0.post(.adopt(m)) } }
        return true
    }

    func finishedAbroad(_ row: ControlBlock, home: Int) {
        rt { runtime in runtime.withWorker(home) { $0.post(.reclaim(block: UInt(bitPattern: row))) } }
    }

    // MARK: WorkerHooks

    func maintenance(_ s: Scheduler) {
        // A thread runs: not idle (a timer's wake can start one without an idle pass ending).
        if idleNow.load(ordering: .relaxed) { idleNow.store(false, ordering: .relaxed) }
        if mailCount.load(ordering: .relaxed) > 0 { drainMail(s) }
        if !shutdownHandled && runtime.mainDone.load(ordering: .relaxed) { _ = checkRuntime(s) }
        // Fairness with busy threads: start one queued thread now and then.
        _ = takeOwn(s)
        // Migrants that no idle worker came for (it found other work): any worker takes them.
        if rt({ $0.migrantBatches.load(ordering: .relaxed) }) > 0 {
            _ = adoptMigrants(s, before: uthreads_monotonic_ns() &- MNRuntime.migrantPatienceNanoseconds)
        }
        shed(s)
    }

    func idle(_ s: Scheduler) -> Bool {
        if !idleNow.load(ordering: .relaxed) { idleNow.store(true, ordering: .relaxed) }
        defer { if s.hasReadyThreads { idleNow.store(false, ordering: .relaxed) } }
        s.answerSafePointRequests()  // a dump signal (MNObservability.swift)
        if !s.timers.isEmpty { s.fireTimers(now: s.now()) }
        if mailCount.load(ordering: .relaxed) > 0 { drainMail(s) }
        guard checkRuntime(s) else { return false }
        if s.hasReadyThreads { return true }
        if takeOwn(s) { return true }
        if adoptMigrants(s) { return true }
        var work = steal(s, now: uthreads_monotonic_ns())
        if work == .took { return true }
        if mayEnd(s) { return false }

        // A short bounded spin first (Go's spinning M), by at most half of the workers: a
        // cross-worker handoff (a join, a channel, a steal) usually completes within
        // microseconds, and sleeping costs an eventfd write plus an epoll wake-up (~5–50 µs
        // here) on each side. The spin polls this worker's own lines often and other workers'
        // queues about once a microsecond (each look at a line another CPU writes costs that
        // CPU a cache miss); it ends at the first sign of work; then the worker sleeps.
        // Not when the worker's recent sleeps were ended by readiness rather than by other
        // workers: then the spin finds nothing and delays the I/O (MNIdleSpin.swift).
        let spinLength = spin.nanoseconds(full: MNRuntime.spinNanoseconds)
        if spinLength > 0 {
            work = spinForWork(s, for: spinLength)
            if work == .took { return true }
        }
        let deferred = work == .deferred

        // Sleep in epoll_wait until a timer, I/O, an offload completion or the doorbell.
        var timeout: UInt64? = s.timers.nextDeadline.map { $0 &- min($0, s.now()) }
        if deferred { timeout = min(timeout ?? .max, MNRuntime.stealAfterNanoseconds) }  // look again then
        let forever = timeout == nil && reactor.pendingWakeups == 0
        sleeping.store(deferred ? MNWorker.asleepDeferred : MNWorker.asleep, ordering: .sequentiallyConsistent)
        runtime.sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if !deferred { runtime.ringableSleepers.wrappingAdd(1, ordering: .sequentiallyConsistent) }
        if forever {
            runtime.stuck.enter()
            if runtime.settings.checkInvariants { runtime.stuck.checkInvariants(workers: runtime.table.count) }
        }
        defer {
            if forever { runtime.stuck.leave() }  // before any work is taken (MNStuckCensus)
            runtime.sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            if !deferred { runtime.ringableSleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
            if sleeping.exchange(0, ordering: .sequentiallyConsistent) == 0 {
                _ = uthreads_eventfd_drain(doorbell)  // someone rang
            }
        }
        // Re-check after announcing the sleep (each poster changes its counter, then rings).
        if mailCount.load(ordering: .sequentiallyConsistent) > 0
            || queue.count > 0
            || runtime.injected.load(ordering: .sequentiallyConsistent) > 0
            || runtime.migrantBatches.load(ordering: .sequentiallyConsistent) > 0
            || (!deferred && runtime.queuedCount() > 0)
            || runtime.deadlockEpoch.load(ordering: .sequentiallyConsistent) > deadlockSeen
            || runtime.deadlockUnwindEpoch.load(ordering: .sequentiallyConsistent) > deadlockUnwound
            || (!shutdownHandled && runtime.mainDone.load(ordering: .sequentiallyConsistent))
            || mayEnd(s)
        {
            return true
        }
        if forever, let epoch = looksDeadlocked() {
            declareDeadlock(s, from: epoch)
            return true
        }
        let asleepAt = uthreads_monotonic_ns()
        reactor.poll(timeoutNanoseconds: timeout)
        spin.slept(
            rung: sleeping.load(ordering: .relaxed) == 0, nanoseconds: uthreads_monotonic_ns() &- asleepAt,
            wokeThreads: s.hasReadyThreads, full: MNRuntime.spinNanoseconds)
        return true
    }

    /// Spins up to `nanoseconds` for mail, own or injected threads, or a queue
    /// to steal from; `.took` if it started one or if something for the idle pass appeared
    /// (mail, an own queued thread, the end of main), `.none` (go to sleep) or `.deferred` (some
    /// worker has queued threads it is still taking itself: sleep briefly) otherwise.
    private func spinForWork(_ s: Scheduler, for nanoseconds: UInt64) -> Work {
        rt { runtime in spinForWork(s, nanoseconds, runtime) }
    }

    private func spinForWork(_ s: Scheduler, _ nanoseconds: UInt64, _ runtime: MNRuntime) -> Work {
        let maxSpinners = max(1, runtime.table.count / 2)
        guard runtime.spinning.wrappingAdd(1, ordering: .relaxed).newValue <= maxSpinners else {
            runtime.spinning.wrappingSubtract(1, ordering: .relaxed)
            return runtime.queuedCount() > 0 ? .deferred : .none
        }
        defer { runtime.spinning.wrappingSubtract(1, ordering: .relaxed) }
        idleSpins.store(idleSpins.load(ordering: .relaxed) &+ 1, ordering: .relaxed)  // owner-only writer
        let work = spinLoop(s, until: uthreads_monotonic_ns() &+ nanoseconds, runtime)
        spin.spun(found: work == .took)
        return work
    }

    /// The spin itself, until the monotonic clock passes `end` (it looks at least once).
    private func spinLoop(_ s: Scheduler, until end: UInt64, _ runtime: MNRuntime) -> Work {
        var work = Work.none
        while true {
            for _ in 0..<32 {
                if mailCount.load(ordering: .relaxed) > 0 || !queue.isEmptyHint { return .took }
                uthreads_cpu_relax()
            }
            // idle() handles the end of main once; after that a worker whose threads wait for
            // I/O or an offload must go on to sleep in its reactor, or it would spin without
            // ever polling it (found: a close waiting for a completion during shutdown hung).
            if !shutdownHandled && runtime.mainDone.load(ordering: .relaxed) { return .took }
            if runtime.injected.load(ordering: .relaxed) > 0, takeOwn(s) { return .took }
            if adoptMigrants(s) { return .took }
            let now = uthreads_monotonic_ns()
            work = steal(s, now: now, runtime)
            if work == .took || now > end { return work }
        }
    }

    /// Every active worker is stuck (no ready thread, timer, I/O or offload; it is about to sleep
    /// with no timeout), nothing is queued (a batch of migrants counts), no mailbox holds a
    /// message, no worker left the stuck state while this looked (`MNStuckCensus` has the
    /// argument, and the false deadlock its first version declared), and no kernel thread
    /// outside handed work in meanwhile (MNHandIns.swift). O(workers).
    /// Returns the deadlock epoch it saw, for `declareDeadlock`, or nil.
    private func looksDeadlocked() -> Int? {
        let runtime = runtime
        // While a deadlock is being reported or unwound (until every worker has woken its
        // threads) the workers are idle by design: not a second deadlock.
        let epoch = runtime.deadlockEpoch.load(ordering: .sequentiallyConsistent)
        guard runtime.deadlockUnwindEpoch.load(ordering: .sequentiallyConsistent) == epoch,
            runtime.deadlockWokenWorkers.load(ordering: .sequentiallyConsistent)
                == runtime.deadlockTables.load(ordering: .sequentiallyConsistent)
        else { return nil }
        let all = runtime.stuck.allStuck(of: runtime.activeWorkers.load(ordering: .sequentiallyConsistent)) {
            runtime.handIns.noneDuring { nothingToDo(runtime) }
        }
        return all ? epoch : nil
    }

    /// No work anywhere: nothing queued, the runtime not finished (main running, or threads of
    /// it live after every worker handled its end), no mail. Read one counter after another:
    /// `looksDeadlocked` trusts it only inside the census and the hand-in bracket.
    private func nothingToDo(_ runtime: MNRuntime) -> Bool {
        runtime.queuedCount() == 0 && !finished
            && (!runtime.mainDone.load(ordering: .sequentiallyConsistent)
                || runtime.shutdownsHandled.load(ordering: .sequentiallyConsistent)
                    >= runtime.activeWorkers.load(ordering: .sequentiallyConsistent))
            && (0..<runtime.table.count).allSatisfy {
                runtime.withWorker($0) { $0.mailCount.load(ordering: .sequentiallyConsistent) == 0 }
            }
    }

    /// Declares the deadlock that `looksDeadlocked` saw at `epoch`, unless another worker saw
    /// it too and declared it first (two workers may pass the check at once).
    private func declareDeadlock(_ s: Scheduler, from epoch: Int) {
        guard
            runtime.deadlockEpoch.compareExchange(
                expected: epoch, desired: epoch + 1,
                ordering: .sequentiallyConsistent
            ).exchanged
        else { return }
        let workers = runtime.activeWorkers.load(ordering: .relaxed)
        let header =
            "M:N runtime: all \(workers) workers idle with parked threads, nothing queued, no timer, no I/O (the wait-for cycles across all workers, then each worker's table, follow)."
        uthreads_write_stderr("\n" + header + "\n")
        runtime.deadlockReport.withLock { $0.header = header }
        runtime.ringAll()
    }

    // MARK: WorkerHooks: waiters (Sync/Waiter.swift)

    func registeredWaiter(_ s: Scheduler) {
        shed(s, parking: true)  // every 64th park (the scheduler counts: Sync/Waiter.swift)
    }

    func willPark(_ s: Scheduler) {
        // Still this worker's thread: start a queued one to switch to (before the MOVABLE window).
        refillBeforePark(s)
        // An ordering policy starts its threads at spawn (they are not on the queue thieves
        // take from): a spawner that now waits gives idle workers their share (the essay's
        // "Policies at spawn"). A pair's partner stays (`parking`). Only those: a thread started
        // here on request (`UThread.startingHere`) was never the queue's, so it moves only at
        // the safe points' shed (every 64 yields or parks), as under FIFO. Shed here, such
        // threads left the spawner's worker before their first run, and a spawner's threads
        // that had to run here first and then move (a migration test) ended up split evenly
        // over busy workers with no idle one left to shed to: never moved at all.
        if s.timed { shed(s, parking: true, keepStartedHere: true) }
    }

    func postWake(block: UInt, token: UInt64, _ result: WakeResult) {
        // Through the runtime's routing, so a wake from a user thread names the waker's worker
        // (the pair-keeping pull: "Wakes" above).
        runtime.wake(block: block, token: token, result)
    }
}
