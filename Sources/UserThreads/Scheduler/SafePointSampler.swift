// Layer 6: how the layer above publishes the scheduler's counters without being named. Why the
// counters are read at safe points and not published where they change: the essay in
// Runtime/RuntimeMetrics.swift.

/// Reads a scheduler's plain counters and publishes them elsewhere (metrics). Called only on
/// the scheduler's own kernel thread, at its safe points (`maintenance`, the idle pass) and
/// once when the runtime ends; never on the spawn, switch or park paths.
protocol SafePointSampler: AnyObject {
    /// Samples if the sampler's interval has passed since its last sample.
    func sampleIfDue(_ scheduler: Scheduler)
    /// Samples now.
    func sample(_ scheduler: Scheduler)
}
