// Layer 7: the reactor — the one place where a user thread's blocking I/O becomes a wait.
//
// Design essay
// ============
//
// The problem. A user thread that calls read(2) on an empty pipe blocks the kernel thread,
// and with it every other user thread of the runtime: the kernel sees one thread and puts it
// to sleep. The fix (Go's netpoller, State Threads, libdill) is to make every descriptor
// non-blocking, try the call, and on EAGAIN park the *user* thread until the kernel says the
// descriptor is ready. This file is the "kernel says" part.
//
// One epoll instance per runtime. Runtimes on different kernel threads share nothing (the
// scheduler's rule), so each has its own epoll set, its own table of waiters and its own
// eventfd. The reactor is created lazily by the first call that would wait (or by the first
// `blocking {}`): a program that never does I/O never creates a descriptor. It plugs into the
// scheduler as its `Poller`: when no thread is ready, the idle loop calls `poll` with the time
// to the next timer, so a runtime whose threads all wait for I/O sleeps in epoll_wait and
// costs no CPU; every 64 yields the scheduler also polls with a zero timeout so that busy
// threads do not starve I/O.
//
// Edge-triggered, registered once. A descriptor is added to the epoll set the first time a
// thread has to wait on it, for IN|OUT|RDHUP with EPOLLET, and stays there until it is closed
// through `IO.close`. Why edge- and not level-triggered:
//   * Level-triggered needs an epoll_ctl per wait (arm the direction you wait for, disarm it
//     when the waiter leaves), or it reports a readable socket on every epoll_wait until
//     someone drains it — including sockets whose owner is busy elsewhere. That is one extra
//     system call per request for a server, or a busy loop.
//   * Edge-triggered is only unsafe when a waiter can miss an edge. Here it cannot: a thread
//     parks only right after its own call returned EAGAIN, on the same kernel thread, before
//     the next epoll_wait. Any readiness change after that EAGAIN is still queued in the epoll
//     set, so the next epoll_wait reports it. (Go needs its pdReady flags because its netpoll
//     runs on other kernel threads; an M:1 runtime does not.) And epoll_ctl(ADD) reports a
//     descriptor that is already ready, so the first wait cannot miss one either.
//   * On an edge the reactor wakes *every* waiter of that direction; each retries its call and
//     parks again on EAGAIN. So several threads may wait on the same descriptor for the same
//     direction (an accept loop with several acceptors, two readers of one pipe): supported,
//     rather than libdill's EBUSY. The cost of the herd is paid only by programs that do it.
//
// One read(2) per request, not two. A stream whose last read came back short has drained the
// kernel buffer, so its next read need not try first (that try would only say EAGAIN): it
// waits for the next read edge. An edge that arrives while no thread waits is remembered
// (`DescriptorWaiters.readEdge`, Go's pdReady), and a peer hang-up is sticky (`hangUp`: a short
// read can leave a pending end of stream, which gives no further edge). A keep-alive HTTP
// exchange is then read + send per request and one epoll_wait per batch of ready connections.
//
// Deadlock detection. A thread waiting for I/O (or for an offloaded call) counts as a pending
// wake-up (`pendingWakeups`), so a runtime whose threads all wait for descriptors sleeps in
// epoll_wait rather than reporting a deadlock: the other end may be another process. (Go
// reports "all goroutines are asleep" only when none waits on the network either.)
//
// Cross-thread wake-ups. Other kernel threads (the offload pool) never touch the scheduler:
// they append their finished job to the runtime's `CompletionMailbox` (a lock-protected list)
// and write its eventfd, which is in the epoll set. The reactor drains the list on the
// eventfd's event and wakes the parked threads itself, on its own kernel thread.
//
// Closing. A descriptor that threads wait on must be closed through `IO.close` (the typed
// layer does): it wakes every waiter with `.closed` (they throw `UThreadError.closed` naming
// the descriptor), removes it from the epoll set and forgets its waiters *before* close(2), so
// the number can be reused at once without a stale registration. A thread can never hang on a
// closed descriptor, and no wake-up is lost: under M:1 the closer runs on the same kernel
// thread. Under M:N several workers' reactors may watch one descriptor; each reactor then
// belongs to the runtime's `DescriptorRegistry` (DescriptorRegistry.swift), which records, per
// descriptor and under a striped lock taken around the epoll_ctl ADD and the removal, which
// workers have an entry (M:1 reactors have none: one nil check on a descriptor's first wait).
// `IO.close` (`closeEverywhere`) drops the closer's own entry, then under that lock either
// closes at once (no other watcher: one uncontended lock more than M:1) or marks the
// descriptor closing and asks the other watchers to run `dropEntry` on their own kernel
// threads; the last of them to answer calls close(2), under the lock, and `IO.close` parks
// until then (a deinit's close, which must never park, returns at once). So no
// worker keeps an entry for a closed file, a number is never reused while a worker may still
// wake waiters for it, and a first wait on a descriptor being closed throws `.closed` instead
// of resurrecting a watcher.
// Descriptors created by the I/O layer (accept, socket, pipe) also clear any stale entry of
// their number, in case someone closed its predecessor with a raw close(2) (on the creating
// thread's reactor only: under M:N a raw close(2) of a descriptor that threads on other
// workers waited on leaves their entries behind; use `IO.close`).
//
// Threads that waited on a descriptor move (M:N). A thread is never moved while it is parked
// in an I/O wait: it is on this reactor's waiter queues, `ioWaiters` counts it here, and the
// code after its park uses this reactor and scheduler (an I/O park is not an audited resume
// site: MNWorker.swift, "Migration"). Once woken it runs where it parked; it may move later,
// while ready at an audited site (a yield, a sleep, a sync wait, a checkpoint), like any
// thread. Its registration then follows it in two halves:
//   * the worker it leaves drops its entry for the descriptor the thread last waited on
//     (`release`, called when the migrant is built; the fd is kept in the thread's object),
//     unless a thread there still waits on it: an epoll_ctl DEL, then the registry bit
//     cleared under the stripe lock, exactly as `closing` does. So the old epoll set stops waking its
//     worker for a connection that now lives elsewhere, and a later close is not deferred for
//     a worker that no longer uses the descriptor;
//   * the new worker usually has no entry, so the thread's next read tries read(2) first and,
//     on EAGAIN, `wait` registers it there (epoll_ctl ADD reports a descriptor already ready, so
//     no edge is lost in the move). Entries for other descriptors it used stay where they
//     were until closed: correct (the deferred close asks every watcher), only not free.
// Edges stay safe with a descriptor in several epoll sets: each set gets its own edge, each
// reactor's `readEdge` is cleared only by a thread that then reads or parks on that same
// kernel thread, so at worst a stale `readEdge` costs one read that says EAGAIN, never a
// missed wake. Closing is unchanged: the registry knows every watcher and the deferred close
// wakes them all before the number can be reused.
// Rejected: pinning a thread for good at its first descriptor wait (the previous rule:
// connection threads of one acceptor never spread over the workers); moving a parked I/O
// waiter with its queue entry (the waiter queues, `ioWaiters` and the edge flags are the
// owner's, touched without a lock: a transfer would need a lock on every I/O wait); keeping the old entry and letting the close clean it up
// (every later edge also wakes the worker the thread left, and every close of a moved
// connection is deferred: a mail and a park per close); dropping entries lazily when an edge
// finds no waiter (it cannot tell a moved connection from a busy listener of per-worker
// acceptors, whose entry would churn DEL/ADD under load); one epoll set per runtime (a lock
// and cross-thread handoff on every event: see the first rejected design below).
//
// Regular files. epoll refuses them (EPERM): they are always "ready", and a read from one
// never waits for the network. `wait` returns at once for such descriptors; use `blocking {}`
// to keep slow disks off the runtime.
//
// epoll_wait failures. EINTR is a signal (a dump request) and the idle loop simply goes round.
// ENOMEM is transient: it is reported on stderr and the loop sleeps 10 ms before it polls
// again (retrying at once would spin a CPU on a failing call). EBADF, EINVAL and EFAULT mean the
// epoll descriptor or the event buffer is broken, which only a bug does (a raw close(2) of the
// reactor's descriptor): every later poll would fail the same way, so the runtime could only
// spin or sleep forever; it stops the process with a write(2) diagnostic instead
// (`Reactor.pollFailure`). Both M:1 idle loops and M:N workers poll through here.
//
// Rejected designs:
//   * One epoll per process shared by all runtimes: needs locks and hand-offs between kernel
//     threads on every event; runtimes share nothing by design.
//   * EPOLLONESHOT (re-arm per wait): one epoll_ctl per wait again, for safety an M:1 runtime
//     already has.
//   * A per-descriptor waiter limit of one (libdill's EBUSY): simpler, but an accept loop with
//     several acceptors is a natural program to write.
//   * signalfd/SIGIO-driven readiness: signals interrupt arbitrary code; see Scheduler.swift.
//   * io_uring: completion-based (buffers owned by the kernel while in flight), a different
//     API for the layer above; epoll keeps read(2)'s contract.
import CUThreads
import Glibc
import SystemPackage

