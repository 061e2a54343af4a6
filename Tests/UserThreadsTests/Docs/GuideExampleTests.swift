import Testing
import UserThreads

/// docs/GUIDE.md's examples, compiled and run (an accept loop bounded instead of `while true`,
/// and a peer to talk to where the text has none).
@Suite(.timeLimit(.minutes(1))) struct GuideExampleTests {
    /// "Threads and the runtime".
    @Test func threadsAndTheRuntime() throws {
        let total = try UThreadRuntime.run {
            let workers = (1...4).map { n in
                UThread(name: "worker \(n)") {
                    try UThread.sleep(for: .milliseconds(10 * n))
                    return n * n
                }
            }
            _ = UThreadRuntime.threadTable()
            return try workers.reduce(0) { try $0 + $1.join() }
        }
        #expect(total == 30)
    }

    /// "Blocking calls that do not block the process": pool calls with a timeout and a deadline
    /// (a stand-in for the legacy client; "localhost" for the host, which /etc/hosts answers).
    @Test(arguments: [1, 2]) func poolCallsWithLimits(workers: Int) throws {
        struct LegacyClient: Sendable { func fetch() throws -> String { "answer" } }
        let legacyClient = LegacyClient()
        let (answer, addresses) = try UThreadRuntime.run(workers: workers) {
            let requestDeadline = ContinuousClock.now + .seconds(30)
            let answer = try blocking(timeout: .seconds(2)) { try legacyClient.fetch() }
            let addresses = try SocketAddress.resolve(host: "localhost", port: 443, deadline: requestDeadline)
            return (answer, addresses)
        }
        #expect(answer == "answer")
        #expect(!addresses.isEmpty)
    }

    /// "Blocking calls that do not block the process": the echo server, with one connection.
    @Test func echoServer() throws {
        let echoed = try UThreadRuntime.run {
            let listener = try TCPListener(port: 0)
            let port = listener.port
            let server = UThread.local(name: "server") {
                let connection = try listener.accept()
                _ = UThread.local(name: "client") {
                    defer { try? connection.close() }
                    while true {
                        let bytes = try connection.read(upTo: 4096, timeout: .seconds(30))
                        if bytes.isEmpty { break }
                        try connection.write(all: bytes)
                    }
                }
            }
            let client = try TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
            try client.write(all: "hello")
            let reply = try client.read(upTo: 100, timeout: .seconds(5))
            try client.close()
            try server.join()
            try listener.close()
            return String(decoding: reply, as: UTF8.self)
        }
        #expect(echoed == "hello")
    }

    /// "Swift concurrency, both ways".
    @Test func swiftConcurrencyBothWays() async throws {
        let executor = try UThreadExecutor()
        let reply = try await executor.run {
            let greeting = try UThread.await { try await fetchGreeting() }
            try UThread.sleep(for: .milliseconds(1))
            return greeting + ", world"
        }
        executor.shutdown()
        #expect(reply == "hello, world")
    }

    /// "Synchronization between user threads": the select, once idle and once with a job ready.
    @Test(arguments: [1, 2]) func select(workers: Int) throws {
        let (idle, job) = try UThreadRuntime.run(workers: workers) {
            let jobs = Channel<Int>(name: "jobs")
            let quit = Channel<Void>(name: "quit")
            func next(timeout: Duration) throws -> String {
                try channelSelect(timeout: timeout) { s in
                    s.receive(from: jobs) { j in "job \(j!)" }
                    s.receive(from: quit) { _ in "quit" }
                    s.onTimeout { "idle" }
                }
            }
            let idle = try next(timeout: .milliseconds(1))
            let sender = UThread { try jobs.send(7) }
            let job = try next(timeout: .seconds(10))
            try sender.join()
            return (idle, job)
        }
        #expect(idle == "idle")
        #expect(job == "job 7")
    }

    /// "Each process its own scheduling algorithm".
    @Test func fairSharePolicy() throws {
        let both = try UThreadRuntime.run(policy: { try FairSharePolicy() }) {
            let batch = UThread(name: "batch", scheduling: .init(nice: 10)) { score(1) }
            let frame = UThread(name: "frame", scheduling: .init(nice: -5)) { score(2) }
            return try (batch.join(), frame.join())
        }
        #expect(both == (score(1), score(2)))
    }

    /// "Every core": the fork–join under a mutex, and a local thread sharing a `var`.
    @Test func everyCore() throws {
        let sum = try UThreadRuntime.run(workers: UThreadRuntime.processorCount) {
            let parts = (0..<64).map { i in
                UThread { score(i) }
            }
            let total = UMutex(name: "total")
            let box = Tally()
            for p in parts {
                let v = try p.join()
                try total.withLock { box.value += v }
            }
            return try total.withLock { box.value }
        }
        #expect(sum == (0..<64).map(score).reduce(0, +))

        let hits = try UThreadRuntime.run(workers: 2) {
            var hits = 0
            UThread.pin()
            let t = UThread.local { hits += 1 }
            try t.join()
            return hits
        }
        #expect(hits == 1)
    }
}

/// The guide's "any async function".
private func fetchGreeting() async throws -> String { "hello" }

/// The guide's CPU-bound work.
private func score(_ i: Int) -> Int { (0..<1000).reduce(i) { ($0 &* 31 &+ $1) % 1_000_003 } }

/// The guide's `Sendable` class, guarded by a `UMutex`.
private final class Tally: @unchecked Sendable { var value = 0 }
