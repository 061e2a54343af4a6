// Layer 7: runtime configuration.

extension UThreadRuntime {
    /// How a runtime is set up. Every value is checked by `UThreadRuntime.run`, which throws
    /// `UThreadError.invalidConfiguration` naming the bad one.
    public struct Configuration: Sendable {
        public static let minimumStackSize = 16 * 1024
        public static let maximumStackSize = 1 << 30

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
        /// scheduler goes idle. For debugging the runtime (or a policy).
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
        /// ring buffer. nil (default): tracing off, one predictable branch per switch.
        public var trace: UThreadTrace?
        /// The watchdog reports a thread that ran this long past its time slice without
        /// reaching a safe point (only under policies with time slices). nil: never.
        public var watchdogLimit: Duration? = .milliseconds(50)
        /// Receives every watchdog report; nil: one rate-limited line on stderr.
        public var watchdogHandler: (@Sendable (WatchdogReport) -> Void)?

        public enum Clock: Sendable, Hashable {
            case real, virtual
        }

        public init() {}

        func validate() throws(UThreadError) {
            let range = Self.minimumStackSize...Self.maximumStackSize
            for (name, value) in [("stackSize", stackSize), ("mainStackSize", mainStackSize), ("denseStackSize", denseStackSize)] {
                guard range.contains(value) else {
                    throw .invalidConfiguration("\(name) = \(value) bytes is outside \(range.lowerBound)...\(range.upperBound)")
                }
            }
            guard pooledStacks >= 0 else { throw .invalidConfiguration("pooledStacks = \(pooledStacks) must not be negative") }
        }
    }
}
