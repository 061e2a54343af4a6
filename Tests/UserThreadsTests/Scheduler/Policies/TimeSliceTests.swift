// Quanta on the real clock, the watchdog, determinism under the virtual clock, exports.
import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Synchronization
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct TimeSliceTests {
    /// Real clock: a CPU-bound thread that only calls checkpoint() is switched out at its
    /// 2 ms quantum, not before, and the other thread runs next. (How long after the quantum
    /// the switch comes is a wall-time figure on a shared machine; the virtual-clock test
    /// below pins it exactly.) A checkpoint that never switched would hang this test until its
    /// time limit.
    @Test func checkpointSwitchesOutAtTheQuantum() throws {
        let trace = UThreadTrace()
        var c = UThreadRuntime.Configuration()
        c.trace = trace
        let spun = try UThreadRuntime.run(c, policy: { try RoundRobinPolicy(quantum: .milliseconds(2)) }) {
            var otherRan = false
            var calls = 0
            let spinner = UThread.local(name: "spinner") {
                while !otherRan {
                    UThread.checkpoint()
                    calls += 1
                }
            }
            let other = UThread.local(name: "other") { otherRan = true }
            try other.join()
            try spinner.join()
            return calls
        }
        #expect(spun >= 16)  // the clock is first read at the 16th call of a slice
        // The order of events: the spinner runs, leaves the CPU first by preemption (not a
        // yield or a block), and the other thread runs after that. Its slice, on the trace's
        // clock (the TSC the slice was measured on), is at least the quantum (less 0.5 % for
        // the rate's calibration).
        let spinnerLane = try #require(trace.threads.first { $0.name == "spinner" }).lane
        let events = trace.events.filter { $0.lane == spinnerLane }
        let runIndex = try #require(events.firstIndex { $0.kind == .run })
        let run = events[runIndex]
        let left = try #require(
            events[(runIndex + 1)...].first { [.yield, .preempt, .block, .exit].contains($0.kind) })
        #expect(left.kind == .preempt, "the spinner first left the CPU by \(left.kind)")
        #expect(
            left.nanoseconds >= run.nanoseconds + 1_990_000,
            "switched out \(left.nanoseconds - run.nanoseconds) ns after it ran, before its 2 ms quantum")
        let otherFirstRun = try #require(trace.summaries().first { $0.thread.name == "other" }?.firstRun)
        #expect(otherFirstRun >= left.nanoseconds)
    }

    /// Virtual clock: work in 100 µs steps, a checkpoint after each. The checkpoint that comes
    /// when 2 ms of virtual time have passed switches the thread out: not one step before, and
    /// not one after (the other thread runs at exactly 2 ms, after exactly 20 steps).
    @Test func checkpointSwitchesOutExactlyAtTheQuantumOnTheVirtualClock() throws {
        var c = UThreadRuntime.Configuration()
        c.clock = .virtual
        let (stepsBefore, ranAfter) = try UThreadRuntime.run(
            c, policy: { try RoundRobinPolicy(quantum: .milliseconds(2)) }
        ) {
            var otherRan = false
            var steps = 0
            var startedAt: UInt64 = 0
            let spinner = UThread.local(name: "spinner") {
                startedAt = UThreadRuntime.nanoseconds
                while !otherRan {
                    UThread.simulateWork(for: .microseconds(100))  // ends on the step: no safe point inside
                    steps += 1
                    UThread.checkpoint()
                }
            }
            let other = UThread(name: "other") { () -> (Int, UInt64) in
                otherRan = true
                return (steps, UThreadRuntime.nanoseconds - startedAt)
            }
            let seen = try other.join()
            try spinner.join()
            return seen
        }
        #expect(stepsBefore == 20)
        #expect(ranAfter == 2_000_000)
    }

    /// A thread that runs 30 ms past its 1 ms quantum without a safe point is reported by name.
    @Test func watchdogNamesAThreadThatOverranItsQuantum() throws {
        let reports = Mutex<[WatchdogReport]>([])
        var c = UThreadRuntime.Configuration()
        c.watchdogLimit = .milliseconds(10)
        c.watchdogHandler = { r in reports.withLock { $0.append(r) } }
        try UThreadRuntime.run(c, policy: { try RoundRobinPolicy(quantum: .milliseconds(1)) }) {
            let hog = UThread(name: "busy-loop") {
                let end = ContinuousClock.now + .milliseconds(30)
                while ContinuousClock.now < end {}  // no safe point
                UThread.yield()
            }
            let other = UThread(name: "other") {}
            try hog.join()
            try other.join()
        }
        // (Only the hog's report is certain: on a loaded machine the kernel may deschedule this
        // process long enough for another thread to look like an overrun too.)
        let r = reports.withLock { $0 }.filter { $0.name == "busy-loop" }
        #expect(r.count == 1)
        #expect(r.first?.name == "busy-loop")
        #expect((r.first?.overrunNanoseconds ?? 0) > 10_000_000)
        #expect(r.first?.description.contains("\"busy-loop\" ran") == true)
    }

    /// FIFO never switches at a checkpoint (no quantum); outside a runtime it is a no-op.
    @Test func checkpointUnderFIFOAndOutsideARuntime() throws {
        for _ in 0..<100_000 { UThread.checkpoint() }
        let order = try UThreadRuntime.run {
            var order: [String] = []
            let a = UThread.local {
                for _ in 0..<1_000_000 { UThread.checkpoint() }
                order.append("a")
            }
            let b = UThread.local { order.append("b") }
            try a.join()
            try b.join()
            return order
        }
        #expect(order == ["a", "b"])
    }

    /// Virtual clock: sleeps take no real time; the clock jumps to each deadline.
    @Test func virtualClockJumpsToTheNextDeadline() throws {
        var c = UThreadRuntime.Configuration()
        c.clock = .virtual
        let t0 = ContinuousClock.now
        let (start, end) = try UThreadRuntime.run(c) {
            let start = UThreadRuntime.nanoseconds
            let sleepers = (1...5).map { i in UThread { try UThread.sleep(for: .seconds(i * 100)) } }
            for s in sleepers { try s.join() }
            return (start, UThreadRuntime.nanoseconds)
        }
        #expect(end - start == 500_000_000_000)
        #expect(ContinuousClock.now - t0 < .seconds(5))
    }
}

