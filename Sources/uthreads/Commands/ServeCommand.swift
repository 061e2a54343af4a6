// `uthreads serve`: the HTTP/1.1 server, one user thread per connection on one kernel thread
// (or one acceptor per worker with --workers N). SIGTERM and SIGINT stop it gracefully: they
// are read from a signalfd (SignalStream) by a user thread, never handled in a signal handler.
import ArgumentParser
import CUThreads
import Glibc
import Prometheus
import UserThreads
import UserThreadsHTTP

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "HTTP/1.1 server: GET / says hello, POST /echo echoes. One user thread per connection.",
        discussion: """
            Drive it with wrk, e.g.: taskset -c 0 uthreads serve --port 8080 & taskset -c 1 wrk -t2 -c100 -d5s http://127.0.0.1:8080/
            Every phase of a connection has a deadline a slow client cannot extend (times in seconds, fractions allowed, 0: off). \
            SIGTERM or SIGINT stops accepting, lets requests in flight finish within --grace-period, then exits 0.
            """)

    @Option(help: "Port to listen on.") var port: UInt16 = 8080
    @Option(help: "Numeric address to bind (127.0.0.1, ::1, 0.0.0.0).") var host = "127.0.0.1"
    @Option(
        help: "Deadline for a whole request head, from accept or from the request's first byte; then 408 (0: none).")
    var headTimeout = 30.0
    @Option(help: "Deadline for a whole request body, from the end of its head; then 408 (0: none).")
    var bodyTimeout = 60.0
    @Option(help: "Close a kept-alive connection that sends no new request for this long (0: never).")
    var idleTimeout = 75.0
    @Option(help: "Deadline for writing one whole response (0: none).")
    var writeTimeout = 60.0
    @Option(help: "After an error reply, drain the client's input this long at most before closing.")
    var lingerTimeout = 5.0
    @Option(
        help:
            "Live connections at most (all workers together); at the cap the server stops accepting until one ends. Capped below the descriptor limit."
    )
    var maxConnections = 10_000
    @Option(help: "On SIGTERM/SIGINT, how long requests in flight may take before their connections are cut.")
    var gracePeriod = 10.0
    @Option(help: "Answer each request after this many milliseconds (a slow backend; 0: at once).") var delayMs = 0
    @Option(
        help:
            "Worker kernel threads: 1 runs the M:1 runtime; N > 1 the M:N runtime with one acceptor per worker (0: one per CPU)."
    )
    var workers = 1
    @Flag(
        help:
            "Publish the runtime's metrics (swift-metrics) and serve them in the Prometheus text format on GET /metrics."
    )
    var metrics = false

    func validate() throws {
        guard (0...1024).contains(workers) else { throw ValidationError("--workers must be 0...1024") }
        let times = [
            ("--head-timeout", headTimeout), ("--body-timeout", bodyTimeout), ("--idle-timeout", idleTimeout),
            ("--write-timeout", writeTimeout), ("--linger-timeout", lingerTimeout), ("--grace-period", gracePeriod),
        ]
        for (name, seconds) in times where !(seconds.isFinite && seconds >= 0 && seconds <= 1e6) {
            throw ValidationError("\(name) must be 0...1000000 seconds")
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard (0...60_000).contains(delayMs) else { throw ValidationError("--delay-ms must be 0...60000") }
    }

    /// A timeout option as a duration: nil for 0 (off).
    private static func duration(_ seconds: Double) -> Duration? {
        seconds > 0 ? .nanoseconds(Int64((seconds * 1e9).rounded())) : nil
    }

    /// The server for `listener` with this command's options; `share` of `maxConnections`;
    /// `/metrics` from `registry` when there is one (`--metrics`).
    private func makeServer(
        _ listener: TCPListener, stop: HTTPServerStop, share: Int,
        registry: PrometheusCollectorRegistry?
    ) -> HTTPServer {
        var server = HTTPServer(listener: listener)
        server.headTimeout = Self.duration(headTimeout)
        server.bodyTimeout = Self.duration(bodyTimeout)
        server.idleTimeout = Self.duration(idleTimeout)
        server.writeTimeout = Self.duration(writeTimeout)
        server.lingerTimeout = Self.duration(lingerTimeout) ?? .zero
        server.shutdownGracePeriod = Self.duration(gracePeriod) ?? .zero
        server.maxConnections = share
        if delayMs > 0 { server.responseDelay = .milliseconds(delayMs) }
        server.stop = stop
        if let registry {
            server.pages["/metrics"] = {
                // this worker's figures as of now; the others' at their last safe point
                UThreadRuntime.publishMetrics()
                return ("text/plain; version=0.0.4; charset=utf-8", registry.emitToString())
            }
        }
        return server
    }

    /// Waits for SIGTERM or SIGINT, then asks every acceptor to stop.
    private static func watch(_ signals: SignalStream, _ stop: HTTPServerStop, grace: Double) throws {
        let signal: Int32
        do {
            signal = try signals.next()
        } catch is CancellationError {
            return
        } catch {
            uthreads_write_stderr(
                "uthreads serve: cannot wait for signals (\(error)); SIGTERM and SIGINT will not stop it\n")
            throw error
        }
        print("uthreads serve: signal \(signal): stopping (no new connections; grace period \(grace) s)")
        fflush(nil)  // tests wait for this line
        stop.stop()
    }

    func run() throws {
        // Blocked here, before any other kernel thread starts: workers and the offload pool
        // inherit the mask, so the signals reach only the signalfd.
        let signals = try SignalStream(signals: [SIGTERM, SIGINT])
        let stop = try HTTPServerStop()
        let limit = IO.raiseDescriptorLimit()
        // Each connection holds one descriptor; keep some for the listener, epoll, eventfds, logs.
        let cap = limit > 128 ? min(maxConnections, limit - 64) : maxConnections
        var configuration = UThreadRuntime.Configuration()
        configuration.cpuAccounting = false
        // --metrics: the runtime publishes to a Prometheus registry that GET /metrics renders.
        let registry = metrics ? PrometheusCollectorRegistry() : nil
        if let registry { configuration.metrics = .init(factory: PrometheusMetricsFactory(registry: registry)) }
        let n = workers == 0 ? UThreadRuntime.processorCount : workers
        let started = "(RLIMIT_NOFILE \(limit), at most \(cap) connections)"
        var cutOff = 0
        if n > 1 {
            // M:N: one listening socket; each worker runs an acceptor bound to it (never stolen)
            // that accepts with its own reactor and serves each connection with a worker-local
            // user thread. The kernel's wake-up order spreads the connections.
            let host = host
            let port = port
            let grace = gracePeriod
            let share = (cap + n - 1) / n
            let servers = (0..<n).map { _ in self }
            cutOff = try UThreadRuntime.run(workers: n, configuration) {
                let listener = try TCPListener(host: host, port: port)
                let fd = listener.fileDescriptor
                print("uthreads serve: listening on http://\(listener.localAddress)/ with \(n) workers \(started)")
                fflush(nil)  // scripts and `bench parallel` read the port from a pipe
                let watcher = UThread(name: "signals") { try ServeCommand.watch(signals, stop, grace: grace) }
                UThread.yield()  // the watcher waits before accepting begins (see HTTPServer.run)
                let acceptors = try (0..<n).map { k in
                    try UThread.spawn(name: "acceptor \(k)", onWorker: k) {
                        try servers[k].makeServer(
                            try TCPListener(borrowing: fd), stop: stop, share: share, registry: registry
                        ).run()
                    }
                }
                var cut = 0
                for a in acceptors { cut += try a.join() }
                watcher.cancel()
                _ = try? watcher.join()
                try listener.close()
                return cut
            }
        } else {
            cutOff = try UThreadRuntime.run(configuration) {
                let listener = try TCPListener(host: host, port: port)
                print("uthreads serve: listening on http://\(listener.localAddress)/ \(started)")
                fflush(nil)
                let watcher = UThread(name: "signals") { try ServeCommand.watch(signals, stop, grace: gracePeriod) }
                UThread.yield()  // the watcher waits before accepting begins (see HTTPServer.run)
                let cut = try makeServer(listener, stop: stop, share: cap, registry: registry).run()
                watcher.cancel()
                _ = try? watcher.join()
                try listener.close()
                return cut
            }
        }
        print(
            "uthreads serve: stopped\(cutOff > 0 ? " (\(cutOff) connections cut off at the end of the grace period)" : "")"
        )
    }
}
