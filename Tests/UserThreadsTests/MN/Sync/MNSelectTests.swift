import Synchronization
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct MNSelectTests {
    /// A select parked on worker 0 is completed by a sender on worker 1, and by a receiver on
    /// worker 1 for a send case.
    @Test func parkedSelectIsCompletedFromAnotherWorker() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let a = MNChannel<Int>(name: "a")
            let b = MNChannel<String>(name: "b")
            let acks = MNChannel<Int>(name: "acks")
            var out: [String] = []
            let sender = try UThread.spawn(onWorker: 1) { try b.send("hello") }
            out.append(
                try mnSelect { s in
                    s.receive(from: a) { v in "a \(v!)" }
                    s.receive(from: b) { v in "b \(v!)" }
                })
            try sender.join()
            let receiver = try UThread.spawn(onWorker: 1) { () -> Int? in try acks.receive() }
            out.append(
                try mnSelect { s in
                    s.receive(from: a) { v in "a \(v!)" }
                    s.send(5, to: acks) { "sent 5" }
                })
            out.append("\(try receiver.join()!)")
            return out
        }
        #expect(out == ["b hello", "sent 5", "5"])
    }

    @Test func timeoutDefaultAndClosed() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let a = MNChannel<Int>()
            let b = try MNChannel<Int>(capacity: 1)
            var out: [String] = []
            out.append(
                try mnSelect(timeout: .milliseconds(2)) { s in
                    s.receive(from: a) { _ in "a" }
                    s.onTimeout { "timeout" }
                })
            do {
                _ = try mnSelect(timeout: .milliseconds(1)) { s in s.receive(from: a) { _ in "a" } } as String
            } catch UThreadError.timedOut { out.append("threw timedOut") }
            out.append(
                try mnSelect { s in
                    s.receive(from: a) { _ in "a" }
                    s.otherwise { "default" }
                })
            try b.send(1)
            out.append(
                try mnSelect { s in
                    s.send(2, to: b) { "sent" }  // full: not ready
                    s.receive(from: a) { _ in "a" }
                    s.otherwise { "default again" }
                })
            a.close()
            out.append(try mnSelect { s in s.receive(from: a) { v in "a closed: \(String(describing: v))" } })
            b.close()
            do {
                _ = try mnSelect { s in s.send(3, to: b) { "sent" } } as String
            } catch UThreadError.closed { out.append("send case closed") }
            return out
        }
        #expect(out == ["timeout", "threw timedOut", "default", "default again", "a closed: nil", "send case closed"])
    }

    /// A close on worker 1 completes a select parked on worker 0 (receive case: nil).
    @Test func closeOnAnotherWorkerCompletesAParkedSelect() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> String in
            let a = MNChannel<Int>()
            let b = MNChannel<Int>()
            let selector = try UThread.spawn(onWorker: 0) { () -> String in
                try mnSelect { s in
                    s.receive(from: a) { v in "a \(String(describing: v))" }
                    s.receive(from: b) { v in "b \(String(describing: v))" }
                }
            }
            let closer = try UThread.spawn(onWorker: 1) { () throws in
                #expect(try waitUntilParked(selector, .select))
                b.close()
            }
            try closer.join()
            return try selector.join()
        }
        #expect(out == "b nil")
    }

    @Test func cancellingAParkedSelectFromAnotherWorker() throws {
        let (out, after) = try UThreadRuntime.run(workers: 2) { () -> (String, Int?) in
            let a = MNChannel<Int>()
            let selector = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    return try mnSelect { s in s.receive(from: a) { _ in "value" } }
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try waitUntilParked(selector, .select))
            selector.cancel()
            let out = try selector.join()
            // The cancelled select left no node: a new receiver gets the next value.
            let receiver = try UThread.spawn(onWorker: 1) { try a.receive() }
            try a.send(9)
            return (out, try receiver.join())
        }
        #expect(out == "cancelled")
        #expect(after == 9)
    }

    /// With both cases always ready, each is chosen about half of the time (counts, no timing).
    @Test func fairWhenSeveralCasesAreReady() throws {
        let rounds = 2000
        let counts = try UThreadRuntime.run(workers: 2) { () -> [Int] in
            let a = try MNChannel<Int>(capacity: 1)
            let b = try MNChannel<Int>(capacity: 1)
            return try UThread.spawn(onWorker: 1) { () -> [Int] in
                var counts = [0, 0]
                for _ in 0..<rounds {
                    _ = try a.trySend(0)
                    _ = try b.trySend(1)
                    let i = try mnSelect { s in
                        s.receive(from: a) { $0! }
                        s.receive(from: b) { $0! }
                    }
                    counts[i] += 1
                }
                return counts
            }.join()
        }
        #expect(counts.reduce(0, +) == rounds)
        #expect(counts.allSatisfy { $0 > rounds * 35 / 100 })
    }

    /// Selectors on both workers, each waiting on two channels with a short timeout (so that
    /// claims race with give-ups), against senders on both workers: every value is taken exactly
    /// once — the one-shot claim never lets two channels complete one select.
    @Test func claimStormAcrossWorkers() throws {
        let perSender = 800
        let (sum, count) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int) in
            let a = MNChannel<Int>(name: "a")
            let b = try MNChannel<Int>(capacity: 2, name: "b")
            let taken = MNCounter()
            let sum = MNCounter()
            let total = 4 * perSender
            let selectors = try (0..<4).map { k in
                try UThread.spawn(onWorker: k % 2) {
                    while taken.count < total {
                        let v: Int? = try mnSelect(timeout: .microseconds(200)) { s in
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
                try UThread.spawn(onWorker: (k + 1) % 2) {
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
