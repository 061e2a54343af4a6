// Layer 14: a small HTTP/1.1 server — one user thread per connection, straight-line code.
//
// Design essay
// ============
//
// Each connection is a loop a kernel-thread server would write: read, parse, respond, repeat.
// `read` parks the user thread on EAGAIN, so ten thousand idle keep-alive connections are ten
// thousand parked threads and one epoll set, costing no CPU. Routes: `GET /` (and `HEAD /`)
// answers a fixed hello body, `POST /echo` echoes the body; `pages` adds GET targets (the
// `/metrics` of `uthreads serve --metrics`); other targets 404, other methods 405. Parse errors are answered (400, 413, 431, 501); nothing a client sends can crash it.
//
// Hostile clients. A thread per connection is cheap, but a connection also holds a descriptor,
// so every phase of a connection has a bound that the client cannot stretch:
//
//   phase                         bound (default)               after it
//   first byte of a new request   idleTimeout (75 s, nginx's     close, nothing sent
//                                 keepalive_timeout)
//   the rest of the head          headTimeout (30 s, nginx's     408, close
//                                 client_header_timeout)
//   the body                      bodyTimeout (60 s)             408, close
//   writing one response          writeTimeout (60 s, nginx's    close
//                                 send_timeout)
//
// Each is a *deadline for the whole phase*, not a timeout per read: a client that sends one
// byte a second (slowloris) is closed when the head's deadline passes, however many reads
// succeed before it. The first request's head deadline starts at accept (as nginx and Go's
// ReadHeaderTimeout do), so a connection that never sends anything is closed by it too.
// Rejected: a timeout per read (what this server had: one byte a second kept a connection
// forever) and a deadline for the whole connection (it would cut long-lived keep-alive
// connections that behave).
//
// Capacity. `maxConnections` caps live connections per `run()`: at the cap the acceptor stops
// calling accept(2) (new connections wait in the kernel's backlog: back-pressure instead of
// EMFILE) and resumes when one ends. Accept errors never end the loop: ECONNABORTED and EPROTO
// (the peer gave up in the backlog) are retried at once; EMFILE, ENFILE, ENOMEM and ENOBUFS
// are logged and retried after a back-off that doubles from 5 ms to 1 s (Go's net/http), since
// only a connection ending frees the resource.
//
// Errors and lingering close. After an error reply the server shuts down its write side and
// reads (and drops) what the client still sends, for at most `lingerTimeout` and 1 MiB, before
// closing (nginx's lingering_close; Go's closeWriteAndWait). Closing a socket with unread
// input makes the kernel send a reset, and a reset can destroy the reply before the client
// reads it. The same drain follows a response that closes the connection while pipelined input
// is unread.
//
// Body limit. The read buffer grows (doubling from `initialBufferSize`) up to the largest
// request the parser accepts, `maxHeadBytes + maxBodyBytes`; a request of exactly that size is
// answered. (It used to stop at a power of two below that and reset the connection.)
//
// Graceful stop. `stop` (an `HTTPServerStop`, shared by the servers on one listener) or a
// listener shut down or closed by someone else ends the accept loop; idle keep-alive
// connections are cancelled at once, others close after their response (`Connection: close`), and `run()`
// waits up to `shutdownGracePeriod` for them before cancelling the rest (Go's Server.Shutdown;
// nginx's graceful quit).
import Glibc
import Logging
import UserThreads

/// A small HTTP/1.1 server: one user thread per connection, each running a plain read–parse–
/// respond loop that parks on a read with no data, so idle keep-alive connections cost no CPU.
///
/// Routes: `GET /` answers `helloBody` (`HEAD /` the same head without the body), `POST /echo`
/// echoes the request body; `pages` answers the GET targets it has; other targets are 404 and
/// other methods on `/` and `/echo` are 405.
/// Parse errors are answered (400, 413, 431, 501), then the connection is closed after a
/// lingering drain. Every phase of a connection has a deadline the client cannot extend
/// (`headTimeout`, `bodyTimeout`, `idleTimeout`, `writeTimeout`), live connections are capped
/// (`maxConnections`), and `stop` ends `run()` gracefully. `run()` and `serve(_:)` must be
/// called on a user thread of a running `UThreadRuntime`.
public struct HTTPServer {
    /// The body that `GET /` answers with ("Hello, World!" and a newline).
    public static let helloBody = "Hello, World!\n"

