// Runs small workloads under a policy on the virtual clock and reads the schedule back from
// the trace: exact, reproducible, independent of the machine's load.
import Testing
@testable import UserThreads

struct Job {
    var name: String
    /// CPU burst in ms (simulated work).
    var work: Int
    var scheduling = SchedulingParameters()
    /// Sleeps this long (ms) before working, if set: an arrival after time 0.
    var arrival: Int = 0
}

struct Schedule {
    var trace: UThreadTrace
    /// Job names in the order they were switched in (consecutive repeats merged).
    var runOrder: [String]
    var summary: [String: TraceThreadSummary]

    func finish(_ name: String) -> Double { Double(summary[name]!.exited!) / 1e6 }
    func turnaround(_ name: String) -> Double { Double(summary[name]!.turnaround!) / 1e6 }
    func cpu(_ name: String) -> Double { Double(summary[name]!.running) / 1e6 }
    /// Durations (ms) of the thread's running intervals.
    func runLengths(_ name: String) -> [Double] {
        let lane = summary[name]!.thread.lane
        return trace.segments().filter { $0.lane == lane && $0.state == .running && $0.end > $0.start }
            .map { Double($0.end - $0.start) / 1e6 }
    }
}

func virtualConfiguration(_ trace: UThreadTrace) -> UThreadRuntime.Configuration {
    var c = UThreadRuntime.Configuration()
    c.clock = .virtual
    c.trace = trace
    c.checkInvariants = true
    return c
}

/// Spawns every job at time 0 (in order), joins them all; returns the schedule.
func schedule(_ policy: any SchedulingPolicy, _ jobs: [Job]) throws -> Schedule {
    let trace = UThreadTrace()
    nonisolated(unsafe) let policy = policy  // made here for this workers: 1 runtime, used once by it
    try UThreadRuntime.run(virtualConfiguration(trace), policy: { policy }) {
        let threads = jobs.map { job in
            UThread(name: job.name, scheduling: job.scheduling) {
                if job.arrival > 0 { try UThread.sleep(for: .milliseconds(job.arrival)) }
                UThread.simulateWork(for: .milliseconds(job.work))
            }
        }
        for t in threads { try t.join() }
    }
    return Schedule(trace: trace, names: Set(jobs.map(\.name)))
}

extension Schedule {
    init(trace: UThreadTrace, names: Set<String>) {
        self.trace = trace
        let threads = trace.threads
        var order: [String] = []
        for e in trace.events where e.kind == .run && e.lane >= 0 {
            let n = threads[e.lane].name
            if names.contains(n) && order.last != n { order.append(n) }
        }
        runOrder = order
        var s: [String: TraceThreadSummary] = [:]
        for x in trace.summaries() where names.contains(x.thread.name) { s[x.thread.name] = x }
        summary = s
    }
}
