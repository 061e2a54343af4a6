import MetricsTestKit
import Testing
@testable import UserThreads

/// A configuration that publishes to `metrics`, sampling only when asked (`publishMetrics`) or
/// when the runtime ends, unless `interval` says otherwise.
private func reporting(to metrics: TestMetrics, interval: Duration = .seconds(3600)) -> UThreadRuntime.Configuration {
    var configuration = UThreadRuntime.Configuration()
    configuration.metrics = .init(interval: interval, factory: metrics, dimensions: [("test", "yes")])
    return configuration
}

/// The last value of the gauge `label` with exactly `dimensions` (nil: never recorded).
private func gauge(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)]) -> Double? {
    (try? metrics.expectGauge(label, dimensions))?.lastValue
}

/// The sum of every counter named `label`, whatever its dimensions (e.g. over workers).
private func total(_ metrics: TestMetrics, _ label: String) -> Int64 {
    metrics.counters(label: label).reduce(0) { $0 + $1.totalValue }
}

@Suite(.timeLimit(.minutes(1)))
struct RuntimeMetricsTests {
    @Test func gaugesShowParkedThreadsAndCountersCountSpawnsAndSwitches() throws {
        let metrics = TestMetrics()
        let labels = [("test", "yes"), ("worker", "0")]  // an M:1 runtime is worker 0
        try UThreadRuntime.run(reporting(to: metrics)) {
            let gate = USemaphore()
            let parked = (0..<5).map { _ in UThread.local { try gate.wait() } }
            let ready = (0..<3).map { _ in UThread { UThread.yield() } }
            UThreadRuntime.publishMetrics()  // nothing ran yet: 8 ready, main running
            #expect(gauge(metrics, MetricNames.threads, labels + [("state", "ready")]) == 8)
            #expect(gauge(metrics, MetricNames.runQueue, labels) == 8)
            #expect(gauge(metrics, MetricNames.threads, labels + [("state", "running")]) == 1)
            for t in ready { try t.join() }
            UThreadRuntime.publishMetrics()
            #expect(gauge(metrics, MetricNames.threads, labels + [("state", "blocked")]) == 5)
            #expect(gauge(metrics, MetricNames.threads, labels + [("state", "ready")]) == 0)
            #expect(gauge(metrics, MetricNames.runQueue, labels) == 0)
            #expect((gauge(metrics, MetricNames.stacksMapped, labels) ?? 0) >= 6)
            for _ in parked { gate.signal() }
            for t in parked { try t.join() }
        }
        // The last sample, when the runtime ended: main and 8 threads spawned; each of the 8
        // ran at least once (a switch in), the 3 yielders twice.
        #expect(total(metrics, MetricNames.spawns) == 9)
        #expect(total(metrics, MetricNames.switches) >= 8 + 3 + 1)
        #expect(total(metrics, MetricNames.deadlocks) == 0)
        #expect(gauge(metrics, MetricNames.threads, labels + [("state", "blocked")]) == 0)
    }

    @Test func offloadedCallsAndReactorRegistrationsAreCounted() throws {
        let metrics = TestMetrics()
        try UThreadRuntime.run(reporting(to: metrics)) {
            for n in 0..<3 { #expect(try blocking { n } == n) }
            let pipe = try IO.pipe()
            let reader = UThread { () -> Int in
                var byte: UInt8 = 0
                return try withUnsafeMutableBytes(of: &byte) { try IO.read(pipe.read, into: $0, timeout: .seconds(30)) }
            }
            UThread.yield()  // the reader parks on the pipe: its descriptor is in the epoll set
            UThreadRuntime.publishMetrics()
            #expect((gauge(metrics, MetricNames.registrations, [("test", "yes"), ("worker", "0")]) ?? 0) >= 1)
            var byte: UInt8 = 7
            _ = try withUnsafeBytes(of: &byte) { try IO.write(pipe.write, from: $0) }
            #expect(try reader.join() == 1)
            try IO.close(pipe.read)
            try IO.close(pipe.write)
        }
        #expect(total(metrics, MetricNames.offloads) == 3)
    }

    @Test func aDeadlockReportIsCounted() throws {
        let metrics = TestMetrics()
        #expect(throws: UThreadError.self) {
            try UThreadRuntime.run(reporting(to: metrics)) { try USemaphore(name: "never signalled").wait() }
        }
        #expect(total(metrics, MetricNames.deadlocks) == 1)
        // The runtime's own figure: no worker label, as under M:N (one registry may see both).
        #expect(metrics.counters(label: MetricNames.deadlocks).map { $0.dimensions.map(\.0) } == [["test"]])
    }

