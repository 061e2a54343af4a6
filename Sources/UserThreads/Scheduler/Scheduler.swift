// Layer 6: the scheduler — Tanenbaum's "run-time system", one per kernel thread.
//
// Design essay
// ============
//
// What it is. `UThreadRuntime.run` turns the calling kernel thread into a scheduler. The
// scheduler owns a thread table (ControlBlockTable), a stack pool, a timer heap and a policy.
// User threads run on their own stacks; the kernel thread's original stack runs only the idle
// loop (`runLoop`), like Go's g0. The kernel sees one ordinary thread: nothing here creates a
// kernel thread, and no switch makes a system call.
//
// Direct switches. A thread that yields or parks switches *directly* to the next ready
// thread: one `uthreads_switch`, not two through the scheduler's own context (Go goes through
// g0 on every schedule; that is a second switch, ~14 ns here, for nothing when a successor is
// already known). Only when no thread is ready does the outgoing thread switch to the idle
// loop, which waits for timers and (through `Poller`) for I/O. Under M:1 that wait always has a
// bell other kernel threads ring (a post to the inbox, a control request, the dump signal's
// handler: ForeignCancels.swift), so what they ask of an idle runtime is answered at once.
//
// Exit. A finishing thread cannot free the stack it runs on. It records itself as the
// `zombie` and switches away; whoever runs next (a thread or the idle loop) reaps it right
// after the switch returns (`resumed`), returning its stack to the pool and its row to the
// table, or keeping them for a later spawn (see "Thread objects"). The common case skips
// that (M:1, and an M:N worker's own rows): when keeping them runs no code and unmaps nothing (a trivial result, a stack the
// pool would take as it is), the thread keeps them itself just before its last switch (`reapOwnExit`: nothing else runs on the kernel
// thread in between, so nothing can reuse them early). The entry path is split so that no Swift reference lives in the frame that makes the
// final switch (that frame never returns, so a reference held there would never be released):
// `life` runs the body and the exit bookkeeping and returns the next thread. A lone joiner
// while nothing else is ready (FIFO) is switched to directly, not queued and popped; the exit
// saves no exclusivity state, because no access can be open once the body has returned (the
// argument is at `exitCurrent`; debug builds check it). Rejected: reaping on the finishing
// thread's side by handing its row to the joiner through the switch — the zombie slot is one
// store and one load, and every other resumer (the idle loop, any thread) must reap anyway.
//
// Thread objects. A thread's Swift object (ThreadObject: body, result, name) outlives its row
// while handles exist. Allocating and freeing it was a third of a spawn+join (malloc, free,
// init, deinit: ~370 instructions of ~1800). A thread that finished with a trivial result is
// therefore kept whole in a slab: its row, still naming its stack and its object
// (ThreadObjectSlab, whose essay has the details), and a later spawn takes the three together,
// the object only if nothing else references it by then. The row of a thread that a help-first
// join (below) ran to its end, the spawn-join loop's case, skips even the slab: it waits in a
// one-row slot (`hostedRow`), FREE (every walk of the table, the fault handler and the debuggers
// skip it) but with its counts left as they were: still one of the table's live rows, its stack
// one of the pool's in use. The next spawn with the default stack takes it back with no count
// to adjust (the slab's push and pop, the table's and the pool's counts and the pool's bound
// test: ~38 instructions per spawn+join). Whatever reads those counts settles the slot first
// (`settleHostedRow`: the row goes the way of any finished row): the idle loop, before it looks
// at the live count, the invariants checker, the runtime's statistics and metrics, the
// teardown; so no figure anyone reads differs. Only memory can tell: until then one finished
// thread's stack may stay mapped beyond the pool's bound. An M:N thread's object is made where
// it is spawned and its row where it starts, so an M:N worker keeps the two apart: the row
// whole with its stack, in the same slab but without its object (`keepRow`: the next thread the
// worker starts with the default stack takes it, `takeKeptRow`), and the object among the kept
// objects (KeptThreadObjects.swift, which argues why the uniqueness test holds across kernel
// threads) for the worker's next spawns. A new row and pooled stack per M:N thread cost ~60
// instructions more, and its exit a zombie reap (docs/BENCHMARKS.md, "Spawn+join with one
// spawner at 2 workers: rows kept whole on every worker").
//
// Help-first join. `join()` of a thread that has not started yet runs it at once, as a call
// from the join (`host`), as Cilk and Java's ForkJoinPool (tryUnpush, then exec) run a joined
// task that nobody has taken yet: no context switch in or back, no park, no run-queue round
// trip, no entry frames (spawn+run+join: 725 -> 623 instructions, docs/BENCHMARKS.md). What
// that changes, and how each promise is kept:
//   * Identity. The child is the current thread while its body runs (`current`, the C
//     thread-local, `UThread.current`, its id, its thread-local values, its cancellation); the
//     joiner shows in the table as BLOCKED on "join" of the child (HOSTING flag), as a parked
//     joiner does, with a saved stack pointer and registers (below).
//   * Stack. The body runs on the child's own stack, entered by `uthreads_call_on_stack`: its
//     size, its guard, the dense canary (checked on that stack before the call returns), the
//     fault handler's overflow report and backtraces are the normal path's. The call first
//     saves the joiner's callee-saved registers in `uthreads_switch`'s frame on the joiner's
//     stack, its address in the joiner's `sp` (a push and store per register, ~12
//     instructions): the joiner is then resumable by an ordinary switch. The body's stack
//     starts just below the first frame spawn wrote for the switch path
//     (`uthreads_context_frame`), which the body therefore leaves whole: a child that never
//     leaves the CPU finishes with its row's `sp` still naming that frame, and the next spawn
//     on the kept row (the same row, entry and argument: the same words) does not write it
//     again (one compare instead of ten stores). A child that left the CPU, or ran by a
//     switch, has `sp` elsewhere, and its row's next spawn writes the frame as usual.
//   * Parking. The first time a hosted child leaves the CPU by any path (a park, a yield, a
//     preemption: every one goes through `switchTo`), or its joiner (or one up the chain) is
//     cancelled while it runs, it is unhosted (`unhost`): its joiner becomes an ordinary
//     parked joiner of it, on its join queue, cancellable, and deadlock teardown wakes it as
//     any other; when the joiner is hosted in turn, the same holds for
//     its own joiner, up the chain (`hostingJoiner`, linked through the joiners' `next`).
//     Whatever wakes the joiner (the child's exit through the queue, `cancel()`, teardown)
//     switches to the saved frame: the call returns the switcher's handoff, non-nil, and the
//     join ends as the normal join does after its park (`unhostedJoinReturned`). The child,
//     resumed on its stack like any thread, takes the normal exit when its body returns
//     (`hostedMain`), never the return into the joiner. The join is thus observably the
//     normal one: a joiner cancelled while its hosted child waits throws CancellationError at
//     once. A body that never leaves the CPU, the common case, returns into the join, which
//     does the exit's bookkeeping without a switch. A joiner already cancelled, and
//     `join(timeout:deadline:)`, take the normal path.
//   * Order. Only under FIFO without tracing on one worker (`hooks` false: other policies
//     decide who runs next, and a trace records switches), and only when the child is first
//     in the run queue: the normal path would run exactly it next. When the body returns and
//     other threads are ready, the joiner queues behind them, as the exit's wake would have
//     put it. Not under ThreadSanitizer (it tracks one stack per fiber).
// Rejected: running the body on the joiner's stack (the first version: the child then had
// whatever the joiner had left, more than it asked for, so an overflow at its own size went
// unreported); a joiner parked on no queue and not cancellable while its hosted child waits
// (the second: its cancellation was seen only when the child's body returned, never for a
// child that waits forever; the switch frame costs ~12 instructions per hosted join and the
// unhost test one load and branch per switch); a spawn that takes no row, stack or id until
// the thread first runs (every walk of the table, the dump and the policies see rows, and ids
// are promised at spawn: a second representation of a ready thread everywhere); a leaner switch-based join (a direct switch to
// the child, no run-queue round trip: the two switches, the entry frames and the exit's switch
// bookkeeping stay, ~45 + 23 + ~100 instructions by the per-function figures in
// docs/BENCHMARKS.md); deferring every new thread's first frame to its first switch-in (a
// test on every switch, for ~10 instructions per spawn: reusing a kept row's whole frame
// costs the spawn one compare and the switch nothing); taking a hosted child off the run
// queue more cheaply through a "run next" slot beside the FIFO list that spawn fills and the
// join empties (not built: FIFO's order then needs a test on every append and pick, so the
// yield switch would pay for the join's ~10).
//
// Parking. `park` is the one primitive every blocking operation is built on: the caller puts
// the thread on a WaitQueue (or not, for sleep), then parks with a wait reason and an optional
// deadline. Exactly one wake source wins: the queue's owner (`wake(.woken)`), the timer
// (`.timedOut`), `cancel()` (`.cancelled`), a close (`.closed`) or deadlock teardown
// (`.deadlocked`). `wake` unlinks the thread from its wait queue and its timer before making it
// ready, so a timed-out or cancelled waiter leaves no trace and a signaller that dequeues a
// waiter always gets a parked one: no lost wake-up, no double enqueue.
//
// Timers and I/O while threads are busy. With ready threads always available the idle loop
// never runs, so every 64th yield also checks expired timers and polls the reactor without
// blocking (`maintenance`). That bounds timer lateness by 64 switches instead of reading the
// clock (~25 ns) on every switch.
//
// Preemption: there is none at arbitrary instructions, by design. A signal-driven switch
// could land while the thread holds a malloc arena lock or a Swift runtime lock (metadata
// cache, exclusivity list, a lazy global's once-lock); the next thread on the same kernel
// thread taking the same lock would deadlock against a lock holder that can never run again
// until the waiter — on the same kernel thread — gives the CPU back. (Kernel threads do not
// have this problem because the kernel can run the holder on its own; an M:1 runtime has only
// one kernel thread to run both.) Async-signal-safety would have to extend to every
// instruction of every user thread. Time slices are therefore enforced at safe points, never
// by signals.
//
// Time slices. When the policy is not FIFO, every switch-in asks the policy for the
// incoming thread's `timeSlice(for:)` and records where it ends on a cheap clock (the TSC, its
// rate calibrated once per process; or the virtual clock). The thread is *not* interrupted at
// that moment: it is marked over its quantum (UTHREADS_FLAG_OVERQUANTUM) and switched out at
// its next safe point — `UThread.checkpoint()` (a TLS countdown, ~1 ns, see cuthreads.h, whose
// slow path reads the clock a few times per quantum), `yield()`, any park (sync, I/O, sleep).
// A thread that reaches no safe point keeps the CPU; the watchdog (checked when it finally
// leaves the CPU, since nothing else runs meanwhile on this kernel thread) reports it by name.
// FIFO pays nothing for any of this: its switch path tests one flag (`hooks`), false for FIFO
// without tracing. The same flag guards the trace recorder.
//
// Clock. `now()` is the single source of time for sleeps, deadlines, policies and
// traces. With `Configuration.clock = .virtual` it is a counter that moves only when threads
// simulate work (`UThread.simulateWork`) or when the idle loop jumps to the next timer instead
// of sleeping: together with a seeded policy a run is then reproduced exactly.
//
// Per-kernel-thread state. The current scheduler and thread are read through out-of-line C
// functions (`uthreads_get_runtime`, `uthreads_get_current`): the compiler may cache a
// thread-local's address across calls within one function, which is wrong once a user thread
// resumes on another kernel thread (M:N migration). An opaque call every time is the cure. The
// switch itself returns the scheduler that resumed the thread (the switcher's `handoff`), so
// the bookkeeping right after a switch (`resumed`: reaping, exclusivity) needs no TLS read and
// never uses the `self` captured before the switch. Inline accessors (one move instead of a
// call, ~5 instructions less each; cuthreads.h) serve only where no switch can come between
// two accesses on an M:N worker: the help-first join, which runs only under M:1, and two entry
// points kept out of line that read the runtime once, first (spawnThread, the join's wait).
//
// Exclusivity. See Context/ContextSwitch.swift: the Swift runtime's access set is saved for
// the outgoing and restored for the incoming thread on every switch.
//
// Deadlock. When nothing is ready, no timer is pending and the poller has no waiters, no
// thread can ever run again: the scheduler writes the thread table with every wait reason
// (and any wait-for cycle) to stderr, wakes every parked thread with `.deadlocked` so that it
// unwinds (its `defer`s run, its objects are released), and `run` throws
// `UThreadError.deadlock`. A thread that parks again while unwinding is abandoned.
//
// M:N. Under `UThreadRuntime.run(workers:)` each worker kernel thread runs one of
// these schedulers unchanged; the coordinator (MN/MNRuntime.swift) plugs in through
// `WorkerHooks` (Poller.swift), consulted only by the idle loop and by `maintenance`: remote
// wake-ups arrive as messages applied on this kernel thread, so nothing here takes a lock. A
// started M:N thread may migrate while it is ready (MN/MNWorker.swift): the switch returns the
// scheduler that resumed it, and the code after a switch uses only that one (`resumed`). Under
// ThreadSanitizer every switch is also announced as a fiber switch (`tsan`, false in other
// builds).
//
// Rejected designs:
//   * A global scheduler shared by all kernel threads: tests run in parallel, and M:1 needs
//     no locks if state is per kernel thread. M:N builds on per-worker schedulers instead.
//   * ucontext (swapcontext): a system call (rt_sigprocmask) per switch, ~250 ns here.
//   * Switching through the scheduler's context on every yield (Go's mcall/g0): a second
//     switch per handoff.
//   * Reading the clock on every switch for timers: +25 ns per switch; see maintenance.
//   * A virtual method per thread for the scheduler: threads are C rows, not Swift objects, so
//     queues are intrusive and allocation-free.
import CUThreads
import Glibc
import Synchronization

