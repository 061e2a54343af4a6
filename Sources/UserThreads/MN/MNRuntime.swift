// Layer 10: the hybrid M:N runtime — user threads over N worker kernel threads.
//
// Design essay
// ============
//
// Shape. `UThreadRuntime.run(workers: N)` starts N-1 kernel threads and makes the calling one
// worker 0. Every worker *is* an M:1 runtime: its own `Scheduler` (thread table, stack pool,
// timer heap, policy, run queue), its own reactor (epoll set, completion mailbox). A switch,
// park, wake or yield inside a worker is the M:1 one, with no lock and no atomic (migration
// added a register move to the switch and errno to M:N workers' switch hooks: MNWorker.swift). A
// shared coordinator (`MNRuntime`) adds what is between workers:
//   * per-worker queues of *not yet started* M:N threads (`MNThreadObject`, at most one
//     allocation per thread: see MNThreadObject.swift; the queue: MNSpawnQueue.swift), plus an injection queue for spawns from kernel
//     threads that are not workers (`UThreadRuntime.Handle.spawn`);
//   * stealing: an idle worker takes its own queued threads first, then the injection queue,
//     then a batch of migrants (MNWorker.swift), then the oldest half (up to 32) of the queue of a
//     worker that is *behind* (MNWorker.swift);
//   * a mailbox per worker for what other kernel threads ask of it: "wake your thread T from
//     its cross-worker wait W", "cancel your thread T", "start this thread", and "free your
//     row R, whose thread finished on my worker" (migration);
//   * sleeping: an idle worker sleeps in its reactor's epoll_wait (so I/O, timers and offload
//     completions wake it too); other workers ring its *doorbell*, an eventfd in that epoll
//     set, only when it announced that it sleeps (one CAS; a busy worker is never rung);
//   * per-worker counts of threads spawned and finished (termination: `liveCount`) and a
//     count of workers that sleep with nothing that could wake them but another worker
//     (deadlock detection across workers).
//
// What a worker's threads share. A `UThread { … }` body is `sending`, so the thread may start
// and move on any worker; `UThread.local { … }` spawns a *worker-local* thread (never stolen,
// never migrated) from a pinned thread, and that one may share non-Sendable state with its
// spawner. The sync primitives (UMutex, UCondition, USemaphore, URWLock, UWaitGroup, UBarrier,
// UOnce, Channel and channelSelect: Sync/SyncSupport.swift) work on one worker and across
// workers alike, and `UThread.join`'s joiners wait under striped locks (MNThreadObject.swift).
// A lock per shared object guards the state and the list of waiters; the waiter parks after
// releasing it; the waker removes the waiter under it and sends the wake
// (locally: `Scheduler.wake`; remotely: the mailbox), applied by the worker that owns the
// sleeper, on its own kernel thread, after the sleeper's context was saved (a parked thread
// never moves). A wait carries a token (`uthreads_tcb.mn_token`, unique in the runtime); a wake
// whose token no longer matches (the waiter timed out, was cancelled, or finished and its row
// was reused) is dropped, so a late wake can never hit the wrong wait.
//
// Timers and I/O: one poller per worker (each worker's reactor). No lock on the I/O path, and
// a descriptor's waiters are always on the reactor of the worker the waiting thread runs on: a
// thread parked in an I/O wait never moves, and one that waited before registers again on its
// new worker's reactor at its next wait, while the worker it left drops its idle entry
// (Reactor.swift, "Threads that waited on a descriptor move").
//
// Closing a descriptor. Several workers' reactors may watch one descriptor (per-worker
// acceptors on one listener; a reader on one worker, its closer on another). The runtime's
// `DescriptorRegistry` records which, and a close reaches every watcher through its mailbox
// (`MNMail.closeDescriptor`) before close(2): the deferred close, argued once in
// Reactor/DescriptorRegistry.swift.
//
// `blocking {}`: the caller parks on its worker (whose other threads keep running, and whose
// queued threads idle workers steal); the pool posts the completion to that worker's reactor.
//
// Termination. When the main thread returns, every worker cancels its live threads (at its
// next idle pass or maintenance) and starts later threads already cancelled (adopted migrants
// too); the runtime ends when no M:N thread is live, every worker's table is empty and every
// row abroad came home.
//
// Spawns from outside at the end. A spawn from a kernel thread outside the workers
// (`UThreadRuntime.Handle.spawn`) either runs, or finishes unstarted with
// `UThreadError.runtimeEnded` at once (as under `workers: 1`: Runtime/InjectedThread.swift);
// never is it queued where no worker will look. The injection queue's lock decides: the spawn,
// under it, counts the thread live (`externalSpawns`) and queues it, unless the queue is
// `injectionClosed`; a worker that finds the runtime finished (main returned, `liveCount()` 0)
// takes the same lock, reads `liveCount()` again and only then closes the queue, and a worker
// ends its loop only after the queue is closed (`finishedAndClosed`). So either the spawn took
// the lock first (the closer then counts it live, the runtime is not finished, and a worker
// starts it — cancelled, as every thread after main returned), or the closer did (the spawn
// sees the queue closed and fails the thread). Nothing else can make a thread once the queue is
// closed: every other spawn comes from a live thread, and none is left. A runtime abandoned
// after a deadlock ends with its queue open; `tearDown` closes it and fails what is still
// queued, so joiners outside are not left waiting either.
// A spawn, cancel or wake from a kernel thread that is not a worker is a hand-in: bracketed
// (`handIns`), so that the deadlock check never reads it half done (MNHandIns.swift).
//
// Rejected designs (the worker's own are in MNWorker.swift):
//   * One global run queue and thread table under a lock: every spawn, wake and switch would
//     take it; M:1 would pay, or need a second scheduler.
//   * A futex per worker for sleeping: then a worker waiting for I/O could not also wait for
//     work; the eventfd in the epoll set serves both.
//   * One global count of live threads and of queued threads (two atomics every spawn, start
//     and exit wrote from every worker: a contended line per thread). Per-worker counters
//     written by their owner instead; the rare readers sum them.
import CUThreads
import Glibc
import SystemPackage
import Synchronization

