import Foundation
import Testing
import UserThreads
import UserThreadsHTTP

/// `uthreads serve` as a child process: SIGTERM stops it gracefully.
@Suite(.timeLimit(.minutes(1))) struct ServeCommandTests {
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

    /// A request whose body is still arriving when SIGTERM comes is finished (and says
    /// `Connection: close`), an idle keep-alive connection is closed at once, new connections are
    /// refused, and the process exits 0; with one worker and with two.
    @Test(arguments: [1, 2])
    func sigtermFinishesTheRequestInFlightAndExitsZero(workers: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ChildProcess.uthreadsPath)
        process.arguments = ["serve", "--port", "0", "--workers", "\(workers)", "--grace-period", "30"]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }  // a failed expectation must not leave it behind
        let lines = Lines(output.fileHandleForReading)
        let listening = try #require(lines.next(containing: "listening on http://127.0.0.1:"))
        let port = try #require(UInt16(listening.split(separator: ":")[3].prefix { $0.isNumber }))

        let (reply, idleReply, refused) = try UThreadRuntime.run {
            let idle = try TCPStream.connect(host: "127.0.0.1", port: port)
            try idle.write(all: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try idle.read(upTo: 4096, timeout: .seconds(10))  // answered: now idle, kept alive
            let busy = try TCPStream.connect(host: "127.0.0.1", port: port)
            try busy.write(all: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
            kill(process.processIdentifier, SIGTERM)
            _ = lines.next(containing: "stopping")  // the server began its stop (a blocking read: the server is another process)
            let idleReply = try idle.readToEnd(timeout: .seconds(10))
            try busy.write(all: "cde")
            let reply = String(decoding: try busy.readToEnd(timeout: .seconds(10)), as: UTF8.self)
            // Its `Connection: close` shows the stop reached that worker's server, which shut
            // the listener down in the same step.
            let refused = (try? TCPStream.connect(host: "127.0.0.1", port: port)) == nil
            return (reply, idleReply, refused)
        }
        process.waitUntilExit()
        _ = lines.next(containing: "\u{0}")  // the rest of the output
        #expect(reply.hasPrefix("HTTP/1.1 200 OK\r\n") && reply.hasSuffix("Connection: close\r\n\r\nabcde"), "\(reply)")
        #expect(idleReply.isEmpty, "the idle connection was closed without an answer")
        #expect(refused, "no connection is accepted after the stop began")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(lines.all)")
        #expect(lines.all.contains("uthreads serve: stopped\n"))
    }
}
