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
    @exclusivity(unchecked) var current: ControlBlock
    /// The kernel thread's own context (the idle loop). Not in the table.
    let idleBlock: ControlBlock
    let table = ControlBlockTable()
    let stacks: StackPool
    @exclusivity(unchecked) var timers = TimerHeap()
    let policy: any SchedulingPolicy
    /// The policy again when it is the built-in FIFO: its final methods are then inlined into
    /// the switch path instead of called through the protocol witness table (three indirect
    /// calls per yield, ~4 ns). Every other policy goes through `policy`.
    let fifo: FIFOPolicy?
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
    @exclusivity(unchecked) var zombie: ControlBlock?
    /// The joiner that hosts the running thread (essay, "Help-first join"), or nil. Each
    /// hosting joiner's `next` (it is on no queue) names the joiner hosting it in turn.
    @exclusivity(unchecked) var hostingJoiner: ControlBlock?
    /// This kernel thread's live exclusivity access-set head inside libswiftCore, set when the
    /// idle loop starts (on the scheduler's own kernel thread), or nil where it cannot be found:
    /// a switch then skips saving an empty set (ContextSwitch.saveExclusivity).
    @exclusivity(unchecked) var liveAccessHead: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    @exclusivity(unchecked) var ids = ThreadIDAllocator()
    @exclusivity(unchecked) var yieldsUntilMaintenance = 64
    /// The TSC at the last switch (with accounting on): the "now" of cheap timestamps such as a
    /// spawn's creation time, exact to within the running thread's current turn. A TSC read
    /// costs ~10 ns in this VM, a third of a switch.
    @exclusivity(unchecked) var lastTick: UInt64 = 0
    let accounting: Bool
    let checks: Bool
    /// The main user thread (the closure given to run).
    var mainObject: ThreadObject?
    /// Set when a deadlock was found; `run` throws it.
    var deadlock: DeadlockReport?
    var deadlockPasses = 0
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
    @exclusivity(unchecked) var errnoPointer: UnsafeMutablePointer<Int32>?
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
    @exclusivity(unchecked) var switchCount: UInt64 = 0
    /// Threads spawned in this runtime's life.
    @exclusivity(unchecked) var spawnCount: UInt64 = 0
    /// Threads that finished with a trivial result, kept whole (row, stack, object) for later
    /// spawns (`spawnKept`). M:1 only. See "Thread objects" in the essay.
    @exclusivity(unchecked) var slab = ThreadObjectSlab()
    /// The row of the last thread a help-first join ran to its end, kept whole for the next
    /// spawn (`spawnKept` takes it before the slab), or nil: FREE, but still counted live in the
    /// table and its stack in the pool's `inUse` until it is settled (`settleHostedRow`). See
    /// "Thread objects" in the essay. M:1 only.
    @exclusivity(unchecked) var hostedRow: ControlBlock?
    /// M:N threads' objects that finished here with a trivial result, for this worker's next
    /// spawns (KeptThreadObjects.swift; `keepObject`, `takeKeptObject`). M:N workers only.
    @exclusivity(unchecked) var keptObjects = KeptThreadObjects()
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
    func makeReady(_ t: ControlBlock, _ reason: ReadyReason) {
        if let fifo {
            fifo.awakened(ThreadRef(t), reason: reason)
        } else {
            policy.awakened(ThreadRef(t), reason: reason)
        }
    }

    @inline(__always)
    func nextReady() -> ControlBlock? {
        if let fifo { return fifo.pickNext()?.block }
        return policy.pickNext()?.block
    }

    @inline(__always)
    var hasReadyThreads: Bool {
        if let fifo { return fifo.hasReadyThreads }
        return policy.hasReadyThreads
    }

    @inline(__always)
    func stopped(_ t: ControlBlock, finished: Bool) {
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

    /// Whether `uthreads_retain_if_unique` may be used: libswiftCore's inline reference counts
    /// have the layout it assumes, checked once per process against the runtime's own retain,
    /// release and uniqueness test on a new object (cuthreads.h); else the runtime's calls.
    let inlineRefCounts = Scheduler.refCountsChecked
}
