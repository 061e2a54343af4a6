import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct HTTPServerTests {
    func exchange(_ request: String) throws -> String {
        try UThreadRuntime.run {
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let server = UThread { try HTTPServer(listener: listener).run() }
            let c = try TCPStream.connect(to: listener.localAddress)
            try c.write(all: request)
            try c.shutdownWrite()
            let reply = try c.readToEnd(timeout: .seconds(5))
            server.cancel()
            _ = try? server.join()
            return String(decoding: reply, as: UTF8.self)
        }
    }

    @Test func keepAliveGetAndEcho() throws {
        let reply = try exchange("GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcdGET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(reply.contains("Hello, World!\n"))
        #expect(reply.contains("Content-Length: 4\r\n\r\nabcd"))
        #expect(reply.contains("HTTP/1.1 404 Not Found"))
    }

    @Test func malformedGets400AndClose() throws {
        let reply = try exchange("BLAH\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(!reply.contains("Hello"))
    }

    @Test func oversizedBodyGets413() throws {
        let reply = try exchange("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 413"))
    }

    @Test func largeEchoBody() throws {
        let body = String(repeating: "z", count: 300_000)
        let reply = try exchange("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
        #expect(reply.hasSuffix(body))
    }
}
