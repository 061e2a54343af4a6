// Layer 8: a small HTTP/1.1 server — one user thread per connection, straight-line code.
//
// Each connection is a loop a kernel-thread server would write: read, parse, respond, repeat.
// `read` parks the user thread on EAGAIN, so ten thousand idle keep-alive connections are ten
// thousand parked threads and one epoll set, costing no CPU. Routes: `GET /` returns a fixed
// hello body, `POST /echo` echoes the body; other targets 404, other methods 405. Parse errors
// are answered (400, 413, 431, 501) and the connection is closed; nothing a client sends can
// crash the server.
import Glibc

/// A small HTTP/1.1 server: one user thread per connection, each running a plain read–parse–
/// respond loop that parks on a read with no data, so idle keep-alive connections cost no CPU.
///
/// Routes: `GET /` answers `helloBody`, `POST /echo` echoes the request body; other targets are
/// 404 and other methods on those two are 405. Parse errors are answered (400, 413, 431, 501)
/// and the connection is closed. `run()` and `serve(_:)` must be called on a user thread of a
/// running `UThreadRuntime`.
public struct HTTPServer {
    /// The body that `GET /` answers with ("Hello, World!" and a newline).
    public static let helloBody = "Hello, World!\n"

    /// The listening socket `run()` accepts connections from.
    public let listener: TCPListener
    /// The request parser and its limits. `init(listener:)` turns off `recordsHeaders`, since the
    /// server only needs Content-Length, Connection and Host. The parser's head and body limits
    /// also bound how far a connection's read buffer grows.
    public var parser = HTTPRequestParser()
    /// Stack bytes of a connection thread (the handler is shallow).
    public var connectionStackSize = 64 * 1024
    /// Bytes of a connection's first read buffer.
    public var initialBufferSize = 1024
    /// A connection idle this long between requests is closed (nil: never).
    public var idleTimeout: Duration? = nil
    /// Each answer is sent this long after its request (a slow backend, for demonstrations:
    /// `uthreads demo jacket`); nil: at once.
    public var responseDelay: Duration? = nil

    /// A server accepting connections on `listener`, with the default parser limits, 64 KiB
    /// connection stacks and no idle timeout. Nothing is accepted until `run()` is called.
    public init(listener: TCPListener) {
        self.listener = listener
        parser.recordsHeaders = false
    }

    /// Accepts connections forever (until the listener is closed or the thread is cancelled),
    /// one user thread each.
    public func run() throws {
        while true {
            let connection: TCPStream
            do {
                connection = try listener.accept()
            } catch UThreadError.system(_, let e) where e == .tooManyOpenFiles || e == .noBufferSpace || e == .connectionAbort {
                try UThread.sleep(for: .milliseconds(5))  // out of descriptors: let connections finish
                continue
            }
            let server = self
            _ = UThread(name: "http", stackSize: connectionStackSize) {
                server.serve(connection)
            }
        }
    }

    /// Serves one connection until the client closes it or an error ends it.
    public func serve(_ connection: TCPStream) {
        defer { try? connection.close() }
        // Starts small (a GET fits; it doubles up to the parser's limits): an idle keep-alive
        // connection's memory is this buffer plus the touched part of its stack.
        var buffer = [UInt8](repeating: 0, count: initialBufferSize)
        var filled = 0
        while true {
            let result = buffer.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[0..<filled])) }
            switch result {
            case .request(let request, let consumed):
                let ok: Bool = buffer.withUnsafeBytes { b in
                    let body = UnsafeRawBufferPointer(rebasing: b[request.headLength..<consumed])
                    return (try? respond(to: request, body: body, on: connection)) != nil
                }
                if !ok || !request.keepAlive { return }
                if consumed < filled {
                    buffer.withUnsafeMutableBytes { b in
                        b.baseAddress!.copyMemory(from: b.baseAddress! + consumed, byteCount: filled - consumed)
                    }
                }
                filled -= consumed
                continue
            case .error(let status):
                try? connection.write(all: HTTPServer.response(status: status, body: HTTPServer.reason(status) + "\n", keepAlive: false))
                return
            case .needMore:
                break
            }
            if filled == buffer.count {
                let wanted = buffer.count * 2
                if wanted > parser.maxHeadBytes + parser.maxBodyBytes + 4096 { return }
                buffer.append(contentsOf: repeatElement(0, count: wanted - buffer.count))
            }
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { b in
                    try connection.read(into: UnsafeMutableRawBufferPointer(rebasing: b[filled...]), timeout: idleTimeout)
                }
            } catch {
                return  // reset, timeout, cancellation: the connection ends
            }
            if n == 0 { return }
            filled += n
        }
    }

    private static let helloKeepAlive = Array(response(status: 200, body: helloBody, keepAlive: true).utf8)
    private static let helloClose = Array(response(status: 200, body: helloBody, keepAlive: false).utf8)

    func respond(to request: HTTPRequest, body: UnsafeRawBufferPointer, on connection: TCPStream) throws {
        if let responseDelay { try UThread.sleep(for: responseDelay) }
        switch (request.method, request.target) {
        case ("GET", "/"):
            try connection.write(all: request.keepAlive ? HTTPServer.helloKeepAlive : HTTPServer.helloClose)
        case ("POST", "/echo"):
            var head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\n"
            head += request.keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
            var bytes = Array(head.utf8)
            bytes.append(contentsOf: body)
            try connection.write(all: bytes)
        case (_, "/"), (_, "/echo"):
            try connection.write(all: HTTPServer.response(status: 405, body: "Method Not Allowed\n", keepAlive: request.keepAlive))
        default:
            try connection.write(all: HTTPServer.response(status: 404, body: "Not Found\n", keepAlive: request.keepAlive))
        }
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
        "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + (keepAlive ? "" : "Connection: close\r\n") + "\r\n" + body
    }

    /// The reason phrase of `status` for the codes this server sends (200, 400, 404, 405, 413,
    /// 431, 501); "Error" for any other code. Also used as the body of error responses.
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        default: "Error"
        }
    }
}

extension IO {
    /// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
