// `uthreads serve`: the HTTP/1.1 server, one user thread per connection on one kernel thread.
import ArgumentParser
import Glibc
import UserThreads

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "HTTP/1.1 server: GET / says hello, POST /echo echoes. One user thread per connection.",
        discussion: "Drive it with wrk, e.g.: taskset -c 0 uthreads serve --port 8080 & taskset -c 1 wrk -t2 -c100 -d5s http://127.0.0.1:8080/")

    @Option(help: "Port to listen on.") var port: UInt16 = 8080
    @Option(help: "Numeric address to bind (127.0.0.1, ::1, 0.0.0.0).") var host = "127.0.0.1"
    @Option(help: "Close connections idle this many seconds (0: never).") var idleTimeout = 0
    @Option(help: "Answer each request after this many milliseconds (a slow backend; 0: at once).") var delayMs = 0
    @Option(help: "Worker kernel threads: 1 runs the M:1 runtime; N > 1 the M:N runtime with one acceptor per worker (0: one per CPU).")
    var workers = 1

    func validate() throws {
        guard (0...1024).contains(workers) else { throw ValidationError("--workers must be 0...1024") }
        guard (0...60_000).contains(delayMs) else { throw ValidationError("--delay-ms must be 0...60000") }
    }

    func run() throws {
        let limit = IO.raiseDescriptorLimit()
        var configuration = UThreadRuntime.Configuration()
        configuration.cpuAccounting = false
        let n = workers == 0 ? UThreadRuntime.processorCount : workers
        if n > 1 {
            // M:N: one listening socket; each worker runs an acceptor bound to it (never stolen)
            // that accepts with its own reactor and serves each connection with a worker-local
            // user thread. The kernel's wake-up order spreads the connections.
            let (host, port, idleTimeout, delayMs) = (host, port, idleTimeout, delayMs)
            try UThreadRuntime.run(workers: n, configuration) {
                let listener = try TCPListener(host: host, port: port)
                let fd = listener.fileDescriptor
                print("uthreads serve: listening on http://\(listener.localAddress)/ with \(n) workers (RLIMIT_NOFILE \(limit))")
                fflush(nil)  // scripts and `bench parallel` read the port from a pipe
                let acceptors = try (0..<n).map { k in
                    try MNThread.spawn(name: "acceptor \(k)", onWorker: k) {
                        var server = HTTPServer(listener: try TCPListener(borrowing: fd))
                        if idleTimeout > 0 { server.idleTimeout = .seconds(idleTimeout) }
                        if delayMs > 0 { server.responseDelay = .milliseconds(delayMs) }
                        try server.run()
                    }
                }
                for a in acceptors { try a.join() }
                withExtendedLifetime(listener) {}
            }
            return
        }
        try UThreadRuntime.run(configuration) {
            let listener = try TCPListener(host: host, port: port)
            print("uthreads serve: listening on http://\(listener.localAddress)/ (RLIMIT_NOFILE \(limit))")
            fflush(nil)
            var server = HTTPServer(listener: listener)
            if idleTimeout > 0 { server.idleTimeout = .seconds(idleTimeout) }
            if delayMs > 0 { server.responseDelay = .milliseconds(delayMs) }
            try server.run()
        }
    }
}
