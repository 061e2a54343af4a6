// Channel<T> on one worker (`run { }`, bare), between threads on two workers (`run(workers:
// 2)`, shared: peers pinned to the other worker, so the mailbox wakes are the ones taken), and
// shared with every thread pinned to worker 0 of 2 (the local claim of a waiter parked on the
// claimer's own worker: ChannelWaiter.swift). Every test runs on all three.
import Synchronization
import Testing
@testable import UserThreads

/// Runs a test body on `workers` workers; with more than one, the threads it starts run on the
/// worker after the caller's.
struct ChannelRig: Sendable, CustomTestStringConvertible {
    let workers: Int
    /// Every thread of the test (the body too) pinned to worker 0: shared channels, one worker.
    var oneWorker = false

    static let all = [ChannelRig(workers: 1), ChannelRig(workers: 2), ChannelRig(workers: 2, oneWorker: true)]

    var testDescription: String { oneWorker ? "workers: \(workers), all on worker 0" : "workers: \(workers)" }

    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) throws -> R {
        if oneWorker {
            return try UThreadRuntime.run(workers: workers) { try UThread.spawn(onWorker: 0) { try body() }.join() }
        }
        return try UThreadRuntime.run(workers: workers) { try body() }
    }

    /// Starts a thread: on workers 1 where the caller runs, on worker 0 with `oneWorker`, else
    /// on worker `(k + 1) % workers`.
    func spawn<T: Sendable>(name: String = "", _ k: Int = 0, _ body: @escaping @Sendable () throws -> T) throws
        -> UThread<T>
    {
        if workers == 1 { return UThread(name: name) { try body() } }
        return try UThread.spawn(name: name, onWorker: oneWorker ? 0 : (k + 1) % workers) { try body() }
    }

    /// Waits until `t` is parked with `kind` (polling the thread table; yields or sleeps
    /// between looks). False if it never was.
    func waitUntilParked<T>(_ t: UThread<T>, _ kind: WaitReason.Kind) throws -> Bool {
        for _ in 0..<20_000 {
            if let row = UThreadRuntime.threadTable().threads.first(where: { $0.id == t.id }),
                row.state == .blocked, row.waitReason?.kind == kind
            {
                return true
            }
            if workers == 1 { UThread<Never>.yield() } else { try UThread.sleep(for: .microseconds(100)) }
        }
        return false
    }
}

/// A flag set by one thread and read by another.
final class RigFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

@Suite("Sync: channels", .timeLimit(.minutes(1)))
struct ChannelTests {
    /// Capacity 0: the send completes only once a receiver took the value.
    @Test(arguments: ChannelRig.all)
    func unbufferedIsARendezvous(rig: ChannelRig) throws {
        let (early, value, late) = try rig.run { () -> (Bool, Int?, Bool) in
            let ch = Channel<Int>(name: "rendezvous")
            let sent = RigFlag()
            let sender = try rig.spawn {
                try ch.send(42)
                sent.set()
            }
            #expect(try rig.waitUntilParked(sender, .channelSend))
            let early = sent.isSet
            let v = try ch.receive()
            try sender.join()
            return (early, v, sent.isSet)
        }
        #expect(!early)
        #expect(value == 42)
        #expect(late)
    }

    @Test(arguments: ChannelRig.all)
    func parkedReceiverGetsEachValue(rig: ChannelRig) throws {
        let got = try rig.run { () -> [Int?] in
            let ch = Channel<Int>()
            let receiver = try rig.spawn { try (0..<3).map { _ in try ch.receive() } }
            for i in 0..<3 {
                #expect(try rig.waitUntilParked(receiver, .channelReceive))
                try ch.send(i)
            }
            return try receiver.join()
        }
        #expect(got == [0, 1, 2])
    }

    @Test(arguments: ChannelRig.all)
    func pingPong(rig: ChannelRig) throws {
        let v = try rig.run { () -> Int in
            let ping = Channel<Int>()
            let pong = Channel<Int>()
            let echo = try rig.spawn { while let v = try ping.receive() { try pong.send(v + 1) } }
            var v = 0
            for _ in 0..<10_000 {
                try ping.send(v)
                v = try pong.receive()!
            }
            ping.close()
            try echo.join()
            return v
        }
        #expect(v == 10_000)
    }