    /// The listening socket `run()` accepts connections from.
    public let listener: TCPListener
    /// The request parser and its limits. `init(listener:)` turns off `recordsHeaders`, since the
    /// server only needs Content-Length, Connection and Host. The parser's head and body limits
    /// also bound how far a connection's read buffer grows (`maxHeadBytes + maxBodyBytes`).
    public var parser = HTTPRequestParser()
    /// Stack bytes of a connection thread (the handler is shallow).
    public var connectionStackSize = 64 * 1024
    /// Bytes of a connection's first read buffer.
    public var initialBufferSize = 1024
    /// Deadline for a whole request head (request line and header fields), from accept for the
    /// first request and from its first byte for later ones; then 408 and close. nil: none.
    public var headTimeout: Duration? = .seconds(30)
    /// Deadline for a whole request body, from the end of its head; then 408 and close. nil: none.
    public var bodyTimeout: Duration? = .seconds(60)
    /// A kept-alive connection that sends no new request this long is closed. nil: never.
    public var idleTimeout: Duration? = .seconds(75)
    /// Deadline for writing one whole response; a client that stops reading is closed. nil: none.
    public var writeTimeout: Duration? = .seconds(60)
    /// How long, at most, input is drained after an error reply before the close (lingering close).
    public var lingerTimeout: Duration = .seconds(5)
    /// Live connections at most per `run()`; at the cap the server stops accepting until one ends.
    public var maxConnections = 10_000
    /// After a stop, how long requests in flight may take before their connections are cancelled.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// The graceful-stop request `run()` watches (nil: it runs until the listener is closed or
    /// shut down, or its thread is cancelled).
    public var stop: HTTPServerStop?
    /// Each answer is sent this long after its request (a slow backend, for demonstrations:
    /// `uthreads demo jacket`); nil: at once.
    public var responseDelay: Duration? = nil
    /// Where accept errors and stops are reported.
    public var logger = Logger(label: "uthreads.http")
    /// More `GET` (and `HEAD`) targets, each answered 200 with the content type and body its
    /// closure returns, called on the connection's thread for every request (`uthreads serve
    /// --metrics` adds `/metrics`). Looked up only for targets the built-in routes do not know.
    public var pages: [String: @Sendable () -> (contentType: String, body: String)] = [:]

    /// A server accepting connections on `listener`, with the default parser limits and
    /// timeouts, 64 KiB connection stacks and no stop request. Nothing is accepted until
    /// `run()` is called.
    public init(listener: TCPListener) {
        self.listener = listener
        parser.recordsHeaders = false
    }

