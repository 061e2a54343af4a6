// Layer 11: the entry point — turning a kernel thread into a user-thread runtime.
import CUThreads

/// The run-time system of user threads. `run` turns the calling kernel thread into a scheduler
/// (with `workers: N`, into the first of N) and runs a closure as the main user thread;
/// everything else happens inside it.
///
/// ```swift
/// let total = try UThreadRuntime.run(workers: UThreadRuntime.processorCount) {
///     let squares = (1...4).map { n in UThread(name: "square \(n)") { n * n } }
///     return try squares.reduce(0) { try $0 + $1.join() }
/// }
/// ```
///
/// Runtimes on different kernel threads share nothing (no locks, no global scheduler), so tests
/// and servers may run several side by side; one runtime per kernel thread.
public enum UThreadRuntime {
    /// Runs `body` as the main user thread of a new runtime on the calling kernel thread and
    /// returns its value or rethrows its error.
    ///
    /// `workers: 1` (the default) is the M:1 runtime: every user thread runs on the calling
    /// kernel thread, which is the only one the kernel sees. `workers: N` starts N-1 more
    /// kernel threads (the caller is worker 0), each a scheduler of its own; idle workers take
    /// queued threads from busy ones, and started threads may move (MN/MNRuntime.swift).
    ///
    /// `body` need not be `Sendable`, even with several workers, where the main thread may run
    /// on another kernel thread: the caller is blocked in `run` until `body` has returned, so
    /// nothing else touches what it captures meanwhile, and the compiler's region checking keeps
    /// its non-`Sendable` captures out of the `sending` closures of the threads it spawns.
    ///
    /// When the main thread returns, every thread still alive is cancelled and `run` keeps
    /// scheduling until all have finished: their `defer` blocks run and nothing leaks. (A
    /// thread that ignores cancellation and never blocks delays `run`'s return.) If no thread
    /// can ever run again, `run` writes the thread table with every wait reason to stderr,
    /// wakes the parked threads so they unwind, and throws `UThreadError.deadlock`.
    ///
    /// - Parameters:
    ///   - workers: kernel threads that run user threads, 1...1024 (`processorCount` uses
    ///     every CPU).
    ///   - configuration: stack sizes and modes, accounting, checks, tracing (a ring per
    ///     worker). Validated first. The virtual clock needs `workers: 1`.
    ///   - policy: makes the scheduling algorithm, once per worker (policies are per worker);
    ///     FIFO when nil. Its error is `run`'s.
    ///   - body: the main user thread's code; its value is `run`'s.
    /// - Throws: `UThreadError.invalidArgument` (workers), `.invalidConfiguration`,
    ///   `.nestedRuntime`, `.deadlock`, `.resourceExhausted`, the policy's or the main thread's
    ///   error; `.system` naming `pthread_create` when a worker's kernel thread cannot be
    ///   started (then no user code has run).
    @discardableResult
    public static func run<R>(
        workers: Int = 1,
        _ configuration: Configuration = Configuration(),
        policy: (@Sendable () throws -> any SchedulingPolicy)? = nil,
        _ body: () throws -> R
    ) throws -> R {
        guard workers == 1 else { return try runOnWorkers(workers, configuration, policy: policy, body) }
        try configuration.validate()
        guard uthreads_get_runtime() == nil else { throw UThreadError.nestedRuntime }
        if configuration.installFaultHandler {
            let e = uthreads_install_fault_handler()
            if e != 0 {
                configuration.logger.warning(
                    "could not install the stack-overflow handler; overflows will not be named",
                    metadata: ["errno": "\(e)"])
            }
        }
        let policy = try policy?() ?? FIFOPolicy()
        JacketHooks.connect()  // once per process: offers the jacket, if linked, its hooks
        let scheduler = Scheduler(settings: configuration.schedulerSettings, policy: policy)
        let address = Unmanaged.passUnretained(scheduler).toOpaque()
        let inbox = ForeignCancels.open(
            for: address, serial: scheduler.serial, dumpBell: configuration.dumpSignal != nil)
        scheduler.foreignCancels = inbox
        defer { inbox.close(for: address) }
        uthreads_set_runtime(address)
        let attachment: Observability.Attachment
        do { attachment = try Observability.attach(scheduler, configuration) } catch {
            uthreads_set_runtime(nil)
            throw error
        }
        defer {
            Observability.detach(attachment)
            uthreads_set_runtime(nil)
            uthreads_set_current(nil)
            uthreads_checkpoint_arm(Int64.max / 2)  // checkpoint() outside a runtime: never slow
        }
        return try withoutActuallyEscaping(body) { body in
            let main = ThreadObject.make(name: "main", body: body)
            do {
                _ = try scheduler.spawn(main, priority: 0, stackSize: configuration.mainStackSize, flags: .flagMain)
            } catch {
                scheduler.shutdown()
                throw error
            }
            scheduler.runLoop()
            scheduler.shutdown()
            if let deadlock = scheduler.deadlock { throw UThreadError.deadlock(deadlock.description) }
            guard main.isFinished else { throw UThreadError.deadlock("the main thread never finished") }
            return try main.result(R.self).get()
        }
    }

    /// The runtime's clock in nanoseconds (CLOCK_MONOTONIC, or the virtual clock of a
    /// simulation): the time base of sleeps, deadlines and traces. Outside a runtime,
    /// CLOCK_MONOTONIC (the clock of every runtime that does not simulate; the one deadlines
    /// given there are measured on).
    public static var nanoseconds: UInt64 { Scheduler.active?.now() ?? uthreads_monotonic_ns() }

    /// Whether the caller runs on a user thread.
    public static var isRunning: Bool { Scheduler.active?.onUserThread ?? false }

    /// A snapshot of the calling runtime's thread table. Call it from a user thread.
    ///
    /// With several workers the table has every worker's threads, each row
    /// with its `worker`: the caller asks every other worker for its rows and waits for the
    /// answers (up to a second; a worker whose thread runs without a safe point that long is
    /// listed in `unansweredWorkers` instead). O(threads).
    public static func threadTable() -> ThreadTable {
        let s = Scheduler.require("UThreadRuntime.threadTable()")
        if let worker = s.worker, s.onUserThread { return worker.threadTable(s) }
        return s.snapshot()
    }

    /// Stack-pool figures of the calling runtime (for tests and benchmarks).
    public static var stackStatistics: StackStatistics {
        let scheduler = Scheduler.require("UThreadRuntime.stackStatistics")
        scheduler.settleHostedRow()  // the figures exact (Scheduler's "Thread objects")
        let s = scheduler.stacks
        return StackStatistics(
            inUse: s.inUse, mappedGuarded: s.mappedGuarded, switchedToDense: s.switchedToDense,
            effectiveMode: s.effectiveMode)
    }

    /// The stack pool of a runtime at a moment (``UThreadRuntime/stackStatistics``).
    public struct StackStatistics: Sendable, Equatable {
        /// Stacks owned by live threads.
        public var inUse: Int
        /// Guarded stacks currently mapped (in use or pooled).
        public var mappedGuarded: Int
        /// `.automatic` mode ran out of mappings and now hands out dense stacks.
        public var switchedToDense: Bool
        /// The mode new stacks get now.
        public var effectiveMode: StackMode
    }
}
