// `uthreads serve`: the HTTP/1.1 server, one user thread per connection on one kernel thread.
import ArgumentParser
import UserThreads

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "HTTP/1.1 server: GET / says hello, POST /echo echoes. One user thread per connection.",
        discussion: "Drive it with wrk, e.g.: taskset -c 0 uthreads serve --port 8080 & taskset -c 1 wrk -t2 -c100 -d5s http://127.0.0.1:8080/")

    @Option(help: "Port to listen on.") var port: UInt16 = 8080
    @Option(help: "Numeric address to bind (127.0.0.1, ::1, 0.0.0.0).") var host = "127.0.0.1"
    @Option(help: "Close connections idle this many seconds (0: never).") var idleTimeout = 0

    func run() throws {
        let limit = IO.raiseDescriptorLimit()
        var configuration = UThreadRuntime.Configuration()
        configuration.cpuAccounting = false
        try UThreadRuntime.run(configuration) {
            let listener = try TCPListener(host: host, port: port)
            print("uthreads serve: listening on http://\(listener.localAddress)/ (RLIMIT_NOFILE \(limit))")
            var server = HTTPServer(listener: listener)
            if idleTimeout > 0 { server.idleTimeout = .seconds(idleTimeout) }
            try server.run()
        }
    }
}