    /// Accepts connections, one user thread each, until `stop` is requested or the listener is
    /// closed or shut down (then it stops gracefully: see `shutdownGracePeriod`) or the calling
    /// thread is cancelled. The connection threads share the server's bookkeeping with the
    /// caller (`UThread.local`): with several workers, call it from a pinned thread (one
    /// acceptor per worker: `UThread.spawn(onWorker:)`). Accept errors caused by the peer or by a lack of descriptors or
    /// memory are logged and retried, never fatal.
    /// - Returns: how many connections the grace period cut off (0 for a clean stop).
    /// - Throws: `CancellationError` when the calling thread is cancelled; an unexpected
    ///   accept error (e.g. `.system(call: "accept4", errno: .badFileDescriptor)`).
    @discardableResult
    public func run() throws -> Int {
        let connections = HTTPConnectionSet()
        let logger = logger
        let watcher = stop.map { stop in
            UThread.local(name: "http stop watcher") {
                do {
                    try stop.wait()
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("stop watcher: \(error); this server can no longer be stopped gracefully")
                    throw error
                }
                connections.beginStop()
                _ = try? IO.shutdown(listener.fileDescriptor, how: Int32(SHUT_RD))  // wakes every acceptor
            }
        }
        defer { if let watcher, !watcher.isFinished { watcher.cancel() } }
        // Let the watcher start its wait before the first accept: a wait that comes later may
        // need a descriptor (the reactor's epoll, made at the first wait) when accepting has
        // used them all (EMFILE), and then it fails.
        if watcher != nil { UThread.yield() }
        var backoff: Duration = .zero
        accepting: while try connections.waitForRoom(below: max(1, maxConnections)) {
            let connection: TCPStream
            do {
                connection = try listener.accept()
                backoff = .zero
            } catch UThreadError.system(_, let e) {
                switch e {
                case .connectionAbort, .protocolError, .notPermitted:
                    continue  // the peer is gone (or a firewall refused it): the next one
                case .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noMemory, .noBufferSpace:
                    backoff = backoff == .zero ? .milliseconds(5) : min(backoff * 2, .seconds(1))
                    logger.warning("accept: \(e); retrying in \(backoff) with \(connections.count) connections open")
                    try UThread.sleep(for: backoff)
                    continue
                case .invalidArgument, .badFileDescriptor:
                    break accepting  // the listener was shut down or closed
                default:
                    throw UThreadError.system(call: "accept4", errno: e)
                }
            } catch UThreadError.closed {
                break accepting
            }
            let (id, entry) = connections.add()
            let server = self
            let thread = UThread.local(name: "http", stackSize: connectionStackSize) {
                defer { connections.remove(id) }
                server.serve(connection, entry: entry, in: connections)
            }
            if !thread.isFinished { entry.thread = thread.handle }
        }
        let cut = connections.drain(grace: shutdownGracePeriod)
        if cut > 0 {
            logger.warning("stop: the grace period ended with \(cut) connections still busy; they were cancelled")
        }
        return cut
    }

    /// Serves one connection until the client closes it, an error or a deadline ends it.
    public func serve(_ connection: TCPStream) {
        serve(connection, entry: nil, in: nil)
    }

    /// The deadline of one phase of a connection, as the time left for calls that take `timeout:`.
    struct PhaseDeadline {
        let end: ContinuousClock.Instant?

        init(_ duration: Duration?) {
            // Beyond ~136 years means "no deadline" (and keeps `now + duration` from overflowing).
            if let d = duration, d < .seconds(1 << 32) { end = .now + max(d, .zero) } else { end = nil }
        }

        /// The time left (nil: no deadline). - Throws: `UThreadError.timedOut` once it passed.
        func remaining() throws -> Duration? {
            guard let end else { return nil }
            let left = end - .now
            if left <= .zero { throw UThreadError.timedOut }
            return left
        }
    }