/// The direction a thread waits for.
enum IODirection {
    case read, write
}

final class Reactor: Poller {
    let epollFD: Int32
    let mailbox: CompletionMailbox
    unowned(unsafe) let scheduler: Scheduler
    /// Waiters per descriptor, indexed by descriptor number (nil: nobody ever waited).
    @exclusivity(unchecked) private var descriptors: [DescriptorWaiters?] = []
    /// Threads parked in `wait`.
    @exclusivity(unchecked) private(set) var ioWaiters = 0
    /// Threads parked in `offload` (their jobs run on the pool).
    @exclusivity(unchecked) private(set) var offloadsInFlight = 0
    /// Calls handed to the offload pool in this reactor's life (read by metrics).
    @exclusivity(unchecked) private(set) var offloadCount: UInt64 = 0
    /// M:N only: the runtime's record of which workers watch each descriptor, and this
    /// worker's index in it (set by the worker before its threads run; nil under M:1).
    @exclusivity(unchecked) private(set) var registry: DescriptorRegistry?
    @exclusivity(unchecked) private(set) var registryWorker = -1
    /// The dump handler's bell slot for the mailbox's eventfd under `workers: 1` (-1: none).
    private var dumpBellSlot: Int32 = -1
    private let events: UnsafeMutablePointer<uthreads_io_event>
    private static let eventCapacity: Int32 = 512
    private static let mailboxToken = UInt64.max

