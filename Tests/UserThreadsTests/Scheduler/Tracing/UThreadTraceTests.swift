import Foundation
import Testing

@testable import UserThreads

/// The trace: its ring capacity, and traced runs on one worker and on two (a ring per worker,
/// merged by time, every event with its worker).
@Suite(.timeLimit(.minutes(1)))
struct UThreadTraceTests {
    /// The capacity is rounded up to a power of two, within 16...maximumCapacity, for any `Int`
    /// (the rounding loop ran forever for `Int.max` and trapped in the allocation for 2^62).
    @Test func capacityIsAPowerOfTwoWithinItsLimits() {
        #expect(UThreadTrace(capacity: 1000).capacity == 1024)
        #expect(UThreadTrace(capacity: 1 << 16).capacity == 1 << 16)
        for small in [Int.min, -1, 0, 1, 16] {
            #expect(UThreadTrace(capacity: small).capacity == 16, "capacity \(small)")
        }
        for huge in [UThreadTrace.maximumCapacity + 1, 1 << 62, Int.max] {
            #expect(UThreadTrace(capacity: huge).capacity == UThreadTrace.maximumCapacity, "capacity \(huge)")
        }
    }

    /// Runs `body` as the main thread of a traced runtime of `workers` workers.
    static func traced(workers: Int, capacity: Int = 1 << 16, _ body: () throws -> Void) throws -> UThreadTrace {
        let trace = UThreadTrace(capacity: capacity)
        var configuration = UThreadRuntime.Configuration()
        configuration.trace = trace
        try UThreadRuntime.run(workers: workers, configuration) { try body() }
        return trace
    }

    /// The problems in one thread's events (empty when they are a life in order): spawn first;
    /// run only when ready; yield, preempt, block and exit only when running; wake only when
    /// parked; nothing after exit; times never going back.
    static func lifeProblems(_ events: [TraceEvent]) -> [String] {
        enum State { case none, ready, running, parked, gone }
        var state = State.none
        var last: UInt64 = 0
        var problems: [String] = []
        for e in events {
            if e.nanoseconds < last { problems.append("\(e.kind.name) at \(e.nanoseconds) after \(last)") }
            last = e.nanoseconds
            let (from, to): ([State], State) =
                switch e.kind {
                case .spawn: ([.none], .ready)
                case .run: ([.ready], .running)
                case .yield, .preempt: ([.running], .ready)
                case .block: ([.running], .parked)
                case .wake: ([.parked], .ready)
                case .exit: ([.running], .gone)
                case .overrun: ([.running, .ready, .parked], state)
                }
            if !from.contains(state) { problems.append("\(e.kind.name) on worker \(e.worker) in state \(state)") }
            state = to
        }
        if state != .gone { problems.append("did not end with exit (\(state))") }
        return problems
    }

