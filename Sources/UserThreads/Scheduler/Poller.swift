// Layer 6: how the layer above (the reactor: epoll, eventfd, the offload pool) plugs into the
// scheduler's idle loop without the scheduler naming it.

/// A source of wake-ups other than timers and other threads: I/O readiness, completions from
/// kernel threads. The scheduler calls it when no thread is ready, and every so often while
/// threads keep running (so I/O is not starved by busy threads).
protocol Poller: AnyObject {
    /// How many parked threads this poller may still wake. While it is > 0 an empty run queue
    /// is idleness, not deadlock.
    var pendingWakeups: Int { get }
    /// Waits for events for at most `timeoutNanoseconds` (nil: until one arrives; 0: just
    /// look) and makes the woken threads ready through `Scheduler.wake`.
    func poll(timeoutNanoseconds: UInt64?)
    /// Releases the poller's kernel resources (called once, when the runtime ends).
    func shutdown()
}

extension Poller {
    func shutdown() {}
}

/// How an M:N worker (layer above) plugs into its scheduler without being named.
protocol WorkerHooks: AnyObject {
    /// Called by the idle loop when no thread is ready: take remote wake-ups, start or steal
    /// queued threads, or sleep until one of those (or a timer, or I/O) arrives. Returns false
    /// when the worker's loop must end (the M:N runtime is over).
    func idle(_ scheduler: Scheduler) -> Bool
    /// Called every 64 yields while threads keep running (remote wake-ups, shutdown).
    func maintenance(_ scheduler: Scheduler)
    /// The thread table of the whole runtime (every worker's rows), for
    /// `UThreadRuntime.threadTable()` called on one of this worker's user threads.
    func threadTable(_ scheduler: Scheduler) -> ThreadTable
    /// The thread dump of the whole runtime, for `UThreadRuntime.threadDump()` called on one of
    /// this worker's user threads.
    func threadDump(_ scheduler: Scheduler, reason: String) -> ThreadDump
    /// A dump signal's request number `request` reached this worker's safe point: write one
    /// dump of every worker's threads for the whole runtime (once per request, whichever
    /// worker sees it first).
    func dumpRequested(_ scheduler: Scheduler, request: UInt64, reason: String)
    /// A thread of this worker registered as a waiter and is about to park, and 64 such parks
    /// have passed since the last call (the count is the scheduler's `parksUntilShed`,
    /// Sync/Waiter.swift): a safe point for shedding ready threads to idle workers (no object's
    /// lock is held).
    func registeredWaiter(_ scheduler: Scheduler)
    /// A thread of this worker registered as a waiter and is about to park, with no other
    /// thread ready or under a timed policy (the only cases with work here; the others skip the
    /// call): start a queued thread first when nothing else is ready (the park then switches
    /// straight to it).
    func willPark(_ scheduler: Scheduler)
    /// Wakes row `block`'s wait `token` with `result` from another kernel thread: posted to the
    /// worker's mailbox and applied by `Scheduler.wakeWaiting` on its own kernel thread.
    func postWake(block: UInt, token: UInt64, _ result: WakeResult)
    /// An immigrant (a thread that migrated here) finished and was reaped: its row and stack
    /// must go back to their home worker, which frees them on its own kernel thread.
    func finishedAbroad(_ row: ControlBlock, home: Int)
}
