import CUThreads
import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// Sendable test helpers.
final class MNFlag: Sendable {
    let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

final class MNCounter: Sendable {
    let value = Atomic<Int>(0)
    func add(_ n: Int = 1) { value.wrappingAdd(n, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// A plain Int guarded by an UMutex in the tests (deliberately not atomic).
final class MNGuarded: @unchecked Sendable {
    var value = 0
}

/// Spins (no safe point) until `flag` is set or `seconds` pass; false on timeout.
func spinUntil(_ flag: MNFlag, seconds: Double = 20) -> Bool {
    let end = uthreads_monotonic_ns() + UInt64(seconds * 1e9)
    while !flag.isSet {
        if uthreads_monotonic_ns() > end { return false }
    }
    return true
}

final class MNBox { var x = 0 }
/// Holds a dynamic exclusive access to `v` while `body` runs (and parks).
func holding(_ v: inout Int, _ body: () throws -> Void) rethrows {
    v += 1
    try body()
    v += 1
}

/// The calling thread's row in its worker's table. Only that worker's rows: the merged table
/// (`UThreadRuntime.threadTable()`) asks the other workers and parks for their answers, and
/// some tests must not reach a safe point here.
func myRow() -> ThreadInfo? {
    let id = UThread.current.id
    return Scheduler.active!.snapshot().threads.first { $0.id == id }
}

@Suite(.timeLimit(.minutes(1))) struct MNRuntimeTests {
    @Test func runsMainAndReturnsItsValue() throws {
        #expect(try UThreadRuntime.run(workers: 2) { 6 * 7 } == 42)
        #expect(try UThreadRuntime.run(workers: 1) { UThread.worker } == 0)
        let joined = try UThreadRuntime.run(workers: 2) {
            try (1...10).map { n in UThread { n * n } }.reduce(0) { try $0 + $1.join() }
        }
        #expect(joined == 385)
    }

    @Test func badArgumentsThrow() throws {
        #expect(
            expectError(sameCaseAs: .invalidArgument("")) { try UThreadRuntime.run(workers: 0) { 1 } }?.contains(
                "workers") == true)
        var config = UThreadRuntime.Configuration()
        config.clock = .virtual
        #expect(
            expectError(sameCaseAs: .invalidConfiguration("")) { try UThreadRuntime.run(workers: 2, config) { 1 } }?
                .contains("virtual clock") == true)
        let nested = try UThreadRuntime.run(workers: 1) { () -> Bool in
            do { try UThreadRuntime.run(workers: 1) { 1 } } catch UThreadError.nestedRuntime { return true } catch {}
            return false
        }
        #expect(nested)
        #expect(
            expectError(sameCaseAs: .invalidArgument("")) { try Channel<Int>(capacity: -1) }?.contains("capacity")
                == true)
    }

    @Test func mainErrorIsRethrown() throws {
        struct Oops: Error {}
        #expect(throws: Oops.self) { try UThreadRuntime.run(workers: 2) { throw Oops() } }
        let e = try UThreadRuntime.run(workers: 2) { () -> Bool in
            let t = UThread { () throws -> Int in throw Oops() }
            do { _ = try t.join() } catch is Oops { return true }
            return false
        }
        #expect(e)
    }

    /// A thread that never reaches a safe point holds its worker; the thread queued behind it
    /// is stolen by the other worker (the thread table shows where each ran).
    @Test func stealingMovesQueuedThreadsOffABusyWorker() throws {
        let (a, b, stolen) = try UThreadRuntime.run(workers: 2) { () -> (Int?, Int?, Int) in
            let flag = MNFlag()
            let spinner = UThread(name: "spinner") { () -> Int? in
                let w = myRow()?.worker
                #expect(spinUntil(flag))
                return w
            }
            let setter = UThread(name: "setter") { () -> Int? in
                let w = myRow()?.worker
                flag.set()
                return w
            }
            return (try spinner.join(), try setter.join(), UThread.runtime!.statistics.stolen)
        }
        #expect(a != nil && b != nil)
        #expect(a != b)
        #expect(stolen >= 1)
    }

