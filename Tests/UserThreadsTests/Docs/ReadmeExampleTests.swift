import Testing
import UserThreads

/// The README's examples, compiled and run (with a bounded accept loop instead of `while true`).
@Suite(.timeLimit(.minutes(1))) struct ReadmeExampleTests {
    @Test func tasteOfTheAPI() throws {
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

    @Test func echoServerFromTheReadme() throws {
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
}
