// Layer 11: the runtime's metrics, published through swift-metrics for the dashboards a Swift
// server already has (Prometheus, StatsD, OpenTelemetry: whatever backend the program
// bootstraps).
//
// Design essay
// ============
//
// What is published. Gauges: threads by state (`uthreads_threads`, label `state`), the run
// queue's length (`uthreads_run_queue_length`: the ready threads), stacks mapped
// (`uthreads_stacks_mapped`: guarded stacks in use or pooled, and every slot of the dense slabs)
// and reactor registrations (`uthreads_reactor_registrations`: descriptors in the epoll set).
// Counters: switches, spawns, offloaded calls (`blocking {}` and the I/O calls that use the
// pool), deadlock reports, steals and migrations (`uthreads_…_total`; the last two stay 0 under
// `workers: 1`, so a dashboard sees the same names for any number of workers). The
// per-scheduler figures carry a `worker` label (an M:1 runtime is worker "0": its one kernel
// thread); steals, migrations and deadlock reports are the runtime's and carry none.
// `MetricsReporting.dimensions` adds the caller's own labels to every one (two runtimes in one
// process must tell themselves apart). Why M:1 has a worker label too: a Prometheus registry
// (swift-prometheus) stops the process when one name is used both with and without labels, so
// a name is labelled the same way whichever runtime publishes it.
//
// Where the figures come from. Every figure already exists as a plain field written only on
// its scheduler's kernel thread (`Scheduler.switchCount`, `spawnCount`, the table's rows, the
// stack pool, the reactor's descriptors) or as a relaxed atomic of the M:N runtime (`stolen`,
// `migrations`, `deadlockEpoch`); the one new field is the reactor's count of offloaded calls,
// on the offload path. A sampler (`SchedulerMetrics`, one per scheduler) reads them at the
// scheduler's safe points — `maintenance` (every 64 yields) and the idle pass — when its
// interval has passed (`MetricsReporting.interval`, default one second), once more when the
// runtime ends, and whenever a user thread calls `UThreadRuntime.publishMetrics()` (a scrape
// does, so the figures it serves are fresh for the worker that serves it). Gauges are set to
// the sampled value; swift-metrics counters are increments, so a counter gets the difference
// since the sampler's last sample. Runtime-wide counters are published by whichever worker
// samples, under a lock that holds the value last published (two workers never publish the
// same increment). Threads by state are counted by walking the table: O(threads) per sample,
// which at one sample a second is nothing; the registrations walk the reactor's descriptor
// array the same way.
//
// Cost when off. `Configuration.metrics` is nil by default: no sampler exists, and each safe
// point tests one nil reference (maintenance runs every 64 yields, so the switch, spawn and
// park paths are unchanged: `uthreads bench --instructions` counted 176 per yield switch and 939
// per spawn+run+join, release build, before and after this file; `checkpoint()`, whose slow
// path is `maintenance`, went from 6.92 to 7.11 per call). A
// program that bootstraps a backend with `MetricsSystem.bootstrap` still opts in with
// `Configuration.metrics`, whose factory defaults to the bootstrapped one.
//
// Staleness. An M:1 runtime with metrics bounds its idle sleep by the interval (as the control
// socket does) so an idle runtime still publishes. An M:N worker asleep with nothing to do
// does not wake for it: its figures were published when it last ran a safe point at most one
// interval before it fell asleep, or are published by the next scrape it serves.
//
// Rejected designs:
//   * Calling swift-metrics where the figures change (`counter.increment()` per switch or
//     spawn): a call through an existential handler, often a lock or an atomic inside the
//     backend, on paths that cost ~20–100 instructions in all; and with no backend, still the
//     call into the no-op handler.
//   * Atomic counters that any thread could read at scrape time: an atomic add per switch,
//     and a cache line shared with the scraping thread.
//   * A sampling kernel thread: a thread in every program for figures most never read, and it
//     could not read the schedulers' plain fields without racing them.
//   * Swift-metrics `Meter`s for the gauges: backends map them to the same Prometheus gauge,
//     but not every backend implements meters; `Gauge` (a non-aggregating recorder) is the
//     lowest common denominator.
import CoreMetrics
import CUThreads

extension UThreadRuntime.Configuration {
    /// How a runtime publishes its gauges and counters through swift-metrics (see
    /// ``UThreadRuntime/Configuration/metrics`` and the SeeingInside article for the names).
    public struct MetricsReporting: Sendable {
        /// The most often a scheduler samples its figures at its safe points (default 1 s).
        public var interval: Duration
        /// Where the metrics go; nil: `MetricsSystem.factory`, the bootstrapped backend.
        public var factory: (any MetricsFactory)?
        /// Labels added to every metric (e.g. `[("runtime", "acceptor")]`).
        public var dimensions: [(String, String)]

        /// Publishes every `interval` to `factory` (nil: the bootstrapped backend), with
        /// `dimensions` on every metric.
        public init(
            interval: Duration = .seconds(1), factory: (any MetricsFactory)? = nil,
            dimensions: [(String, String)] = []
        ) {
            self.interval = interval
            self.factory = factory
            self.dimensions = dimensions
        }

        func validate() throws(UThreadError) {
            guard interval > .zero else {
                throw .invalidConfiguration("metrics.interval = \(interval) must be positive")
            }
        }

        /// Never traps: an interval beyond the horizon samples only on demand and at the end.
        var intervalNanoseconds: UInt64 { Deadline.clampedNanoseconds(interval) }
    }
}

extension UThreadRuntime {
    /// Publishes the calling scheduler's figures now (for a scrape or a test), if the runtime
    /// was configured with ``Configuration/metrics``; otherwise does nothing. Under
    /// `run(workers:)` this samples the calling worker only (the others publish at their own
    /// safe points). Call it from a user thread.
    public static func publishMetrics() {
        let s = Scheduler.require("UThreadRuntime.publishMetrics()")
        s.sampler?.sample(s)
    }
}