/// A scenario with sleeps, yields and bursts whose interleaving the seed decides.
func mixedScenario() throws -> Int {
    var log: [Int] = []
    let threads = (0..<4).map { i in
        UThread.local(name: "w\(i)") {
            for round in 0..<6 {
                switch (i + round) % 3 {
                case 0: UThread.simulateWork(for: .microseconds(700 + 300 * i))
                case 1: try UThread.sleep(for: .microseconds(500 * (i + 1)))
                default: UThread.yield()
                }
                log.append(i)
            }
        }
    }
    for t in threads { try t.join() }
    return log.reduce(0) { $0 &* 31 &+ $1 }
}

@Suite(.timeLimit(.minutes(1))) struct SimulationTests {
    func tracedRun(seed: UInt64) throws -> (String, Int) {
        let trace = UThreadTrace()
        var c = UThreadRuntime.Configuration()
        c.trace = trace
        let r = try UThreadRuntime.simulate(seed: seed, c) { try mixedScenario() }
        return (trace.signature, r)
    }

    @Test func sameSeedSameTrace() throws {
        let (a, ra) = try tracedRun(seed: 7)
        let (b, rb) = try tracedRun(seed: 7)
        #expect(a == b)
        #expect(ra == rb)
        #expect(a.split(separator: "\n").count > 50)
        let (c, _) = try tracedRun(seed: 8)
        #expect(a != c, "seeds 7 and 8 gave the same schedule")
    }

    /// A lost update (read, yield, write) is found by some seed; that seed reproduces it.
    @Test func findsAndReproducesTheFailingSeed() throws {
        struct LostUpdate: Error { var count: Int }
        func racy() throws {
            var counter = 0
            let ts = (0..<3).map { _ in
                UThread.local {
                    for _ in 0..<3 {
                        let v = counter
                        UThread.yield()
                        counter = v + 1
                    }
                }
            }
            for t in ts { try t.join() }
            if counter != 9 { throw LostUpdate(count: counter) }
        }
        let failure = try #require(UThreadRuntime.firstFailingSeed(1...50) { try racy() })
        #expect(failure.error is LostUpdate)
        #expect(throws: LostUpdate.self) { try UThreadRuntime.simulate(seed: failure.seed) { try racy() } }
        // The corrected version passes every seed.
        let fixed = UThreadRuntime.firstFailingSeed(1...50) {
            var counter = 0
            let ts = (0..<3).map { _ in
                UThread.local {
                    for _ in 0..<3 {
                        counter += 1
                        UThread.yield()
                    }
                }
            }
            for t in ts { try t.join() }
            if counter != 9 { throw LostUpdate(count: counter) }
        }
        #expect(fixed == nil)
    }
}