/// The shared part of an M:N runtime.
@usableFromInline
final class MNRuntime: DescriptorCloseDelegate, @unchecked Sendable {
    let settings: MNSettings
    private(set) var workers: [MNWorker] = []
    /// Which workers' reactors watch each descriptor, and the deferred closes in flight (a
    /// close reaches every worker: Reactor/DescriptorRegistry.swift).
    let descriptors = DescriptorRegistry()
    /// Spawns from kernel threads that are not workers.
    let injection = KernelLock(MNFIFO<MNThreadObject>())
    /// Threads in the injection queue (changed under its lock; read without it as a hint).
    let injected = Atomic<Int>(0)
    /// The injection queue takes no more threads: the runtime has ended (see "Spawns from
    /// outside at the end"). Written under the queue's lock, once; read without it as a hint.
    let injectionClosed = Atomic<Bool>(false)
    /// Spawns, cancels and wakes from kernel threads that are not workers, bracketed for the
    /// deadlock check (MNHandIns.swift).
    let handIns = MNHandIns()
    /// M:N threads spawned by kernel threads that are not workers (main included); the workers
    /// count their own spawns (see `liveCount`).
    let externalSpawns = Atomic<Int>(0)
    /// Workers that sleep (or are about to), and those among them that nothing but another
    /// worker can wake.
    let sleepers = Atomic<Int>(0)
    /// Of `sleepers`, those not in a deferred sleep (`MNWorker.asleepDeferred`: such a worker
    /// looks at the queues again within `stealAfterNanoseconds`, so a queued thread does not
    /// ring it): what a spawn reads to decide whether to ring (`ringForQueued`). Without it,
    /// every spawn while the other worker slept deferred walked the workers' `sleeping` words
    /// for nothing (~20 instructions per spawn).
    let ringableSleepers = Atomic<Int>(0)
    let stuck = MNStuckCensus()
    /// Workers that have cancelled their threads after main returned.
    let shutdownsHandled = Atomic<Int>(0)
    /// Workers whose loop still runs.
    let activeWorkers = Atomic<Int>(0)
    let mainDone = Atomic<Bool>(false)
    /// Incremented per deadlock found (the second one abandons the threads left). A deadlock
    /// is handled in two phases: every active worker first adds its table and its wait-for
    /// edges to the report (`deadlockTables` counts them), and only when the last one has (it
    /// searches the merged edges for cycles), `deadlockUnwindEpoch` catches up with
    /// `deadlockEpoch` and every worker wakes its parked threads. Waking at
    /// once let one worker's unwinding threads (a mutex released on the way out, handed to a
    /// waiter on another worker) change a table that had not been written yet: the report then
    /// showed a waiter as "ready, cancelled", or not at all.
    /// Only one worker declares a deadlock (a compare-and-swap from the epoch it saw), and no
    /// worker declares another until every worker has woken its threads: a worker not yet
    /// through phase 2 still looks stuck, and its threads are about to run.
    let deadlockEpoch = Atomic<Int>(0)
    let deadlockTables = Atomic<Int>(0)
    let deadlockUnwindEpoch = Atomic<Int>(0)
    let deadlockWokenWorkers = Atomic<Int>(0)
    let deadlockReport = KernelLock(MNDeadlockReport())
    /// `UThreadRuntime.seedRandom`'s seed, which every worker's scheduler takes at its next draw
    /// (Scheduler/RandomSource.swift).
    let randomSeed = SharedRandomSeed()
    /// Workers spinning for work before they sleep (at most half of them).
    let spinning = Atomic<Int>(0)
    /// How long an idle worker looks for work before it sleeps.
    static let spinNanoseconds: UInt64 = UInt64(
        getenv("UTHREADS_SPIN_NS").flatMap { Int(String(cString: $0)) } ?? 20_000)
    static let stealAfterNanoseconds = UInt64(
        getenv("UTHREADS_STEAL_AFTER_NS").flatMap { Int(String(cString: $0)) } ?? 50_000)
    static let stealMax: Int = getenv("UTHREADS_STEAL_MAX").flatMap { Int(String(cString: $0)) } ?? 32
    /// The most own queued threads a worker starts before a park (MNWorker's "Refill in
    /// batches"); 1: one at a time (the previous rule).
    static let refillMax: Int = getenv("UTHREADS_REFILL_MAX").flatMap { Int(String(cString: $0)) } ?? 32
    /// Experiment: a spawn does not count as activity on the queue, only takes do (thieves then
    /// take from a worker that spawns a burst; see `MNWorker.steal`).
    static let stealDuringSpawns = getenv("UTHREADS_STEAL_DURING_SPAWNS").map { String(cString: $0) == "1" } ?? false
    /// Threads a worker took from another's queue (for tests and `bench parallel`).
    let stolen = Atomic<Int>(0)
    /// Batches of started, ready threads that busy workers gave up for idle ones, with
    /// when each was given up (CLOCK_MONOTONIC ns).
    let migrants = KernelLock(MNFIFO<(threads: [MNMigrant], at: UInt64)>())
    /// Batches in `migrants` (read without its lock by `maintenance` and idle workers).
    let migrantBatches = Atomic<Int>(0)
    /// A batch no idle worker adopted within this is taken by any worker at its maintenance
    /// (the idle worker found other work meanwhile): threads never wait for an idle worker forever.
    static let migrantPatienceNanoseconds: UInt64 = 1_000_000
    /// Started threads that resumed on another worker.
    let migrations = Atomic<Int>(0)
    /// Rows still owned (or abroad) and stacks still in use when the workers' loops ended,
    /// summed over workers: 0 after a clean end.
    let rowsLeft = Atomic<Int>(0)
    let stacksLeft = Atomic<Int>(0)
    /// Dump-signal requests already claimed by a worker (MNObservability.swift).
    let observation = MNObservation()