@usableFromInline
final class Scheduler {
    // MARK: State (hot fields opt out of dynamic exclusivity checks: the scheduler is only
    // touched from its own kernel thread, and these are never accessed re-entrantly)

    /// The running thread, or `idleBlock` while the idle loop runs.
    @exclusivity(unchecked) private(set) var current: ControlBlock
    /// The kernel thread's own context (the idle loop). Not in the table.
    let idleBlock: ControlBlock
    let table = ControlBlockTable()
    let stacks: StackPool
    @exclusivity(unchecked) var timers = TimerHeap()
    let policy: any SchedulingPolicy
    /// The policy again when it is the built-in FIFO: its final methods are then inlined into
    /// the switch path instead of called through the protocol witness table (three indirect
    /// calls per yield, ~4 ns). Every other policy goes through `policy`.
    private let fifo: FIFOPolicy?
    /// The reactor, once something needs it.
    var poller: Poller?
    /// Cancels posted by other kernel threads (M:1 only; ForeignCancels.swift).
    var foreignCancels: ForeignCancels?
    /// The M:N worker this scheduler serves (nil under M:1). Consulted only by the idle
    /// loop, by `maintenance` (every 64 yields) and by the sync layer's parks when they have
    /// something for it (`parkWaiter`: every 64th park, or nothing else ready); the switch,
    /// park and wake paths test `workerOpaque` instead (reading the existential retains it:
    /// two atomics), so M:1 pays a nil test.
    var worker: WorkerHooks?
    /// The same worker as an unretained opaque pointer (set and cleared with `worker`), for
    /// the M:N spawn and exit paths: reading the existential retains it.
    @exclusivity(unchecked) var workerOpaque: UnsafeMutableRawPointer?
    /// The last wait token handed out (Sync/Waiter.swift): M:N workers start at their index + 1
    /// in the high 16 bits, so a token is unique in the runtime and says "a worker's".
    @exclusivity(unchecked) var nextWaitToken: UInt64 = 0
    /// M:N: parks until the worker's next look at shedding (`parkWaiter`, Sync/Waiter.swift).
    @exclusivity(unchecked) var parksUntilShed = 64
    /// The worker's index (-1 under M:1), stored in every row at spawn for the thread table.
    @exclusivity(unchecked) var workerIndex: Int32 = -1
    /// A number no other scheduler of the process has or had (from 2 up): what a sync object
    /// owned by one M:1 runtime records (an address could be reused by a later scheduler).
    @usableFromInline let serial: UInt
    private static let serials = Atomic<UInt>(2)
    /// The runtime this scheduler serves, as a number no other runtime of the process has or
    /// had: `serial` under M:1, the first worker's `serial` on every worker of an M:N runtime.
    /// What a thread group records (Runtime/ThreadGroup.swift: only threads of its runtime
    /// spawn into it).
    let runtimeSerial: UInt
    /// Built with ThreadSanitizer: every switch is announced to it as a fiber switch
    /// (cuthreads.h). False in other builds: one branch per switch on a field in cache.
    let tsan = uthreads_tsan_enabled() != 0
    let settings: SchedulerSettings
    @exclusivity(unchecked) private var zombie: ControlBlock?
    /// The joiner that hosts the running thread (essay, "Help-first join"), or nil. Each
    /// hosting joiner's `next` (it is on no queue) names the joiner hosting it in turn.
    @exclusivity(unchecked) private var hostingJoiner: ControlBlock?
    /// This kernel thread's live exclusivity access-set head inside libswiftCore, set when the
    /// idle loop starts (on the scheduler's own kernel thread), or nil where it cannot be found:
    /// a switch then skips saving an empty set (ContextSwitch.saveExclusivity).
    @exclusivity(unchecked) private var liveAccessHead: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    @exclusivity(unchecked) private var ids = ThreadIDAllocator()
    @exclusivity(unchecked) private var yieldsUntilMaintenance = 64
    /// The TSC at the last switch (with accounting on): the "now" of cheap timestamps such as a
    /// spawn's creation time, exact to within the running thread's current turn. A TSC read
    /// costs ~10 ns in this VM, a third of a switch.
    @exclusivity(unchecked) private var lastTick: UInt64 = 0
    private let accounting: Bool
    let checks: Bool
    /// The main user thread (the closure given to run).
    private(set) var mainObject: ThreadObject?
    /// Set when a deadlock was found; `run` throws it.
    private(set) var deadlock: DeadlockReport?
    private var deadlockPasses = 0
    /// Calibration for turning TSC ticks into seconds.
    let startTick = uthreads_ticks_inline()
    let startNanoseconds = uthreads_monotonic_ns()
    // MARK: Clock, time slices, tracing (see the essay's "Time slices")

    /// Whether `now()` is the virtual clock.
    let simulated: Bool
    /// The virtual clock (ns) in simulation mode.
    @exclusivity(unchecked) var virtualNow: UInt64 = 0
    /// True when the switch path must call `switchHooks` (a non-FIFO policy, tracing, or an M:N
    /// worker, whose threads carry errno): the one branch M:1 FIFO pays on a switch.
    let hooks: Bool
    /// An M:N worker's scheduler (threads may migrate: errno travels with them).
    let migrating: Bool
    /// The idle loop's errno while a thread runs (M:N workers).
    @exclusivity(unchecked) var idleErrno: Int32 = 0
    /// This kernel thread's errno, found at the first switch (`errnoLocation`): a worker's
    /// scheduler switches only on its own kernel thread, and the Glibc overlay's `errno`
    /// calls `__errno_location` once per read and per write (~25 instructions per switch).
    @exclusivity(unchecked) private var errnoPointer: UnsafeMutablePointer<Int32>?
    /// Time slices are managed (the policy is not FIFO).
    let timed: Bool
    let recorder: TraceRecorder?
    /// Slice of the running thread, in slice-clock units (TSC ticks, or virtual ns). `.max`: none.
    @exclusivity(unchecked) var sliceEnd: UInt64 = .max
    @exclusivity(unchecked) var sliceLength: UInt64 = 0
    /// When the running thread was switched in (slice-clock units), for the policy's `ran`.
    @exclusivity(unchecked) var runStart: UInt64 = 0
    /// Adaptive checkpoint batching: the clock at the last arm, and the calls armed.
    @exclusivity(unchecked) var armedAt: UInt64 = 0
    @exclusivity(unchecked) var armedCalls: Int64 = 16
    /// Set while a checkpoint switches the thread out (traced as a preemption).
    @exclusivity(unchecked) var preempting = false
    /// Nanoseconds per slice-clock unit (1 for the virtual clock).
    let nsPerSliceUnit: Double
    var watchdog: Watchdog

