// Layer 11: reproducible randomised choices.
extension UThreadRuntime {
    /// Seeds the calling runtime's random source, which makes randomised choices (which ready
    /// case a `channelSelect` takes) reproducible: the same seed and the same schedule give the
    /// same choices. Call it from a user thread, typically first thing in `run`.
    /// - Throws: `UThreadError.invalidArgument` outside a runtime (there is no random source to
    ///   seed: a seed there would silently change nothing).
    public static func seedRandom(_ seed: UInt64) throws {
        try Scheduler.requireOrThrow("UThreadRuntime.seedRandom").randomState = seed
    }
}