    /// The workers as unretained references (`workers` keeps them alive). Every worker's hot
    /// paths look at other workers; through an array of class references each look would be a
    /// retain and a release, atomic writes to a line that every worker shares.
    let table: UnsafeMutableBufferPointer<Unmanaged<MNWorker>>

    init(
        settings: MNSettings, policies: [any SchedulingPolicy]
    ) throws(UThreadError) {
        let n = policies.count
        self.settings = settings
        table = .allocate(capacity: n)
        descriptors.attach(self)  // before any worker (or other kernel thread) uses it
        JacketHooks.connect()  // once per process: offers the jacket, if linked, its hooks
        var runtimeSerial: UInt?  // the first worker's serial: the runtime's (Scheduler.runtimeSerial)
        for i in 0..<n {
            let scheduler = Scheduler(
                settings: settings.scheduler, policy: policies[i], worker: true,
                runtimeSerial: runtimeSerial, sharedSeed: randomSeed)
            runtimeSerial = scheduler.runtimeSerial
            let w: MNWorker
            do { w = try MNWorker(index: i, runtime: self, scheduler: scheduler) } catch {
                // Nothing has run: close what the workers made so far (epoll sets, eventfds).
                scheduler.shutdown()
                for w in workers { w.scheduler?.shutdown() }
                table.deallocate()
                throw error
            }
            workers.append(w)
            table[i] = Unmanaged.passUnretained(w)
        }
    }

