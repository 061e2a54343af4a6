import Testing
import UserThreads
import UserThreadsHTTP

/// Runs `body` against an `HTTPServer` (configured by `configure`) on a fresh runtime, then
/// stops the server gracefully and returns what `body` returned.
func withHTTPServer<R>(
    _ configure: (inout HTTPServer) -> Void = { _ in },
    _ body: (SocketAddress) throws -> R
) throws -> R {
    try UThreadRuntime.run {
        let listener = try TCPListener(host: "127.0.0.1", port: 0)
        let stop = try HTTPServerStop()
        var server = HTTPServer(listener: listener)
        server.stop = stop
        server.shutdownGracePeriod = .seconds(2)
        configure(&server)
        let configured = server
        let thread = UThread(name: "server") { try configured.run() }
        defer {
            stop.stop()
            _ = try? thread.join()
        }
        return try body(listener.localAddress)
    }
}

@Suite(.timeLimit(.minutes(1))) struct HTTPServerTests {
    /// Sends `request`, closes the write side and reads the whole reply.
    func exchange(_ request: String, _ configure: (inout HTTPServer) -> Void = { _ in }) throws -> String {
        try withHTTPServer(configure) { address in
            let c = try TCPStream.connect(to: address)
            try c.write(all: request)
            try c.shutdownWrite()
            return String(decoding: try c.readToEnd(timeout: .seconds(10)), as: UTF8.self)
        }
    }

    @Test func keepAliveGetAndEcho() throws {
        let reply = try exchange(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcdGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        #expect(reply.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(reply.contains("Hello, World!\n"))
        #expect(reply.contains("Content-Length: 4\r\n\r\nabcd"))
        #expect(reply.contains("HTTP/1.1 404 Not Found"))
    }

    /// A page answers GET with its content type and body and HEAD with the same head; POST to it
    /// and targets without a page are 404.
    @Test func pagesAnswerGetAndHead() throws {
        let reply = try exchange(
            "GET /stats HTTP/1.1\r\nHost: a\r\n\r\nHEAD /stats HTTP/1.1\r\nHost: a\r\n\r\n"
                + "POST /stats HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /other HTTP/1.1\r\nHost: a\r\n\r\n"
        ) {
            $0.pages["/stats"] = { ("text/x-test", "figures\n") }
        }
        let page = "HTTP/1.1 200 OK\r\nContent-Type: text/x-test\r\nContent-Length: 8\r\n\r\n"
        #expect(reply.hasPrefix(page + "figures\n" + page + "HTTP/1.1 404 Not Found\r\n"), "\(reply)")
        #expect(reply.components(separatedBy: "HTTP/1.1 404 Not Found").count == 3, "\(reply)")
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
        let reply = try exchange(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
        #expect(reply.hasSuffix(body))
    }

    /// A body of exactly the parser's limit is echoed, also when head plus body exceed the
    /// largest power of two the read buffer used to stop at; one byte more is answered 413.
    @Test(arguments: [0, 1])
    func bodyLimitBoundary(over: Int) throws {
        let limit = HTTPRequestParser().maxBodyBytes
        let body = [UInt8](repeating: UInt8(ascii: "b"), count: limit + over)
        let head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let reply = try withHTTPServer { address in
            let c = try TCPStream.connect(to: address)
            let reader = UThread.local { try c.readToEnd(timeout: .seconds(20)) }  // reads while we write
            try c.write(all: head)
            try? c.write(all: body, timeout: .seconds(20))  // after a 413 the server drains, then closes
            try? c.shutdownWrite()
            return try reader.join()
        }
        if over == 0 {
            #expect(reply.starts(with: Array("HTTP/1.1 200 OK\r\n".utf8)))
            #expect(reply.count > body.count && reply.suffix(body.count).elementsEqual(body))
        } else {
            #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
        }
    }

    @Test func headHasGetsHeadWithoutBody() throws {
        let reply = try exchange(
            "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /nope HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        let hello = HTTPServer.response(status: 200, body: HTTPServer.helloBody, keepAlive: true)
        let helloHead = String(hello.prefix(hello.count - HTTPServer.helloBody.count))
        #expect(
            reply.hasPrefix(helloHead + "HTTP/1.1 404 Not Found\r\n"),
            "HEAD / has GET's head, Content-Length included, and no body")
        #expect(reply.contains("Content-Length: 10\r\n\r\nHTTP/1.1 200 OK"), "HEAD /nope has no body either")
        #expect(reply.hasSuffix("Connection: close\r\n\r\n" + HTTPServer.helloBody))
    }

    @Test func methodNotAllowedSaysWhatIs() throws {
        let reply = try exchange("DELETE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(reply.contains("Allow: GET, HEAD\r\n"))
    }

    /// The client sends a bad request and then much more input that the server never parses:
    /// closing with that input unread would reset the connection and could destroy the 400.
    @Test func lingeringCloseDeliversTheErrorReply() throws {
        let junk = [UInt8](repeating: UInt8(ascii: "j"), count: 512 * 1024)
        let reply = try withHTTPServer { address in
            let c = try TCPStream.connect(to: address)
            try c.write(all: "BAD\r\n\r\n")
            try c.write(all: junk, timeout: .seconds(10))  // the server drains it after its reply
            // No shutdown of our side: the server must not wait for end of input to close.
            return try c.readToEnd(timeout: .seconds(10))
        }
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    }
}
