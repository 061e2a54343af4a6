// Layer 11: reproducible randomised choices.
extension UThreadRuntime {
    /// Seeds the calling runtime's random source, which makes randomised choices (which ready
    /// case a `channelSelect` takes) reproducible: the same seed and the same schedule give the
    /// same choices. Call it from a user thread, typically first thing in `run`.
    public static func seedRandom(_ seed: UInt64) {
        Scheduler.require("UThreadRuntime.seedRandom").randomState = seed
    }
}