    deinit { table.deallocate() }

    /// The registry asks `worker` to drop `fd` (a deferred close; called under its stripe lock).
    func askToDrop(_ fd: Int32, worker: Int) {
        withWorker(worker) { $0.post(.closeDescriptor(fd)) }
    }

    /// Runs `body` with worker `i`, without retaining it.
    @inline(__always)
    func withWorker<R>(_ i: Int, _ body: (MNWorker) throws -> R) rethrows -> R {
        try table[i]._withUnsafeGuaranteedRef(body)
    }

    /// Wakes row `block`'s wait `token` (a waiter parked on one of this runtime's workers: the
    /// token names which, Sync/Waiter.swift): directly when it is on the caller's worker, else
    /// through its worker's mailbox, naming the waker's worker when the caller is a thread of
    /// this runtime (the woken thread may go there: `MNWorker.pull`).
    func wake(block: UInt, token: UInt64, _ result: WakeResult) {
        withWorker(Waiter.worker(ofToken: token)) { target in
            if let (waker, s) = MNWorker.current(), waker.runtime === self {
                if waker === target {
                    s.wakeWaiting(block: block, token: token, result)
                } else if s.onUserThread {
                    target.post(.wakeNear(block: block, token: token, result, waker: waker.index))
                } else {
                    // From an idle loop (an answer, a timer): no partner.
                    target.post(.wake(block: block, token: token, result))
                }
            } else {
                handIns.handIn { target.post(.wake(block: block, token: token, result)) }
            }
        }
    }

    /// Queues a new thread on the calling worker `worker` (only it pushes to its queue: the
    /// worker is not retained) and rings a sleeping worker if no worker is spinning (a spinning
    /// one will find it). False, and nothing done, when the worker's queue is full.
    @inline(__always)
    func enqueue(_ object: MNThreadObject, onCalling worker: MNWorker) -> Bool {
        guard worker.queueRef._withUnsafeGuaranteedRef({ $0.push(object) }) else { return false }
        ringForQueued(except: worker.index)
        return true
    }

    /// `enqueue` of an object the caller holds +1 on, which the queue's slot takes over; false
    /// when the queue is full (the +1 still the caller's).
    @inline(__always)
    func enqueue(retained object: Unmanaged<MNThreadObject>, onCalling worker: MNWorker) -> Bool {
        guard worker.queueRef._withUnsafeGuaranteedRef({ $0.push(retained: object) }) else { return false }
        ringForQueued(except: worker.index)
        return true
    }

    /// Counts a thread spawned outside the workers live, queues it on the injection queue and
    /// rings; when the runtime has ended, fails it instead (see "Spawns from outside at the end").
    func inject(_ object: MNThreadObject) {
        let queued = injection.withLock { q -> Bool in
            guard !injectionClosed.load(ordering: .relaxed) else { return false }
            externalSpawns.wrappingAdd(1, ordering: .sequentiallyConsistent)
            q.push(object)
            injected.wrappingAdd(1, ordering: .sequentiallyConsistent)
            return true
        }
        guard queued else { return object.failClosed() }
        ringForQueued(except: -1)
    }

