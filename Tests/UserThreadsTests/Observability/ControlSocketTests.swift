import CUThreads
import Foundation
import Testing
@testable import UserThreads

/// The control socket under any number of workers, and its server's behaviour
/// with clients that do not play along: every client is served at once, each has a read and a
/// write deadline, and stopping never waits for one.
@Suite(.timeLimit(.minutes(2))) struct ControlSocketTests {
    /// Runs `body` on the main thread of `run(workers:)`, with a sleeping thread "sleeper K"
    /// on each worker K.
    static func withSleepers<R: Sendable>(
        workers: Int, _ configuration: UThreadRuntime.Configuration,
        _ body: @escaping @Sendable () throws -> R
    ) throws -> R {
        return try UThreadRuntime.run(workers: workers, configuration) {
            let sleepers = try (0..<workers).map { k in
                try UThread.spawn(name: "sleeper \(k)", onWorker: k) { try UThread.sleep(for: .seconds(3600)) }
            }
            defer { for s in sleepers { s.cancel() } }
            // A sleeper spawned on another worker may not have started yet: wait until the
            // merged table shows every one asleep, so the body sees them in a known state.
            let giveUp = ContinuousClock.now + .seconds(30)
            while UThreadRuntime.threadTable().threads.filter({ $0.name.hasPrefix("sleeper ") && $0.state == .sleeping }
            ).count < workers {
                guard ContinuousClock.now < giveUp else { throw UThreadError.timedOut }
                try UThread.sleep(for: .milliseconds(1))
            }
            return try body()
        }
    }

    /// Runs `client` on a kernel thread of its own and waits for its value by parking the
    /// calling user thread (a blocking wait would stop the runtime that must answer).
    static func onKernelThread<T: Sendable>(_ client: @escaping @Sendable () -> T) throws -> T? {
        let result = KernelLock<T?>(nil)  // a pthread mutex: ThreadSanitizer sees it (Mutex it does not)
        Thread {
            let value = client()
            result.withLock { $0 = value }
        }.start()
        let giveUp = ContinuousClock.now + .seconds(60)
        while result.withLock({ $0 == nil }) && ContinuousClock.now < giveUp {
            try UThread.sleep(for: .milliseconds(1))
        }
        return result.withLock { $0 }
    }

    @Test(arguments: [1, 2])
    func theControlSocketServesTheMergedTableAndDump(workers: Int) throws {
        let path = LiveViewTests.temporaryPath(".sock")
        var configuration = UThreadRuntime.Configuration()
        configuration.controlSocket = path
        let answers = try Self.withSleepers(workers: workers, configuration) {
            try Self.onKernelThread {
                (LiveViewTests.ask(path, "table"), LiveViewTests.ask(path, "dump"), LiveViewTests.ask(path, "bogus"))
            }
        }
        let (tableData, dumpData, bogus) = try #require(answers)
        #expect(bogus.map { String(decoding: $0, as: UTF8.self) }?.contains("unknown request 'bogus'") == true)
        let table = try JSONDecoder().decode(ThreadTable.self, from: try #require(tableData))
        let dump = try JSONDecoder().decode(ThreadDump.self, from: try #require(dumpData))
        #expect(table.workers == workers)
        #expect(dump.workers == workers)
        #expect(dump.reason == "control socket")
        #expect(table.unansweredWorkers == [])
        #expect(dump.unansweredWorkers == [])
        for k in 0..<workers {
            let row = table.threads.first { $0.name == "sleeper \(k)" }
            #expect(row?.state == .sleeping, "sleeper \(k) in \(table)")
            #expect(row?.worker == k)
            let entry = dump.threads.first { $0.thread.name == "sleeper \(k)" }
            #expect(entry?.thread.worker == k)
            #expect(entry?.backtrace.isEmpty == false)
        }
        #expect(table.threads.contains { $0.name == "main" })
        #expect(!FileManager.default.fileExists(atPath: path), "the socket is removed when run returns")
    }

    @Test(arguments: [1, 2])
    func aSilentClientBlocksNeitherOtherClientsNorRunsReturn(workers: Int) throws {
        let path = LiveViewTests.temporaryPath(".sock")
        var configuration = UThreadRuntime.Configuration()
        configuration.controlSocket = path
        // The silent client connects (from the main user thread: a Unix connect to a listening
        // socket completes at once) and stays connected while main returns.
        let (silent, answer) = try Self.withSleepers(workers: workers, configuration) { () -> (Int32, Data?) in
            let fd = uthreads_unix_connect(path)
            return (fd, try Self.onKernelThread { LiveViewTests.ask(path, "table") } ?? nil)
        }
        #expect(silent >= 0)
        defer { close(silent) }
        let table = try JSONDecoder().decode(
            ThreadTable.self, from: try #require(answer, "a second client was answered"))
        #expect(table.threads.contains { $0.name == "main" })
        // run returned (the suite's time limit guards against a hang); the server hung up on it.
        var pfd = pollfd(fd: silent, events: Int16(POLLIN), revents: 0)
        #expect(poll(&pfd, 1, 0) == 1, "closed when run returned")
        var byte: UInt8 = 0
        #expect(read(silent, &byte, 1) <= 0, "without an answer")
    }

    /// A runtime whose only thread never reaches a safe point cannot answer: after the answer's
    /// deadline (a hang guard of 5 s) the client hears that, and why it may be, instead of
    /// "the runtime has ended" or nothing.
    @Test func aRuntimeThatReachesNoSafePointIsReportedAsNotAnswering() throws {
        let path = LiveViewTests.temporaryPath(".sock")
        var configuration = UThreadRuntime.Configuration()
        configuration.controlSocket = path
        let answer = try UThreadRuntime.run(configuration) { () -> Data? in
            let result = KernelLock<Data??>(nil)
            Thread {
                let value = LiveViewTests.ask(path, "table")
                result.withLock { $0 = .some(value) }
            }.start()
            // Computes without a safe point until the answer arrives (a hang guard of 60 s).
            let giveUp = ContinuousClock.now + .seconds(60)
            while result.withLock({ $0 == nil }) && ContinuousClock.now < giveUp {}
            return result.withLock { $0 } ?? nil
        }
        let text = String(decoding: try #require(answer, "an answer"), as: UTF8.self)
        #expect(text == ControlSocketServer.noAnswer + "\n")
        #expect(text.contains("within 5 s") && text.contains("safe point"), "\(text)")
    }

    @Test(arguments: [1, 2])
    func anUnusableSocketPathIsAConfigurationError(workers: Int) {
        var configuration = UThreadRuntime.Configuration()
        configuration.controlSocket = "/nonexistent-dir/uthreads.sock"
        #expect(throws: UThreadError.self) { try Self.withSleepers(workers: workers, configuration) {} }
    }

    /// An empty path, or one with a NUL byte, is refused before anything is bound; a path that
    /// names a regular file leaves it alone (the server used to unlink whatever refused a
    /// connection there) and is a configuration error too.
    @Test(arguments: [1, 2])
    func aPathThatIsNotASocketIsRefusedAndLeftAlone(workers: Int) throws {
        let path = "/tmp/uthreads-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0 && write(fd, "keep", 4) == 4)
        close(fd)
        defer { unlink(path) }
        for socket in ["", "/tmp/uthreads\0junk", path] {
            var configuration = UThreadRuntime.Configuration()
            configuration.controlSocket = socket
            expectError(sameCaseAs: .invalidConfiguration(""), Comment(rawValue: socket.debugDescription)) {
                try Self.withSleepers(workers: workers, configuration) {}
            }
        }
        var info = stat()
        #expect(lstat(path, &info) == 0 && info.st_size == 4)
    }

    /// A request is the client's bytes: the error naming it must still be valid JSON when they
    /// hold a quote, a backslash or a control character.
    @Test(arguments: ["bogus", "ta\"ble", "a\\b", "x\u{1}y", "}{"])
    func anUnknownRequestIsAnsweredWithValidJSON(request: String) throws {
        let answer = Scheduler.unknownControlRequest(request)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(answer.utf8))
        #expect(decoded["error"] == "unknown request '\(request)'; ask for table or dump", "\(answer)")
    }

    /// The client has a deadline too: a socket that is listened on but never served (a stopped
    /// process) makes it throw `timedOut` instead of holding `uthreads top` forever.
    @Test func theClientGivesUpOnASocketNobodyServes() throws {
        let path = LiveViewTests.temporaryPath(".sock")
        let listener = uthreads_unix_listen(path)  // connections wait in its backlog, never accepted
        #expect(listener >= 0)
        defer {
            close(listener)
            unlink(path)
        }
        #expect(throws: UThreadError.timedOut) {
            try UThreadRuntime.queryControlSocket(path, request: "table", timeout: .milliseconds(100))
        }
    }

    // MARK: The server alone (a fixed answer, no runtime)

    /// A server answering every request with `answer`, with the given deadlines.
    static func server(
        answer: String, readTimeoutMilliseconds: UInt64 = 3_600_000,
        writeTimeoutMilliseconds: UInt64 = 3_600_000
    ) throws -> ControlSocketServer {
        try ControlSocketServer(
            path: LiveViewTests.temporaryPath(".sock"), readTimeoutNanoseconds: readTimeoutMilliseconds * 1_000_000,
            writeTimeoutNanoseconds: writeTimeoutMilliseconds * 1_000_000
        ) { _, _ in answer }
    }

    /// Waits (bounded) for the server to hang up on `fd`: POLLHUP, whatever is still unread.
    static func waitForHangUp(_ fd: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: 0, revents: 0)  // 0: only hang-ups and errors are reported
        return poll(&pfd, 1, 60_000) == 1 && pfd.revents & Int16(POLLHUP) != 0
    }

    @Test func aSilentClientDoesNotDelayAnotherAndStopDoesNotWaitForIt() throws {
        let server = try Self.server(answer: "{\"ok\":true}")
        let silent = uthreads_unix_connect(server.path)
        #expect(silent >= 0)
        defer { close(silent) }
        let answer = try UThreadRuntime.queryControlSocket(server.path, request: "table")
        #expect(String(decoding: answer, as: UTF8.self) == "{\"ok\":true}\n")
        var pfd = pollfd(fd: silent, events: Int16(POLLIN), revents: 0)
        #expect(poll(&pfd, 1, 0) == 0, "the silent client is still connected (its read deadline is an hour away)")
        server.stop()  // returns although the silent client's deadline is an hour away
        #expect(Self.waitForHangUp(silent))
        #expect(!FileManager.default.fileExists(atPath: server.path))
    }

    @Test func aSilentClientIsClosedAtItsReadDeadline() throws {
        let server = try Self.server(answer: "{}", readTimeoutMilliseconds: 100)
        defer { server.stop() }
        let silent = uthreads_unix_connect(server.path)
        #expect(silent >= 0)
        defer { close(silent) }
        #expect(Self.waitForHangUp(silent))
        var byte: UInt8 = 0
        #expect(read(silent, &byte, 1) == 0, "closed without an answer")
    }

    @Test func aClientThatDoesNotReadIsClosedAtTheWriteDeadline() throws {
        // Far more than the socket buffers hold, so the server's writes stall.
        let size = 8 << 20
        let server = try Self.server(answer: String(repeating: "x", count: size), writeTimeoutMilliseconds: 200)
        defer { server.stop() }
        let slow = uthreads_unix_connect(server.path)
        #expect(slow >= 0)
        defer { close(slow) }
        let request = Array("table\n".utf8)
        #expect(write(slow, request, request.count) == request.count)
        #expect(Self.waitForHangUp(slow), "the server gave up on the slow reader")
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(slow, &buffer, buffer.count)
            if n <= 0 { break }
            received += n
        }
        #expect(received > 0 && received < size, "cut short: \(received) of \(size + 1) bytes")
    }

    /// A request line that arrived before its deadline while the loop was busy producing
    /// another client's (slow) answer is answered, not dropped at the deadline.
    @Test func aSlowAnswerDoesNotMakeAnotherClientMissItsDeadline() throws {
        let started = DispatchSemaphore(value: 0)
        let written = DispatchSemaphore(value: 0)
        let server = try ControlSocketServer(
            path: LiveViewTests.temporaryPath(".sock"), readTimeoutNanoseconds: 100_000_000,
            writeTimeoutNanoseconds: 3_600_000_000_000
        ) { request, _ in
            if request == "slow" {
                started.signal()
                written.wait()
                usleep(300_000)  // the other client's read deadline (100 ms after its accept) passes
            }
            return "{\"for\":\"\(request)\"}"
        }
        defer { server.stop() }
        let other = uthreads_unix_connect(server.path)
        let slow = uthreads_unix_connect(server.path)
        #expect(other >= 0 && slow >= 0)
        defer {
            close(other)
            close(slow)
        }
        #expect(write(slow, "slow\n", 5) == 5)
        started.wait()
        #expect(write(other, "table\n", 6) == 6)  // in time: the deadline is 100 ms away at least
        written.signal()
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = read(other, &buffer, buffer.count)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        #expect(String(decoding: answer, as: UTF8.self) == "{\"for\":\"table\"}\n")
    }

    /// With no descriptor left, accept fails and the connection stays in the backlog: the
    /// server pauses its listener (one line on stderr) instead of polling it in a busy loop, and
    /// serves the client once descriptors are free (in a child process with its own limit).
    @Test func runningOutOfDescriptorsDoesNotMakeTheServerSpin() throws {
        let socket = LiveViewTests.temporaryPath(".sock")
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, ["selftest", "control-socket-emfile", socket])
        #expect(r.status == 0 && !r.crashed, "status \(r.status), stderr \(r.stderr)")
        let cpu = r.stdout.split(separator: "\n").first { $0.hasPrefix("cpu-ms ") }.flatMap { Int($0.dropFirst(7)) }
        // A spinning server spends about half of the 500 ms even on a busy machine; paused, ~0.
        #expect(cpu.map { $0 < 50 } == true, "\(r.stdout)")
        #expect(r.stdout.contains("answered: true"), "\(r.stdout)")
        #expect(
            r.stderr.components(separatedBy: "accept failed (errno \(EMFILE))").count == 2, "logged once: \(r.stderr)")
    }

    @Test(arguments: [1, 2])
    func uthreadsTopShowsTheWorkerColumn(workers: Int) throws {
        try LiveViewTests.withLiveView(["\(workers)"]) { socket in
            let r = try ChildProcess.uthreads("top", "--once", "--sort", "id", socket)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.contains("; \(workers) worker\(workers == 1 ? "" : "s")") }, "\(r.stdout)")
            let header = try Regex("TID +NAME +STATE +WORKER")
            #expect(lines.contains { $0.contains(header) }, "\(r.stdout)")
            for k in 0..<workers {
                let row = try Regex("sleeper \(k) +sleeping +\(k) ")
                #expect(lines.contains { $0.contains(row) }, "sleeper \(k) on worker \(k): \(r.stdout)")
            }
        }
    }
}
