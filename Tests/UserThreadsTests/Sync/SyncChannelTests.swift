import Testing
import UserThreads

@Suite("Sync: channels and select", .timeLimit(.minutes(1)))
struct SyncChannelTests {
    @Test func unbufferedIsARendezvous() throws {
        try UThreadRuntime.run {
            let ch = Channel<Int>()
            var sent = false
            let sender = UThread.local {
                try ch.send(7)
                sent = true
            }
            UThread.yield()
            #expect(!sent)  // no receiver yet: the sender waits
            #expect(try ch.receive() == 7)
            try sender.join()
            #expect(sent)
        }
    }

    @Test func pingPong() throws {
        try UThreadRuntime.run {
            let ping = Channel<Int>()
            let pong = Channel<Int>()
            let echo = UThread.local { while let v = try ping.receive() { try pong.send(v + 1) } }
            var v = 0
            for _ in 0..<10_000 {
                try ping.send(v)
                v = try pong.receive()!
            }
            ping.close()
            try echo.join()
            #expect(v == 10_000)
        }
    }

    @Test func bufferedKeepsOrderAndBlocksWhenFull() throws {
        try UThreadRuntime.run {
            let ch = try Channel<Int>(capacity: 3)
            for i in 0..<3 { try ch.send(i) }
            #expect(try ch.trySend(3) == false)
            let late = UThread.local {
                try ch.send(3)
                try ch.send(4)
            }
            UThread.yield()
            var got: [Int] = []
            for _ in 0..<5 { got.append(try ch.receive()!) }
            try late.join()
            #expect(got == [0, 1, 2, 3, 4])
        }
    }

    @Test func closeDrainsThenNilAndSendThrows() throws {
        try UThreadRuntime.run {
            let ch = try Channel<String>(capacity: 4, name: "words")
            try ch.send("a")
            try ch.send("b")
            #expect(ch.close())
            #expect(!ch.close())
            expectError(sameCaseAs: .closed("")) { try ch.send("c") }
            var got: [String] = []
            for w in ch { got.append(w) }
            #expect(got == ["a", "b"])
            #expect(try ch.receive() == nil)
        }
    }

    @Test func closeWakesParkedReceiversAndSenders() throws {
        try UThreadRuntime.run {
            let rx = Channel<Int>()
            let receivers = (0..<5).map { _ in UThread.local { try rx.receive() } }
            let tx = Channel<Int>()
            let senders = (0..<5).map { i in UThread.local { try tx.send(i) } }
            UThread.yield()
            rx.close()
            tx.close()
            for r in receivers {
                let v = try r.join()
                #expect(v == nil)
            }
            for s in senders { expectError(sameCaseAs: .closed("")) { try s.join() } }
        }
    }

    @Test func receiveTimeoutAndCancellationLeaveNoTrace() throws {
        try UThreadRuntime.run {
            let ch = Channel<Int>(name: "quiet")
            #expect(throws: UThreadError.timedOut) { _ = try ch.receive(timeout: .milliseconds(2)) }
            let cancelled = UThread.local { try ch.receive() }
            let patient = UThread.local { try ch.receive() }
            UThread.yield()
            cancelled.cancel()
            #expect(throws: CancellationError.self) { try cancelled.join() }
            try ch.send(42)  // must reach the live receiver, not the cancelled one
            #expect(try patient.join() == 42)
            #expect(throws: UThreadError.timedOut) { try ch.send(1, timeout: .milliseconds(2)) }
        }
    }

    @Test func manyProducersManyConsumersCountAndChecksum() throws {
        try UThreadRuntime.run {
            for capacity in [0, 1, 16] {
                let ch = try Channel<Int>(capacity: capacity)
                let producers = (0..<8).map { p in
                    UThread.local { for i in 0..<1_000 { try ch.send(p * 1_000 + i) } }
                }
                let consumers = (0..<5).map { _ in
                    UThread.local { () -> (Int, Int) in
                        var n = 0
                        var sum = 0
                        for v in ch {
                            n += 1
                            sum += v &* 2_654_435_761
                        }
                        return (n, sum)
                    }
                }
                for p in producers { try p.join() }
                ch.close()
                var n = 0
                var sum = 0
                for c in consumers {
                    let (a, b) = try c.join()
                    n += a
                    sum &+= b
                }
                #expect(n == 8_000)
                #expect(sum == (0..<8_000).reduce(0) { $0 &+ $1 &* 2_654_435_761 })
            }
        }
    }

    @Test func selectTakesTheReadyCaseOrDefault() throws {
        try UThreadRuntime.run {
            let a = try Channel<Int>(capacity: 1)
            let b = try Channel<String>(capacity: 1)
            try b.send("hi")
            let r = try channelSelect { s in
                s.receive(from: a) { v in "a \(v!)" }
                s.receive(from: b) { v in "b \(v!)" }
            }
            #expect(r == "b hi")
            let d = try channelSelect { s in
                s.receive(from: a) { _ in "a" }
                s.otherwise { "default" }
            }
            #expect(d == "default")
        }
    }

