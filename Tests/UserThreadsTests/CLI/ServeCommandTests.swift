import Foundation
import Testing
import UserThreads
import UserThreadsHTTP

/// `uthreads serve` as a child process: SIGTERM stops it gracefully.
///
/// Serialized: a child spawned while another test's pipe is open may inherit its write end, and
/// a reader then never sees end of file; no read here waits for end of file either.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ServeCommandTests {
    /// Lines of a child's standard output, read as they come (blocking reads on this kernel thread).
    final class Lines {
        let handle: FileHandle
        var pending = Data()
        var all = ""
        init(_ handle: FileHandle) { self.handle = handle }

        /// The next line containing `text`; nil at end of output.
        func next(containing text: String) -> String? {
            while true {
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    all += line + "\n"
                    if line.contains(text) { return line }
                }
                let chunk = handle.availableData
                if chunk.isEmpty { return nil }
                pending.append(chunk)
            }
        }
    }

    /// Waits up to 20 s for `process` to exit, then kills it (a test must not hang on a stuck child).
    func waitForExit(_ process: Process) {
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            Issue.record("uthreads serve did not exit within 20 s; killed")
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// A running `uthreads serve --port 0 …` (run by `sh -c` after `shellPrefix`), its output
    /// lines and its port. Standard error goes to `errors` when given.
    func startServe(_ arguments: [String], shellPrefix: String = "", errors: Foundation.Pipe? = nil) throws -> (
        Process, Lines, UInt16
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let command = ([ChildProcess.uthreadsPath, "serve", "--port", "0"] + arguments).joined(separator: " ")
        process.arguments = ["-c", shellPrefix + "exec " + command]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let output = Foundation.Pipe()
        process.standardOutput = output
        process.standardError = errors ?? FileHandle.nullDevice
        try ChildProcess.launchUnblocked(process)
        let lines = Lines(output.fileHandleForReading)
        guard let listening = lines.next(containing: "listening on http://127.0.0.1:"),
            let port = UInt16(listening.split(separator: ":")[3].prefix { $0.isNumber })
        else {
            process.terminate()
            throw UThreadError.invalidArgument("uthreads serve did not start: \(lines.all)")
        }
        return (process, lines, port)
    }

    /// A request whose body is still arriving when SIGTERM comes is finished (then its
    /// connection is closed), an idle keep-alive connection is closed at once, new connections
    /// are refused, and the process exits 0; with one worker and with two.
    @Test(arguments: [1, 2])
    func sigtermFinishesTheRequestInFlightAndExitsZero(workers: Int) throws {
        let (process, lines, port) = try startServe(["--workers", "\(workers)", "--grace-period", "30"])
        defer { if process.isRunning { process.terminate() } }  // a failed expectation must not leave it behind
        let (reply, idleReply, refused) = try UThreadRuntime.run {
            // `busy` connects first: the kernel's accept queue is FIFO, so once `idle` has been
            // answered, `busy` has been accepted too (a connection still in the queue when the
            // stop shuts the listener down would be reset, as in any server).
            let busy = try TCPStream.connect(host: "127.0.0.1", port: port)
            let idle = try TCPStream.connect(host: "127.0.0.1", port: port)
            try idle.write(all: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try idle.read(upTo: 4096, timeout: .seconds(10))  // answered: now idle, kept alive
            try busy.write(all: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
            kill(process.processIdentifier, SIGTERM)
            // the server began its stop (a blocking read: the server is another process)
            _ = lines.next(containing: "stopping")
            let idleReply = try idle.readToEnd(timeout: .seconds(10))
            try busy.write(all: "cde")
            let reply = String(decoding: try busy.readToEnd(timeout: .seconds(10)), as: UTF8.self)
            // The server closed it (the end of file): the stop reached that worker's server
            // (which shut the listener down in the same step) before or after the response.
            let refused = (try? TCPStream.connect(host: "127.0.0.1", port: port)) == nil
            return (reply, idleReply, refused)
        }
        waitForExit(process)
        let stopped = lines.next(containing: "uthreads serve: stopped")  // written before the exit
        #expect(reply.hasPrefix("HTTP/1.1 200 OK\r\n") && reply.hasSuffix("\r\n\r\nabcde"), "\(reply)")
        #expect(idleReply.isEmpty, "the idle connection was closed without an answer")
        #expect(refused, "no connection is accepted after the stop began")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(lines.all)")
        #expect(stopped == "uthreads serve: stopped")
    }

    /// Out of descriptors (RLIMIT_NOFILE 40, a cap of 1,000 connections): accept fails with
    /// EMFILE, which is logged and retried with back-off; the server stays up, and every waiting
    /// connection is answered once others close.
    /// The clients connect before the server's first wait: its watchers must be waiting (the
    /// reactor made) before accepting takes every descriptor.
    @Test func outOfDescriptorsIsRetriedNotFatal() throws {
        let errors = Foundation.Pipe()
        let (process, _, port) = try startServe(
            ["--max-connections", "1000"], shellPrefix: "ulimit -n 40; ", errors: errors)
        defer { if process.isRunning { process.terminate() } }
        let log = Lines(errors.fileHandleForReading)
        let answered = try UThreadRuntime.run {
            // 60 connections with a request each; 40 descriptors cannot hold them all.
            let clients = try (0..<60).map { _ in try TCPStream.connect(host: "127.0.0.1", port: port) }
            for c in clients { try c.write(all: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") }
            _ = log.next(containing: "accept: Too many open files")  // the event (a blocking read: another process)
            // Each reply ends its connection, which frees a descriptor for a waiting one.
            return try clients.reduce(0) { n, c in
                let reply = try c.readToEnd(timeout: .seconds(20))
                return n + (String(decoding: reply, as: UTF8.self).hasSuffix(HTTPServer.helloBody) ? 1 : 0)
            }
        }
        kill(process.processIdentifier, SIGTERM)
        waitForExit(process)
        #expect(log.all.contains("accept: Too many open files"))
        #expect(answered == 60, "every connection was answered in the end")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }

    /// One request on a new connection to `port`, closed after the answer: the whole reply.
    private func get(_ target: String, port: UInt16) throws -> String {
        try UThreadRuntime.run {
            let c = try TCPStream.connect(host: "127.0.0.1", port: port)
            try c.write(all: "GET \(target) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            return String(decoding: try c.readToEnd(timeout: .seconds(20)), as: UTF8.self)
        }
    }

    /// `--metrics`: `GET /metrics` answers the runtime's metrics in the Prometheus text format,
    /// every name with its type (steals and migrations under M:N only), the per-worker figures
    /// labelled by worker; with one worker and with two.
    @Test(arguments: [1, 2])
    func metricsAnswersPrometheusText(workers: Int) throws {
        let (process, _, port) = try startServe(["--workers", "\(workers)", "--metrics"])
        defer { if process.isRunning { process.terminate() } }
        #expect(try get("/", port: port).hasSuffix(HTTPServer.helloBody))
        let reply = try get("/metrics", port: port)
        kill(process.processIdentifier, SIGTERM)
        waitForExit(process)
        #expect(
            reply.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "\(reply)"
        )
        let counters =
            [
                "uthreads_switches_total", "uthreads_spawns_total", "uthreads_offloaded_calls_total",
                "uthreads_deadlock_reports_total",
            ] + (workers > 1 ? ["uthreads_steals_total", "uthreads_migrations_total"] : [])
        let gauges = [
            "uthreads_threads", "uthreads_run_queue_length", "uthreads_stacks_mapped", "uthreads_reactor_registrations",
        ]
        for name in counters { #expect(reply.contains("# TYPE \(name) counter\n"), "\(name)") }
        for name in gauges { #expect(reply.contains("# TYPE \(name) gauge\n"), "\(name)") }
        for w in 0..<workers {
            #expect(reply.contains("uthreads_switches_total{worker=\"\(w)\"} "), "worker \(w)")
            #expect(reply.contains("uthreads_threads{worker=\"\(w)\",state=\"blocked\"} "), "worker \(w)")
        }
        // The worker that serves the scrape published just before: it has spawned threads
        // (main or its acceptor, and this connection's).
        let spawned = reply.split(separator: "\n").filter { $0.hasPrefix("uthreads_spawns_total{") }
            .compactMap { Int($0.split(separator: " ").last!) }
        #expect(spawned.count == workers && spawned.contains { $0 >= 2 }, "\(spawned)")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }

    /// Without `--metrics` there is no `/metrics` (404), and nothing is sampled.
    @Test func withoutTheFlagMetricsIsNotFound() throws {
        let (process, _, port) = try startServe([])
        defer { if process.isRunning { process.terminate() } }
        let reply = try get("/metrics", port: port)
        kill(process.processIdentifier, SIGTERM)
        waitForExit(process)
        #expect(reply.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(reply)")
    }
}