    /// Whether the runtime is finished — main returned, no thread is live — and its injection
    /// queue closed, so that no thread can appear any more: a worker's loop may end only then.
    /// Closes the queue the first time it finds the runtime finished (see "Spawns from outside
    /// at the end"). Cheap until main returned: one load.
    func finishedAndClosed() -> Bool {
        if injectionClosed.load(ordering: .acquiring) { return true }
        guard mainDone.load(ordering: .sequentiallyConsistent) && liveCount() == 0 else { return false }
        return injection.withLock { _ -> Bool in
            guard liveCount() == 0 else { return false }  // a spawn from outside came first
            injectionClosed.store(true, ordering: .releasing)
            return true
        }
    }

    /// Closes the injection queue and fails the threads still in it (a runtime abandoned after
    /// a deadlock; after a clean end the queue is closed and empty). After every worker stopped.
    private func closeInjection() {
        let left = injection.withLock { q -> [MNThreadObject] in
            injectionClosed.store(true, ordering: .releasing)
            var left: [MNThreadObject] = []
            while let o = q.pop() { left.append(o) }
            injected.store(0, ordering: .relaxed)
            return left
        }
        for object in left { object.failClosed() }
    }

    /// After a thread was queued: rings a sleeping worker other than `except`, unless one spins.
    /// The queue's count changed with a sequentially consistent write before `ringableSleepers`
    /// is read, and a worker going to sleep without a deadline for its next look announces it
    /// (`sleeping`, then `ringableSleepers`) before it reads the counts (seq-cst too): one of
    /// the two sees the other, so a thread is never left queued with every worker asleep. A
    /// worker in a deferred sleep is not counted: `ring(forQueuedThread:)` would not ring it.
    @inline(__always)
    func ringForQueued(except: Int) {
        if ringableSleepers.load(ordering: .sequentiallyConsistent) > 0 && spinning.load(ordering: .relaxed) == 0 {
            ringOne(except: except)
        }
    }

    /// Threads in every queue (a snapshot, for idle decisions and deadlock detection); a batch
    /// of migrants counts as one.
    func queuedCount() -> Int {
        var n =
            injected.load(ordering: .sequentiallyConsistent) + migrantBatches.load(ordering: .sequentiallyConsistent)
        for i in 0..<table.count { n += withWorker(i) { $0.queue.count } }
        return n
    }

    /// Rings one sleeping worker other than `except`. `forQueuedThread`: not one in a deferred
    /// sleep (see `MNWorker.ring`); migrants ring those too (nobody else would take them).
    func ringOne(except: Int, forQueuedThread: Bool = true) {
        for i in 0..<table.count where i != except {
            if withWorker(i, { $0.ring(forQueuedThread: forQueuedThread) }) { return }
        }
    }

    func ringAll() {
        for i in 0..<table.count { _ = withWorker(i) { $0.ring() } }
    }

    /// M:N threads spawned and not finished (0 only when none can ever run again, once main
    /// has returned). Every worker counts the threads it spawned and those that finished on
    /// it, each counter written by its own worker only (no shared line on the spawn and exit
    /// paths). Reading every `finished` before every `spawned` makes the sum safe: a thread
    /// that finished was spawned before, on a worker whose counter we read later, so the sum
    /// never drops below the true count, and 0 means every thread spawned by a finished one
    /// has finished too (by induction from main).
    func liveCount() -> Int {
        var finished = 0
        for i in 0..<table.count {
            finished += withWorker(i) { $0.finishedThreads.load(ordering: .sequentiallyConsistent) }
        }
        var spawned = externalSpawns.load(ordering: .sequentiallyConsistent)
        for i in 0..<table.count {
            spawned += withWorker(i) { $0.spawnedThreads.load(ordering: .sequentiallyConsistent) }
        }
        return spawned - finished
    }