@Suite(.timeLimit(.minutes(1))) struct TraceExportTests {
    func sampleTrace() throws -> UThreadTrace {
        let trace = UThreadTrace()
        var c = UThreadRuntime.Configuration()
        c.trace = trace
        c.clock = .virtual
        try UThreadRuntime.run(c, policy: { try RoundRobinPolicy(quantum: .milliseconds(2)) }) {
            let a = UThread(name: "cpu <a> & \"b\"") { UThread.simulateWork(for: .milliseconds(7)) }
            let b = UThread(name: "sleeper") {
                try UThread.sleep(for: .milliseconds(3))
                UThread.simulateWork(for: .milliseconds(1))
            }
            try a.join()
            try b.join()
        }
        return trace
    }

    @Test func traceRecordsEveryKindOfEvent() throws {
        let trace = try sampleTrace()
        let kinds = Set(trace.events.map(\.kind))
        #expect(kinds.isSuperset(of: [.spawn, .run, .preempt, .block, .wake, .exit]))
        #expect(trace.events.contains { $0.kind == .block && $0.waitReason == .sleep })
        #expect(trace.events.contains { $0.kind == .block && $0.waitReason == .join })
        #expect(trace.events.contains { $0.kind == .wake && $0.wakeResult == .timedOut })
        #expect(trace.events.allSatisfy { $0.kernelThread == trace.kernelThread && $0.kernelThread > 0 })
        #expect(trace.dropped == 0)
    }

    /// FIFO with tracing on: yields are recorded through the same single hook.
    @Test func fifoTraceRecordsYieldsInOrder() throws {
        let trace = UThreadTrace()
        var c = UThreadRuntime.Configuration()
        c.trace = trace
        try UThreadRuntime.run(c) {
            let a = UThread(name: "a") {
                UThread.yield()
                UThread.yield()
            }
            let b = UThread(name: "b") { UThread.yield() }
            try a.join()
            try b.join()
        }
        let names = trace.threads.map(\.name)
        let story = trace.events.filter { $0.lane > 0 && $0.kind != .wake }.map { "\(names[$0.lane]):\($0.kind.name)" }
        // main spawns a and b, then blocks in join; a and b alternate; b exits first.
        #expect(
            story == [
                "a:spawn", "b:spawn", "a:run", "a:yield", "b:run", "b:yield", "a:run", "a:yield",
                "b:run", "b:exit", "a:run", "a:exit",
            ])
    }

    @Test func perfettoJSONIsValid() throws {
        let json = try sampleTrace().perfettoJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let events = try #require(object["traceEvents"] as? [[String: Any]])
        #expect(events.contains { $0["ph"] as? String == "X" && $0["name"] as? String == "running" })
        #expect(
            events.contains {
                $0["ph"] as? String == "M" && ($0["args"] as? [String: Any])?["name"] as? String == "#\(0)"
            } == false)
        let names = events.filter { $0["name"] as? String == "thread_name" }.compactMap {
            ($0["args"] as? [String: Any])?["name"] as? String
        }
        #expect(names.contains { $0.hasSuffix("cpu <a> & \"b\"") })
        for e in events where e["ph"] as? String == "X" {
            #expect((e["dur"] as? Double ?? -1) >= 0)
        }
    }

    @Test func svgIsWellFormed() throws {
        let svg = try sampleTrace().svgGantt(title: "RR <2 ms>")
        final class Counter: NSObject, XMLParserDelegate {
            var rects = 0, texts = 0
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                if name == "rect" { rects += 1 }
                if name == "text" { texts += 1 }
            }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(counter.rects > 10)
        #expect(counter.texts > 5)
        #expect(svg.contains("cpu &lt;a&gt; &amp; &quot;b&quot;"))
    }
}