    @Test func threadTableShowsTheWorker() throws {
        let one = try UThreadRuntime.run { myRow()?.worker }
        #expect(one == 0)
        let rows = try UThreadRuntime.run(workers: 2) { () -> [Int?] in
            [myRow()?.worker, UThread.worker]
        }
        #expect(rows[0] != nil && rows[0] == rows[1])
    }

    @Test func pinnedThreadsKeepTheKernelThread() throws {
        let ok = try UThreadRuntime.run(workers: 2) { () -> Bool in
            let parent = uthreads_gettid()
            let ch = try Channel<Int>(capacity: 1)
            let pinned = UThread(pinned: true) { () -> [Int32] in
                var tids = [uthreads_gettid()]
                for _ in 0..<20 {
                    _ = try ch.receive()  // woken from other workers
                    tids.append(uthreads_gettid())
                    try UThread.sleep(for: .microseconds(50))
                    tids.append(uthreads_gettid())
                }
                return tids
            }
            let senders = (0..<4).map { _ in UThread { for i in 0..<5 { try ch.send(i) } } }
            for s in senders { try s.join() }
            return try pinned.join().allSatisfy { $0 == parent }
        }
        #expect(ok)
    }

    /// Whatever wakes them, and wherever they resume (a wait on an M:N primitive is a site where
    /// a thread may migrate), their exclusivity state (an inout access held across parks) and
    /// thread-local values stay theirs.
    @Test func waitsAcrossWorkersKeepExclusivityAndLocals() throws {
        let results = try UThreadRuntime.run(workers: 2) { () -> [Bool] in
            let ping = try Channel<Int>(capacity: 4)
            let threads = (0..<8).map { n in
                UThread { () -> Bool in
                    let local = ThreadLocal<Int>(default: -1)
                    local.value = n
                    let box = MNBox()
                    var same = true
                    try holding(&box.x) {  // dynamic exclusive access across parks
                        for _ in 0..<50 {
                            try ping.send(n)
                            _ = try ping.receive()
                            same = same && local.value == n
                        }
                    }
                    return same && box.x == 2
                }
            }
            return try threads.map { try $0.join() }
        }
        #expect(results.allSatisfy { $0 })
    }

    /// After main returns, a worker-local thread unwinding from its cancellation makes a pool
    /// call: its worker must still poll its reactor for the completion (it used to spin on
    /// "main is done" without ever polling, and the runtime never ended). The thread is
    /// cancelled, so a public `blocking {}` would throw at once: the call waits as the jacket's
    /// C calls do, uncancellably.
    @Test func aBlockingCallDuringShutdownCompletes() throws {
        let done = MNFlag()
        try UThreadRuntime.run(workers: 2) {
            try UThread.spawn(onWorker: 1) { () throws in
                _ = UThread.local {
                    defer {
                        if (try? blockingToCompletion {
                            usleep(1_000)
                            return true
                        }) == true {
                            done.set()
                        }
                    }
                    try? UThread.sleep(for: .seconds(60))  // cancelled when main returns
                }
            }.join()
        }
        #expect(done.isSet)
    }

    @Test func aThreadInBlockingDoesNotDelayOthers() throws {
        let ok = try UThreadRuntime.run(workers: 2) { () -> Bool in
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { return false }
            let (r, w) = (fds[0], fds[1])
            defer {
                close(r)
                close(w)
            }
            // Pinned: same worker as main, so the others must run beside the blocked call.
            let blocked = UThread(pinned: true) { () -> Int in
                try blocking { () -> Int in
                    var byte: UInt8 = 0
                    return read(r, &byte, 1)  // blocks a pool kernel thread
                }
            }
            let group = UWaitGroup()
            try group.add(20)
            for i in 0..<20 {
                _ = UThread(pinned: i % 2 == 0) {
                    try UThread.sleep(for: .microseconds(100))
                    try group.done()
                }
            }
            try group.wait(timeout: .seconds(30))  // done while `blocked` still waits
            #expect(!blocked.isFinished)
            var one: UInt8 = 1
            _ = write(w, &one, 1)
            return try blocked.join() == 1
        }
        #expect(ok)
    }