    /// Parked senders are served in arrival order (each parks before the next is started).
    @Test(arguments: ChannelRig.all)
    func parkedSendersAreServedFIFO(rig: ChannelRig) throws {
        let order = try rig.run { () -> [Int] in
            let ch = Channel<Int>()
            var senders: [UThread<Void>] = []
            for i in 0..<4 {
                let s = try rig.spawn(i) { try ch.send(i) }
                #expect(try rig.waitUntilParked(s, .channelSend))
                senders.append(s)
            }
            let got = try (0..<4).map { _ in try ch.receive()! }
            for s in senders { try s.join() }
            return got
        }
        #expect(order == [0, 1, 2, 3])
    }

    /// A full buffer parks the sender; values come out in the order sent, the parked sender's
    /// refilling the buffer behind the buffered ones.
    @Test(arguments: ChannelRig.all)
    func bufferedKeepsOrderAndBlocksWhenFull(rig: ChannelRig) throws {
        let (refused, got) = try rig.run { () -> (Bool, [Int]) in
            let ch = try Channel<Int>(capacity: 3)
            for i in 0..<3 { try ch.send(i) }
            let refused = try !ch.trySend(3)
            let late = try rig.spawn {
                try ch.send(3)
                try ch.send(4)
            }
            #expect(try rig.waitUntilParked(late, .channelSend))
            var got: [Int] = []
            for _ in 0..<5 { got.append(try ch.receive()!) }
            try late.join()
            return (refused, got)
        }
        #expect(refused)
        #expect(got == [0, 1, 2, 3, 4])
    }

    /// `tryReceive` throws where `trySend` throws, never stops the process: outside a runtime
    /// (`invalidArgument`) and on a channel bound to another M:1 runtime (`foreignRuntime`);
    /// neither takes the buffered value.
    @Test func tryReceiveThrowsWhereTrySendThrows() throws {
        let ch = try UThreadRuntime.run { () -> Channel<Int> in
            let ch = try Channel<Int>(capacity: 2, name: "bound")
            try ch.send(1)
            return ch
        }
        let outside = expectError(sameCaseAs: .invalidArgument("")) { _ = try ch.tryReceive() }
        #expect(outside?.contains("Channel.tryReceive") == true, "\(outside ?? "")")
        expectError(sameCaseAs: .invalidArgument("")) { _ = try ch.trySend(2) }
        try UThreadRuntime.run {
            #expect(throws: UThreadError.foreignRuntime) { _ = try ch.tryReceive() }
            #expect(throws: UThreadError.foreignRuntime) { _ = try ch.trySend(2) }
        }
        #expect(ch.count == 1)
    }

