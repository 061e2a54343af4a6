// Layer 10: what the workers of an M:N runtime are told when it is made.
//
// The public `UThreadRuntime.Configuration` (Runtime/Configuration.swift) belongs to the layer
// above, as it does for the scheduler (Scheduler/SchedulerSettings.swift, whose essay this
// follows): the Runtime layer validates it and turns it into these settings (`mnSettings`), so
// the workers never name that layer. Only what the workers read is here: the dump signal, the
// control socket and metrics are set up by the Runtime layer around the run
// (Runtime/Observability+Workers.swift).

struct MNSettings: Sendable {
    /// What every worker's scheduler is made with (its `logger` is the workers' too).
    var scheduler: SchedulerSettings
    /// Usable stack bytes of the main thread, and of the thread that writes a merged dump.
    var mainStackSize: Int
    /// Each worker installs the SIGSEGV/SIGBUS handler that reports stack overflows.
    var installFaultHandler: Bool

    /// The workers check the deadlock census too when the schedulers check their invariants.
    var checkInvariants: Bool { scheduler.checkInvariants }
}