    /// Total switches performed by this scheduler.
    @exclusivity(unchecked) private(set) var switchCount: UInt64 = 0
    /// Threads spawned in this runtime's life.
    @exclusivity(unchecked) private(set) var spawnCount: UInt64 = 0
    /// Threads that finished with a trivial result, kept whole (row, stack, object) for later
    /// spawns (`spawnKept`). M:1 only. See "Thread objects" in the essay.
    @exclusivity(unchecked) private var slab = ThreadObjectSlab()
    /// The row of the last thread a help-first join ran to its end, kept whole for the next
    /// spawn (`spawnKept` takes it before the slab), or nil: FREE, but still counted live in the
    /// table and its stack in the pool's `inUse` until it is settled (`settleHostedRow`). See
    /// "Thread objects" in the essay. M:1 only.
    @exclusivity(unchecked) private var hostedRow: ControlBlock?
    /// M:N threads' objects that finished here with a trivial result, for this worker's next
    /// spawns (KeptThreadObjects.swift; `keepObject`, `takeKeptObject`). M:N workers only.
    @exclusivity(unchecked) private var keptObjects = KeptThreadObjects()
    /// Spawns that reused a kept M:N thread object (for tests).
    @exclusivity(unchecked) var objectsReused = 0
    /// State of this scheduler's random source (randomised choices such as select fairness).
    /// Seeded from the clock; `UThreadRuntime.seedRandom` makes a run reproducible
    /// (Scheduler/RandomSource.swift).
    @exclusivity(unchecked) var randomState: UInt64 = uthreads_monotonic_ns() ^ 0x5DEE_CE66_D1CE_4E5B
    /// An M:N worker's: the runtime's seed, shared by every worker (nil under M:1). Unretained:
    /// the runtime owns it and outlives every draw, and a draw reads it without a retain (a
    /// strong `let` still cost a retain and a release per draw, in release builds, on a count
    /// every worker shares).
    let sharedSeed: Unmanaged<SharedRandomSeed>?
    /// The generation of `sharedSeed` that `randomState` was last seeded from.
    @exclusivity(unchecked) var seedGeneration: UInt64 = 0
    /// The last dump-signal request answered (DumpRequests.swift).
    var dumpRequestsAnswered = uthreads_dump_requests()
    /// Requests from the control socket's kernel thread, when one is configured.
    var snapshotChannel: SnapshotChannel?
    /// Publishes this scheduler's counters when metrics are configured (SafePointSampler.swift);
    /// nil: one branch per safe point, nothing on the switch path.
    @exclusivity(unchecked) var sampler: (any SafePointSampler)?
    /// The longest the idle loop sleeps (nanoseconds): the metrics interval when metrics are
    /// sampled (so that they do not go stale while idle). Requests from outside (posts, the
    /// control socket, the dump signal) need no bound: they ring the idle sleep's bell
    /// (ForeignCancels.swift).
    var idleWakeLimit = UInt64.max

    /// Process-wide set-up, once, when the first runtime starts: SIGPIPE is ignored, so that a
    /// write to a closed pipe or socket throws EPIPE instead of killing the process. (It was
    /// done when the first reactor was made; but a write that does not block never makes one,
    /// so a process whose first I/O hit a closed reader died of SIGPIPE.)
    private static let processSetUp: Void = uthreads_ignore_sigpipe()

    /// `runtimeSerial`: the serial of the runtime's first scheduler, for a later worker of an
    /// M:N runtime; nil for the first (or only) one, whose own serial it becomes. `sharedSeed`:
    /// an M:N runtime's random seed (Scheduler/RandomSource.swift).
    init(
        settings: SchedulerSettings, policy: any SchedulingPolicy, worker: Bool = false, runtimeSerial: UInt? = nil,
        sharedSeed: SharedRandomSeed? = nil
    ) {
        Scheduler.processSetUp
        self.sharedSeed = sharedSeed.map { Unmanaged.passUnretained($0) }
        let serial = Scheduler.serials.wrappingAdd(1, ordering: .relaxed).oldValue
        self.serial = serial
        self.runtimeSerial = runtimeSerial ?? serial
        self.settings = settings
        self.policy = policy
        self.fifo = policy as? FIFOPolicy
        self.simulated = settings.virtualClock
        self.timed = fifo == nil
        self.migrating = worker
        self.hooks = timed || settings.trace != nil || worker
        // The 2 ms calibration runs once per process, and only when slices or traces need it
        // (before the trace's origin is taken).
        let rate = simulated ? 1 : (timed || settings.trace != nil) ? Scheduler.calibratedNanosecondsPerTick : 1
        self.nsPerSliceUnit = rate
        self.recorder = settings.trace.map {
            TraceRecorder(trace: $0, first: runtimeSerial == nil, virtual: settings.virtualClock, nsPerUnit: rate)
        }
        self.watchdog = Watchdog(limit: settings.watchdogLimit, handler: settings.watchdogHandler)
        self.stacks = StackPool(
            mode: settings.stackMode,
            defaultSize: settings.stackSize,
            denseSize: settings.denseStackSize,
            maxPooled: settings.pooledStacks,
            logger: settings.logger)
        self.accounting = settings.cpuAccounting
        self.lastTick = uthreads_ticks_inline()
        self.checks = settings.checkInvariants
        idleBlock = ControlBlock.allocate(capacity: 1)
        idleBlock.initialize(to: uthreads_tcb())
        idleBlock.pointee.state = .stateRunning
        idleBlock.pointee.stack_mode = UInt8(UTHREADS_STACK_KERNEL)
        idleBlock.setName("scheduler")
        current = idleBlock
    }

    deinit {
        if let t = hostedRow, let o = t.pointee.object { Unmanaged<ThreadObject>.fromOpaque(o).release() }
        while let t = slab.take() { if let o = t.pointee.object { Unmanaged<ThreadObject>.fromOpaque(o).release() } }
        slab.deallocate()
        while let object = keptObjects.take() { object.release() }
        keptObjects.deallocate()
        idleBlock.deinitialize(count: 1)
        idleBlock.deallocate()
    }

    /// The scheduler of the calling kernel thread, or nil outside a runtime.
    @inline(__always)
    static var active: Scheduler? {
        guard let p = uthreads_get_runtime() else { return nil }
        return Unmanaged<Scheduler>.fromOpaque(p).takeUnretainedValue()
    }

    /// The scheduler of the calling kernel thread; stops with a clear message outside one.
    @inline(__always)
    static func require(_ api: StaticString) -> Scheduler {
        guard let p = uthreads_get_runtime() else { misuse(api) }
        return Unmanaged<Scheduler>.fromOpaque(p).takeUnretainedValue()
    }