    /// Under ThreadSanitizer this test used to end in a false deadlock report 1 run in 20 (the
    /// deadlock check could count a worker as stuck after it had left and drained the mail with
    /// the mutex handoff); `MNStuckCensusTests` replays that interleaving deterministically.
    @Test
    func mutexAcrossWorkers() throws {
        let total = try UThreadRuntime.run(workers: 2) { () -> Int in
            let m = UMutex(name: "counter")
            let guarded = MNGuarded()
            let threads = (0..<6).map { i in
                UThread {
                    for k in 0..<2000 {
                        try m.withLock {
                            let v = guarded.value
                            if (k + i) % 64 == 0 { UThread.yield() }  // hold it across a switch
                            guarded.value = v + 1
                        }
                    }
                }
            }
            for t in threads { try t.join() }
            return try m.withLock { guarded.value }
        }
        #expect(total == 12000)
    }

    @Test func mutexErrorsAndTimeouts() throws {
        let outcome = try UThreadRuntime.run(workers: 2) { () -> [String] in
            var out: [String] = []
            let m = UMutex()
            do { try m.unlock() } catch UThreadError.invalidArgument { out.append("unlock-not-owner") }
            try m.lock()
            do { try m.lock() } catch UThreadError.invalidArgument { out.append("relock") }
            let waiter = UThread { () -> String in
                do {
                    try m.lock(timeout: .milliseconds(5))
                    return "locked"
                } catch UThreadError.timedOut { return "timedOut" }
            }
            out.append(try waiter.join())
            let cancelled = UThread { () -> String in
                do {
                    try m.lock()
                    return "locked"
                } catch is CancellationError { return "cancelled" }
            }
            #expect(try waitUntilParked(cancelled, .mutex))  // in the lock's queue, not before it
            cancelled.cancel()
            out.append(try cancelled.join())
            try m.unlock()
            #expect(m.tryLock())
            try m.unlock()
            return out
        }
        #expect(outcome == ["unlock-not-owner", "relock", "timedOut", "cancelled"])
    }

