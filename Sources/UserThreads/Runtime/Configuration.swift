// Layer 11: runtime configuration.
import Glibc
import Logging

extension UThreadRuntime {
    /// How a runtime is set up. Every value is checked by `UThreadRuntime.run`, which throws
    /// `UThreadError.invalidConfiguration` naming the bad one.
    public struct Configuration: Sendable {
        /// The smallest stack a thread may ask for (16 KiB).
        public static let minimumStackSize = SchedulerSettings.minimumStackSize
        /// The largest stack a thread may ask for (1 GiB; only touched pages cost memory).
        public static let maximumStackSize = SchedulerSettings.maximumStackSize

        /// Usable stack bytes of a thread that does not ask for a size. 256 KiB: debug builds of
        /// Swift code use large frames (a few KiB per frame is common, no tail calls), and the
        /// memory is only reserved — a thread pays for the pages it touches, not for the size.
        public var stackSize = 256 * 1024
        /// Stack of the main user thread (the closure given to `run`): as large as a process's
        /// usual main thread needs. 1 MiB.
        public var mainStackSize = 1024 * 1024
        /// Guarded, dense, or guarded-then-dense (default). See `StackMode`.
        public var stackMode: StackMode = .automatic
        /// Stack bytes of a dense-mode thread (64 KiB, of which a parked thread typically
        /// touches one page). A thread asking for more gets a guarded stack.
        public var denseStackSize = 64 * 1024
        /// Finished threads' stacks kept for reuse (per runtime).
        public var pooledStacks = 4096
        /// Per-thread CPU time from the time-stamp counter (~10 ns per switch).
        public var cpuAccounting = true
        /// Runs the O(n) invariant checks of the table, timers and policy whenever the
        /// scheduler goes idle, and each sync primitive's after every change of its state by
        /// this runtime's threads (Sync/SyncSupport.swift, "Invariants"). For debugging the
        /// runtime (or a policy).
        public var checkInvariants = false
        /// Installs the SIGSEGV/SIGBUS handler that reports stack overflows.
        public var installFaultHandler = true
        /// The scheduler's clock: real (CLOCK_MONOTONIC) or virtual (simulation: time moves only
        /// with `UThread.simulateWork` and jumps to the next timer when all threads wait, so a
        /// run with a seeded policy is reproduced exactly). Under the virtual clock, use
        /// `sleep(for:)` and `UThreadRuntime.nanoseconds`; `sleep(until:)` takes a
        /// `ContinuousClock` instant and so measures from the real now.
        public var clock: Clock = .real
        /// Records scheduling events (spawn, run, yield, block, wake, exit) into this trace's
        /// ring buffer, one ring per worker (each event names its worker). nil (default):
        /// tracing off, one predictable branch per switch.
        public var trace: UThreadTrace?
        /// The watchdog reports a thread that ran this long past its time slice without
        /// reaching a safe point (only under policies with time slices). nil: never.
        public var watchdogLimit: Duration? = .milliseconds(50)
        /// Receives every watchdog report; nil: one rate-limited line on stderr.
        public var watchdogHandler: (@Sendable (WatchdogReport) -> Void)?

        /// The time base of a runtime's scheduler: sleeps, timeouts, time slices, deadlines
        /// and trace timestamps. See `clock`.
        public enum Clock: Sendable, Hashable {
            /// Wall time from CLOCK_MONOTONIC (and the time-stamp counter for slices): the
            /// default, for real programs.
            case real
            /// Simulated time for deterministic runs: it starts at 0, advances only through
            /// `UThread.simulateWork` and jumps to the next timer when every thread waits.
            case virtual
        }
        /// The signal that makes every runtime write a thread dump to stderr at its next safe
        /// point (SIGQUIT, as in Go and Java); nil leaves signals alone. An M:N runtime writes
        /// one dump with every worker's threads. The handler replaces the Swift runtime's crash
        /// backtracer for this signal, but is not installed over one the program has its own
        /// handler for.
        public var dumpSignal: Int32? = SIGQUIT
        /// Where the runtime reports what it notices on its own: configuration problems, the
        /// switch to dense stacks. Label "uthreads"; swift-log's default handler writes to
        /// stderr. Reports that end the process (stack overflow) bypass it: see RuntimeLog.swift.
        public var logger = Logger(label: "uthreads")
        /// A Unix socket path on which the runtime serves its thread table as JSON while it
        /// runs, for `uthreads top PATH` (opt-in; nil: none). "%p" stands for the process id:
        /// "/tmp/uthreads-%p.sock" is where `uthreads top PID` looks. A dedicated kernel thread
        /// serves every client at once, each with a 5 s deadline to send its request and another
        /// to read the answer; the scheduler answers at its safe points (a request wakes an idle
        /// runtime; M:N workers are asked through their mailboxes, and the table has every
        /// worker's threads), or the client gets an error after 5 s. `run` throws
        /// `invalidConfiguration` if the path is empty, contains a NUL byte or cannot be listened
        /// on.
        public var controlSocket: String?
        /// Publishes the runtime's gauges and counters (threads by state, run queue, stacks,
        /// reactor registrations; switches, spawns, offloaded calls, deadlock reports, and
        /// under M:N steals and migrations) through swift-metrics, sampled at the schedulers'
        /// safe points at most every `interval` (Runtime/RuntimeMetrics.swift). nil (default):
        /// nothing is sampled and nothing is published.
        public var metrics: MetricsReporting?

        /// The defaults, as each property documents them.
        public init() {}

        func validate() throws(UThreadError) {
            let range = Self.minimumStackSize...Self.maximumStackSize
            for (name, value) in [
                ("stackSize", stackSize), ("mainStackSize", mainStackSize), ("denseStackSize", denseStackSize),
            ] {
                guard range.contains(value) else {
                    throw .invalidConfiguration(
                        "\(name) = \(value) bytes is outside \(range.lowerBound)...\(range.upperBound)")
                }
            }
            guard pooledStacks >= 0 else {
                throw .invalidConfiguration("pooledStacks = \(pooledStacks) must not be negative")
            }
            if let dumpSignal,
                dumpSignal <= 0 || dumpSignal >= 65 || [SIGKILL, SIGSTOP, SIGSEGV, SIGBUS].contains(dumpSignal)
            {
                throw .invalidConfiguration("dumpSignal = \(dumpSignal) cannot be caught for dumps")
            }
            if let controlSocket, controlSocket.isEmpty || controlSocket.utf8.contains(0) {
                throw .invalidConfiguration(
                    "controlSocket \(controlSocket.debugDescription) must be a non-empty path without NUL bytes")
            }
            try metrics?.validate()
        }
    }
}

extension UThreadRuntime.Configuration {
    /// What the scheduler reads of this configuration (Scheduler/SchedulerSettings.swift).
    var schedulerSettings: SchedulerSettings {
        SchedulerSettings(
            virtualClock: clock == .virtual, trace: trace,
            watchdogLimit: watchdogLimit, watchdogHandler: watchdogHandler,
            stackMode: stackMode, stackSize: stackSize, denseStackSize: denseStackSize,
            pooledStacks: pooledStacks, logger: logger, cpuAccounting: cpuAccounting,
            checkInvariants: checkInvariants, dumpSignal: dumpSignal)
    }

    /// What the workers of an M:N runtime read of this configuration (MN/MNSettings.swift).
    var mnSettings: MNSettings {
        MNSettings(
            scheduler: schedulerSettings, mainStackSize: mainStackSize, installFaultHandler: installFaultHandler)
    }
}
