import Glibc
import Testing
import UserThreads
import UserThreadsHTTP

/// Deadlines a slow client cannot extend, and the connection cap (short deadlines: 300 ms).
@Suite(.timeLimit(.minutes(1))) struct HTTPServerLimitsTests {
    /// A slowloris client (one byte every 50 ms of a head that never ends) is closed by the
    /// head deadline although every read succeeds, while a fresh client is answered meanwhile.
    @Test func slowHeadIsClosedByTheHeadDeadline() throws {
        let (sent, reply, fresh) = try withHTTPServer({ $0.headTimeout = .milliseconds(300) }) { address in
            let slow = try TCPStream.connect(to: address)
            let reader = UThread.local { try slow.readToEnd(timeout: .seconds(20)) }
            var sent = 0
            let drip = "GET / HTTP/1.1\r\nX-Slow: " + String(repeating: "a", count: 400)
            for byte in drip.utf8 where !reader.isFinished {  // 20 s at most: the server must close first
                guard (try? slow.write(all: [byte])) != nil else { break }
                sent += 1
                if sent == 2 {
                    let c = try TCPStream.connect(to: address)
                    try c.write(all: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                    let answer = try c.readToEnd(timeout: .seconds(10))
                    #expect(String(decoding: answer, as: UTF8.self).hasSuffix(HTTPServer.helloBody))
                }
                try UThread.sleep(for: .milliseconds(50))
            }
            let reply = (try? reader.join()) ?? []
            return (sent, String(decoding: reply, as: UTF8.self), true)
        }
        #expect(fresh)
        #expect(sent >= 3, "bytes kept arriving, 50 ms apart, each read succeeding")
        #expect(sent < 400, "the server closed the connection before the head was complete")
        #expect(reply.isEmpty || reply.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
    }

    /// A client that connects and sends nothing is closed by the first head's deadline.
    @Test func silentConnectionIsClosed() throws {
        let reply = try withHTTPServer({ $0.headTimeout = .milliseconds(300) }) { address in
            let c = try TCPStream.connect(to: address)
            return try c.readToEnd(timeout: .seconds(20))
        }
        #expect(reply.isEmpty)
    }

    /// A kept-alive connection with no new request is closed by the idle timeout.
    @Test func idleKeepAliveIsClosed() throws {
        let reply = try withHTTPServer({ $0.idleTimeout = .milliseconds(300) }) { address in
            let c = try TCPStream.connect(to: address)
            try c.write(all: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            return try c.readToEnd(timeout: .seconds(20))
        }
        #expect(String(decoding: reply, as: UTF8.self).hasSuffix(HTTPServer.helloBody), "one answer, then the close")
    }

    /// A body that trickles in is cut by the body deadline with a 408.
    @Test func slowBodyGets408() throws {
        let reply = try withHTTPServer({ $0.bodyTimeout = .milliseconds(300) }) { address in
            let c = try TCPStream.connect(to: address)
            try c.write(all: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
            return try c.readToEnd(timeout: .seconds(20))
        }
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
    }

    /// A client that asks for a large response and never reads it is closed by the write
    /// deadline: `serve` returns although the client still holds its end.
    @Test func stalledReaderIsClosedByTheWriteDeadline() throws {
        try UThreadRuntime.run {
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let client = try TCPStream.connect(to: listener.localAddress)
            let accepted = try listener.accept()
            var server = HTTPServer(listener: listener)
            server.writeTimeout = .milliseconds(300)
            server.headTimeout = nil  // only the write deadline can end the connection
            server.bodyTimeout = nil
            server.idleTimeout = nil
            // Small socket buffers: the 1 MiB response cannot fit in them.
            var small: Int32 = 4096
            setsockopt(client.fileDescriptor, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(accepted.fileDescriptor, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            let body = [UInt8](repeating: 0x41, count: 1 << 20)
            let writer = UThread.local {
                try client.write(all: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n")
                try client.write(all: body, timeout: .seconds(20))
            }
            let serving = UThread.local { server.serve(accepted) }
            try writer.join()
            try serving.join()  // returns: the response could not be written within 300 ms
            #expect(accepted.isClosed)
            try client.close()
        }
    }

    /// At the cap the server stops accepting; a connection waiting in the backlog is served as
    /// soon as one of the open ones ends.
    @Test(arguments: [1, 2])
    func capHoldsNewConnectionsUntilOneEnds(cap: Int) throws {
        try withHTTPServer({ $0.maxConnections = cap }) { address in
            var open: [TCPStream] = []
            for _ in 0..<cap {  // each is answered: it has been accepted
                let c = try TCPStream.connect(to: address)
                try c.write(all: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(
                    String(decoding: try c.read(upTo: 4096, timeout: .seconds(10)), as: UTF8.self).hasSuffix(
                        HTTPServer.helloBody))
                open.append(c)
            }
            let waiting = try TCPStream.connect(to: address)  // completes in the kernel's backlog
            try waiting.write(all: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            #expect(throws: UThreadError.timedOut) { _ = try waiting.read(upTo: 4096, timeout: .milliseconds(200)) }
            try open.removeFirst().close()
            let reply = try waiting.readToEnd(timeout: .seconds(10))
            #expect(String(decoding: reply, as: UTF8.self).hasSuffix(HTTPServer.helloBody))
        }
    }
}
