import Synchronization
import Testing
@testable import UserThreads

/// MNChannel across workers: threads pinned to different workers (`spawn(onWorker:)`), so the
/// cross-worker paths (mailbox wakes) are the ones taken.
@Suite(.timeLimit(.minutes(1))) struct MNChannelTests {
    /// Capacity 0: the send completes only once a receiver took the value.
    @Test func unbufferedSendWaitsForTheReceiverOnAnotherWorker() throws {
        let (sentEarly, value, sent, workers) = try UThreadRuntime.run(workers: 2) { () -> (Bool, Int?, Bool, [Int]) in
            let ch = MNChannel<Int>(name: "rendezvous")
            let sent = MNFlag()
            let sender = try UThread.spawn(name: "sender", onWorker: 1) { () -> Int in
                try ch.send(42)
                sent.set()
                return UThread.worker
            }
            #expect(try waitUntilParked(sender, .channelSend))
            let early = sent.isSet
            let v = try ch.receive()
            let w = try sender.join()
            return (early, v, sent.isSet, [UThread.worker, w])
        }
        #expect(!sentEarly)
        #expect(value == 42)
        #expect(sent)
        #expect(workers == [0, 1])
    }

    @Test func unbufferedReceiverParkedOnAnotherWorkerGetsTheValue() throws {
        let got = try UThreadRuntime.run(workers: 2) { () -> [Int?] in
            let ch = MNChannel<Int>()
            let receiver = try UThread.spawn(onWorker: 1) { () -> [Int?] in try (0..<3).map { _ in try ch.receive() } }
            for i in 0..<3 {
                #expect(try waitUntilParked(receiver, .channelReceive))
                try ch.send(i)
            }
            return try receiver.join()
        }
        #expect(got == [0, 1, 2])
    }

    /// Parked senders are served in arrival order (each parks before the next is spawned).
    @Test func parkedSendersAreServedFIFO() throws {
        let order = try UThreadRuntime.run(workers: 2) { () -> [Int] in
            let ch = MNChannel<Int>()
            var senders: [UThread<Void>] = []
            for i in 0..<4 {
                let s = try UThread.spawn(onWorker: 1 - i % 2) { try ch.send(i) }
                #expect(try waitUntilParked(s, .channelSend))
                senders.append(s)
            }
            let got = try (0..<4).map { _ in try ch.receive()! }
            for s in senders { try s.join() }
            return got
        }
        #expect(order == [0, 1, 2, 3])
    }

    @Test func bufferedChannelKeepsFIFOAcrossWorkers() throws {
        let got = try UThreadRuntime.run(workers: 2) { () -> [Int] in
            let ch = try MNChannel<Int>(capacity: 3)
            let producer = try UThread.spawn(onWorker: 1) {
                for i in 0..<100 { try ch.send(i) }
                ch.close()
            }
            var got: [Int] = []
            for v in ch { got.append(v) }
            try producer.join()
            return got
        }
        #expect(got == Array(0..<100))
    }

    /// A close on worker 0 wakes a receiver and a sender parked on worker 1: the receiver gets
    /// nil, the sender `UThreadError.closed`; a buffered channel is drained first.
    @Test func closeWakesWaitersOnAnotherWorker() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let empty = MNChannel<Int>(name: "empty")
            let full = try MNChannel<Int>(capacity: 1, name: "full")
            try full.send(7)
            let receiver = try UThread.spawn(onWorker: 1) { () -> String in
                "received \(String(describing: try empty.receive()))"
            }
            let sender = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    try full.send(8)
                    return "sent"
                } catch UThreadError.closed { return "send: closed" }
            }
            #expect(try waitUntilParked(receiver, .channelReceive))
            #expect(try waitUntilParked(sender, .channelSend))
            #expect(empty.close())
            #expect(full.close())
            #expect(!full.close())
            var out = [try receiver.join(), try sender.join()]
            out.append(
                "drained \(String(describing: try full.receive())) then \(String(describing: try full.receive()))")
            do { try empty.send(1) } catch UThreadError.closed { out.append("send after close: closed") }
            return out
        }
        #expect(out == ["received nil", "send: closed", "drained Optional(7) then nil", "send after close: closed"])
    }

    /// A parked receive on worker 1 times out or is cancelled from worker 0, and leaves no node
    /// behind: the next send must reach the next receiver, not a stale one.
    @Test func timeoutAndCancellationLeaveNoTrace() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let ch = MNChannel<Int>()
            var out: [String] = []
            let timed = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    _ = try ch.receive(timeout: .milliseconds(5))
                    return "value"
                } catch UThreadError.timedOut { return "timedOut" }
            }
            out.append(try timed.join())
            let cancelled = try UThread.spawn(onWorker: 1) { () -> String in
                do {
                    _ = try ch.receive()
                    return "value"
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try waitUntilParked(cancelled, .channelReceive))
            cancelled.cancel()
            out.append(try cancelled.join())
            do { try ch.send(1, timeout: .milliseconds(5)) } catch UThreadError.timedOut { out.append("send timedOut") }
            #expect(try !ch.trySend(2))
            if case .empty = ch.tryReceive() { out.append("empty") }
            let receiver = try UThread.spawn(onWorker: 1) { try ch.receive() }
            try ch.send(3)
            out.append("\(try receiver.join()!)")
            return out
        }
        #expect(out == ["timedOut", "cancelled", "send timedOut", "empty", "3"])
    }

    @Test func negativeCapacityThrows() {
        expectError(sameCaseAs: .invalidArgument("")) { try MNChannel<Int>(capacity: -1) }
    }

    /// Thousands of messages among many threads on both workers, unbuffered and buffered:
    /// every value arrives exactly once (count and checksum).
    @Test(arguments: [0, 4])
    func channelStorm(capacity: Int) throws {
        let perProducer = 1500
        let (sum, count, perWorker) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int, [Int]) in
            let ch = try MNChannel<Int>(capacity: capacity)
            let producers = try (0..<6).map { p in
                try UThread.spawn(onWorker: p % 2) { for i in 0..<perProducer { try ch.send(p * perProducer + i) } }
            }
            let consumers = try (0..<6).map { c in
                try UThread.spawn(onWorker: (c + 1) % 2) { () -> (Int, Int) in
                    var s = 0
                    var n = 0
                    while let v = try ch.receive() {
                        s += v
                        n += 1
                    }
                    return (s, n)
                }
            }
            for p in producers { try p.join() }
            ch.close()
            let results = try consumers.map { try $0.join() }
            return (
                results.reduce(0) { $0 + $1.0 }, results.reduce(0) { $0 + $1.1 },
                [results[0].1 + results[2].1 + results[4].1, results[1].1 + results[3].1 + results[5].1]
            )
        }
        let total = 6 * perProducer
        #expect(count == total)
        #expect(sum == (0..<total).reduce(0, +))
        #expect(perWorker.reduce(0, +) == total)
    }
}
