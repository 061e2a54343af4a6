// One behavioural suite, written once, run against both backends: whatever a workload does
// through `ThreadingBackend` means the same on user threads and on kernel threads.
import Synchronization
import Testing
import UserThreads
import UserThreadsBackends

/// A value protected by a backend mutex (the point of the tests that use it), not by itself.
final class Unprotected<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

struct BackendError: Error, Equatable { let code: Int }

/// Yields (on either backend) until `condition` holds or 20 s pass; true if it held. How the
/// tests wait for another thread's progress: an event polled between yields, never a delay.
func waitFor(_ b: any ThreadingBackend, _ condition: () -> Bool) -> Bool {
    let end = ContinuousClock.now + .seconds(20)  // a bound, never expected
    while !condition() {
        if ContinuousClock.now > end { return false }
        b.yield()
    }
    return true
}

@Suite("Backends: the same workload on user threads and kernel threads", .timeLimit(.minutes(1)))
struct BackendTests {
    static let backends = BackendKind.allCases

    @Test(arguments: backends)
    func joinReturnsValues(kind: BackendKind) throws {
        let sum = try UThreadRuntime.run(backend: kind) { b throws in
            let threads = (1...8).map { n in b.spawn(name: "t\(n)") { n * n } }
            return try threads.reduce(0) { try $0 + $1.join() }
        }
        #expect(sum == 204)
    }

    @Test(arguments: backends)
    func joinRethrowsErrorsAndCanRepeat(kind: BackendKind) throws {
        try UThreadRuntime.run(backend: kind) { b throws in
            let t = b.spawn { () throws -> Int in throw BackendError(code: 7) }
            #expect(throws: BackendError(code: 7)) { try t.join() }
            #expect(throws: BackendError(code: 7)) { try t.join() }
            let ok = b.spawn { 5 }
            #expect(try ok.join() == 5)
            #expect(try ok.join() == 5)
        }
    }

    @Test(arguments: backends)
    func manyThreadsAndNestedSpawns(kind: BackendKind) throws {
        let total = Atomic<Int>(0)
        try UThreadRuntime.run(backend: kind) { b throws in
            let threads = (0..<200).map { _ in
                b.spawn { () -> Int in
                    let inner = b.spawn {
                        total.add(1, ordering: .relaxed)
                        return 1
                    }
                    total.add(1, ordering: .relaxed)
                    return try inner.join() + 1
                }
            }
            #expect(try threads.reduce(0) { try $0 + $1.join() } == 400)
        }
        #expect(total.load(ordering: .relaxed) == 400)
    }

    @Test(arguments: backends)
    func runJoinsThreadsLeftRunning(kind: BackendKind) throws {
        let finished = Atomic<Int>(0)
        try UThreadRuntime.run(backend: kind) { b throws in
            for _ in 0..<10 {
                _ = b.spawn {
                    b.yield()
                    finished.add(1, ordering: .relaxed)
                }
            }
        }
        // Kernel threads are joined by run; user threads too (main's end cancels only waits).
        #expect(finished.load(ordering: .relaxed) == 10)
    }

    @Test(arguments: backends)
    func mutexExcludes(kind: BackendKind) throws {
        let counter = Unprotected(0)
        let inside = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        try UThreadRuntime.run(backend: kind) { b throws in
            let m = b.makeMutex(name: "counter")
            let threads = (0..<8).map { _ in
                b.spawn {
                    for i in 0..<2_000 {
                        try m.withLock {
                            if inside.add(1, ordering: .sequentiallyConsistent).newValue != 1 {
                                overlaps.add(1, ordering: .relaxed)
                            }
                            let v = counter.value
                            if i % 100 == 0 { b.yield() }  // hold it across a switch
                            counter.value = v + 1
                            inside.subtract(1, ordering: .sequentiallyConsistent)
                        }
                    }
                }
            }
            for t in threads { try t.join() }
        }
        #expect(counter.value == 16_000)
        #expect(overlaps.load(ordering: .relaxed) == 0)
    }