    func serve(_ connection: TCPStream, entry: HTTPConnectionSet.Entry?, in connections: HTTPConnectionSet?) {
        defer { try? connection.close() }
        // Starts small (a GET fits; it doubles up to the largest request the parser accepts):
        // an idle keep-alive connection's memory is this buffer plus the touched part of its stack.
        let capacity = parser.maxHeadBytes + parser.maxBodyBytes
        var buffer = [UInt8](repeating: 0, count: min(initialBufferSize, capacity))
        var filled = 0
        var served = 0
        var head = PhaseDeadline(headTimeout)  // the first request's head: from accept
        var body = PhaseDeadline(nil)
        var headEnd = -1  // where the buffered request's head ends, once known
        while true {
            let result = buffer.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[0..<filled])) }
            switch result {
            case .request(let request, let consumed):
                let keepAlive = request.keepAlive && !(connections?.stopping ?? false)
                let ok: Bool = buffer.withUnsafeBytes { b in
                    let requestBody = UnsafeRawBufferPointer(rebasing: b[request.headLength..<consumed])
                    return (try? respond(to: request, body: requestBody, keepAlive: keepAlive, on: connection)) != nil
                }
                served += 1
                if !ok { return }
                if !keepAlive {
                    if filled > consumed { lingeringClose(connection) }  // unread pipelined input
                    return
                }
                if consumed < filled {
                    buffer.withUnsafeMutableBytes { b in
                        b.baseAddress!.copyMemory(from: b.baseAddress! + consumed, byteCount: filled - consumed)
                    }
                }
                filled -= consumed
                if buffer.count > initialBufferSize && filled <= initialBufferSize {
                    buffer.removeSubrange(max(initialBufferSize, filled)...)  // a large body's buffer goes
                }
                headEnd = -1
                if filled > 0 { head = PhaseDeadline(headTimeout) }  // a pipelined request's head: from now
                continue
            case .error(let status):
                reply(status: status, on: connection)
                return
            case .needMore:
                break
            }
            if headEnd < 0, let end = findHeadEnd(buffer, filled) {
                headEnd = end
                body = PhaseDeadline(bodyTimeout)
            }
            if filled == buffer.count {
                // The parser answers every request of `capacity` bytes or fewer, so a full
                // buffer of that size cannot need more; answer rather than reset if it did.
                guard buffer.count < capacity else {
                    reply(status: 413, on: connection)
                    return
                }
                buffer.append(contentsOf: repeatElement(0, count: min(buffer.count * 2, capacity) - buffer.count))
            }
            let waitingForRequest = filled == 0
            let idle = waitingForRequest && served > 0
            let timeout: Duration?
            do {
                // The idle wait is one read: its timeout is the deadline (no clock read here).
                if idle, let t = idleTimeout, t <= .zero { return }
                timeout =
                    idle
                    ? idleTimeout.flatMap { $0 < .seconds(1 << 32) ? $0 : nil }
                    : try (headEnd < 0 ? head : body).remaining()
            } catch {
                if !waitingForRequest { reply(status: 408, on: connection, linger: false) }
                return
            }
            if idle, let entry, let connections {
                connections.becameIdle(entry)
                if connections.stopping { return }
            }
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { b in
                    try connection.read(into: UnsafeMutableRawBufferPointer(rebasing: b[filled...]), timeout: timeout)
                }
            } catch UThreadError.timedOut {
                // Nothing sent yet: a quiet close (as Go and nginx do for an idle connection);
                // a partial request: 408, without lingering (the client is slow on purpose).
                if !waitingForRequest { reply(status: 408, on: connection, linger: false) }
                return
            } catch {
                return  // reset, cancellation (a stop): the connection ends
            }
            entry?.idle = false
            if n == 0 { return }
            if idle { head = PhaseDeadline(headTimeout) }  // from its first byte
            filled += n
        }
    }

    /// Where the head ends in the first `filled` bytes (just past its blank line), if it does
    /// within the parser's head limit.
    private func findHeadEnd(_ buffer: [UInt8], _ filled: Int) -> Int? {
        let limit = min(filled, parser.maxHeadBytes)
        guard limit >= 4 else { return nil }
        for i in 0...(limit - 4)
        where buffer[i] == 0x0D && buffer[i + 1] == 0x0A && buffer[i + 2] == 0x0D && buffer[i + 3] == 0x0A {
            return i + 4
        }
        return nil
    }

    /// Answers `status` with `Connection: close`, then closes after a lingering drain (or at once).
    private func reply(status: Int, on connection: TCPStream, linger: Bool = true) {
        let text = HTTPServer.response(status: status, body: HTTPServer.reason(status) + "\n", keepAlive: false)
        let timeout = linger ? writeTimeout : min(writeTimeout ?? .seconds(1), .seconds(1))
        guard (try? connection.write(all: text, timeout: timeout)) != nil else { return }
        if linger { lingeringClose(connection) }
    }

    /// Shuts down the write side, then reads and drops input until end of stream, `lingerTimeout`
    /// or 1 MiB, so that closing does not reset the connection before the client read the reply.
    private func lingeringClose(_ connection: TCPStream) {
        guard (try? connection.shutdownWrite()) != nil else { return }
        let deadline = PhaseDeadline(lingerTimeout)
        var scratch = [UInt8](repeating: 0, count: 16 * 1024)
        var drained = 0
        while drained < 1 << 20 {
            guard let left = try? deadline.remaining(),
                let n = try? scratch.withUnsafeMutableBytes({ try connection.read(into: $0, timeout: left) }),
                n > 0
            else { return }
            drained += n
        }
    }

    private static let helloKeepAlive = Array(response(status: 200, body: helloBody, keepAlive: true).utf8)
    private static let helloClose = Array(response(status: 200, body: helloBody, keepAlive: false).utf8)

    func respond(to request: HTTPRequest, body: UnsafeRawBufferPointer, keepAlive: Bool, on connection: TCPStream)
        throws
    {
        if let responseDelay { try UThread.sleep(for: responseDelay) }
        let isHead = request.method == "HEAD"
        switch (request.method, request.target) {
        case ("GET", "/"), ("HEAD", "/"):
            let bytes = keepAlive ? HTTPServer.helloKeepAlive : HTTPServer.helloClose
            let count = isHead ? bytes.count - HTTPServer.helloBody.utf8.count : bytes.count
            try bytes.withUnsafeBytes {
                try connection.write(all: UnsafeRawBufferPointer(rebasing: $0[..<count]), timeout: writeTimeout)
            }
        case ("POST", "/echo"):
            var head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\n"
            head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
            var bytes = Array(head.utf8)
            bytes.append(contentsOf: body)
            try connection.write(all: bytes, timeout: writeTimeout)
        case (_, "/"), (_, "/echo"):
            let allow = request.target == "/" ? "GET, HEAD" : "POST"
            try write(
                HTTPServer.response(
                    status: 405, body: "Method Not Allowed\n", keepAlive: keepAlive, extraHeaders: "Allow: \(allow)\r\n"
                ),
                omittingBody: isHead, on: connection)
        case ("GET", _), ("HEAD", _):
            guard let page = pages[request.target] else { fallthrough }
            let (contentType, text) = page()
            try write(
                HTTPServer.response(status: 200, body: text, keepAlive: keepAlive, contentType: contentType),
                omittingBody: isHead, on: connection)
        default:
            try write(
                HTTPServer.response(status: 404, body: "Not Found\n", keepAlive: keepAlive), omittingBody: isHead,
                on: connection)
        }
    }

    /// Writes a response, or only its head for a HEAD request (same Content-Length, as net/http).
    private func write(_ response: String, omittingBody: Bool, on connection: TCPStream) throws {
        var text = response
        if omittingBody, let end = text.utf8.firstRange(of: "\r\n\r\n".utf8) {
            text = String(text[..<end.upperBound])
        }
        try connection.write(all: text, timeout: writeTimeout)
    }

    /// A complete HTTP/1.1 response as text: status line with `reason(_:)`, `Content-Type:
    /// text/plain; charset=utf-8` (the hello response is then byte for byte as long as SwiftNIO's
    /// and Go's in the peer benchmarks, Go's `Date` header aside), `Content-Length` (the UTF-8 byte count of `body`), `Connection: close` when
    /// `keepAlive` is false, the blank line, then `body`.
    ///
    /// - Parameters:
    ///   - status: the status code (e.g. 200, 404).
    ///   - body: the response body.
    ///   - keepAlive: whether the connection stays open; false adds `Connection: close`.
    public static func response(status: Int, body: String, keepAlive: Bool) -> String {
        response(status: status, body: body, keepAlive: keepAlive, extraHeaders: "")
    }

    static func response(
        status: Int, body: String, keepAlive: Bool, extraHeaders: String = "",
        contentType: String = "text/plain; charset=utf-8"
    ) -> String {
        "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + extraHeaders + (keepAlive ? "" : "Connection: close\r\n") + "\r\n" + body
    }

    /// The reason phrase of `status` for the codes this server sends (200, 400, 404, 405, 408,
    /// 413, 431, 501); "Error" for any other code. Also used as the body of error responses.
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        default: "Error"
        }
    }
}
