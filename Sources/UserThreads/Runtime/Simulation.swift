// Layer 11: deterministic simulation — a seeded policy on the virtual clock.
//
// Under `Configuration.clock = .virtual` time moves only when a thread simulates work or
// when every thread waits on timers (the idle loop jumps to the next deadline), and the
// scheduler's decisions depend only on that clock and the policy. With a seeded policy
// (LotteryPolicy by default: every yield, quantum end and wake-up becomes a seeded random
// choice among the ready threads) a run is a pure function of the program and its seed: the
// same seed gives the same interleaving and the same trace, event for event. Exploring seeds
// 1…N explores N interleavings; a failure names its seed, and rerunning that seed reproduces
// it. Not deterministic: anything the program itself takes from outside (real I/O, the real
// clock, addresses, other kernel threads).

extension UThreadRuntime {
    /// A scenario that failed under simulation, with the seed that reproduces it.
    public struct SimulationFailure: Error, CustomStringConvertible {
        /// The seed whose run failed: pass it to `UThreadRuntime.simulate(seed:_:policy:_:)` to
        /// reproduce the failure exactly.
        public var seed: UInt64
        /// What that run threw: the scenario's own error, or a runtime error such as
        /// `UThreadError.deadlock`.
        public var error: any Error
        public var description: String {
            "simulation failed with seed \(seed) (rerun it with UThreadRuntime.simulate(seed: \(seed)) { … }): \(error)"
        }
    }

    /// Runs `body` under the virtual clock with a policy seeded by `seed` (default: an
    /// equal-ticket `LotteryPolicy` with a 1 ms quantum — a random interleaving per seed).
    ///
    /// - Parameters:
    ///   - seed: seeds the policy's random choices: the same seed gives the same run.
    ///   - configuration: used as given except that its clock is made virtual.
    ///   - policy: builds the policy from the seed.
    ///   - body: the main user thread of the simulated run.
    public static func simulate<R>(
        seed: UInt64,
        _ configuration: Configuration = Configuration(),
        policy: ((UInt64) -> any SchedulingPolicy)? = nil,
        _ body: () throws -> R
    ) throws -> R {
        var c = configuration
        c.clock = .virtual
        // Made here, on the caller's kernel thread, which is the runtime's only one (`workers: 1`).
        nonisolated(unsafe) let p = try policy?(seed) ?? LotteryPolicy(seed: seed, quantum: .milliseconds(1))
        return try run(c, policy: { p }) {
            // Randomised choices (channelSelect) follow the seed too, so that the whole run
            // is a function of it.
            try seedRandom(seed ^ 0x9E37_79B9_7F4A_7C15)
            return try body()
        }
    }

    /// Runs `body` under `simulate(seed:)` for every seed in `seeds` and returns the first
    /// failure (a thrown error, a deadlock), or nil when every seed passed.
    ///
    /// ```swift
    /// let failure = UThreadRuntime.firstFailingSeed(1...200) {
    ///     try transferScenario()          // throws when an invariant breaks
    /// }
    /// #expect(failure == nil, "\(failure!)")
    /// ```
    public static func firstFailingSeed(
        _ seeds: ClosedRange<UInt64>,
        _ configuration: Configuration = Configuration(),
        policy: ((UInt64) -> any SchedulingPolicy)? = nil,
        _ body: () throws -> Void
    ) -> SimulationFailure? {
        for seed in seeds {
            do {
                try simulate(seed: seed, configuration, policy: policy, body)
            } catch {
                return SimulationFailure(seed: seed, error: error)
            }
        }
        return nil
    }
}
