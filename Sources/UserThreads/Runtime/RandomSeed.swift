// Layer 11: reproducible randomised choices.
extension UThreadRuntime {
    /// Seeds the calling runtime's random source, which makes randomised choices (which ready
    /// case a `channelSelect` takes) reproducible: the same seed and the same schedule give the
    /// same choices. Call it from a user thread, typically first thing in `run`. With several
    /// workers it seeds every worker, each with its own sequence (the seed mixed with the
    /// worker's index); a select draws from the sequence of the worker it runs on, so threads
    /// pinned to their workers choose the same way in every run with the same seed
    /// (Scheduler/RandomSource.swift has the details).
    /// - Throws: `UThreadError.invalidArgument` outside a runtime (there is no random source to
    ///   seed: a seed there would silently change nothing).
    public static func seedRandom(_ seed: UInt64) throws {
        try Scheduler.requireOrThrow("UThreadRuntime.seedRandom").seedRandom(seed)
    }
}