    /// Counts a finished thread on the calling worker, `onWorker` when the caller knows it is
    /// that one (-1: look it up); rings every worker when it was the last one after main
    /// returned (each re-checks `finished` and ends its loop). Inlined into the exit
    /// (`MNThreadObject.finish`), the look-up out of line.
    @inline(__always)
    func threadFinished(onWorker worker: Int) {
        // Seq-cst RMW on the worker's own line: ordered before the `mainDone` read below (a
        // worker going idle writes `sleeping` then reads the counters, seq-cst).
        if worker >= 0 {
            _ = withWorker(worker) { $0.finishedThreads.wrappingAdd(1, ordering: .sequentiallyConsistent) }
        } else {
            countFinishedOnCallingWorker()
        }
        if mainDone.load(ordering: .sequentiallyConsistent) && liveCount() == 0 { ringAll() }
    }

    /// `threadFinished`'s count when the caller does not know its worker: on the calling
    /// worker of this runtime, else (a kernel thread outside the workers) off `externalSpawns`.
    @inline(never)
    private func countFinishedOnCallingWorker() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let counted =
            MNWorker.withCurrent { here, _ -> Bool in
                guard here.runtimeRef.toOpaque() == me else { return false }
                here.finishedThreads.wrappingAdd(1, ordering: .sequentiallyConsistent)
                return true
            } ?? false
        if !counted { externalSpawns.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
    }

    func mainFinished() {
        mainDone.store(true, ordering: .sequentiallyConsistent)
        ringAll()
    }

    /// The runtime of the calling M:N thread, unretained (see `MNThreadObject.runtimeRef`);
    /// stops with a clear message elsewhere.
    @usableFromInline
    static func requireUnretained(_ api: StaticString) -> Unmanaged<MNRuntime> {
        if let r = MNWorker.withCurrent({ w, s in s.onUserThread ? w.runtimeRef : nil }), let r { return r }
        return MNWorker.require(api).worker.runtimeRef  // stops with the message
    }

    /// Throws unless `worker` is a worker index of this runtime.
    @usableFromInline
    func checkWorker(_ worker: Int) throws(UThreadError) {
        guard worker >= 0 && worker < workers.count else {
            throw .invalidArgument("worker \(worker) is not in 0..<\(workers.count)")
        }
    }

    /// Queues (or starts) a new M:N thread: from a worker, on its queue (or started at once
    /// when pinned, or with `startHere`, which keeps it migratable, or when the worker's policy
    /// is not FIFO: MNWorker's essay, "Policies at spawn"); on worker `onWorker` (started there,
    /// never stolen); from any other kernel thread, on the injection queue. O(1), no allocation.
    @usableFromInline
    func spawn(_ object: MNThreadObject, pinned: Bool, onWorker: Int? = nil, startHere: Bool = false) {
        if pinned || onWorker != nil { object.pinned = true }
        object.startedHere = startHere
        let me = Unmanaged.passUnretained(self).toOpaque()
        // From a worker of this runtime (no retain of the worker or its scheduler: two
        // retains and releases per spawn otherwise).
        let fromWorker =
            MNWorker.withCurrent { w, s -> Bool in
                guard w.runtimeRef.toOpaque() == me else { return false }
                // Only this worker writes its counter; release: the count is visible before the
                // thread is (see `liveCount`).
                w.spawnedThreads.store(w.spawnedThreads.load(ordering: .relaxed) &+ 1, ordering: .releasing)
                if let k = onWorker, k != w.index {
                    withWorker(k) { $0.post(.start(object)) }
                } else if pinned || onWorker != nil || startHere || s.timed || !enqueue(object, onCalling: w) {
                    w.start(object, s)  // also when the queue is full (MNSpawnQueue.swift)
                }
                return true
            } ?? false
        guard !fromWorker else { return }
        handIns.handIn {
            if let k = onWorker {
                externalSpawns.wrappingAdd(1, ordering: .sequentiallyConsistent)
                withWorker(k) { $0.post(.start(object)) }
            } else {
                inject(object)  // counts it, unless the runtime has ended
            }
        }
    }

