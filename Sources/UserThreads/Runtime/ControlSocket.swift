// Layer 7: the live view's server — a runtime's thread table on a Unix socket (opt-in:
// `Configuration.controlSocket`), read by `uthreads top`.
//
// A dedicated kernel thread accepts connections, one at a time. A client sends one line,
// "table" or "dump", and receives JSON (a ThreadTable or a ThreadDump), then the connection
// closes. The server thread never touches the thread table: it asks the scheduler through a
// SnapshotChannel and blocks until the scheduler answers at its next safe point. While a
// control socket is configured the idle loop wakes at least every 10 ms to look, since a
// request cannot interrupt its sleep; a thread that computes for a long time without yielding
// delays the answer, as it delays every other thread.
import CUThreads
import Glibc
import SystemPackage

final class ControlSocketServer: @unchecked Sendable {
    /// How often an idle runtime looks for requests.
    static let idleWakeNanoseconds: UInt64 = 10_000_000

    let path: String
    private let listener: Int32
    private let channel: SnapshotChannel
    private var thread: pthread_t?

    /// Listens at `path` ("%p" becomes the process id) and starts the server thread.
    /// - Throws: a message naming the path and the errno.
    init(path template: String, channel: SnapshotChannel) throws(UThreadError) {
        path = ControlSocketServer.expand(template)
        let fd = uthreads_unix_listen(path)
        guard fd >= 0 else { throw .invalidConfiguration("controlSocket \(path): cannot listen (errno \(-fd))") }
        listener = fd
        self.channel = channel
        var t = pthread_t()
        let retained = Unmanaged.passRetained(self).toOpaque()
        let e = pthread_create(&t, nil, { arg in
            let server = Unmanaged<ControlSocketServer>.fromOpaque(arg!).takeRetainedValue()
            server.serve()
            return nil
        }, retained)
        guard e == 0 else {
            Unmanaged<ControlSocketServer>.fromOpaque(retained).release()
            close(fd)
            unlink(path)
            throw .invalidConfiguration("controlSocket \(path): cannot start its thread (errno \(e))")
        }
        thread = t
    }

    /// "%p" in a socket path stands for the process id.
    static func expand(_ template: String) -> String {
        template.replacingOccurrences(of: "%p", with: "\(getpid())")
    }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // shut down by stop()
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            respond(client)
            close(client)
        }
    }

    private func respond(_ client: Int32) {
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 256)
        while request.count < 256 && !request.contains(UInt8(ascii: "\n")) {
            let n = read(client, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            request += buffer[0..<n]
        }
        let line = String(decoding: request.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
        let response = (channel.ask(line.isEmpty ? "table" : line) ?? "{\"error\":\"the runtime has ended\"}") + "\n"
        var bytes = Array(response.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Stops accepting, answers a waiting client, joins the thread and removes the socket.
    func stop() {
        channel.close()
        shutdown(listener, Int32(SHUT_RDWR))  // wakes accept() with an error
        if let thread { pthread_join(thread, nil) }
        close(listener)
        unlink(path)
    }
}

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }

    func trimmingCharacters(in _: Whitespace) -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }

    enum Whitespace { case whitespaces }
}

extension UThreadRuntime {
    /// Sends one request line ("table" or "dump") to a runtime's control socket (see
    /// `Configuration.controlSocket`) and returns the JSON answer. A plain blocking client, for
    /// tools on ordinary kernel threads (`uthreads top`), not for user threads.
    ///
    /// - Parameters:
    ///   - path: the socket's path.
    ///   - request: "table" or "dump".
    /// - Returns: the answer's bytes (JSON).
    /// - Throws: `UThreadError.system` naming the call that failed (connect, write, read).
    public static func queryControlSocket(_ path: String, request: String = "table") throws -> [UInt8] {
        let fd = uthreads_unix_connect(path)
        guard fd >= 0 else { throw UThreadError.system(call: "connect(\(path))", errno: Errno(rawValue: -fd)) }
        defer { Glibc.close(fd) }
        let line = Array((request + "\n").utf8)
        var sent = 0
        while sent < line.count {
            let n = line[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw UThreadError.system(call: "write", errno: .lastError) }
            sent += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw UThreadError.system(call: "read", errno: .lastError) }
            if n == 0 { break }
            answer.append(contentsOf: buffer[0..<n])
        }
        return answer
    }
}