    @Test func anIdleRuntimePublishesOnItsOwn() throws {
        let metrics = TestMetrics()
        let sawIt = try UThreadRuntime.run(reporting(to: metrics, interval: .milliseconds(1))) { () -> Bool in
            let gate = USemaphore()
            let sleeper = UThread.local { try gate.wait() }
            // No publishMetrics: the idle loop samples while main sleeps (its sleep is bounded
            // by the interval). Waits on the condition, with a deadline.
            var seen = false
            for _ in 0..<10_000 where !seen {
                try UThread.sleep(for: .milliseconds(1))
                seen =
                    gauge(metrics, MetricNames.threads, [("test", "yes"), ("worker", "0"), ("state", "blocked")]) == 1
            }
            gate.signal()
            try sleeper.join()
            return seen
        }
        #expect(sawIt)
    }

    @Test func withoutConfigurationNothingIsPublished() throws {
        try UThreadRuntime.run {
            UThreadRuntime.publishMetrics()  // no sampler: nothing happens
            #expect(Scheduler.require("test").sampler == nil)
        }
    }

    @Test func aNonPositiveIntervalIsRejectedAndAHugeOneMeansOnDemand() throws {
        for interval: Duration in [.zero, .nanoseconds(-1), .seconds(-1)] {
            var configuration = UThreadRuntime.Configuration()
            configuration.metrics = .init(interval: interval, factory: TestMetrics())
            #expect(throws: UThreadError.self) { try UThreadRuntime.run(configuration) {} }
        }
        let metrics = TestMetrics()
        try UThreadRuntime.run(reporting(to: metrics, interval: .seconds(Int64.max))) {
            UThreadRuntime.publishMetrics()
        }
        #expect(total(metrics, MetricNames.spawns) == 1)
    }

    @Test(arguments: [1, 2])
    func workersAreLabelledAndRuntimeWideCountersAreNot(workers: Int) throws {
        let metrics = TestMetrics()
        try UThreadRuntime.run(workers: workers, reporting(to: metrics)) {
            let threads = (0..<20).map { n in
                UThread { () -> Int in
                    UThread.yield()
                    return n
                }
            }
            for (n, t) in threads.enumerated() {
                let value = try t.join()
                #expect(value == n)
            }
        }
        // main and 20 threads spawned, over the workers' labels.
        #expect(total(metrics, MetricNames.spawns) == 21)
        #expect(total(metrics, MetricNames.switches) >= 21)
        for w in 0..<workers {
            #expect(gauge(metrics, MetricNames.runQueue, [("test", "yes"), ("worker", String(w))]) == 0)
            #expect(
                metrics.counters(label: MetricNames.switches).contains {
                    $0.dimensions.contains { $0 == ("worker", String(w)) }
                })
        }
        for label in [MetricNames.steals, MetricNames.migrations, MetricNames.deadlocks] {
            let counters = metrics.counters(label: label)
            #expect(counters.count == 1, "\(label): one runtime-wide counter")
            #expect(counters.allSatisfy { !$0.dimensions.contains { $0.0 == "worker" } })
        }
        #expect(total(metrics, MetricNames.deadlocks) == 0)
    }
}