    @Test func selectParksUntilACaseCompletes() throws {
        try UThreadRuntime.run {
            let a = Channel<Int>()
            let b = Channel<Int>()
            let out = Channel<Int>()
            let sender = UThread.local { try b.send(5) }
            let r = try channelSelect { s in
                s.receive(from: a) { _ in -1 }
                s.receive(from: b) { v in v! }
            }
            #expect(r == 5)
            try sender.join()
            // A send case completes when a receiver arrives; the other case's node is gone.
            let receiver = UThread.local { try out.receive() }
            let which = try channelSelect { s in
                s.send(9, to: out) { "sent" }
                s.receive(from: a) { _ in "a" }
            }
            #expect(which == "sent")
            #expect(try receiver.join() == 9)
            let late = UThread { try a.send(1, timeout: .milliseconds(2)) }
            #expect(throws: UThreadError.timedOut) { try late.join() }  // nobody is selecting on a any more
        }
    }

    @Test func selectTimeoutAndCancellation() throws {
        try UThreadRuntime.run {
            let a = Channel<Int>()
            let r = try channelSelect(timeout: .milliseconds(2)) { s in
                s.receive(from: a) { _ in "value" }
                s.onTimeout { "timeout" }
            }
            #expect(r == "timeout")
            #expect(throws: UThreadError.timedOut) {
                try channelSelect(timeout: .milliseconds(1)) { s in s.receive(from: a) { _ in 0 } }
            }
            let t = UThread.local { try channelSelect { s in s.receive(from: a) { $0 ?? -1 } } }
            UThread.yield()
            t.cancel()
            #expect(throws: CancellationError.self) { try t.join() }
            #expect(throws: UThreadError.timedOut) { try a.send(1, timeout: .milliseconds(1)) }
        }
    }

    @Test func selectOnClosedChannel() throws {
        try UThreadRuntime.run {
            let a = Channel<Int>()
            let t = UThread.local { try channelSelect { s in s.receive(from: a) { $0 ?? -1 } } }
            UThread.yield()
            a.close()
            let v = try t.join()
            #expect(v == -1)
            expectError(sameCaseAs: .closed("")) {
                try channelSelect { s in s.send(1, to: a) { 0 } }
            }
        }
    }

    @Test func selectIsFairOverManyRounds() throws {
        try UThreadRuntime.run {
            let chans = try (0..<4).map { _ in try Channel<Int>(capacity: 1) }
            var hits = [0, 0, 0, 0]
            for _ in 0..<20_000 {
                for c in chans where c.count == 0 { try c.send(1) }
                let i = try channelSelect { s in
                    for (k, c) in chans.enumerated() { s.receive(from: c) { _ in k } }
                }
                hits[i] += 1
            }
            for h in hits { #expect(abs(h - 5_000) < 500, "\(hits)") }
        }
    }

    @Test func seededSelectIsReproducible() throws {
        func choices(seed: UInt64) throws -> [Int] {
            try UThreadRuntime.run {
                UThreadRuntime.seedRandom(seed)
                let chans = try (0..<3).map { _ in try Channel<Int>(capacity: 1) }
                var out: [Int] = []
                for _ in 0..<200 {
                    for c in chans where c.count == 0 { try c.send(0) }
                    out.append(
                        try channelSelect { s in
                            for (k, c) in chans.enumerated() { s.receive(from: c) { _ in k } }
                        })
                }
                return out
            }
        }
        #expect(try choices(seed: 42) == choices(seed: 42))
        #expect(try choices(seed: 42) != choices(seed: 43))
    }

    /// Under the deterministic simulation, select's random choices follow the run's seed.
    @Test func selectUnderSimulationFollowsTheSeed() throws {
        func choices(seed: UInt64) throws -> [Int] {
            try UThreadRuntime.simulate(seed: seed) {
                let chans = try (0..<3).map { _ in try Channel<Int>(capacity: 1) }
                var out: [Int] = []
                for _ in 0..<100 {
                    for c in chans where c.count == 0 { try c.send(0) }
                    out.append(
                        try channelSelect { s in
                            for (k, c) in chans.enumerated() { s.receive(from: c) { _ in k } }
                        })
                }
                return out
            }
        }
        #expect(try choices(seed: 7) == choices(seed: 7))
        #expect(try choices(seed: 7) != choices(seed: 8))
    }

    @Test func waitReasonsNameTheChannel() throws {
        try UThreadRuntime.run {
            let ch = Channel<Int>(name: "jobs")
            let r = UThread.local(name: "worker") { try ch.receive() }
            UThread.yield()
            let row = UThreadRuntime.threadTable().threads.first { $0.id == r.id }
            #expect(row?.waitReason?.kind == .channelReceive)
            #expect(row?.waitReason?.description.hasPrefix("channel receive on 'jobs'") == true)
            ch.close()
            _ = try r.join()
        }
    }
}