    /// `spawn` of a thread that `UThread.init` made on the calling worker, whose scheduler is
    /// `scheduler` (`MNThreadObject.forSpawn`: no second look-up of the worker): queued on it, or
    /// started at once when `pinned`, under an ordering policy, or when the queue is full.
    /// `object` comes with a +1 of its own (besides the handle's), which the queue's slot or the
    /// row takes over: no retain here (`forSpawn` took both references at once). Called through
    /// `MNSpawn.publish`.
    @inline(__always)
    static func spawnFromWorker(
        retained object: Unmanaged<MNThreadObject>, scheduler: UnsafeMutableRawPointer, pinned: Bool
    ) {
        Unmanaged<Scheduler>.fromOpaque(scheduler)._withUnsafeGuaranteedRef { s in
            Unmanaged<MNWorker>.fromOpaque(s.workerOpaque.unsafelyUnwrapped)._withUnsafeGuaranteedRef { w in
                if pinned { object._withUnsafeGuaranteedRef { $0.pinned = true } }
                // As in `spawn`: only this worker writes its counter; release before the thread
                // is visible (see `liveCount`).
                w.spawnedThreads.store(w.spawnedThreads.load(ordering: .relaxed) &+ 1, ordering: .releasing)
                if pinned || s.timed || !w.rt({ $0.enqueue(retained: object, onCalling: w) }) {
                    w.start(retained: object, s)  // also when the queue is full (MNSpawnQueue.swift)
                }
            }
        }
    }

    /// What `run` reports besides the main thread's value.
    struct Teardown {
        /// Rows (owned or abroad) and stacks in use when the workers' loops ended: 0 and 0.
        var rowsLeft: Int
        var stacksLeft: Int
        var counters: MNCounters
    }

    /// Runs the runtime on the calling kernel thread (worker 0) and `policies.count - 1` new
    /// ones (a policy per worker), and returns the main thread's value and what the workers
    /// left behind (for leak tests). The caller, the Runtime layer's `run(workers:)`, has
    /// validated its configuration and checked that no runtime runs on this kernel thread.
    /// `observe` sets up what makes the runtime visible from outside (the dump signal, the
    /// control socket, metrics) before any worker runs, and returns what undoes it.
    static func run<R>(
        settings: MNSettings, policies: [any SchedulingPolicy],
        observe: (MNRuntime) throws -> (() -> Void),
        _ body: @escaping () throws -> R
    ) throws -> (value: R, teardown: Teardown) {
        let n = policies.count
        let runtime = try MNRuntime(settings: settings, policies: policies)
        runtime.descriptors.activate()  // closers outside the workers find it from now on
        defer { runtime.tearDown() }
        // Workers that never ran (a failed start) are shut down here: after the detach below
        // (the bells are the reactors'), before tearDown.
        var neverRan = false
        defer { if neverRan { for w in runtime.workers { w.scheduler?.shutdown() } } }
        let unobserve = try observe(runtime)  // dump signal, control socket
        defer { unobserve() }  // before tearDown: the bells are the reactors'
        let main = MNThreadObject.make(
            runtime: runtime, name: "main", isMain: true, stackSize: settings.mainStackSize, body: body)
        runtime.externalSpawns.wrappingAdd(1, ordering: .sequentiallyConsistent)
        runtime.workers[0].initial = main
        runtime.activeWorkers.store(n, ordering: .sequentiallyConsistent)
        let threads: [pthread_t]
        do { threads = try startWorkers(runtime) } catch {
            neverRan = true
            throw error
        }
        runtime.workers[0].main()
        for t in threads { pthread_join(t, nil) }
        if let report = runtime.deadlockReport.withLock({ $0.text }) { throw UThreadError.deadlock(report) }
        guard main.isFinishedAcquire else { throw UThreadError.deadlock("the main thread never finished") }
        let teardown = Teardown(
            rowsLeft: runtime.rowsLeft.load(ordering: .relaxed),
            stacksLeft: runtime.stacksLeft.load(ordering: .relaxed),
            counters: runtime.counters)
        return (try main.result(R.self).get(), teardown)
    }