    /// Runs `body` with the calling kernel thread's scheduler without retaining it (the hot
    /// paths: yield, spawn, park). Stops with a clear message outside a runtime.
    @inline(__always)
    static func with<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) rethrows -> R {
        guard let p = uthreads_get_runtime() else { misuse(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `with`, reading the runtime inline (`uthreads_get_runtime_here`: ~5 instructions less),
    /// for an entry point kept out of line (`@inline(never)`) that reads it once, before
    /// anything else (the header says why only there).
    @inline(__always)
    static func withAtEntry<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) rethrows -> R {
        guard let p = uthreads_get_runtime_here() else { misuse(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `withAtEntry` for an entry point that answers outside a runtime instead of stopping
    /// (`UThread.init`: a finished thread), with `outside()`. The same cost when a runtime
    /// runs; keeps `body` inlined (a closure literal given to `_withUnsafeGuaranteedRef` in
    /// the entry point itself stayed a function of its own: +74 instructions per spawn).
    @inline(__always)
    static func withAtEntry<R>(orElse outside: () throws -> R, _ body: (Scheduler) throws -> R) rethrows -> R {
        guard let p = uthreads_get_runtime_here() else { return try outside() }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `withOrThrow`, reading the runtime inline, on the terms of `withAtEntry`.
    @inline(__always)
    static func withOrThrowAtEntry<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) throws -> R {
        guard let p = uthreads_get_runtime_here() else { throw outsideUserThread(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `require` for the entry points that throw: a call from outside a runtime is an error they
    /// report, not a reason to stop the process (only those that cannot throw stop).
    /// - Throws: `UThreadError.invalidArgument` naming `api` (`outsideUserThread`).
    @inline(__always)
    static func requireOrThrow(_ api: StaticString) throws(UThreadError) -> Scheduler {
        guard let p = uthreads_get_runtime() else { throw outsideUserThread(api) }
        return Unmanaged<Scheduler>.fromOpaque(p).takeUnretainedValue()
    }

    /// `with` for the entry points that throw (see `requireOrThrow`); the same cost when a
    /// runtime runs.
    @inline(__always)
    static func withOrThrow<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) throws -> R {
        guard let p = uthreads_get_runtime() else { try throwOutsideUserThread(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// The error of a throwing entry point called outside a user thread (outside any runtime,
    /// or on a runtime's idle loop).
    @inline(never)
    static func outsideUserThread(_ api: StaticString) -> UThreadError {
        .invalidArgument("\(api) must be called on a user thread (inside UThreadRuntime.run { … })")
    }

    /// Throws `outsideUserThread(api)`: out of line with the error's boxing, so that an entry
    /// point's frame holds only its fast path.
    @usableFromInline @inline(never)
    static func throwOutsideUserThread(_ api: StaticString) throws -> Never {
        throw outsideUserThread(api)
    }

    @inline(never)
    static func misuse(_ api: StaticString) -> Never {
        let message =
            "UserThreads: \(api) was called outside a user thread. Call it from code running inside UThreadRuntime.run { … }."
        uthreads_write_stderr("\n" + message + "\n")
        preconditionFailure(message)
    }

    /// Whether the caller runs on a user thread of this scheduler (not the idle loop).
    var onUserThread: Bool { current != idleBlock }

    // MARK: Time

    /// The scheduler's clock in nanoseconds: CLOCK_MONOTONIC, or the virtual clock.
    @inline(__always) func now() -> UInt64 { simulated ? virtualNow : uthreads_monotonic_ns() }

    /// The clock time slices are measured on: TSC ticks (cheap), or virtual nanoseconds.
    @inline(__always) func sliceClock() -> UInt64 { simulated ? virtualNow : uthreads_ticks_inline() }

    /// TSC rate, measured once per process over 2 ms (before the first timed runtime starts).
    static let calibratedNanosecondsPerTick: Double = {
        let n0 = uthreads_monotonic_ns()
        let t0 = uthreads_ticks_inline()
        var n1 = n0
        while n1 &- n0 < 2_000_000 { n1 = uthreads_monotonic_ns() }
        let ticks = Double(uthreads_ticks_inline() &- t0)
        return ticks > 0 ? Double(n1 &- n0) / ticks : 1
    }()

    /// Nanoseconds per TSC tick, from the ticks and nanoseconds elapsed since start.
    func nanosecondsPerTick() -> Double {
        let dt = Double(uthreads_ticks_inline() &- startTick)
        let dn = Double(uthreads_monotonic_ns() &- startNanoseconds)
        return dt > 1e6 ? dn / dt : 0.4
    }

    // MARK: The run queue (through the policy)

    @inline(__always)
    private func makeReady(_ t: ControlBlock, _ reason: ReadyReason) {
        if let fifo {
            fifo.awakened(ThreadRef(t), reason: reason)
        } else {
            policy.awakened(ThreadRef(t), reason: reason)
        }
    }

    @inline(__always)
    private func nextReady() -> ControlBlock? {
        if let fifo { return fifo.pickNext()?.block }
        return policy.pickNext()?.block
    }

    @inline(__always)
    var hasReadyThreads: Bool {
        if let fifo { return fifo.hasReadyThreads }
        return policy.hasReadyThreads
    }

    @inline(__always)
    private func stopped(_ t: ControlBlock, finished: Bool) {
        if fifo == nil {
            charge(t)
            policy.stopped(ThreadRef(t), finished: finished)
        }
    }

    /// Requeues the running thread through a non-FIFO policy: charges its run time first.
    @inline(never)
    func requeueTimed(_ t: ControlBlock, _ reason: ReadyReason) {
        charge(t)
        policy.awakened(ThreadRef(t), reason: reason)
    }

    // MARK: Spawning

    /// A new thread id from this runtime's block of ids (an M:N thread's, given at spawn). O(1).
    func allocateID() -> UInt64 { ids.allocate() }

    /// Creates a thread for `object` and makes it ready, on `keptRow` (a row from the slab, with
    /// its stack: `spawnKept`, `takeKeptRow`) or on a new row and pooled stack. O(1) with a pooled stack.
    /// Inlined into its few callers (UThread's spawn among them: ~20 instructions of call per
    /// spawn).
    @inline(__always)
    func spawn(
        _ object: ThreadObject, priority: Int, stackSize: Int?, flags: UInt32 = 0,
        parameters: SchedulingParameters? = nil, presetID: UInt64 = 0, keptRow: ControlBlock? = nil,
        objectRetained: Bool = false
    ) throws(UThreadError) -> ControlBlock {
        let t: ControlBlock
        if let keptRow {
            t = keptRow
            // What the previous thread's life may have left and a spawn does not write below
            // (the row was zeroed before its first spawn); the stack's fields, `runtime` and
            // `worker` stay, `object` is written below.
            t.pointee.wait_kind = 0
            t.pointee.wake_result = 0
            t.pointee.priority = priority == 0 ? 0 : Int32(clamping: priority)  // no clamping for the default
            t.pointee.wait_object = 0
            t.pointee.exclusivity = (nil, nil)
            t.pointee.deadline_ns = 0
            t.pointee.wait_since_tick = 0
            t.pointee.switches = 0
            t.pointee.cpu_ticks = 0
            t.pointee.policy_data = (0, 0)
            t.pointee.mn_token = 0
            t.pointee.tsan_fiber = nil
            if !object.isNamed { t.pointee.name.0 = 0 }  // else written below
        } else {
            // Most spawns pass neither argument: two nil tests, and the range tests out of line
            // (inline, the compiler evaluated both of them on every spawn: ~20 instructions).
            if stackSize != nil || parameters != nil { try Scheduler.validate(stackSize, parameters) }
            let stack = try stacks.allocate(size: stackSize)
            t = table.allocate()  // zeroed
            t.pointee.stack_lo = stack.lo.assumingMemoryBound(to: CChar.self)
            t.pointee.stack_hi = stack.hi.assumingMemoryBound(to: CChar.self)
            t.pointee.guard_size = UInt64(truncatingIfNeeded: stack.guardSize)
            t.pointee.stack_mode = stack.mode == .dense ? UInt8(UTHREADS_STACK_DENSE) : UInt8(UTHREADS_STACK_GUARDED)
            t.pointee.worker = workerIndex
            t.pointee.runtime = Unmanaged.passUnretained(self).toOpaque()
            if priority != 0 { t.pointee.priority = Int32(clamping: priority) }
        }
        // An M:N thread got its id at spawn (`presetID`), before other kernel threads could
        // read `object.id`: it is not written again. The M:1 callers pass the constant 0.
        let id: UInt64
        if presetID == 0 {
            id = ids.allocate()
            object.id = ThreadID(rawValue: id)
        } else {
            id = presetID
        }
        object.controlBlock = t
        t.pointee.id = id
        // A row spawned with the default stack size may be kept for another such spawn
        // (`hostedRow`); a constant on the kept-row path.
        t.pointee.flags = stackSize == nil ? flags | .flagDefaultStack : flags
        let hi = UnsafeMutableRawPointer(t.pointee.stack_hi.unsafelyUnwrapped)
        if t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) {
            (UnsafeMutableRawPointer(t.pointee.stack_lo.unsafelyUnwrapped) - 16).storeBytes(
                of: UTHREADS_CANARY, as: UInt64.self)  // Stack.canaryAddress
        }
        t.pointee.parent_id = current.pointee.id
        t.pointee.created_tick = accounting ? lastTick : uthreads_ticks_inline()
        // The row's +1: a new one, or the caller's (`objectRetained`: an M:N queue slot's, or
        // `spawnKept`'s, handed over; not taken when the spawn throws, above).
        t.pointee.object =
            objectRetained ? Unmanaged.passUnretained(object).toOpaque() : Unmanaged.passRetained(object).toOpaque()
        object.runtime = t.pointee.runtime
        if object.isNamed { t.setName(object.name) }
        // A kept row whose last thread ran hosted and never left the CPU still has its first
        // frame, exactly as this would write it (`uthreads_context_frame`; the essay's "Stack").
        // (Compared as addresses: an optional compared with a pointer tests for nil first.)
        if UInt(bitPattern: t.pointee.sp) != UInt(bitPattern: uthreads_context_frame(hi)) {
            t.pointee.sp = uthreads_context_make(hi, threadEntry, UnsafeMutableRawPointer(t))
        }
        if tsan { uthreads_tsan_fiber_create(t) }
        t.pointee.state = .stateReady
        spawnCount &+= 1
        if flags & .flagMain != 0 { mainObject = object }
        setSchedulingParameters(t, parameters)
        if let recorder {
            let d = t.pointee.sched_deadline_ns
            recorder.spawned(
                t, name: object.name, deadlineAfter: d == .max ? nil : d &- min(d, now()), at: sliceClock())
        }
        makeReady(t, .spawned)
        return t
    }

    /// The spawn on a finished thread's row kept in the slab (ThreadObjectSlab's essay): the
    /// row keeps its stack, runtime and worker, and its object when no handle references it any
    /// more (else a new one). Returns the thread's object, still empty (the caller installs the
    /// body), or nil when no row is kept. M:1 only (an M:N worker's kept rows have no object:
    /// `keepRow`), default stack size, no scheduling parameters. `named`: `!name.isEmpty`.
    @inline(__always)
    func spawnKept(
        name: String, named: Bool, priority: Int, witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void,
        witnessType: ObjectIdentifier
    ) -> ThreadObject? {
        let t: ControlBlock
        if let row = hostedRow {
            // Still counted live, its stack in use: nothing to take back.
            hostedRow = nil
            t = row
        } else {
            guard let row = slab.take() else { return nil }
            stacks.takeBack(dense: row.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE))
            table.revive(row)
            t = row
        }
        // Unmanaged from here on, +1 ours: with a strong reference the compiler retained and
        // released the object around the inlined spawn (~40 instructions per spawn+join).
        // The row keeps the +1 it has; the caller's handle gets a second one, taken without a
        // locked instruction: the object is referenced by the row alone (uniquely referenced, or
        // new), so no other kernel thread can change its count meanwhile (swift_retain's locked
        // add and hook test: 10 instructions more per spawn). The handle's release later is
        // atomic, as any.
        let kept = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        let object: Unmanaged<ThreadObject>
        if kept._withUnsafeGuaranteedRef({ $0.witnessType == witnessType }) && retainIfUnreferenced(kept) {
            let unused = kept
            unused._withUnsafeGuaranteedRef { unused in
                if checks {
                    precondition(
                        unused.isFinished && unused.controlBlock == nil && unused.isEmpty && unused.locals == nil,
                        "reusable thread object \(unused.id) is still in use")
                }
                unused.recycle(name: name, named: named)
            }
            object = unused
        } else {
            // The row's +1 released: the old object's handles free it (or it is freed now: made
            // for another result type).
            kept.release()
            object = Unmanaged.passRetained(ThreadObject(name: name, witness: witness, witnessType: witnessType))
            _ = uthreads_retain_unshared(object.toOpaque())
        }
        // Cannot throw: a kept row needs no stack or row, and the arguments are the defaults.
        object._withUnsafeGuaranteedRef {
            _ = try? spawn($0, priority: priority, stackSize: nil, keptRow: t, objectRetained: true)
        }
        return object.takeRetainedValue()
    }

    /// Whether nothing but the kept row references `object` (`isKnownUniquelyReferenced`); if
    /// so, a second reference (the caller's handle) is taken, non-atomically. Inline where the
    /// runtime's counts have the layout checked at start (`inlineRefCounts`: one load and a
    /// store, against two calls, ~20 instructions).
    @inline(__always)
    private func retainIfUnreferenced(_ object: Unmanaged<ThreadObject>) -> Bool {
        if inlineRefCounts { return uthreads_retain_if_unique(object.toOpaque()) != 0 }
        return uthreads_retain_if_unique_called(object.toOpaque()) != 0
    }

    /// Whether `uthreads_retain_if_unique` may be used: libswiftCore's inline reference counts
    /// have the layout it assumes, checked once per process against the runtime's own retain,
    /// release and uniqueness test on a new object (cuthreads.h); else the runtime's calls.
    let inlineRefCounts = Scheduler.refCountsChecked
    static let refCountsChecked: Bool = {
        // Its only reference, whatever the optimiser does (a local strong reference may be
        // copied for a call: the check would then see two).
        let probe = Unmanaged.passRetained(RefCountProbe())
        defer { probe.release() }
        return uthreads_refcount_layout_check(probe.toOpaque()) == 1
    }()

    /// Throws when `stackSize` or `parameters` is out of range (spawn's arguments).
    @inline(never)
    private static func validate(_ stackSize: Int?, _ parameters: SchedulingParameters?) throws(UThreadError) {
        if let stackSize,
            stackSize < SchedulerSettings.minimumStackSize || stackSize > SchedulerSettings.maximumStackSize
        {
            throw .invalidArgument(
                "stackSize \(stackSize) is outside \(SchedulerSettings.minimumStackSize)...\(SchedulerSettings.maximumStackSize) bytes"
            )
        }
        if let parameters, parameters.tickets > SchedulingParameters.maximumTickets {
            throw .invalidArgument(
                "tickets \(parameters.tickets) is above the maximum \(SchedulingParameters.maximumTickets) (a stride would be 0)"
            )
        }
    }

    // MARK: Switching

    /// Suspends `from` (already queued or parked by the caller) and runs `next`.
    @inline(__always)
    private func switchTo(_ next: ControlBlock, from: ControlBlock) {
        if hostingJoiner != nil { unhost(from) }
        ContextSwitch.saveExclusivity(from, liveHead: liveAccessHead)
        if from.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) {
            checkCanary(from)
        }
        if accounting {
            let tick = uthreads_ticks_inline()
            from.pointee.cpu_ticks &+= tick &- from.pointee.run_start_tick
            from.pointee.wait_since_tick = tick  // off the CPU since now (a park's start)
            next.pointee.run_start_tick = tick
            lastTick = tick
        }
        next.pointee.state = .stateRunning
        next.pointee.switches &+= 1
        switchCount &+= 1
        current = next
        uthreads_set_current(next == idleBlock ? nil : next)
        if hooks { switchHooks(from: from, to: next) }  // slices, tracing, errno; false for M:1 FIFO
        // Hand our own address to whoever we resume; receive the address of whoever resumes us.
        // Under M:N that may be another worker's scheduler (the thread migrated while it was
        // suspended): from here on `self` is stale, and only the handed-off one may be used.
        let resumer = ContextSwitch.jump(
            from: from, to: next, handoff: Unmanaged.passUnretained(self).toOpaque(), tsan: tsan)
        // Every switch passes a scheduler: no check on this path.
        Unmanaged<Scheduler>.fromOpaque(resumer.unsafelyUnwrapped)._withUnsafeGuaranteedRef { $0.resumed(from) }
    }

    /// Runs in a thread right after it was switched back in, on the scheduler that resumed it.
    @inline(__always)
    private func resumed(_ me: ControlBlock) {
        ContextSwitch.restoreExclusivity(me)
        if let z = zombie { reap(z) }
    }

    /// Dense stacks have no guard between slots (StackPool's essay): before `t` leaves the CPU,
    /// its canary must be intact and the stack pointer (still `t`'s) inside its slot.
    @inline(__always)
    fileprivate func checkCanary(_ t: ControlBlock) {
        let lo = UnsafeMutableRawPointer(t.pointee.stack_lo.unsafelyUnwrapped)
        let sp = uthreads_stack_pointer()
        if (lo - 16).load(as: UInt64.self) != UTHREADS_CANARY
            || UnsafeRawPointer(sp.unsafelyUnwrapped) < UnsafeRawPointer(lo)
        {
            uthreads_report_dense_overflow(t, sp)
        }
    }

    /// Switches from `from` (no longer runnable, or already requeued) to the next ready
    /// thread, or to the idle loop when none is ready.
    @inline(__always)
    func switchAway(from: ControlBlock) {
        let next = nextReady() ?? idleBlock
        if next == from {
            if hooks { switchHooks(from: from, to: from) }  // a new slice (never with FIFO's yield)
            from.pointee.state = .stateRunning
            return
        }
        switchTo(next, from: from)
    }

    /// Lets other ready threads run; returns at once when none is. O(1) with FIFO.
    @inline(__always)
    func yield() {
        let me = current
        yieldsUntilMaintenance &-= 1
        if yieldsUntilMaintenance <= 0 { maintenance() }
        guard hasReadyThreads else { return }
        me.pointee.state = .stateReady
        if let fifo { fifo.awakened(ThreadRef(me), reason: .yielded) } else { requeueTimed(me, .yielded) }
        // A yield is a site audited for resuming on another M:N worker (nothing here
        // uses `self` after the switch). It needs no flag: a ready thread with no wait kind was
        // suspended by a yield (or never ran), so M:1 pays nothing here.
        switchAway(from: me)
    }

    /// Fires expired timers and looks at the poller without blocking. Every 64 yields.
    @inline(never)
    func maintenance() {
        yieldsUntilMaintenance = 64
        if !timers.isEmpty { fireTimers(now: now()) }
        if let poller, poller.pendingWakeups > 0 { poller.poll(timeoutNanoseconds: 0) }
        answerSafePointRequests()
        if let foreignCancels, foreignCancels.hasPosts { applyForeignCancels(foreignCancels) }
        if let worker { worker.maintenance(self) }
    }

    // MARK: Parking and waking

    /// Parks the running thread until a wake source picks it. The caller may have put it on a
    /// WaitQueue; on any result but `.woken` it is no longer on that queue.
    ///
    /// - Parameters:
    ///   - deadline: CLOCK_MONOTONIC nanoseconds, or nil for no timeout.
    ///   - cancellable: whether `cancel()` ends the wait (every public wait is).
    @inline(never)
    func park(
        _ kind: WaitReason.Kind, object: UInt64 = 0, target: WaitTarget? = nil,
        deadline: UInt64? = nil, cancellable: Bool = true
    ) -> WakeResult {
        park(inlined: kind, object: object, target: target, deadline: deadline, cancellable: cancellable)
    }

    /// `park`, inlined into the caller: only the join uses it (the spawn+join path; a call
    /// there cost ~40 instructions per cycle). Every other wait calls `park`, which stays one
    /// frame, named in backtraces and thread dumps (debug builds name this one `park(inlined:…)`).
    @inline(__always)
    func park(
        inlined kind: WaitReason.Kind, object: UInt64 = 0, target: WaitTarget? = nil,
        deadline: UInt64? = nil, cancellable: Bool = true
    ) -> WakeResult {
        let me = current
        if me == idleBlock { Scheduler.misuse("a blocking call") }
        if cancellable && me.has(.flagCancelled) {
            WaitQueue.unlink(me)
            return .cancelled
        }
        if let deadline {
            if deadline <= now() {
                WaitQueue.unlink(me)
                return .timedOut
            }
            me.pointee.deadline_ns = deadline
            timers.insert(me)
        }
        me.pointee.state = kind == .sleep ? .stateSleeping : .stateBlocked
        me.pointee.wait_kind = kind.rawValue
        me.pointee.wait_object = object
        if !accounting { me.pointee.wait_since_tick = uthreads_ticks_inline() }  // else set by the switch
        if cancellable { me.set(.flagCancellable) }
        if let target { objectOf(me).waitTarget = target }
        stopped(me, finished: false)
        switchAway(from: me)
        me.clear(.flagCancellable)
        me.pointee.wait_kind = 0
        if target != nil { objectOf(me).waitTarget = nil }
        return WakeResult.stored(me.pointee.wake_result)
    }

    /// Makes a parked thread ready with `result`. Unlinks it from its wait queue and its
    /// timer. Returns false (and does nothing) when it is not parked. O(log timers).
    @discardableResult
    func wake(_ t: ControlBlock, _ result: WakeResult) -> Bool {
        let state = t.pointee.state
        guard state == .stateBlocked || state == .stateSleeping else { return false }
        if t.has(.flagTimer) { timers.remove(t) }
        if t.pointee.wait_queue != nil { WaitQueue.unlink(t) }
        t.pointee.wake_result = result.rawValue
        t.pointee.state = .stateReady
        if let recorder { recorder.record(.wake, t, detail: result.rawValue, at: sliceClock()) }
        makeReady(t, .woken)
        return true
    }

    /// Wakes the thread of row `block` with `result` if this scheduler owns the row and the
    /// row's current wait has `token` (a waiter's wake, Sync/Waiter.swift); else drops it: the
    /// thread gave up that wait, migrated away, or finished. O(log timers).
    @inline(__always)
    func wakeWaiting(block: UInt, token: UInt64, _ result: WakeResult) {
        // Ownership first: a late wake may name a row that migrated away since (another kernel
        // thread's now, or freed at its home); only an owned row's fields may be read.
        guard let t = ControlBlock(bitPattern: block), table.owns(t), t.pointee.mn_token == token else { return }
        wake(t, result)
    }

    /// Sets the cancelled flag and ends a cancellable wait. O(log timers).
    func cancel(_ t: ControlBlock) {
        t.set(.flagCancelled)
        objectOf(t).isCancelled = true
        // A joiner hosting the running thread is parked on no queue: unhosting makes it (and
        // the joiners up its chain) ordinary parked joiners, and wakes it, now cancelled, as
        // the normal join's park would be woken (the essay's "Parking").
        if t.has(.flagHosting) { unhost(current) } else if t.has(.flagCancellable) { wake(t, .cancelled) }
    }

    func fireTimers(now: UInt64) {
        while let t = timers.popExpired(now: now) {
            wake(t, .timedOut)
        }
    }

    /// The errno of the kernel thread that runs this scheduler (call only on that thread).
    @inline(__always)
    var errnoLocation: UnsafeMutablePointer<Int32> {
        if let p = errnoPointer { return p }
        return findErrno()
    }

    /// `errnoLocation` at the scheduler's first switch (out of line: the hot path is a load).
    @inline(never)
    private func findErrno() -> UnsafeMutablePointer<Int32> {
        let p = __errno_location()!
        errnoPointer = p
        return p
    }

    @inline(__always)
    func objectOf(_ t: ControlBlock) -> ThreadObject {
        Unmanaged<ThreadObject>.fromOpaque(t.pointee.object!).takeUnretainedValue()
    }

    // MARK: Help-first join (see the essay)

    /// Runs `t`, a thread that has not started, from the calling joiner `me`'s join until its
    /// body returns or it first leaves the CPU, when it may (see the essay's "Help-first
    /// join"). Returns nil when it may not (the caller takes the normal path), else how the
    /// join's wait ended, as the normal join's park returns it: `.woken` (the child finished,
    /// or a wake the caller re-checks), `.cancelled`, `.deadlocked`. O(1) besides the body.
    @inline(__always)
    func host(_ t: ControlBlock, joiner me: ControlBlock) -> WakeResult? {
        // `hooks` false: FIFO (`fifo` set), no tracing, not an M:N worker.
        guard !hooks, !tsan, t.pointee.switches == 0, fifo.unsafelyUnwrapped.isFirst(t), !me.has(.flagCancelled),
            me != idleBlock
        else { return nil }
        return runHosted(t, joiner: me)
    }

    @inline(__always)
    private func runHosted(_ t: ControlBlock, joiner me: ControlBlock) -> WakeResult {
        fifo.unsafelyUnwrapped.removeFirst()
        // The joiner parks on the child's join, on no queue until the child first leaves the
        // CPU (`unhost`); `uthreads_call_on_stack` saves its switch frame in `sp`.
        ContextSwitch.saveExclusivity(me, liveHead: liveAccessHead)
        me.pointee.state = .stateBlocked
        me.pointee.wait_kind = WaitReason.Kind.join.rawValue
        me.pointee.wait_object = t.pointee.id
        me.set(.flagHosting)
        me.pointee.next = hostingJoiner
        hostingJoiner = me
        let tick = uthreads_ticks_inline()
        me.pointee.wait_since_tick = tick
        if accounting {
            me.pointee.cpu_ticks &+= tick &- me.pointee.run_start_tick
            t.pointee.run_start_tick = tick
            lastTick = tick
        }
        t.pointee.state = .stateRunning
        t.pointee.switches &+= 1
        current = t
        uthreads_set_current_here(t)  // inline: M:1 only, no switch in between (cuthreads.h)
        if checks { precondition(objectOf(t).contents == .body, "thread #\(t.pointee.id) started without a body") }
        let slot = UnsafeMutableRawPointer(me).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)  // `sp`
        // The body's stack starts below the first frame spawn wrote, which a later spawn on
        // this row then need not write again (`spawn`).
        let top = uthreads_context_frame(UnsafeMutableRawPointer(t.pointee.stack_hi.unsafelyUnwrapped))
        if let resumer = uthreads_call_on_stack(UnsafeMutableRawPointer(t), hostedEntry, top, slot) {
            // Unhosted, then resumed by a switch: an ordinary parked joiner's return.
            return Scheduler.unhostedJoinReturned(me, resumer)
        }
        // The body has returned without ever leaving the CPU. The exit as `exitCurrent`'s,
        // without the switch.
        hostingJoiner = me.pointee.next  // (a stale `next` is harmless: linking a row writes it)
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        object._withUnsafeGuaranteedRef { object in
            object.isFinished = true
            if object.locals != nil { object.locals = nil }
            while let other = object.dequeue() { wake(other, .woken) }
        }
        if accounting {
            let end = uthreads_ticks_inline()
            t.pointee.cpu_ticks &+= end &- t.pointee.run_start_tick
            me.pointee.run_start_tick = end
            lastTick = end
        }
        if Scheduler.debugBuild || checks { checkNoOpenAccess(t) }
        if hostedRow == nil && t.has(.flagDefaultStack) && object._withUnsafeGuaranteedRef({ $0.resultIsTrivial }) {
            // Kept whole for the next spawn, its counts left as they are ("Thread objects").
            object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
            t.pointee.state = .stateFree
            hostedRow = t
        } else {
            t.pointee.state = .stateFinished
            // `release`, without its tests for ThreadSanitizer and immigrants: a hosted thread
            // has neither (M:1, `host`).
            let stack = stackOf(t)
            if !slab.isFull && object._withUnsafeGuaranteedRef({ $0.resultIsTrivial }) && stacks.poolsAsIs(stack) {
                keep(t, dense: stack.mode == .dense, object: object)
            } else {
                release(t)
            }
        }
        current = me
        uthreads_set_current_here(me)
        me.pointee.state = .stateRunning
        me.pointee.wait_kind = 0
        me.clear(.flagHosting)
        ContextSwitch.restoreExclusivity(me)
        // The exit's wake would have queued the joiner behind threads that are ready now.
        if fifo.unsafelyUnwrapped.hasReadyThreads {
            me.pointee.state = .stateReady
            fifo.unsafelyUnwrapped.awakened(ThreadRef(me), reason: .woken)
            switchAway(from: me)
        }
        // A cancel while hosted unhosts the joiner (`cancel`), so it is not cancelled here;
        // checked as the normal join's park result would be.
        return me.has(.flagCancelled) ? .cancelled : .woken
    }

    /// Whether the running thread is hosted (tests: the help-first join was taken).
    var runningThreadIsHosted: Bool { hostingJoiner != nil }

    /// The running thread `from` leaves the CPU while hosted: it and every joiner hosting it in
    /// turn become ordinary threads. Each joiner is then parked on its child's join queue,
    /// cancellable (woken at once when already cancelled), resumable through the switch frame
    /// `uthreads_call_on_stack` saved. O(hosting depth).
    @inline(never)
    private func unhost(_ from: ControlBlock) {
        var child = from
        while let joiner = hostingJoiner {
            hostingJoiner = joiner.pointee.next
            joiner.pointee.next = nil
            joiner.clear(.flagHosting)
            joiner.set(.flagCancellable)
            objectOf(child).enqueue(joiner)
            if joiner.has(.flagCancelled) { wake(joiner, .cancelled) }
            child = joiner
        }
    }

    /// The end of a join whose hosted child was unhosted: the joiner was resumed by a switch
    /// (`resumer` is the switcher's scheduler), as after the normal join's park.
    @inline(never)
    private static func unhostedJoinReturned(_ me: ControlBlock, _ resumer: UnsafeMutableRawPointer) -> WakeResult {
        Unmanaged<Scheduler>.fromOpaque(resumer)._withUnsafeGuaranteedRef { $0.resumed(me) }
        me.clear(.flagCancellable)
        me.pointee.wait_kind = 0
        return WakeResult.stored(me.pointee.wake_result)
    }

    /// The body of a hosted thread, on its own stack (`uthreads_call_on_stack`). Still hosted,
    /// it returns into the join (the dense canary checked here, before the stack pointer leaves
    /// the stack); unhosted, it takes the normal exit (`exitUnhosted`) and never returns.
    fileprivate static func hostedMain(_ t: ControlBlock) {
        Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)._withUnsafeGuaranteedRef { $0.run() }
        let runtime = Unmanaged<Scheduler>.fromOpaque(t.pointee.runtime.unsafelyUnwrapped)
        // Hosted still: its joiner hosts the running thread. Else nothing does (every hosting
        // chain under it was unhosted when it left the CPU).
        if runtime._withUnsafeGuaranteedRef({ $0.hostingJoiner == nil }) { exitUnhosted(t) }
        if t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) {
            runtime._withUnsafeGuaranteedRef { $0.checkCanary(t) }
        }
    }

    /// The exit of a hosted thread that was unhosted: `exitCurrent` and the final switch, as
    /// `threadMain`'s (no Swift reference lives in this frame).
    @inline(never)
    private static func exitUnhosted(_ t: ControlBlock) -> Never {
        let runtime = t.pointee.runtime.unsafelyUnwrapped
        let next = Unmanaged<Scheduler>.fromOpaque(runtime)._withUnsafeGuaranteedRef { $0.exitCurrent(t) }
        ContextSwitch.jump(from: t, to: next, handoff: runtime, tsan: false)
        fatalError("UserThreads: a finished thread was resumed")
    }

    // MARK: Thread life

    /// Body of every user thread, after the trampoline. Everything with a Swift reference
    /// happens in `life`, which returns before the final switch; this frame holds only raw
    /// pointers, because the frame that makes the final switch never returns.
    fileprivate static func threadMain(_ t: ControlBlock) -> Never {
        let next = Unmanaged<Scheduler>.fromOpaque(t.pointee.runtime.unsafelyUnwrapped)._withUnsafeGuaranteedRef {
            $0.life(t)
        }
        ContextSwitch.jump(from: t, to: next, handoff: t.pointee.runtime, tsan: next.pointee.tsan_fiber != nil)
        fatalError("UserThreads: a finished thread was resumed")
    }

    /// Runs the thread's body, then its exit: publishes the result, wakes joiners, and picks
    /// the thread to switch to. One call, not three (start, run, finish: ~25 instructions of
    /// calls per thread), on the scheduler that started the thread.
    @inline(never)
    private func life(_ t: ControlBlock) -> ControlBlock {
        resumed(t)
        if checks { precondition(objectOf(t).contents == .body, "thread #\(t.pointee.id) started without a body") }
        Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)._withUnsafeGuaranteedRef { $0.run() }
        // Under M:N the thread may have migrated while its body ran: its exit then belongs to
        // the scheduler that runs it now, and of `self` only the address is read here.
        let runtime = t.pointee.runtime.unsafelyUnwrapped
        if runtime == Unmanaged.passUnretained(self).toOpaque() { return exitCurrent(t) }
        return Scheduler.exitMigrated(t, on: runtime)
    }

    /// The exit of a thread that finished on another worker than the one that started it.
    @inline(never)
    private static func exitMigrated(_ t: ControlBlock, on runtime: UnsafeMutableRawPointer) -> ControlBlock {
        Unmanaged<Scheduler>.fromOpaque(runtime)._withUnsafeGuaranteedRef { $0.exitCurrent(t) }
    }

    @inline(__always)
    private func exitCurrent(_ t: ControlBlock) -> ControlBlock {
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        let direct = object._withUnsafeGuaranteedRef { object -> ControlBlock? in
            object.isFinished = true
            if object.locals != nil { object.locals = nil }
            guard let joiner = object.dequeue() else { return nil }
            // The spawn-join fast path: one joiner, parked without a timer, and nothing else
            // ready under FIFO. Waking it would append it to the empty run queue and
            // `nextReady` would pop it at once: switch to it directly instead (the same
            // order, ~20 instructions less). Everything else goes through `wake`.
            if object.isEmpty, let fifo, !fifo.hasReadyThreads, recorder == nil, !joiner.has(.flagTimer) {
                joiner.pointee.wake_result = WakeResult.woken.rawValue
                return joiner
            }
            wake(joiner, .woken)
            while let other = object.dequeue() { wake(other, .woken) }
            return nil
        }
        if t.has(.flagMain) { cancelAll(except: t) }
        stopped(t, finished: true)
        t.pointee.state = .stateFinished
        if t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) { checkCanary(t) }
        let tick = accounting ? uthreads_ticks_inline() : 0
        if accounting { t.pointee.cpu_ticks &+= tick &- t.pointee.run_start_tick }
        // No exclusivity save (a libswiftCore call and a TLS lookup, ~35 instructions): no
        // access can be open here. Every dynamic access Swift begins is scoped to one frame of
        // the thread that begins it (begin and end in the same function, its node on that
        // frame); the body and every frame it called have returned, and this frame and
        // `threadMain` begin none. The live access set is only ever the running thread's own
        // (every switch moves the outgoing thread's set into its row and leaves the live set
        // empty; the incoming thread's saved set is re-entered), so it is empty now, and
        // saving it would store an empty set into a row that is about to be freed. Debug
        // builds and `checkInvariants` still save it and check that it is empty.
        if Scheduler.debugBuild || checks { checkNoOpenAccess(t) }
        let next = direct ?? nextReady() ?? idleBlock
        next.pointee.state = .stateRunning
        next.pointee.switches &+= 1
        switchCount &+= 1
        if accounting {
            next.pointee.run_start_tick = tick
            lastTick = tick
        }
        current = next
        uthreads_set_current(next == idleBlock ? nil : next)
        if hooks { switchHooks(from: t, to: next) }
        if !reapOwnExit(t) { zombie = t }
        return next
    }

    /// The cheap exit: a finishing thread that can be kept whole (ThreadObjectSlab) puts
    /// its own row, stack and object in the slab before its last switch (on an M:N worker the
    /// row and stack there, the object among the kept objects: "Thread objects"), instead of leaving them
    /// as the `zombie` for whoever runs next (a store, a load and a call of `reap`: ~30
    /// instructions per thread). Safe because nothing runs on this kernel thread between here
    /// and the switch, so no spawn can take the row or the stack while this thread still uses
    /// them; the switch then writes only the kept row's `sp`, which the next spawn overwrites.
    /// Only when keeping runs no code and touches no memory or mapping: a trivial result (no
    /// deinit), a stack the pool would take as it is (`poolsAsIs`: no munmap or madvise), not
    /// under ThreadSanitizer (a fiber cannot destroy itself), not an immigrant's row on an M:N
    /// worker (it goes home: `reapImmigrant`), not when the kept objects are full (the object
    /// would be released here, and its deinit could run code). Everything else goes through
    /// the zombie.
    @inline(__always)
    private func reapOwnExit(_ t: ControlBlock) -> Bool {
        guard !tsan, !slab.isFull else { return false }
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        guard object._withUnsafeGuaranteedRef({ $0.resultIsTrivial }) else { return false }
        let stack = stackOf(t)
        guard stacks.poolsAsIs(stack) else { return false }
        if workerIndex < 0 {
            keep(t, dense: stack.mode == .dense, object: object)
            return true
        }
        // An M:N worker: the row alone, and the object to the kept objects (no release, so no
        // deinit runs here); an immigrant's row goes home instead (`reapImmigrant`).
        guard !t.has(.flagImmigrant), !keptObjects.isFull, object._withUnsafeGuaranteedRef({ $0.isCrossWorker })
        else { return false }
        keepRow(t, dense: stack.mode == .dense, object: object)
        keptObjects.keep(object)  // the row's +1 moves there
        return true
    }

    /// An M:N worker keeps a finished row whole with its stack, without its object (which
    /// belongs to the thread's spawner's worker: KeptThreadObjects.swift): the next thread this
    /// worker starts with the default stack takes it (`takeKeptRow`). The caller disposes of
    /// the object (the row's +1). O(1).
    @inline(__always)
    private func keepRow(_ t: ControlBlock, dense: Bool, object: Unmanaged<ThreadObject>) {
        stacks.keepAside(dense: dense)
        object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
        t.pointee.object = nil
        table.retire(t)
        slab.keep(t)
    }

    /// A row this M:N worker kept whole (`keepRow`), live again, for a thread with the default
    /// stack size and no scheduling parameters (`spawn(keptRow:)`); nil when none is kept. O(1).
    @inline(__always)
    func takeKeptRow() -> ControlBlock? {
        guard let t = slab.take() else { return nil }
        stacks.takeBack(dense: t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE))
        table.revive(t)
        return t
    }

    /// Puts a finished row with its stack and object in the slab (the caller checked that it
    /// may: M:1, a trivial result, a stack `poolsAsIs`, room in the slab). O(1).
    @inline(__always)
    private func keep(_ t: ControlBlock, dense: Bool, object: Unmanaged<ThreadObject>) {
        stacks.keepAside(dense: dense)
        object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
        table.retire(t)
        slab.keep(t)
    }

    /// Makes the table's live count and the stack pool's figures exact: the row kept for the
    /// next spawn (`hostedRow`) is given up as any finished row (`release`: to the slab, or its
    /// stack to the pool and the row to the table). Every reader of those figures calls it
    /// first: the idle loop, the invariants, the statistics and metrics, the teardown. O(1).
    @inline(__always)
    func settleHostedRow() {
        if let t = hostedRow { settle(t) }
    }

    @inline(never)
    private func settle(_ t: ControlBlock) {
        hostedRow = nil
        release(t)
    }

    /// Debug check of a finishing thread: its exclusivity access set is empty (see exitCurrent).
    @inline(never)
    private func checkNoOpenAccess(_ t: ControlBlock) {
        ContextSwitch.saveExclusivity(t)
        precondition(
            t.pointee.exclusivity.0 == nil && t.pointee.exclusivity.1 == nil,
            "UserThreads: thread #\(t.pointee.id) finished with an open exclusive access")
    }

    #if DEBUG
        static let debugBuild = true
    #else
        static let debugBuild = false
    #endif

    /// Returns a finished thread's stack and row, and its row's reference to the object, or
    /// keeps all three for a later spawn (`keep`). Runs on another thread's stack.
    private func reap(_ t: ControlBlock) {
        zombie = nil
        release(t)
    }

    /// `reap` without the zombie: also the exit of a hosted thread (its stack was not in use).
    @inline(__always)
    private func release(_ t: ControlBlock) {
        if tsan { uthreads_tsan_fiber_destroy(t) }
        if t.has(.flagImmigrant) { return reapImmigrant(t) }
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object!)
        let stack = stackOf(t)
        // Kept whole under M:1; an M:N worker keeps row and object apart (`releaseOnWorker`).
        if workerIndex < 0 && !slab.isFull && object._withUnsafeGuaranteedRef({ $0.resultIsTrivial })
            && stacks.poolsAsIs(stack)
        {
            return keep(t, dense: stack.mode == .dense, object: object)
        }
        if workerIndex >= 0 { return releaseOnWorker(t, object: object, stack: stack) }
        stacks.release(stack)
        object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
        table.release(t)
        object.release()
    }

    /// `release` on an M:N worker (out of line: `release` is inlined into the M:1 exit paths):
    /// the row is kept with its stack whatever the result (`keepRow`), the object goes to the
    /// kept objects when its result is trivial (KeptThreadObjects.swift), else is released.
    @inline(never)
    private func releaseOnWorker(_ t: ControlBlock, object: Unmanaged<ThreadObject>, stack: Stack) {
        if !slab.isFull && stacks.poolsAsIs(stack) {
            keepRow(t, dense: stack.mode == .dense, object: object)
        } else {
            stacks.release(stack)
            object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
            table.release(t)
        }
        if !tsan && !keptObjects.isFull && object._withUnsafeGuaranteedRef({ $0.isCrossWorker && $0.resultIsTrivial }) {
            return keptObjects.keep(object)  // the row's +1 moves there
        }
        object.release()
    }

    /// A kept M:N thread object (KeptThreadObjects.swift), with its +1, for a spawn on this
    /// worker; the caller reuses it only if nothing else references it. Nil when none is kept.
    @inline(__always)
    func takeKeptObject() -> Unmanaged<ThreadObject>? { keptObjects.take() }

    /// Gives up every row kept in the slab: stacks back to the pool, rows to the table, objects
    /// released (the runtime ends).
    private func giveUpKeptRows() {
        while let t = slab.take() {
            stacks.returnKept(stackOf(t))
            if let o = t.pointee.object { Unmanaged<ThreadObject>.fromOpaque(o).release() }  // none on a worker
            table.revive(t)
            table.release(t)
        }
    }

    /// A finished immigrant's row and stack belong to its home worker's table and pool:
    /// they go home; only the object is released here.
    @inline(never)
    private func reapImmigrant(_ t: ControlBlock) {
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object!)
        let home = Int(object.takeUnretainedValue().home)
        object.takeUnretainedValue().controlBlock = nil
        table.leave(t)
        object.release()
        worker!.finishedAbroad(t, home: home)
    }

    // MARK: M:N migration (the essay is in MN/MNWorker.swift)

    /// Unlinks up to `max` ready threads that may resume on another worker (the policy picks
    /// them: the ones it would run last) and gives up their ownership. Each comes with the
    /// policy state that travels with it (`SchedulingPolicy.emigrate`). `keep`: rows the caller
    /// keeps here although they may move. O(ready).
    func shedMigratable(max: Int, keep: (ControlBlock) -> Bool = { _ in false }) -> [Emigrant] {
        guard max > 0 else { return [] }
        let out = policy.emigrate(max: max) { Scheduler.mayMove($0.block) && !keep($0.block) }
        for e in out { table.emigrate(e.thread.block) }
        return out
    }

    /// Whether a ready thread may resume on another worker: an M:N thread that was never
    /// pinned, suspended at an audited site: an M:N wait or a sleep (MOVABLE), or a yield, an
    /// audited preemption (`UThread.checkpoint()`) or never run (no wait kind: every park sets
    /// one and clears it only once the thread runs again; a preemption inside the runtime marks
    /// itself UNAUDITED).
    @inline(__always)
    static func mayMove(_ t: ControlBlock) -> Bool {
        t.has(.flagMigratable)
            && (t.has(.flagMovable) || (t.pointee.wait_kind == 0 && !t.has(.flagUnaudited)))
    }

    /// Takes the ready thread `t` back from the policy and gives up its ownership (it moves to
    /// another worker); nil when the policy does not give it up.
    func emigrate(_ t: ControlBlock) -> Emigrant? {
        guard let e = policy.emigrate(max: 1, where: { $0.block == t }).first else { return nil }
        table.emigrate(t)
        return e
    }

    /// Ready threads on the run queue.
    var readyCountForShedding: Int { fifo?.readyCount ?? policy.readyCount }

    /// Takes ownership of a ready thread another worker gave up and makes it ready here, with
    /// the policy state it brought (`SchedulingPolicy.immigrate`).
    func adopt(_ t: ControlBlock, state: (any Sendable)?) {
        t.pointee.runtime = Unmanaged.passUnretained(self).toOpaque()
        t.pointee.worker = workerIndex
        let object = objectOf(t)
        object.migrations &+= 1
        object.runtime = t.pointee.runtime
        table.immigrate(t)
        if let fifo { fifo.immigrate(ThreadRef(t), state: state) } else { policy.immigrate(ThreadRef(t), state: state) }
    }

    /// Frees a row of this table (and its stack) whose thread finished on another worker.
    func reclaim(_ t: ControlBlock) {
        stacks.release(stackOf(t))
        table.returned(t)
    }

    /// Cancels every live thread but `except` (used when the main thread returns).
    func cancelAll(except: ControlBlock?) {
        table.forEachLive { t in
            if t != except && t.pointee.state != .stateFinished { cancel(t) }
        }
    }

    // MARK: The idle loop

    /// Runs until every thread has finished. Runs on the kernel thread's own stack.
    func runLoop() {
        if tsan { uthreads_tsan_fiber_adopt(idleBlock) }
        liveAccessHead = uthreads_exclusivity_head()
        while true {
            if let next = nextReady() {
                switchTo(next, from: idleBlock)
                continue
            }
            // An M:N worker decides the rest itself (remote wakes, stealing, sleeping in
            // its reactor, global termination and deadlock); false ends the loop.
            if let worker {
                if worker.idle(self) { continue }
                return
            }
            settleHostedRow()
            if table.liveCount == 0 { return }
            answerSafePointRequests()
            if let foreignCancels, foreignCancels.hasPosts {
                applyForeignCancels(foreignCancels)
                if hasReadyThreads { continue }
            }
            if checks { checkInvariants() }
            if !timers.isEmpty { fireTimers(now: now()) }
            if hasReadyThreads { continue }
            let pending = poller?.pendingWakeups ?? 0
            if let deadline = timers.nextDeadline {
                if simulated {
                    // Virtual time jumps to the next deadline instead of sleeping.
                    if pending > 0 { poller!.poll(timeoutNanoseconds: 0) }
                    if virtualNow < deadline { virtualNow = deadline }
                    continue
                }
                let wait = min(deadline &- min(deadline, now()), idleWakeLimit)
                if pending > 0 { poller!.poll(timeoutNanoseconds: wait) } else { sleepKernelThread(nanoseconds: wait) }
                continue
            }
            if pending > 0 {
                poller!.poll(timeoutNanoseconds: idleWakeLimit == .max ? nil : idleWakeLimit)
                continue
            }
            if !handleDeadlock() { return }
        }
    }

    private func sleepKernelThread(nanoseconds: UInt64) {
        guard nanoseconds > 0 else { return }
        // M:1: a sleep that every post, control request and dump signal ends (its bell:
        // ForeignCancels.swift).
        if let foreignCancels { return foreignCancels.sleep(nanoseconds: nanoseconds) }
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        // EINTR ends the sleep early: the loop recomputes the wait after a signal (a dump
        // request is answered then, not when the next timer fires).
        _ = nanosleep(&request, &remaining)
    }

    /// No thread can ever run again. Reports, then wakes everyone with `.deadlocked` so they
    /// unwind. Returns false when the loop must give up (a second deadlock while unwinding).
    private func handleDeadlock() -> Bool {
        deadlockPasses += 1
        if deadlock == nil {
            let report = DeadlockReport(scheduler: self)
            deadlock = report
            uthreads_write_stderr("\n" + report.description + "\n")
        }
        if deadlockPasses > 1 {
            // Threads that parked again while unwinding: abandon them (their stacks stay
            // mapped until the runtime is torn down; their objects leak).
            return false
        }
        table.forEachLive { t in
            if t.pointee.state == .stateBlocked || t.pointee.state == .stateSleeping {
                t.set(.flagCancelled)
                wake(t, .deadlocked)
            }
        }
        return true
    }

    /// Wakes every parked thread with `result` and the cancelled flag (M:N deadlock teardown).
    func wakeAllParked(_ result: WakeResult) {
        table.forEachLive { t in
            if t.pointee.state == .stateBlocked || t.pointee.state == .stateSleeping {
                t.set(.flagCancelled)
                wake(t, result)
            }
        }
    }

    // MARK: Invariants

    /// Debug check of the table, the timer heap and the policy. O(threads).
    func checkInvariants() {
        settleHostedRow()
        timers.checkInvariants()
        policy.checkInvariants()
        var live = 0
        table.forEachLive { t in
            live += 1
            let s = t.pointee.state
            precondition(s != .stateRunning || t == current, "thread #\(t.pointee.id) is running but not current")
            precondition(
                t.has(.flagTimer) == false || s == .stateBlocked || s == .stateSleeping,
                "thread #\(t.pointee.id) has a timer but is not parked")
            precondition(
                t.pointee.wait_queue == nil || s == .stateBlocked,
                "thread #\(t.pointee.id) is on a wait queue but not blocked")
            precondition(
                !t.has(.flagHosting) || (s == .stateBlocked && t.pointee.wait_queue == nil && !t.has(.flagTimer)),
                "thread #\(t.pointee.id) hosts a thread but is not parked on nothing")
        }
        precondition(live == table.liveCount, "thread table count \(table.liveCount) but \(live) live rows")
        // No time slice runs while the idle loop has the CPU.
        precondition(current != idleBlock || sliceEnd == .max, "the idle loop holds a time slice")
    }

    /// Deadlock reports this scheduler wrote (at most one per M:1 runtime; M:N workers report
    /// through their runtime instead).
    var deadlockReports: Int { deadlock == nil ? 0 : 1 }

    /// Tears down what is left after the loop ended (abandoned threads included).
    func shutdown() {
        settleHostedRow()
        sampler?.sample(self)  // the last figures, before the table and the pool are torn down
        if let z = zombie { reap(z) }
        giveUpKeptRows()
        recorder?.finish(nsPerUnit: nsPerSliceUnit)
        watchdog.flush()
        uthreads_checkpoint_arm(Int64.max / 2)
        var abandoned: [ControlBlock] = []
        table.forEachLive { abandoned.append($0) }
        for t in abandoned where !t.has(.flagImmigrant) {  // immigrants' stacks are their home's
            // Abandoned after a second deadlock: their stacks are unmapped with the pool, their
            // Swift objects leak (they may still reference the stacks' contents).
            if t.has(.flagTimer) { timers.remove(t) }
            if t.pointee.wait_queue != nil { WaitQueue.unlink(t) }
            if tsan { uthreads_tsan_fiber_destroy(t) }
            stacks.release(stackOf(t))
            table.release(t)
        }
        stacks.destroy()
        poller?.shutdown()
        poller = nil
    }

    private func stackOf(_ t: ControlBlock) -> Stack {
        let mode: StackMode = t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) ? .dense : .guarded
        // Set by spawn for every row that has a stack (no checks on the reap path).
        return Stack(
            lo: UnsafeMutableRawPointer(t.pointee.stack_lo.unsafelyUnwrapped),
            hi: UnsafeMutableRawPointer(t.pointee.stack_hi.unsafelyUnwrapped),
            guardSize: Int(truncatingIfNeeded: t.pointee.guard_size), mode: mode)
    }
}

/// A new object for the check of the reference-count layout (`Scheduler.refCountsChecked`).
private final class RefCountProbe {}

/// The C entry point of a hosted thread's body (called by uthreads_call_on_stack).
private let hostedEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    Scheduler.hostedMain(arg.unsafelyUnwrapped.assumingMemoryBound(to: uthreads_tcb.self))
}

/// The C entry point of every user thread (called by uthreads_trampoline).
private let threadEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    Scheduler.threadMain(arg.unsafelyUnwrapped.assumingMemoryBound(to: uthreads_tcb.self))
}