    @Test(arguments: backends)
    func conditionSignalWakesOneAndBroadcastWakesAll(kind: BackendKind) throws {
        try UThreadRuntime.run(backend: kind) { b throws in
            let m = b.makeMutex()
            let c = b.makeCondition()
            let state = Unprotected((waiting: 0, tickets: 0, woken: 0))
            let waiters = (0..<4).map { _ in
                b.spawn {
                    try m.withLock {
                        state.value.waiting += 1
                        c.broadcast()  // tell the main thread one more is waiting
                        try c.wait(m) { state.value.tickets > 0 }
                        state.value.tickets -= 1
                        state.value.woken += 1
                        c.broadcast()  // tell the main thread (the others re-check and wait on)
                    }
                }
            }
            try m.withLock { try c.wait(m) { state.value.waiting == 4 } }
            // One ticket, one signal: exactly one waiter gets through.
            try m.withLock {
                state.value.tickets = 1
                c.signal()
            }
            try m.withLock { try c.wait(m) { state.value.woken == 1 } }
            try m.withLock { #expect(state.value.woken == 1) }
            // Three tickets, one broadcast: all the rest get through.
            try m.withLock {
                state.value.tickets = 3
                c.broadcast()
            }
            for w in waiters { try w.join() }
            try m.withLock { #expect(state.value.woken == 4 && state.value.tickets == 0) }
        }
    }

    @Test(arguments: backends)
    func unbufferedChannelIsARendezvous(kind: BackendKind) throws {
        try UThreadRuntime.run(backend: kind) { b throws in
            let ch = try b.makeChannel(of: Int.self)
            let acks = try b.makeChannel(of: Int.self)
            #expect(ch.capacity == 0)
            let sent = Atomic<Int>(0)
            let sender = b.spawn {
                for i in 0..<100 {
                    try ch.send(i)
                    // The receiver has taken i before send returns: it acknowledges i only after.
                    sent.store(i + 1, ordering: .sequentiallyConsistent)
                }
                ch.close()
            }
            var received: [Int] = []
            while let v = try ch.receive() {
                #expect(sent.load(ordering: .sequentiallyConsistent) <= v + 1)  // never ahead by two
                received.append(v)
            }
            try sender.join()
            #expect(received == Array(0..<100))
            acks.close()
        }
    }

    @Test(arguments: backends)
    func bufferedChannelBlocksWhenFullAndDrainsAfterClose(kind: BackendKind) throws {
        try UThreadRuntime.run(backend: kind) { b throws in
            let ch = try b.makeChannel(of: String.self, capacity: 3)
            let progress = Atomic<Int>(0)
            let producer = b.spawn {
                for i in 0..<5 {
                    try ch.send("v\(i)")
                    progress.store(i + 1, ordering: .sequentiallyConsistent)
                }
                ch.close()
            }
            // The producer fills the buffer (an event: waited for, on either backend)...
            let filled = waitFor(b) { progress.load(ordering: .sequentiallyConsistent) >= 3 }
            #expect(filled)
            // ...and, until we receive, cannot put a fourth value in it. (User threads: its
            // send has parked. Kernel threads: a send that did not block would most likely
            // get through during these yields; a correct one never does.)
            for _ in 0..<50 { b.yield() }
            #expect(progress.load(ordering: .sequentiallyConsistent) == 3)
            var got: [String] = []
            while let v = try ch.receive() { got.append(v) }
            try producer.join()
            #expect(got == ["v0", "v1", "v2", "v3", "v4"])
            #expect(try ch.receive() == nil)  // closed and drained, again
        }
    }

    @Test(arguments: backends)
    func closeWakesWaitersAndSendAfterCloseThrows(kind: BackendKind) throws {
        try UThreadRuntime.run(backend: kind) { b throws in
            // A lone receiver and a lone sender on two unbuffered channels: whether close comes
            // before or after they block, the receiver gets nil and the sender throws.
            let forReceiver = try b.makeChannel(of: Int.self)
            let forSender = try b.makeChannel(of: Int.self)
            let ready = try b.makeChannel(of: Int.self, capacity: 2)
            let receiver = b.spawn { () -> Int? in
                try ready.send(1)
                return try forReceiver.receive()
            }
            let sender = b.spawn { () -> Bool in
                try ready.send(2)
                do {
                    try forSender.send(1)
                    return true
                } catch UThreadError.closed { return false }
            }
            _ = try ready.receive()
            _ = try ready.receive()
            for _ in 0..<10 { b.yield() }
            #expect(forReceiver.close())
            #expect(forSender.close())
            #expect(!forSender.close())
            #expect(try receiver.join() == nil)
            #expect(try sender.join() == false)
            expectError(sameCaseAs: .closed("")) { try forReceiver.send(9) }
            #expect(try forSender.receive() == nil)
        }
    }

    @Test(arguments: backends)
    func sleepWaitsAtLeastItsDurationAndShorterSleepsWakeFirst(kind: BackendKind) throws {
        let order = Mutex<[Int]>([])
        try UThreadRuntime.run(backend: kind) { b throws in
            let start = ContinuousClock.now
            let sleepers = [3, 1, 2].map { n in
                b.spawn {
                    try b.sleep(for: .milliseconds(150 * n))
                    #expect(ContinuousClock.now - start >= .milliseconds(150 * n))
                    order.withLock { $0.append(n) }
                }
            }
            for s in sleepers { try s.join() }
        }
        #expect(order.withLock { $0 } == [1, 2, 3])
    }

    /// A thread that yields lets a ready thread run: under user threads the very first yield
    /// does (FIFO, one kernel thread); under kernel threads it runs at some point (the loop is
    /// bounded by a deadline, so a yield that never let it run fails instead of hanging).
    @Test(arguments: backends)
    func yieldLetsOthersRun(kind: BackendKind) throws {
        let (ran, yields) = try UThreadRuntime.run(backend: kind) { b throws -> (Bool, Int) in
            let flag = Atomic<Bool>(false)
            let t = b.spawn { flag.store(true, ordering: .sequentiallyConsistent) }
            var yields = 0
            let ran = waitFor(b) {
                yields += 1
                return flag.load(ordering: .sequentiallyConsistent)
            }
            try t.join()
            return (ran, yields - 1)
        }
        #expect(ran)
        if kind == .userThreads { #expect(yields == 1) }
    }

    @Test func kindsAreReported() throws {
        #expect(try UThreadRuntime.run(backend: .userThreads) { $0.kind } == .userThreads)
        #expect(try UThreadRuntime.run(backend: .kernelThreads) { $0.kind } == .kernelThreads)
        #expect(try UThreadRuntime.run(backend: .kernelThreads) { _ in UThreadRuntime.isRunning } == false)
    }
}