    @Test func channelStormAcrossWorkers() throws {
        let (sum, count) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int) in
            let ch = try Channel<Int>(capacity: 8)
            let producers = (0..<4).map { p in UThread { for i in 0..<5000 { try ch.send(p * 5000 + i) } } }
            let consumers = (0..<4).map { _ in
                UThread { () -> (Int, Int) in
                    var s = 0
                    var c = 0
                    while let v = try ch.receive() {
                        s += v
                        c += 1
                    }
                    return (s, c)
                }
            }
            for p in producers { try p.join() }
            ch.close()
            return try consumers.reduce((0, 0)) { acc, t in
                let r = try t.join()
                return (acc.0 + r.0, acc.1 + r.1)
            }
        }
        #expect(count == 20000)
        #expect(sum == (0..<20000).reduce(0, +))
    }

    @Test func channelCloseAndTimeouts() throws {
        let out = try UThreadRuntime.run(workers: 2) { () -> [String] in
            var out: [String] = []
            let ch = try Channel<Int>(capacity: 1)
            do { _ = try ch.receive(timeout: .milliseconds(2)) } catch UThreadError.timedOut {
                out.append("recv-timeout")
            }
            try ch.send(1)
            do { try ch.send(2, timeout: .milliseconds(2)) } catch UThreadError.timedOut { out.append("send-timeout") }
            let blockedReceiver = UThread { () -> Int? in
                _ = try ch.receive()
                return try ch.receive()
            }
            #expect(try waitUntilParked(blockedReceiver, .channelReceive))  // took 1, waits for more
            ch.close()
            out.append("\(String(describing: try blockedReceiver.join()))")
            do { try ch.send(3) } catch UThreadError.closed { out.append("send-closed") }
            return out
        }
        #expect(out == ["recv-timeout", "send-timeout", "nil", "send-closed"])
    }

    @Test func cancellationRaces() throws {
        let (cancelled, finished) = try UThreadRuntime.run(workers: 2) { () -> (Int, Int) in
            let ch = try Channel<Int>(capacity: 1)
            var cancelled = 0
            var finished = 0
            for round in 0..<20 {
                let waiters = (0..<20).map { _ in UThread { () -> Bool in (try? ch.receive()) != nil } }
                if round % 2 == 0 { UThread.yield() }
                let canceller = UThread { for t in waiters { t.cancel() } }
                // Senders race with the cancels: each value goes to one waiter or stays buffered.
                let sender = UThread { for i in 0..<5 { try? ch.send(i, timeout: .milliseconds(2)) } }
                try canceller.join()
                try sender.join()
                for t in waiters { if try t.join() { finished += 1 } else { cancelled += 1 } }
                while (try? ch.receive(timeout: .zero)) != nil {}
            }
            return (cancelled, finished)
        }
        #expect(cancelled + finished == 400)
        #expect(cancelled > 0)
    }

    /// One worker, so nothing can start the thread before main cancels it (with two, an idle
    /// worker may steal and run it first).
    @Test func cancelBeforeStart() throws {
        let r = try UThreadRuntime.run(workers: 1) { () -> Bool in
            let t = UThread { () -> Bool in UThread.isCancelled }
            t.cancel()
            return try t.join()
        }
        #expect(r)
    }

    @Test func shutdownWithThreadsOnEveryWorkerLeaksNothing() throws {
        final class Tracked: Sendable {
            let counter: MNCounter
            init(_ c: MNCounter) {
                counter = c
                c.add(1)
            }
            deinit { counter.add(-1) }
        }
        let alive = MNCounter()
        let unwound = MNCounter()
        let workers = try UThreadRuntime.run(workers: 2) { () -> Set<Int> in
            let ch = try Channel<Int>(capacity: 1)
            let started = UWaitGroup()
            try started.add(41)
            let unpinnedStarted = MNCounter()
            let placements = try Channel<Int>(capacity: 64)
            // Holds worker 0 (no safe point) until worker 1 has started the 30 queued threads.
            _ = UThread(pinned: true) {
                let t = Tracked(alive)
                defer {
                    unwound.add()
                    _ = t
                }
                let end = uthreads_monotonic_ns() + 20_000_000_000
                while unpinnedStarted.count < 30 && uthreads_monotonic_ns() < end {}
                try placements.send(UThread.worker)
                try started.done()
                _ = try ch.receive()
            }
            for i in 0..<40 {
                let pinned = i % 4 == 0
                _ = UThread(pinned: pinned) {
                    let t = Tracked(alive)
                    defer {
                        unwound.add()
                        _ = t
                    }
                    if !pinned { unpinnedStarted.add() }
                    try placements.send(UThread.worker)
                    try started.done()
                    if i % 2 == 0 { _ = try ch.receive() } else { try UThread.sleep(for: .seconds(3600)) }
                }
            }
            try started.wait()
            var ws = Set<Int>()
            for _ in 0..<41 { if let w = try placements.receive() { ws.insert(w) } }
            return ws  // main returns: every other thread is cancelled and unwinds
        }
        #expect(workers == [0, 1])
        #expect(unwound.count == 41)
        #expect(alive.count == 0)
    }

    @Test func spawnFromOutsideGoesThroughTheInjectionQueue() throws {
        let v = try UThreadRuntime.run(workers: 2) { () -> Int in
            let handle = UThread.runtime!
            let t = try blocking { handle.spawn(name: "injected") { 7 * 6 } }  // on a pool thread
            return try t.join()
        }
        #expect(v == 42)
    }

    @Test func workerLocalUThreadsShareNonSendableState() throws {
        let n = try UThreadRuntime.run(workers: 2) { () -> Int in
            UThread.pin()  // local threads need a spawner that stays on its worker
            final class NotSendable { var n = 0 }
            let state = NotSendable()
            let m = UMutex()
            let locals = (0..<4).map { _ in
                UThread.local {
                    for _ in 0..<100 {
                        try m.withLock { state.n += 1 }
                        UThread.yield()
                    }
                }
            }
            for t in locals { try t.join() }
            return state.n
        }
        #expect(n == 400)
    }

    /// A pipe between two M:N threads, on whatever workers they start: each waits in its own
    /// worker's reactor.
    @Test func ioAcrossWorkers() throws {
        let received = try UThreadRuntime.run(workers: 2) { () -> Int in
            let (r, w) = try IO.pipe()
            let writer = UThread {
                let chunk = [UInt8](repeating: 7, count: 4096)
                for _ in 0..<256 { try chunk.withUnsafeBytes { try IO.write(w, all: $0) } }
                try IO.close(w)
            }
            let reader = UThread { () -> Int in
                var total = 0
                var buffer = [UInt8](repeating: 0, count: 8192)
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try IO.read(r, into: $0) }
                    if n == 0 { break }
                    total += n
                }
                try IO.close(r)
                return total
            }
            try writer.join()
            return try reader.join()
        }
        #expect(received == 256 * 4096)
    }

    @Test func spawnStressAcrossWorkers() throws {
        let (sum, stats) = try UThreadRuntime.run(workers: 2) { () -> (Int, UThreadRuntime.Statistics) in
            var sum = 0
            for batch in 0..<20 {
                let ts = (0..<5000).map { i in UThread { batch * 5000 + i } }
                for t in ts { sum += try t.join() }
            }
            return (sum, UThread.runtime!.statistics)
        }
        #expect(sum == (0..<100_000).reduce(0, +))
        #expect(stats.startedPerWorker.reduce(0, +) == 100_001)
        #expect(stats.live >= 1)  // main (a finished thread counts itself out just after waking its joiner)
    }

    @Test func boundSpawnsStartOnTheirWorker() throws {
        let (placements, error) = try UThreadRuntime.run(workers: 2) { () -> ([Int?], Bool) in
            let ts = try (0..<6).map { i in try UThread.spawn(onWorker: i % 2) { UThread.worker } }
            var bad = false
            do { _ = try UThread.spawn(onWorker: 2) { 0 } } catch UThreadError.invalidArgument { bad = true }
            return (try ts.map { try $0.join() }, bad)
        }
        #expect(placements == [0, 1, 0, 1, 0, 1])
        #expect(error)
    }

    /// `uthreads serve --workers 2`'s shape: one listening socket, an acceptor bound to each
    /// worker, connections served by worker-local threads; main's return cancels the acceptors.
    @Test func httpServerOnTwoWorkers() throws {
        let replies = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let fd = listener.fileDescriptor
            let address = listener.localAddress
            for k in 0..<2 {
                _ = try UThread.spawn(onWorker: k) { try HTTPServer(listener: try TCPListener(borrowing: fd)).run() }
            }
            let clients = (0..<16).map { _ in
                UThread { () -> String in
                    let c = try TCPStream.connect(to: address)
                    try c.write(all: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                    return String(decoding: try c.readToEnd(timeout: .seconds(10)), as: UTF8.self)
                }
            }
            let replies = try clients.map { try $0.join() }
            withExtendedLifetime(listener) {}
            return replies
        }
        #expect(replies.count == 16)
        #expect(replies.allSatisfy { $0.hasPrefix("HTTP/1.1 200 OK") && $0.hasSuffix("Hello, World!\n") })
    }
}