    @Test(arguments: ChannelRig.all)
    func iterationEndsWhenClosedAndDrained(rig: ChannelRig) throws {
        let got = try rig.run { () -> [Int] in
            let ch = try Channel<Int>(capacity: 3)
            let producer = try rig.spawn {
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

    @Test(arguments: ChannelRig.all)
    func closeDrainsThenNilAndSendThrows(rig: ChannelRig) throws {
        let (closes, got, last) = try rig.run { () -> ([Bool], [String], String?) in
            let ch = try Channel<String>(capacity: 4, name: "words")
            try ch.send("a")
            try ch.send("b")
            let closes = [ch.close(), ch.close()]
            expectError(sameCaseAs: .closed("")) { try ch.send("c") }
            expectError(sameCaseAs: .closed("")) { try ch.trySend("c") }
            #expect(ch.isClosed)
            var got: [String] = []
            for w in ch { got.append(w) }
            if case .closed = try ch.tryReceive() {} else { Issue.record("tryReceive on a closed, drained channel") }
            return (closes, got, try ch.receive())
        }
        #expect(closes == [true, false])
        #expect(got == ["a", "b"])
        #expect(last == nil)
    }

    /// A close wakes parked receivers (nil) and senders (`UThreadError.closed`) on the other
    /// worker; a buffered channel is drained first.
    @Test(arguments: ChannelRig.all)
    func closeWakesParkedReceiversAndSenders(rig: ChannelRig) throws {
        let out = try rig.run { () -> [String] in
            let empty = Channel<Int>(name: "empty")
            let full = try Channel<Int>(capacity: 1, name: "full")
            try full.send(7)
            let receivers = try (0..<3).map { k in
                try rig.spawn(k) { () -> String in "received \(String(describing: try empty.receive()))" }
            }
            let sender = try rig.spawn { () -> String in
                do {
                    try full.send(8)
                    return "sent"
                } catch UThreadError.closed { return "send: closed" }
            }
            for r in receivers { #expect(try rig.waitUntilParked(r, .channelReceive)) }
            #expect(try rig.waitUntilParked(sender, .channelSend))
            #expect(empty.close())
            #expect(full.close())
            var out = try receivers.map { try $0.join() }
            out.append(try sender.join())
            out.append(
                "drained \(String(describing: try full.receive())) then \(String(describing: try full.receive()))")
            return out
        }
        #expect(
            out == ["received nil", "received nil", "received nil", "send: closed", "drained Optional(7) then nil"])
    }

    /// Timeouts, deadlines and cancellation end a parked send or receive and leave no node
    /// behind: the next send reaches the next receiver, not one that gave up.
    @Test(arguments: ChannelRig.all)
    func timeoutsDeadlinesAndCancellationLeaveNoTrace(rig: ChannelRig) throws {
        let out = try rig.run { () -> [String] in
            let ch = Channel<Int>(name: "quiet")
            var out: [String] = []
            for limit in ["timeout", "deadline"] {
                let t = try rig.spawn { () -> String in
                    do {
                        if limit == "timeout" {
                            _ = try ch.receive(timeout: .milliseconds(5))
                        } else {
                            _ = try ch.receive(deadline: .now + .milliseconds(5))
                        }
                        return "value"
                    } catch UThreadError.timedOut { return "receive \(limit): timedOut" }
                }
                out.append(try t.join())
            }
            let cancelled = try rig.spawn { () -> String in
                do {
                    _ = try ch.receive()
                    return "value"
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try rig.waitUntilParked(cancelled, .channelReceive))
            cancelled.cancel()
            out.append(try cancelled.join())
            do { try ch.send(1, timeout: .milliseconds(5)) } catch UThreadError.timedOut { out.append("send timeout") }
            do { try ch.send(1, deadline: .now + .milliseconds(5)) } catch UThreadError.timedOut {
                out.append("send deadline")
            }
            #expect(try !ch.trySend(2))
            if case .empty = try ch.tryReceive() { out.append("empty") }
            let receiver = try rig.spawn { try ch.receive() }
            try ch.send(3)
            out.append("\(try receiver.join()!)")
            return out
        }
        #expect(
            out == [
                "receive timeout: timedOut", "receive deadline: timedOut", "cancelled", "send timeout", "send deadline",
                "empty", "3",
            ])
    }

    @Test(arguments: ChannelRig.all)
    func manyProducersManyConsumersCountAndChecksum(rig: ChannelRig) throws {
        let results = try rig.run { () -> [[Int]] in
            try [0, 1, 16].map { capacity in
                let ch = try Channel<Int>(capacity: capacity)
                let producers = try (0..<6).map { p in
                    try rig.spawn(p) { for i in 0..<1_000 { try ch.send(p * 1_000 + i) } }
                }
                let consumers = try (0..<5).map { c in
                    try rig.spawn(c + 1) { () -> [Int] in
                        var (n, sum) = (0, 0)
                        for v in ch {
                            n += 1
                            sum &+= v &* 2_654_435_761
                        }
                        return [n, sum]
                    }
                }
                for p in producers { try p.join() }
                ch.close()
                let each = try consumers.map { try $0.join() }
                return [each.reduce(0) { $0 + $1[0] }, each.reduce(0) { $0 &+ $1[1] }]
            }
        }
        let sum: Int = (0..<6_000).reduce(0) { $0 &+ $1 &* 2_654_435_761 }
        let expected: [[Int]] = Array(repeating: [6_000, sum], count: 3)
        #expect(results == expected)
    }

    @Test(arguments: ChannelRig.all)
    func waitReasonsNameTheChannel(rig: ChannelRig) throws {
        let (kind, description) = try rig.run { () -> (WaitReason.Kind?, String?) in
            let ch = Channel<Int>(name: "jobs")
            let r = try rig.spawn(name: "worker") { try ch.receive() }
            #expect(try rig.waitUntilParked(r, .channelReceive))
            let row = UThreadRuntime.threadTable().threads.first { $0.id == r.id }
            ch.close()
            _ = try r.join()
            return (row?.waitReason?.kind, row?.waitReason?.description)
        }
        #expect(kind == .channelReceive)
        #expect(description?.hasPrefix("channel receive on 'jobs'") == true, "\(description ?? "nil")")
    }

    @Test func negativeCapacityThrows() {
        expectError(sameCaseAs: .invalidArgument("")) { try Channel<Int>(capacity: -1) }
    }

    /// A channel is used by the threads of one runtime: another runtime's thread gets a clear
    /// error, not a race.
    @Test func anotherRuntimesThreadIsRefused() throws {
        let ch = try UThreadRuntime.run { () -> Channel<Int> in
            let ch = try Channel<Int>(capacity: 1)
            try ch.send(1)
            return ch
        }
        try UThreadRuntime.run(workers: 2) {
            expectError(sameCaseAs: .foreignRuntime) { try ch.send(2) }
            expectError(sameCaseAs: .foreignRuntime) { _ = try ch.receive() }
        }
    }

    /// The binding is the runtime's serial, not its scheduler's address: runtimes started one
    /// after another on this kernel thread (the allocator often places a new scheduler where
    /// the ended one was) are refused a channel and a held mutex of the first.
    @Test func aLaterRuntimeAtTheSameAddressIsRefused() throws {
        let address = { Scheduler.active.map { UInt(bitPattern: ObjectIdentifier($0)) } ?? 0 }
        let (ch, m, first) = try UThreadRuntime.run { () -> (Channel<Int>, UMutex, UInt) in
            let ch = try Channel<Int>(capacity: 1)
            try ch.send(1)
            let m = UMutex()
            try m.lock()  // held by a row of this runtime when it ends
            return (ch, m, address())
        }
        var reused = 0
        for _ in 0..<8 {
            let (refusals, here) = try UThreadRuntime.run { () -> (Int, UInt) in
                var refusals = 0
                do { try ch.send(2) } catch UThreadError.foreignRuntime { refusals += 1 }
                do { _ = try ch.receive() } catch UThreadError.foreignRuntime { refusals += 1 }
                do { try m.lock(timeout: .milliseconds(1)) } catch UThreadError.foreignRuntime { refusals += 1 }
                return (refusals, address())
            }
            #expect(refusals == 3)
            if here == first { reused += 1 }
        }
        #expect(ch.count == 1)  // untouched by the later runtimes
        print("aLaterRuntimeAtTheSameAddressIsRefused: \(reused) of 8 runtimes reused the first's address")
    }

    /// A capacity whose buffer cannot exist (its size overflows, or exceeds the machine's memory)
    /// throws `invalidArgument` instead of stopping the process in the allocation.
    @Test func aBufferLargerThanMemoryThrows() throws {
        for capacity in [Int.max, Int.max / 8 + 1, 1 << 40] {
            let message = expectError(sameCaseAs: .invalidArgument(""), "capacity \(capacity)") {
                _ = try Channel<Int>(capacity: capacity)
            }
            #expect(message?.contains("Channel capacity \(capacity) is too large") == true)
        }
        #expect(try Channel<Int>(capacity: 1 << 16).capacity == 1 << 16)
    }
}