    var pendingWakeups: Int { ioWaiters + offloadsInFlight }

    /// Descriptors in this reactor's epoll set. O(highest descriptor): for metrics, not for
    /// the I/O paths.
    var registrationCount: Int { descriptors.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    private init(scheduler: Scheduler) throws(UThreadError) {
        let ep = uthreads_epoll_create()
        if ep < 0 { throw .system(call: "epoll_create1", errno: .lastError) }
        let mailbox: CompletionMailbox
        do { mailbox = try CompletionMailbox() } catch {
            uthreads_sys_close(ep)
            throw error
        }
        if uthreads_epoll_ctl(ep, 1, mailbox.eventFD, UInt32(UTHREADS_EV_IN), Reactor.mailboxToken) < 0 {
            let e = Errno.lastError
            uthreads_sys_close(ep)
            throw .system(call: "epoll_ctl", errno: e)
        }
        self.epollFD = ep
        self.mailbox = mailbox
        self.scheduler = scheduler
        events = .allocate(capacity: Int(Reactor.eventCapacity))
    }

    deinit {
        events.deallocate()
    }

    /// The reactor of `scheduler`, created on first use.
    @inline(__always)
    static func of(_ scheduler: Scheduler) throws(UThreadError) -> Reactor {
        if let r = scheduler.poller as? Reactor { return r }
        return try install(scheduler)
    }

    /// The reactor of `scheduler` if one was created (nil costs nothing to ask).
    @inline(__always)
    static func existing(_ scheduler: Scheduler) -> Reactor? {
        scheduler.poller as? Reactor
    }

    @inline(never)
    private static func install(_ scheduler: Scheduler) throws(UThreadError) -> Reactor {
        precondition(scheduler.poller == nil, "UserThreads: the scheduler's poller is not the reactor")
        let reactor = try Reactor(scheduler: scheduler)
        scheduler.poller = reactor
        // A cancel posted from another kernel thread must end an epoll_wait too.
        if let inbox = scheduler.foreignCancels {
            let mailbox = reactor.mailbox
            inbox.setBell { _ = uthreads_eventfd_signal(mailbox.eventFD) }
        }
        // So must the dump signal when the kernel runs its handler on another kernel thread
        // (the bells: dump_signal.c; the workers of a runtime with several register theirs
        // when it starts, MN/MNObservability.swift).
        if scheduler.workerIndex < 0, scheduler.settings.dumpSignal != nil {
            reactor.dumpBellSlot = uthreads_dump_bell_add(reactor.mailbox.eventFD)
        }
        return reactor
    }

    /// M:N: joins the runtime's descriptor registry as `worker` (before any thread of the
    /// worker runs, so every registration of this reactor is recorded).
    func join(_ registry: DescriptorRegistry, worker: Int) {
        precondition(
            descriptors.allSatisfy { $0 == nil },
            "UserThreads: a reactor joins a registry before it watches a descriptor")
        self.registry = registry
        registryWorker = worker
    }

    // MARK: Waiting for readiness

    /// Parks the calling thread until `fd` is ready for `direction` (or may be: the caller
    /// retries its call and waits again on EAGAIN).
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `UThreadError.closed` (another
    ///   thread closed `fd`), `.system(call: "epoll_ctl", …)` (e.g. EBADF).
    func wait(_ fd: Int32, _ direction: IODirection, kind: WaitReason.Kind, deadline: UInt64?) throws {
        guard let waiters = try register(fd) else { return }
        try park(waiters, fd, direction, kind: kind, deadline: deadline)
    }

    /// For a reader whose last read was short (it drained the kernel buffer): returns at once if
    /// a read edge arrived since, else parks until one does. The caller then reads.
    func waitForReadEdge(_ fd: Int32, deadline: UInt64?) throws {
        let index = Int(fd)
        guard index >= 0, index < descriptors.count, let waiters = descriptors[index] else { return }
        if waiters.readEdge || waiters.hangUp {
            waiters.readEdge = false
            return
        }
        try park(waiters, fd, .read, kind: .read, deadline: deadline)
    }

    /// `wait` for the jacket (IO/JacketHooks.swift): false, without parking, for a descriptor
    /// epoll refuses (a regular file); the wait shows as `read fd 7 (jacket)`.
    func jacketWait(
        _ fd: Int32, _ direction: IODirection, kind: WaitReason.Kind, deadline: UInt64?, shown: Int32
    ) throws -> Bool {
        guard let waiters = try register(fd) else { return false }
        try park(waiters, fd, direction, kind: kind, deadline: deadline, tag: WaitReason.jacketFlag, shown: shown)
        return true
    }

    @inline(__always)
    private func park(
        _ waiters: DescriptorWaiters, _ fd: Int32, _ direction: IODirection, kind: WaitReason.Kind, deadline: UInt64?,
        tag: UInt64 = 0, shown: Int32? = nil
    ) throws {
        let s = scheduler
        let me = s.current
        switch direction {
        case .read:
            waiters.readEdge = false  // the caller saw EAGAIN, or consumed the edge
            waiters.readers.enqueue(me)
        case .write: waiters.writers.enqueue(me)
        }
        ioWaiters += 1
        // M:N: the registration follows the thread when it migrates (essay "Threads that waited
        // on a descriptor move" above). A parked I/O waiter itself never moves: this frame uses
        // `self` and `s` after the park.
        if registry != nil { s.objectOf(me).lastDescriptor = fd }
        let result = s.park(kind, object: UInt64(UInt32(bitPattern: shown ?? fd)) | tag, deadline: deadline)
        ioWaiters -= 1
        if result == .closed {
            throw UThreadError.closed("descriptor \(fd) was closed while this thread waited to \(kind.label)")
        }
        try result.check()
    }

    /// The waiters of `fd`, adding it to the epoll set first if needed; nil for descriptors
    /// epoll does not watch (regular files: always ready).
    /// - Throws: `.system(call: "epoll_ctl", …)`; under M:N `.closed` while a deferred close of
    ///   `fd` is pending (DescriptorRegistry.swift).
    private func register(_ fd: Int32) throws(UThreadError) -> DescriptorWaiters? {
        guard fd >= 0 else { throw .system(call: "epoll_ctl", errno: .badFileDescriptor) }
        let index = Int(fd)
        if index < descriptors.count, let w = descriptors[index] { return w }
        if let registry {
            // M:N: the ADD and the worker's bit change under the fd's stripe lock, so a closer on
            // another worker either sees this entry or closed the file first (DescriptorRegistry).
            guard
                try registry.watch(
                    fd, worker: registryWorker, { () throws(UThreadError) -> Bool in try addToEpoll(fd) })
            else { return nil }
        } else {
            guard try addToEpoll(fd) else { return nil }
        }
        if index >= descriptors.count {
            descriptors.append(
                contentsOf: repeatElement(nil, count: max(index + 1, descriptors.count * 2) - descriptors.count))
        }
        let w = DescriptorWaiters()
        descriptors[index] = w
        return w
    }

    /// epoll_ctl ADD for edge-triggered IN|OUT|RDHUP; false for descriptors epoll refuses
    /// (EPERM: regular files, always ready). EEXIST counts as added.
    @inline(__always)
    private func addToEpoll(_ fd: Int32) throws(UThreadError) -> Bool {
        let mask =
            UInt32(UTHREADS_EV_IN | UTHREADS_EV_OUT | UTHREADS_EV_RDHUP) | UInt32(truncatingIfNeeded: UTHREADS_EV_ET)
        if uthreads_epoll_ctl(epollFD, 1, fd, mask, UInt64(fd)) < 0 {
            let e = Errno.lastError
            if e == .notPermitted { return false }
            if e != .fileExists { throw .system(call: "epoll_ctl", errno: e) }
        }
        return true
    }

    // MARK: Closing

    /// Wakes every thread waiting on `fd` with `.closed` and removes `fd` from the epoll set
    /// (and, under M:N, this worker from the runtime's registry). Call before close(2).
    /// O(waiters).
    func closing(_ fd: Int32) {
        if dropEntry(fd) { registry?.unwatch(fd, worker: registryWorker) }
    }

    /// `closing` without the registry: wakes `fd`'s waiters here with `.closed` and removes it
    /// from this epoll set. True if there was an entry. O(waiters).
    @discardableResult
    func dropEntry(_ fd: Int32) -> Bool {
        let index = Int(fd)
        guard index >= 0, index < descriptors.count, let w = descriptors[index] else { return false }
        descriptors[index] = nil
        wakeAllClosed(w)
        _ = uthreads_epoll_ctl(epollFD, 2, fd, 0, 0)
        return true
    }

    /// Wakes every thread waiting on one descriptor with `.closed`. O(waiters).
    private func wakeAllClosed(_ w: DescriptorWaiters) {
        while let t = w.readers.dequeue() { scheduler.wake(t, .closed) }
        while let t = w.writers.dequeue() { scheduler.wake(t, .closed) }
    }

    /// `IO.close(fd)` on this reactor's thread: under M:1 (no registry), `closing` then
    /// close(2); under M:N, `closing` then the registry's close (DescriptorRegistry.swift:
    /// close(2) at once when no other worker watches `fd`, else deferred to the last of them).
    ///
    /// With `waiting` (the public `IO.close`), a deferred close parks the calling user thread,
    /// not cancellable, until the last watcher has answered and close(2) has run, so that when
    /// this returns the file is closed (the peer sees EOF, a listener's port is free) and
    /// close(2)'s error is thrown here, as Go's `FD.Close` waits for its last reference. Without
    /// it (deinits, which must never park: their owner may hold a lock), or off a user thread,
    /// it returns at once and the last watcher reports any error.
    /// - Throws: `.system(call: "close", …)` (EBADF for a bad descriptor or a second close).
    func closeEverywhere(_ fd: Int32, waiting: Bool = true) throws(UThreadError) {
        dropEntry(fd)
        // M:1: close(2), unless an M:N runtime's workers watch `fd` (one atomic load when none runs).
        guard let registry else { return try DescriptorRegistry.closeOutsideWorkers(fd) }
        guard waiting, scheduler.onUserThread else {
            try registry.close(fd, worker: registryWorker)  // clears this worker's bit under the lock
            return
        }
        let closer = DeferredClose(fd: fd)
        var failure: UThreadError?
        // One allocation per close under M:N (the registry must hold the closer when it decides,
        // under its lock); close(2) itself costs far more.
        awaitCompletion(
            closer, target: closer, kind: .custom,
            startIfNeeded: { _ in
                do throws(UThreadError) {
                    return try registry.close(fd, worker: registryWorker, closer: closer) != .closed
                } catch {
                    failure = error
                    return false
                }
            })
        if let error = failure ?? closer.error { throw error }
    }

    /// M:N: a thread whose last wait was on `fd` is leaving this worker. Drops this reactor's
    /// entry when no thread here waits on it (the thread's next wait adds it on its new
    /// worker's reactor), so this epoll set stops waking for a descriptor nobody here uses and
    /// a later close is not deferred for it. An entry with waiters stays. O(1).
    func release(_ fd: Int32) {
        let index = Int(fd)
        guard index >= 0, index < descriptors.count, let w = descriptors[index], w.readers.isEmpty,
            w.writers.isEmpty
        else { return }
        closing(fd)
    }

    /// Drops any stale entry for a descriptor number the kernel just handed out again.
    @inline(__always)
    func forget(_ fd: Int32) {
        let index = Int(fd)
        if index >= 0, index < descriptors.count, descriptors[index] != nil { closing(fd) }
    }

    // MARK: Offloading

    /// Runs `job` on the offload pool and parks the calling thread until it has finished.
    /// Not cancellable: for jobs that point into the caller's frame (the jacket's C calls),
    /// which must not outlive the wait.
    func offloadToCompletion(_ job: OffloadJob) {
        offloadCount &+= 1
        awaitCompletion(job, start: { OffloadPool.shared.submit($0) }, onCancel: nil)
    }

    /// Runs `job` on the offload pool and parks the calling thread until it has finished, its
    /// `deadline` passes, or it is cancelled. `.woken`: the job finished (its result is set);
    /// `.timedOut`, `.cancelled`: the thread stopped waiting and the job is abandoned
    /// (OffloadPool.swift, "Abandoned calls"): the pool drops it unrun, or finishes it and
    /// releases its result; nothing is posted for it and the caller must not read its result.
    /// Already cancelled, or a deadline already due: returns at once, nothing submitted. A job
    /// that finished as the wait ended is taken (`.woken`), never thrown away.
    func offload(_ job: OffloadJob, deadline: UInt64?) -> WakeResult {
        let s = scheduler
        if s.current.has(.flagCancelled) { return .cancelled }
        if let deadline, deadline <= s.now() { return .timedOut }
        offloadCount &+= 1
        return awaitCompletion(
            job, kind: .offload, deadline: deadline,
            onCancel: { OffloadPool.shared.abandon(job) ? .abandoned : .finished },
            startIfNeeded: { job in
                OffloadPool.shared.submit(job)
                return true
            })!
    }

    /// What a wait that was cancelled or timed out does with its job (`awaitCompletion`'s
    /// `onCancel` answers).
    enum StopAnswer {
        /// The job was asked to stop early and still posts its completion: the thread waits for
        /// it, and the wait's outcome is `.cancelled` or `.timedOut`.
        case stopping
        /// The job had finished already and its completion is on the way: the thread waits for
        /// it, and the outcome is `.woken` (the result stands).
        case finished
        /// The job will never post (abandoned): the thread stops waiting at once.
        case abandoned
    }

    /// Starts `job` somewhere else (another kernel thread, a Swift task) with `start`, and parks
    /// the calling thread until the job posts its completion to this reactor's mailbox.
    ///
    /// With `onCancel`, the park is cancellable: `cancel()` on the thread calls `onCancel` once
    /// (which asks the job to stop early) and the thread keeps waiting for the completion, so
    /// the job's result (often a `CancellationError`) is never lost and the job never outlives
    /// the wait. Without it, only the completion wakes the thread. Deadlock teardown never runs
    /// while a completion is outstanding (it counts in `pendingWakeups`).
    ///
    /// With a `deadline` (which needs `onCancel`), the wait times out like a cancel: `onCancel` is
    /// called, the thread still waits for the completion, and the result is `.timedOut`.
    @discardableResult
    func awaitCompletion(
        _ job: OffloadJob, start: (OffloadJob) -> Void, onCancel: (() -> Void)?,
        kind: WaitReason.Kind = .offload, deadline: UInt64? = nil
    ) -> WakeResult {
        awaitCompletion(
            job, kind: kind, deadline: deadline,
            onCancel: onCancel.map { ask in
                {
                    ask()
                    return .stopping
                }
            },
            startIfNeeded: { job in
                start(job)
                return true
            })!
    }

    /// `awaitCompletion`, where `startIfNeeded` may find that nothing needs to wait (it returns
    /// false and promises that nothing will be posted): then no park, and nil. `target`
    /// describes the wait in the thread table. `onCancel` answers what the job does once the
    /// wait is cancelled or times out (`StopAnswer`).
    @discardableResult
    func awaitCompletion(
        _ job: OffloadJob, target: WaitTarget? = nil, kind: WaitReason.Kind, deadline: UInt64? = nil,
        onCancel: (() -> StopAnswer)? = nil, startIfNeeded: (OffloadJob) -> Bool
    ) -> WakeResult? {
        let s = scheduler
        job.waiter = UInt(bitPattern: s.current)
        job.mailbox = mailbox
        offloadsInFlight += 1
        guard startIfNeeded(job) else {
            offloadsInFlight -= 1
            job.mailbox = nil
            job.waiter = 0
            return nil
        }
        var interruptible = onCancel != nil
        var outcome = WakeResult.woken
        while true {
            let result = s.park(
                kind, object: 0, target: target, deadline: interruptible ? deadline : nil, cancellable: interruptible)
            switch result {
            case .woken:
                return outcome
            case .cancelled, .timedOut:
                switch onCancel?() {
                case .abandoned?:
                    offloadsInFlight -= 1  // no completion will come
                    return result
                case .finished?:
                    break  // its completion is on the way: take it
                case .stopping?, nil:
                    if outcome == .woken { outcome = s.current.has(.flagCancelled) ? .cancelled : .timedOut }
                }
                interruptible = false  // asked once; now wait for the completion itself
            default:
                continue
            }
        }
    }

    // MARK: Poller

    func poll(timeoutNanoseconds: UInt64?) {
        var timeout: Int32 = -1
        if let ns = timeoutNanoseconds {
            timeout = Int32(clamping: (ns / 1_000_000) + (ns % 1_000_000 == 0 ? 0 : 1))
        }
        let n = uthreads_epoll_wait(epollFD, events, Reactor.eventCapacity, timeout)
        if n < 0 { return pollFailed(errno: Glibc.errno) }
        guard n > 0 else { return }  // nothing ready
        let readMask = UInt32(UTHREADS_EV_IN | UTHREADS_EV_ERR | UTHREADS_EV_HUP | UTHREADS_EV_RDHUP)
        let writeMask = UInt32(UTHREADS_EV_OUT | UTHREADS_EV_ERR | UTHREADS_EV_HUP)
        let hangUpMask = UInt32(UTHREADS_EV_ERR | UTHREADS_EV_HUP | UTHREADS_EV_RDHUP)
        let s = scheduler
        for i in 0..<Int(n) {
            let event = events[i]
            if event.data == Reactor.mailboxToken {
                completeOffloads()
                continue
            }
            let index = Int(event.data)
            guard index < descriptors.count, let w = descriptors[index] else { continue }
            if event.events & readMask != 0 {
                if w.readers.isEmpty { w.readEdge = true }
                if event.events & hangUpMask != 0 { w.hangUp = true }
                while let t = w.readers.dequeue() { s.wake(t, .woken) }
            }
            if event.events & writeMask != 0 {
                while let t = w.writers.dequeue() { s.wake(t, .woken) }
            }
        }
    }

    /// What an idle loop does after epoll_wait failed with `errno`.
    enum PollFailure: Equatable {
        /// EINTR: a signal (a dump request); the loop goes round again and answers it.
        case retry
        /// ENOMEM: the kernel is short of memory for a moment; report it and sleep this long
        /// before the loop tries again, rather than spin on the failing call.
        case backOff(nanoseconds: UInt64)
        /// EBADF, EINVAL, EFAULT (and anything else): the epoll descriptor or the event buffer
        /// is broken — a bug, typically a raw close(2) of the reactor's descriptor. Going on
        /// would spin or hang, so the process stops with this diagnostic.
        case fatal(String)
    }

    /// The policy for a failed epoll_wait (see `PollFailure`).
    static func pollFailure(errno e: Int32, epollFD: Int32) -> PollFailure {
        switch e {
        case EINTR: .retry
        case ENOMEM: .backOff(nanoseconds: 10_000_000)
        default:
            .fatal(
                "UserThreads: epoll_wait on the reactor's descriptor \(epollFD) failed: \(Errno(rawValue: e)). "
                    + "The runtime's epoll set is gone or broken (was descriptor \(epollFD) closed with a raw close(2)?); stopping."
            )
        }
    }

    @inline(never)
    private func pollFailed(errno e: Int32) {
        switch Reactor.pollFailure(errno: e, epollFD: epollFD) {
        case .retry:
            return
        case .backOff(let ns):
            // write(2), not the logger: this is the scheduler's idle path, where a log handler
            // that does I/O or parks must not run.
            uthreads_write_stderr(
                "uthreads: epoll_wait failed: \(Errno(rawValue: e)); retrying in \(ns / 1_000_000) ms\n")
            var request = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
            _ = nanosleep(&request, nil)
        case .fatal(let message):
            uthreads_write_stderr("\n" + message + "\n")
            fatalError(message)
        }
    }

    private func completeOffloads() {
        for job in mailbox.takeCompleted() {
            offloadsInFlight -= 1
            if let t = ControlBlock(bitPattern: job.waiter) { scheduler.wake(t, .woken) }
        }
    }

    func shutdown() {
        if dumpBellSlot >= 0 { uthreads_dump_bell_remove(dumpBellSlot) }  // before the eventfd is closed
        dumpBellSlot = -1
        for (fd, entry) in descriptors.enumerated() {
            guard let w = entry else { continue }
            wakeAllClosed(w)
            registry?.unwatch(Int32(fd), worker: registryWorker)  // M:N: before the last mail drain
        }
        descriptors.removeAll()
        uthreads_sys_close(epollFD)
    }
}
