// `uthreads bench io`: `uthreads serve`'s server under load, requests/s and latency.
//
// The server runs on its own kernel thread (pinned to CPU 0 when there are two or more CPUs);
// the load comes from `wrk` when it is installed (pinned to CPU 1 with taskset), otherwise
// from a built-in client: a runtime on the main kernel thread (CPU 1) with one user thread per
// connection sending GET / in a keep-alive loop. Server CPU per request is the process's CPU
// time over the run divided by the requests (with wrk, the process is only the server).
import ArgumentParser
import Glibc
import UserThreads
import UserThreadsHTTP

struct BenchIOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io",
        abstract: "HTTP server under load: requests/s, p50/p99 latency, server CPU per request.")

    @Option(help: "Concurrent connections.") var connections = 100
    @Option(help: "Seconds of load.") var duration = 5
    @Option(help: "Load client: auto (wrk if installed), wrk, builtin.") var client = "auto"

    func validate() throws {
        // A negative duration made the built-in client wait forever; 0 connections measured nothing.
        guard (1...100_000).contains(connections) else { throw ValidationError("--connections must be 1...100000") }
        guard (1...3600).contains(duration) else { throw ValidationError("--duration must be 1...3600 seconds") }
        guard ["auto", "wrk", "builtin"].contains(client) else {
            throw ValidationError("--client must be auto, wrk or builtin, not '\(client)'")
        }
    }

    func run() throws {
        _ = IO.raiseDescriptorLimit()
        let pin = KernelThread.cpuCount >= 2
        let port = try startServer(pin: pin)
        let useWrk = client == "wrk" || (client == "auto" && Self.which("wrk") != nil)
        let report = BenchReport()
        let result = useWrk ? try runWrk(port: port, pin: pin) : try runBuiltin(port: port, pin: pin)
        let label = "uthreads serve, \(useWrk ? "wrk -t2" : "built-in client") -c\(connections)"
        report.add(BenchRow(group: "io", name: "\(label): requests/s", value: result.requestsPerSecond, unit: "req/s"))
        report.add(BenchRow(group: "io", name: "\(label): p50 latency", value: result.p50Microseconds, unit: "µs"))
        report.add(BenchRow(group: "io", name: "\(label): p99 latency", value: result.p99Microseconds, unit: "µs"))
        if let cpu = result.serverCPUMicrosecondsPerRequest {
            report.add(BenchRow(group: "io", name: "\(label): server CPU per request", value: cpu, unit: "µs"))
        }
        if result.errors > 0 { print("errors: \(result.errors)") }
    }

    struct Result {
        var requestsPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var serverCPUMicrosecondsPerRequest: Double?
        var errors: Int
    }

    /// Starts the HTTP server on its own kernel thread and returns its port.
    private func startServer(pin: Bool) throws -> UInt16 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw UThreadError.system(call: "pipe", errno: .init(rawValue: errno)) }
        let writeFD = fds[1]
        KernelThread.spawn(cpu: pin ? 0 : nil) {
            var configuration = UThreadRuntime.Configuration()
            configuration.cpuAccounting = false
            do {
                try UThreadRuntime.run(configuration) {
                    let listener = try TCPListener(host: "127.0.0.1", port: 0)
                    var port = listener.port
                    _ = Glibc.write(writeFD, &port, 2)
                    try HTTPServer(listener: listener).run()
                }
            } catch {
                print("server: \(error)")
                var zero: UInt16 = 0
                _ = Glibc.write(writeFD, &zero, 2)
            }
        }
        var port: UInt16 = 0
        guard Glibc.read(fds[0], &port, 2) == 2, port != 0 else {
            throw UThreadError.invalidArgument("the server did not start")
        }
        Glibc.close(fds[0])
        return port
    }

    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(
            usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    // MARK: wrk

    private func runWrk(port: UInt16, pin: Bool) throws -> Result {
        var args = ["wrk", "-t2", "-c\(connections)", "-d\(duration)s", "--latency", "http://127.0.0.1:\(port)/"]
        if pin { args = ["taskset", "-c", "1"] + args }
        print("$ \(args.joined(separator: " "))   (server on CPU 0)")
        let cpuBefore = processCPUSeconds()
        let output = try Self.capture(args)
        let cpu = processCPUSeconds() - cpuBefore
        var result = Result(
            requestsPerSecond: 0, p50Microseconds: .nan, p99Microseconds: .nan, serverCPUMicrosecondsPerRequest: nil,
            errors: 0)
        var requests = 0.0
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if line.hasPrefix("Requests/sec:"), let v = words.last.flatMap({ Double($0) }) {
                result.requestsPerSecond = v
            }
            if words.first == "50%", words.count > 1 { result.p50Microseconds = Self.microseconds(words[1]) }
            if words.first == "99%", words.count > 1 { result.p99Microseconds = Self.microseconds(words[1]) }
            if words.count > 2, words[1] == "requests", words[2] == "in", let n = Double(words[0]) { requests = n }
            if line.contains("Socket errors") || line.contains("Non-2xx") {
                result.errors += 1
                print(line)
            }
        }
        if requests > 0 { result.serverCPUMicrosecondsPerRequest = cpu / requests * 1e6 }
        return result
    }

    static func microseconds(_ text: Substring) -> Double {
        for (suffix, scale) in [("us", 1.0), ("ms", 1e3), ("s", 1e6)] where text.hasSuffix(suffix) {
            return (Double(text.dropLast(suffix.count)) ?? .nan) * scale
        }
        return .nan
    }

    static func which(_ program: String) -> String? {
        let path = String(
            decoding: (getenv("PATH").map { UnsafeRawBufferPointer(start: $0, count: strlen($0)) }.map(Array.init) ?? []),
            as: UTF8.self)
        for dir in path.split(separator: ":") where access("\(dir)/\(program)", X_OK) == 0 {
            return "\(dir)/\(program)"
        }
        return nil
    }

    /// Runs a program (looked up in PATH) and returns its standard output.
    static func capture(_ args: [String]) throws -> String {
        let (pid, out) = try ChildProcess.spawnWithStdoutPipe(args, searchPath: true)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(out, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += chunk[0..<n]
        }
        Glibc.close(out)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: Built-in client

    private func runBuiltin(port: UInt16, pin: Bool) throws -> Result {
        if pin { KernelThread.pinCurrent(cpu: 1) }
        print("built-in client: \(connections) connections for \(duration) s on CPU 1, server on CPU 0")
        let request = Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        let expected = HTTPServer.response(status: 200, body: HTTPServer.helloBody, keepAlive: true).utf8.count
        let seconds = duration
        let count = connections
        var configuration = UThreadRuntime.Configuration()
        configuration.cpuAccounting = false
        return try UThreadRuntime.run(configuration) {
            let address = try SocketAddress(host: "127.0.0.1", port: port)
            let end = ContinuousClock.now + .seconds(seconds)
            var latencies: [UInt64] = []
            var errors = 0
            let start = ContinuousClock.now
            let threads = (0..<count).map { _ in
                UThread.local(stackSize: 64 * 1024) {
                    do {
                        let stream = try TCPStream.connect(to: address)
                        defer { try? stream.close() }
                        var buffer = [UInt8](repeating: 0, count: 4096)
                        while ContinuousClock.now < end {
                            let t0 = ContinuousClock.now
                            try stream.write(all: request)
                            var got = 0
                            while got < expected {
                                let n = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
                                if n == 0 { throw UThreadError.closed("server closed") }
                                got += n
                            }
                            let dt = ContinuousClock.now - t0
                            latencies.append(
                                UInt64(dt.components.seconds) * 1_000_000_000
                                    + UInt64(dt.components.attoseconds / 1_000_000_000))
                        }
                    } catch {
                        errors += 1
                    }
                }
            }
            for t in threads { try t.join() }
            let elapsed = ContinuousClock.now - start
            let secondsElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            latencies.sort()
            func pct(_ p: Double) -> Double {
                latencies.isEmpty
                    ? .nan : Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000
            }
            return Result(
                requestsPerSecond: Double(latencies.count) / secondsElapsed, p50Microseconds: pct(0.5),
                p99Microseconds: pct(0.99), serverCPUMicrosecondsPerRequest: nil, errors: errors)
        }
    }
}