    /// Starts the kernel threads of workers 1..<n, all or none. Each new thread waits at a gate
    /// (the lock held here) until every thread exists, so no worker runs its loop, and no user
    /// code runs anywhere, before the runtime is whole. When a pthread_create fails, the gate
    /// opens with "abandon": the started threads return without running, are joined, and the
    /// error is thrown (the caller then shuts every worker's scheduler down: its reactor's epoll
    /// set and eventfds are closed, its stacks unmapped). Rejected: running with fewer workers (the
    /// failed one stayed in the table, so a spawn bound to it posted mail nobody read and its
    /// joiners hung), and removing it from the table (every index-based look-up — mail, steal
    /// order, the descriptor registry's bits — assumes workers 0..<n).
    ///
    /// Test hook: `UTHREADS_TEST_FAIL_WORKER_START=k` (environment, read once) makes the start
    /// of worker k fail with EAGAIN, as pthread_create does at RLIMIT_NPROC.
    private static func startWorkers(_ runtime: MNRuntime) throws -> [pthread_t] {
        final class Start {
            let worker: MNWorker
            let gate: KernelLock<Bool>
            init(_ worker: MNWorker, _ gate: KernelLock<Bool>) { (self.worker, self.gate) = (worker, gate) }
        }
        let gate = KernelLock(false)  // true: run; read once the caller has unlocked it
        var threads: [pthread_t] = []
        var failure: (worker: Int, errno: Int32)?
        gate.lock()
        for w in runtime.workers.dropFirst() {
            var thread = pthread_t()
            let arg = Unmanaged.passRetained(Start(w, gate)).toOpaque()
            let rc =
                w.index == failWorkerStartForTesting
                ? EAGAIN
                : pthread_create(
                    &thread, nil,
                    { arg in
                        let start = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
                        if start.gate.withLock({ $0 }) { start.worker.main() }
                        return nil
                    }, arg)
            if rc != 0 {
                Unmanaged<Start>.fromOpaque(arg).release()
                failure = (w.index, rc)
                break
            }
            threads.append(thread)
        }
        gate.withLockHeld { $0 = failure == nil }
        gate.unlock()
        guard let failure else { return threads }
        for t in threads { pthread_join(t, nil) }
        throw UThreadError.system(
            call: "pthread_create (M:N worker \(failure.worker) of \(runtime.workers.count))",
            errno: Errno(rawValue: failure.errno))
    }

    /// The worker whose start `startWorkers` fails on purpose (tests only; see there).
    private static let failWorkerStartForTesting: Int? = getenv("UTHREADS_TEST_FAIL_WORKER_START").flatMap {
        Int(String(cString: $0))
    }

    /// Breaks the worker ↔ scheduler cycles once every worker has stopped, and takes the
    /// descriptor registry off the process's list (every deferred close has completed by now:
    /// each worker answered its requests, at the latest after its loop ended; any left would
    /// be closed and logged).
    private func tearDown() {
        closeInjection()
        for w in workers { w.detach() }
        let left = descriptors.finish()
        if !left.isEmpty {
            settings.scheduler.logger.warning(
                "deferred closes were still pending when the M:N runtime ended; closed now",
                metadata: ["fds": "\(left)"])
        }
    }
}

/// The M:N deadlock report as the workers assemble it (MNWorker.swift, "Deadlock"): the
/// declarer's header, each worker's table in the order they were written, and the wait-for
/// graph merged from every worker's part, whose cycles the last worker to add its part finds.
struct MNDeadlockReport {
    var header: String?
    /// The "wait-for cycle" lines of the merged graph (empty until every part is in, or when
    /// the threads wait for something no thread holds, such as a channel).
    var cycles = ""
    var tables = ""
    var graph = DeadlockReport.WaitGraph()

    /// The report `run` throws: the header, the cycles, the tables; nil while nothing is written.
    var text: String? { header == nil && tables.isEmpty ? nil : (header ?? "") + "\n" + cycles + tables }
}
