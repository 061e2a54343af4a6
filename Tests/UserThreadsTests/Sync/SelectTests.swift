// channelSelect on one worker and between two workers (ChannelRig: ChannelTests.swift).
import Synchronization
import Testing
@testable import UserThreads

/// A counter shared by threads on any worker.
final class RigCounter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ n: Int = 1) { value.wrappingAdd(n, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

@Suite("Sync: select", .timeLimit(.minutes(1)))
struct SelectTests {
    @Test(arguments: ChannelRig.all)
    func takesTheReadyCaseOrDefault(rig: ChannelRig) throws {
        let out = try rig.run { () -> [String] in
            let a = try Channel<Int>(capacity: 1)
            let b = try Channel<String>(capacity: 1)
            try b.send("hi")
            var out: [String] = []
            out.append(
                try channelSelect { s in
                    s.receive(from: a) { v in "a \(v!)" }
                    s.receive(from: b) { v in "b \(v!)" }
                })
            out.append(
                try channelSelect { s in
                    s.receive(from: a) { _ in "a" }
                    s.otherwise { "default" }
                })
            try a.send(1)
            out.append(
                try channelSelect { s in
                    s.send(2, to: a) { "sent" }  // full: not ready
                    s.receive(from: b) { _ in "b" }
                    s.otherwise { "default again" }
                })
            return out
        }
        #expect(out == ["b hi", "default", "default again"])
    }

    /// A parked select is completed by a sender on the other worker, and its send case by a
    /// receiver there; the other case's node is gone afterwards.
    @Test(arguments: ChannelRig.all)
    func parkedSelectIsCompletedByAPeer(rig: ChannelRig) throws {
        let (out, lateTimedOut) = try rig.run { () -> ([String], Bool) in
            let a = Channel<Int>(name: "a")
            let b = Channel<String>(name: "b")
            let acks = Channel<Int>(name: "acks")
            var out: [String] = []
            let sender = try rig.spawn { try b.send("hello") }
            out.append(
                try channelSelect { s in
                    s.receive(from: a) { v in "a \(v!)" }
                    s.receive(from: b) { v in "b \(v!)" }
                })
            try sender.join()
            let receiver = try rig.spawn { () -> Int? in try acks.receive() }
            out.append(
                try channelSelect { s in
                    s.receive(from: a) { v in "a \(v!)" }
                    s.send(5, to: acks) { "sent 5" }
                })
            out.append("\(try receiver.join()!)")
            var lateTimedOut = false
            do { try a.send(1, timeout: .milliseconds(2)) } catch UThreadError.timedOut { lateTimedOut = true }
            return (out, lateTimedOut)
        }
        #expect(out == ["b hello", "sent 5", "5"])
        #expect(lateTimedOut)  // nobody is selecting on a any more
    }

    @Test(arguments: ChannelRig.all)
    func timeoutsAndDeadlines(rig: ChannelRig) throws {
        let out = try rig.run { () -> [String] in
            let a = Channel<Int>()
            var out: [String] = []
            out.append(
                try channelSelect(timeout: .milliseconds(2)) { s in
                    s.receive(from: a) { _ in "a" }
                    s.onTimeout { "timeout" }
                })
            out.append(
                try channelSelect(deadline: .now + .milliseconds(2)) { s in
                    s.receive(from: a) { _ in "a" }
                    s.onTimeout { "deadline" }
                })
            do {
                _ = try channelSelect(timeout: .milliseconds(1)) { s in s.receive(from: a) { _ in "a" } } as String
            } catch UThreadError.timedOut { out.append("threw timedOut") }
            return out
        }
        #expect(out == ["timeout", "deadline", "threw timedOut"])
    }

    /// A close completes a parked select (receive case: nil); a send case on a closed channel
    /// throws.
    @Test(arguments: ChannelRig.all)
    func closedChannels(rig: ChannelRig) throws {
        let out = try rig.run { () -> [String] in
            let a = Channel<Int>()
            let b = Channel<Int>()
            var out: [String] = []
            let selector = try rig.spawn { () -> String in
                try channelSelect { s in
                    s.receive(from: a) { v in "a \(String(describing: v))" }
                    s.receive(from: b) { v in "b \(String(describing: v))" }
                }
            }
            #expect(try rig.waitUntilParked(selector, .select))
            b.close()
            out.append(try selector.join())
            out.append(try channelSelect { s in s.receive(from: b) { v in "b again \(String(describing: v))" } })
            do {
                _ = try channelSelect { s in s.send(3, to: b) { "sent" } } as String
            } catch UThreadError.closed { out.append("send case closed") }
            return out
        }
        #expect(out == ["b nil", "b again nil", "send case closed"])
    }

    @Test(arguments: ChannelRig.all)
    func cancellingAParkedSelectLeavesNoTrace(rig: ChannelRig) throws {
        let (out, after) = try rig.run { () -> (String, Int?) in
            let a = Channel<Int>()
            let selector = try rig.spawn { () -> String in
                do {
                    return try channelSelect { s in s.receive(from: a) { _ in "value" } }
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try rig.waitUntilParked(selector, .select))
            selector.cancel()
            let out = try selector.join()
            // The cancelled select left no node: a new receiver gets the next value.
            let receiver = try rig.spawn { try a.receive() }
            try a.send(9)
            return (out, try receiver.join())
        }
        #expect(out == "cancelled")
        #expect(after == 9)
    }

    @Test(arguments: ChannelRig.all)
    func waitReasonListsTheCases(rig: ChannelRig) throws {
        let description = try rig.run { () -> String? in
            let a = Channel<Int>(name: "left")
            let b = Channel<Int>(name: "right")
            let selector = try rig.spawn {
                try channelSelect { s in
                    s.receive(from: a) { _ in () }
                    s.send(1, to: b) { () }
                }
            }
            #expect(try rig.waitUntilParked(selector, .select))
            let row = UThreadRuntime.threadTable().threads.first { $0.id == selector.id }
            a.close()
            try selector.join()
            return row?.waitReason?.description
        }
        #expect(description?.contains("channel receive on 'left'") == true, "\(description ?? "nil")")
        #expect(description?.contains("channel send on 'right'") == true, "\(description ?? "nil")")
    }

    /// With every case always ready, each is chosen about equally often (counts, no timing).
    @Test(arguments: ChannelRig.all)
    func fairWhenSeveralCasesAreReady(rig: ChannelRig) throws {
        let rounds = 20_000
        let hits = try rig.run { () -> [Int] in
            let chans = try (0..<4).map { _ in try Channel<Int>(capacity: 1) }
            var hits = [0, 0, 0, 0]
            for _ in 0..<rounds {
                for c in chans where c.count == 0 { try c.send(1) }
                let i = try channelSelect { s in
                    for (k, c) in chans.enumerated() { s.receive(from: c) { _ in k } }
                }
                hits[i] += 1
            }
            return hits
        }
        #expect(hits.reduce(0, +) == rounds)
        for h in hits { #expect(abs(h - rounds / 4) < rounds / 40, "\(hits)") }
    }

    /// The cases a select takes in `rounds` rounds over three always-ready channels.
    static func choices(rounds: Int) throws -> [Int] {
        let chans = try (0..<3).map { _ in try Channel<Int>(capacity: 1) }
        var out: [Int] = []
        for _ in 0..<rounds {
            for c in chans where c.count == 0 { try c.send(0) }
            out.append(
                try channelSelect { s in
                    for (k, c) in chans.enumerated() { s.receive(from: c) { _ in k } }
                })
        }
        return out
    }

    /// The same seed gives the same choices; another seed others.
    @Test func seededSelectIsReproducible() throws {
        func choices(seed: UInt64) throws -> [Int] {
            try UThreadRuntime.run {
                try UThreadRuntime.seedRandom(seed)
                return try Self.choices(rounds: 200)
            }
        }
        #expect(try choices(seed: 42) == choices(seed: 42))
        #expect(try choices(seed: 42) != choices(seed: 43))
    }

    /// The choices of one thread per worker, each pinned to its worker, after `seedRandom(seed)`.
    static func choicesPerWorker(workers: Int, seed: UInt64) throws -> [[Int]] {
        try UThreadRuntime.run(workers: workers) {
            try UThreadRuntime.seedRandom(seed)
            let threads = try (0..<workers).map { w in
                try UThread.spawn(name: "chooser \(w)", onWorker: w) { try Self.choices(rounds: 200) }
            }
            return try threads.map { try $0.join() }
        }
    }

    /// The seed reaches every worker, not just the caller's: with a thread pinned to each
    /// worker, the same seed gives every worker the same choices in the same order, another
    /// seed others, and the workers' sequences differ from one another.
    @Test(arguments: syncWorkerCounts) func aSeedMakesEveryWorkerReproducible(workers: Int) throws {
        let first = try Self.choicesPerWorker(workers: workers, seed: 42)
        let again = try Self.choicesPerWorker(workers: workers, seed: 42)
        let other = try Self.choicesPerWorker(workers: workers, seed: 43)
        #expect(first.count == workers)
        for w in 0..<workers {
            #expect(first[w] == again[w], "worker \(w)")
            #expect(first[w] != other[w], "worker \(w)")
        }
        if workers > 1 { #expect(first[0] != first[1]) }
    }

    /// Worker 0's sequence for a seed is the one scheduler's under `workers: 1`.
    @Test func workerZeroDrawsTheSameWhateverTheWorkerCount() throws {
        let one = try Self.choicesPerWorker(workers: 1, seed: 7)
        let two = try Self.choicesPerWorker(workers: 2, seed: 7)
        #expect(one[0] == two[0])
    }

    /// Under the deterministic simulation, select's random choices follow the run's seed.
    @Test func selectUnderSimulationFollowsTheSeed() throws {
        func choices(seed: UInt64) throws -> [Int] {
            try UThreadRuntime.simulate(seed: seed) { try Self.choices(rounds: 100) }
        }
        #expect(try choices(seed: 7) == choices(seed: 7))
        #expect(try choices(seed: 7) != choices(seed: 8))
    }

    /// Selectors on both workers, each waiting on two channels with a short timeout (so that
    /// claims race with give-ups), against senders on both workers: every value is taken exactly
    /// once — the one-shot claim never lets two channels complete one select.
    @Test(arguments: ChannelRig.all)
    func claimStorm(rig: ChannelRig) throws {
        let perSender = 800
        let (sum, count) = try rig.run { () -> (Int, Int) in
            let a = Channel<Int>(name: "a")
            let b = try Channel<Int>(capacity: 2, name: "b")
            let taken = RigCounter()
            let sum = RigCounter()
            let total = 4 * perSender
            let selectors = try (0..<4).map { k in
                try rig.spawn(k) {
                    while taken.count < total {
                        let v: Int? = try channelSelect(timeout: .microseconds(200)) { s in
                            s.receive(from: a) { $0 }
                            s.receive(from: b) { $0 }
                            s.onTimeout { nil }
                        }
                        if let v {
                            sum.add(v)
                            taken.add()
                        }
                    }
                }
            }
            let senders = try (0..<4).map { k in
                try rig.spawn(k + 1) {
                    for i in 0..<perSender { try (i % 2 == 0 ? a : b).send(k * perSender + i) }
                }
            }
            for s in senders { try s.join() }
            for s in selectors { try s.join() }
            return (sum.count, taken.count)
        }
        #expect(count == 4 * perSender)
        #expect(sum == (0..<(4 * perSender)).reduce(0, +))
    }
}