    /// A thread pinned to each worker yields, sleeps and exits: each worker's ring has its
    /// thread's spawn, runs, park and exit, every event names the worker (and its kernel
    /// thread), the merged events are in time order and each thread's life is in order.
    @Test(arguments: [1, 2]) func aTracedRunRecordsTheThreadsOfEveryWorker(workers: Int) throws {
        let trace = try Self.traced(workers: workers) {
            let threads = try (0..<workers).map { w in
                try UThread.spawn(name: "on \(w)", onWorker: w) {
                    UThread.yield()
                    try UThread.sleep(for: .milliseconds(1))
                }
            }
            for t in threads { try t.join() }
        }
        #expect(trace.workers == workers)
        #expect(trace.dropped == 0)
        let kernelThreads = trace.kernelThreads
        #expect(kernelThreads.count == workers && Set(kernelThreads).count == workers && !kernelThreads.contains(0))
        let events = trace.events
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.nanoseconds <= $1.nanoseconds })
        #expect(events.allSatisfy { (0..<workers).contains($0.worker) && $0.kernelThread == kernelThreads[$0.worker] })
        for w in 0..<workers {
            let thread = try #require(trace.threads.first { $0.name == "on \(w)" })
            #expect(thread.worker == w)
            let mine = events.filter { $0.thread == thread.id }
            #expect(mine.allSatisfy { $0.worker == w && $0.lane == thread.lane }, "pinned to worker \(w)")
            #expect(Self.lifeProblems(mine).isEmpty, "\(thread.label): \(Self.lifeProblems(mine))")
            let kinds = Set(mine.map(\.kind))
            #expect(kinds.isSuperset(of: [.spawn, .run, .block, .wake, .exit]), "\(kinds)")
            #expect(mine.contains { $0.waitReason == .sleep })
            #expect(trace.segments().filter { $0.lane == thread.lane }.allSatisfy { $0.worker == w })
        }
        for thread in trace.threads {
            let life = events.filter { $0.thread == thread.id }
            #expect(Self.lifeProblems(life).isEmpty, "\(thread.label): \(Self.lifeProblems(life))")
        }
    }

    /// On two workers, threads that worker 0 started and that then moved to worker 1 show runs
    /// on both workers' rings, and their lives stay in order across the move (one clock for
    /// both kernel threads). Each step computes a while between yields, so that the rings
    /// (2^20 events each) outlast a worker 1 that the loaded machine leaves off the CPU for a
    /// long time; the loop is bounded by a count of steps, not by time.
    @Test func aMigratingThreadShowsOnBothWorkers() throws {
        let trace = try Self.traced(workers: 2, capacity: 1 << 20) {
            let moved = MNFlag()
            let threads = (0..<4).map { n in
                UThread.startingHere { () -> UInt64 in
                    let first = UThread.worker
                    var (steps, x) = (0, UInt64(n + 1))
                    while !moved.isSet && steps < 100_000 {
                        for _ in 0..<2_000 { x = x &* 6_364_136_223_846_793_005 &+ 1 }  // no safe point
                        UThread.yield()
                        if UThread.worker != first { moved.set() }
                        steps += 1
                    }
                    return x
                }
            }
            for t in threads { _ = try t.join() }
            #expect(moved.isSet, "no thread migrated in 100,000 steps")
        }
        #expect(trace.dropped == 0)
        let events = trace.events
        let movers = trace.threads.filter { t in
            Set(events.filter { $0.thread == t.id && $0.kind == .run }.map(\.worker)).count == 2
        }
        #expect(!movers.isEmpty)
        for thread in trace.threads {
            let life = events.filter { $0.thread == thread.id }
            #expect(Self.lifeProblems(life).isEmpty, "\(thread.label): \(Self.lifeProblems(life))")
        }
    }

    /// The Perfetto export parses as JSON in the Trace Event Format; with two workers it has a
    /// track per worker, a bar there for each run, and each interval's worker in its args.
    @Test(arguments: [1, 2]) func thePerfettoExportParsesAndHasTheWorkers(workers: Int) throws {
        let trace = try Self.traced(workers: workers) {
            let threads = try (0..<workers).map { w in
                try UThread.spawn(name: "on \(w)", onWorker: w) { try UThread.sleep(for: .milliseconds(1)) }
            }
            for t in threads { try t.join() }
        }
        let json = try JSONSerialization.jsonObject(with: Data(trace.perfettoJSON().utf8)) as? [String: Any]
        let other = try #require(json?["otherData"] as? [String: Any])
        #expect(other["workers"] as? Int == workers)
        let records = try #require(json?["traceEvents"] as? [[String: Any]])
        #expect(records.allSatisfy { $0["ph"] is String && $0["pid"] is Int && $0["tid"] is Int })
        let names = records.filter { $0["name"] as? String == "thread_name" }
            .compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        let intervals = records.filter { $0["ph"] as? String == "X" }
        let tracks = Set(trace.threads.map { $0.lane + 1 })
        let onThreadTracks = intervals.filter { tracks.contains($0["tid"] as? Int ?? -1) }
        #expect(onThreadTracks.count == trace.segments().count)
        if workers == 1 {
            #expect(!names.contains { $0.hasPrefix("worker ") })
            #expect(onThreadTracks.allSatisfy { $0["args"] == nil })
        } else {
            for w in 0..<workers {
                #expect(names.contains("worker \(w) (kernel thread \(trace.kernelThreads[w]))"), "\(names)")
            }
            let workerTracks = intervals.filter { !tracks.contains($0["tid"] as? Int ?? -1) }
            #expect(workerTracks.count == trace.segments().filter { $0.state == .running }.count)
            let recorded = Set(onThreadTracks.compactMap { ($0["args"] as? [String: Any])?["worker"] as? Int })
            #expect(recorded == Set(0..<workers))
            let instants = records.filter { $0["ph"] as? String == "i" }
            #expect(!instants.isEmpty)  // the wakes after the sleeps
            #expect(
                instants.allSatisfy {
                    (($0["args"] as? [String: Any])?["worker"] as? Int).map(recorded.contains) == true
                })
        }
    }
}