/// Metric names, in one place (the tests and the documentation use the same).
enum MetricNames {
    static let threads = "uthreads_threads"
    static let runQueue = "uthreads_run_queue_length"
    static let stacksMapped = "uthreads_stacks_mapped"
    static let registrations = "uthreads_reactor_registrations"
    static let switches = "uthreads_switches_total"
    static let spawns = "uthreads_spawns_total"
    static let offloads = "uthreads_offloaded_calls_total"
    static let deadlocks = "uthreads_deadlock_reports_total"
    static let steals = "uthreads_steals_total"
    static let migrations = "uthreads_migrations_total"
}

/// A swift-metrics counter fed from a monotonic source: each publish adds the source's growth
/// since the last one.
private struct DeltaCounter {
    let counter: Counter
    var last: UInt64 = 0

    init(_ label: String, _ dimensions: [(String, String)], _ factory: any MetricsFactory) {
        counter = Counter(label: label, dimensions: dimensions, factory: factory)
    }

    mutating func publish(_ value: UInt64) {
        if value > last { counter.increment(by: Int64(truncatingIfNeeded: value &- last)) }
        last = value
    }
}

/// The figures of a whole M:N runtime (steals, migrations, deadlock reports), published by
/// whichever worker samples (see the essay).
final class RuntimeWideMetrics: Sendable {
    private let counters: KernelLock<[DeltaCounter]>
    private let read: @Sendable () -> [UInt64]

    /// `read` returns the steals, migrations and deadlock reports so far, in that order.
    init(_ reporting: UThreadRuntime.Configuration.MetricsReporting, read: @escaping @Sendable () -> [UInt64]) {
        let factory = reporting.factory ?? MetricsSystem.factory
        let d = reporting.dimensions
        counters = KernelLock([
            DeltaCounter(MetricNames.steals, d, factory), DeltaCounter(MetricNames.migrations, d, factory),
            DeltaCounter(MetricNames.deadlocks, d, factory),
        ])
        self.read = read
    }

    func publish() {
        counters.withLock { counters in
            for (i, value) in read().enumerated() { counters[i].publish(value) }
        }
    }
}

/// One scheduler's sampler: its gauges, its counters and when it sampled last.
final class SchedulerMetrics: SafePointSampler {
    private let interval: UInt64
    private var due: UInt64 = 0
    /// Indexed like `ThreadState.allCases`.
    private let threads: [Gauge]
    private let runQueue, stacksMapped, registrations: Gauge
    private var switches, spawns, offloads: DeltaCounter
    /// `workers: 1` only (several workers report these through their runtime); no `worker`
    /// label. Nothing is stolen or migrated there: those two stay 0.
    private var deadlocks, steals, migrations: DeltaCounter?
    private let runtimeWide: RuntimeWideMetrics?

    /// `worker`: the worker's index, its `worker` label (0 under M:1); `runtimeWide`: the M:N
    /// runtime's own counters (nil under M:1).
    init(_ reporting: UThreadRuntime.Configuration.MetricsReporting, worker: Int, runtimeWide: RuntimeWideMetrics?) {
        let factory = reporting.factory ?? MetricsSystem.factory
        let d = reporting.dimensions + [("worker", String(worker))]
        interval = reporting.intervalNanoseconds
        threads = ThreadState.allCases.map {
            Gauge(label: MetricNames.threads, dimensions: d + [("state", $0.rawValue)], factory: factory)
        }
        runQueue = Gauge(label: MetricNames.runQueue, dimensions: d, factory: factory)
        stacksMapped = Gauge(label: MetricNames.stacksMapped, dimensions: d, factory: factory)
        registrations = Gauge(label: MetricNames.registrations, dimensions: d, factory: factory)
        switches = DeltaCounter(MetricNames.switches, d, factory)
        spawns = DeltaCounter(MetricNames.spawns, d, factory)
        offloads = DeltaCounter(MetricNames.offloads, d, factory)
        if runtimeWide == nil {
            deadlocks = DeltaCounter(MetricNames.deadlocks, reporting.dimensions, factory)
            steals = DeltaCounter(MetricNames.steals, reporting.dimensions, factory)
            migrations = DeltaCounter(MetricNames.migrations, reporting.dimensions, factory)
        }
        self.runtimeWide = runtimeWide
    }

    func sampleIfDue(_ s: Scheduler) {
        if uthreads_monotonic_ns() >= due { sample(s) }
    }

    func sample(_ s: Scheduler) {
        due = uthreads_monotonic_ns() &+ interval
        s.settleHostedRow()  // the pool's figures exact (Scheduler's "Thread objects")
        var byState = [Int](repeating: 0, count: ThreadState.allCases.count)
        s.table.forEachLive { t in
            let state = ThreadState(raw: t.pointee.state)
            byState[ThreadState.allCases.firstIndex(of: state)!] += 1
        }
        for (gauge, n) in zip(threads, byState) { gauge.record(n) }
        runQueue.record(byState[ThreadState.allCases.firstIndex(of: .ready)!])
        stacksMapped.record(s.stacks.mappedStacks)
        let reactor = Reactor.existing(s)
        registrations.record(reactor?.registrationCount ?? 0)
        switches.publish(s.switchCount)
        spawns.publish(s.spawnCount)
        offloads.publish(reactor?.offloadCount ?? 0)
        deadlocks?.publish(UInt64(s.deadlockReports))
        steals?.publish(0)
        migrations?.publish(0)
        runtimeWide?.publish()
    }
}
