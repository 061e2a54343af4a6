// Layer 11: the live view's server — a runtime's thread table on a Unix socket (opt-in:
// `Configuration.controlSocket`), read by `uthreads top`.
//
// A client sends one line, "table" or "dump", and receives JSON (a ThreadTable or a
// ThreadDump), then the connection closes. A dedicated kernel thread serves every client at
// once with one poll(2) loop over non-blocking sockets: the listener, each client, and a stop
// eventfd. Each client has a read deadline (for its request line) and then a write deadline
// (for the whole answer); a client that misses one is closed. So a client that connects and
// sends nothing, or asks and never reads, costs one descriptor until its deadline and blocks
// nobody; `stop()` rings the stop eventfd, and the loop closes every client and ends at once
// (the join waits for the loop, never for a client).
//
// Out of descriptors. When `accept` fails with EMFILE, ENFILE, ENOBUFS or ENOMEM the connection
// stays in the backlog, so the listener stays readable and poll would return at once forever (a
// busy loop at 100% CPU). The loop then stops polling the listener for `acceptPauseNanoseconds`
// (100 ms, as Go's net/http sleeps after such errors) and writes one line to stderr the first
// time it happens; it keeps serving the clients it has.
//
// One slow answer. Answers are produced inline (simple, and bounded by `answerTimeoutNanoseconds`),
// so the loop may be busy for up to that long while other clients' deadlines pass. A deadline
// therefore never closes a client before the loop has tried it once more: a client whose
// deadline passed gets a non-blocking step first, so a request line that arrived in time (while
// the loop was answering someone else) is answered, and the write deadline counts from the moment
// its answer is ready. A client that really sent nothing, or reads nothing, is still closed.
//
// The server never touches a thread table: it gets answers through `answer`, which it calls on
// its own thread and which is bounded (M:1: the scheduler answers through a SnapshotChannel at
// its next safe point, at most `answerTimeoutNanoseconds` later; M:N: every worker is asked
// through its mailbox, MNThreadTable.swift, for as long). `answer` also returns early when the
// stop eventfd it is given becomes readable. A request rings an idle runtime's bell (M:1: its
// inbox, ForeignCancels.swift; M:N: each worker's mailbox), so an idle runtime answers at once;
// a thread that computes for a long time without yielding delays the answer, as it delays every
// other thread.
//
// The answer's deadline is a hang guard (a runtime that never reaches a safe point), not a
// service level: 5 s, as long as a client's read and write deadlines and half of
// `queryControlSocket`'s default, so a client still hears why (`noAnswer`: a thread runs without
// reaching a safe point, or the runtime has ended; not only the latter).
//
// Rejected designs:
//   * A 1 s answer deadline: a runtime on a loaded machine (the test suite on 2 shared cores,
//     ThreadSanitizer) sometimes answered later, and its client got an error instead of the table.
//   * One client at a time with blocking reads and writes (the first version): a client that
//     sent nothing blocked every later query, and `stop()`, joining the thread, blocked the
//     runtime's `run` from returning.
//   * A user thread per client inside the runtime: the acceptor would be a thread waiting for
//     I/O forever, so the deadlock check would never fire while a socket is configured, and
//     the server's own threads would show in the table it serves.
//   * A kernel thread per client: unbounded threads for a diagnostic port; the loop is small.
import CUThreads
import Glibc
import SystemPackage

final class ControlSocketServer: @unchecked Sendable {
    /// Default deadlines: for the request line after the connection is accepted, and for the
    /// whole answer after the request.
    static let readTimeoutNanoseconds: UInt64 = 5_000_000_000
    static let writeTimeoutNanoseconds: UInt64 = 5_000_000_000
    /// How long `answer` may take (the scheduler's next safe point; see the essay).
    static let answerTimeoutNanoseconds: UInt64 = 5_000_000_000
    /// The answer to a request the runtime did not answer in time (`answer` returned nil).
    static let noAnswer =
        "{\"error\":\"no answer from the runtime within \(answerTimeoutNanoseconds / 1_000_000_000) s: "
        + "a thread runs without reaching a safe point, or the runtime has ended\"}"
    /// How long the listener is left alone after `accept` failed for lack of descriptors or memory.
    static let acceptPauseNanoseconds: UInt64 = 100_000_000
    /// Clients served at once; further connections wait in the listen backlog.
    static let maximumClients = 64
    /// A request line is at most this long.
    static let maximumRequest = 256

    let path: String
    private let listener: Int32
    private let stopBell: Int32
    private let answer: @Sendable (_ request: String, _ stop: Int32) -> String?
    private let readTimeout: UInt64
    private let writeTimeout: UInt64
    private var thread: pthread_t?
    /// Until when the listener is not polled (the loop's thread only; see the essay).
    private var acceptPausedUntil: UInt64 = 0
    /// Whether the pause was reported on stderr (once per server).
    private var reportedAcceptPause = false

    private struct Client {
        let fd: Int32
        var request: [UInt8] = []
        /// Nil while reading the request.
        var response: ArraySlice<UInt8>?
        var deadline: UInt64
    }

    /// Listens at `path` ("%p" becomes the process id) and starts the server thread.
    /// `answer(request, stop)` turns a request line into the JSON answer (nil: the runtime has
    /// ended); it must return when `stop` becomes readable.
    /// - Throws: a message naming the path and the errno.
    init(
        path template: String,
        readTimeoutNanoseconds: UInt64 = ControlSocketServer.readTimeoutNanoseconds,
        writeTimeoutNanoseconds: UInt64 = ControlSocketServer.writeTimeoutNanoseconds,
        answer: @escaping @Sendable (_ request: String, _ stop: Int32) -> String?
    ) throws(UThreadError) {
        path = ControlSocketServer.expand(template)
        readTimeout = readTimeoutNanoseconds
        writeTimeout = writeTimeoutNanoseconds
        self.answer = answer
        let fd = uthreads_unix_listen(path)
        guard fd >= 0 else { throw .invalidConfiguration("controlSocket \(path): cannot listen (errno \(-fd))") }
        let bell = uthreads_eventfd_create()
        guard bell >= 0 else {
            let e = errno
            close(fd)
            unlink(path)
            throw .invalidConfiguration("controlSocket \(path): no eventfd (errno \(e))")
        }
        _ = uthreads_set_nonblocking(fd, 1)
        listener = fd
        stopBell = bell
        var t = pthread_t()
        let retained = Unmanaged.passRetained(self).toOpaque()
        let e = pthread_create(
            &t, nil,
            { arg in
                let server = Unmanaged<ControlSocketServer>.fromOpaque(arg!).takeRetainedValue()
                server.serve()
                return nil
            }, retained)
        guard e == 0 else {
            Unmanaged<ControlSocketServer>.fromOpaque(retained).release()
            close(fd)
            unlink(path)  // not close(bell): every property is set, so the throw runs deinit, which closes it
            throw .invalidConfiguration("controlSocket \(path): cannot start its thread (errno \(e))")
        }
        thread = t
    }

    deinit { close(stopBell) }

    /// "%p" in a socket path stands for the process id.
    static func expand(_ template: String) -> String {
        template.replacingOccurrences(of: "%p", with: "\(getpid())")
    }

    /// The loop (see the essay). Ends when the stop eventfd is readable.
    private func serve() {
        var clients: [Client] = []
        defer { for c in clients { close(c.fd) } }
        while true {
            let now = uthreads_monotonic_ns()
            let accepting = clients.count < Self.maximumClients && acceptPausedUntil <= now
            var fds = [
                pollfd(fd: stopBell, events: Int16(POLLIN), revents: 0),
                pollfd(fd: accepting ? listener : -1, events: Int16(POLLIN), revents: 0),
            ]
            for c in clients {
                fds.append(pollfd(fd: c.fd, events: Int16(c.response == nil ? POLLIN : POLLOUT), revents: 0))
            }
            let next = (clients.map(\.deadline) + (acceptPausedUntil > now ? [acceptPausedUntil] : [])).min()
            let timeout = next.map { Int32(clamping: ($0 &- min($0, now) + 999_999) / 1_000_000) } ?? -1
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 && errno != EINTR { return }  // cannot happen with valid descriptors
            if fds[0].revents != 0 { return }
            if fds[1].revents != 0 { acceptClients(&clients) }
            var open: [Client] = []
            let after = uthreads_monotonic_ns()
            for (i, var c) in clients.enumerated() {
                let ready = i + 2 < fds.count && fds[i + 2].fd == c.fd && fds[i + 2].revents != 0
                // Past its deadline, one more non-blocking step first (see the essay): a
                // completed request resets the deadline.
                if ((ready || c.deadline <= after) && !step(&c)) || c.deadline <= after {
                    close(c.fd)
                    continue
                }
                open.append(c)
            }
            clients = open
        }
    }

    private func acceptClients(_ clients: inout [Client]) {
        while clients.count < Self.maximumClients {
            let fd = uthreads_accept(listener, nil, nil)
            if fd < 0 {
                let e = errno
                if e == EINTR || e == ECONNABORTED { continue }
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM { pauseAccepting(errno: e) }
                return  // EAGAIN: no more
            }
            clients.append(Client(fd: fd, deadline: uthreads_monotonic_ns() &+ readTimeout))
        }
    }

    /// Leaves the listener alone for a while: its pending connection cannot be taken now.
    private func pauseAccepting(errno e: Int32) {
        acceptPausedUntil = uthreads_monotonic_ns() &+ Self.acceptPauseNanoseconds
        guard !reportedAcceptPause else { return }
        reportedAcceptPause = true
        uthreads_write_stderr(
            "UserThreads: control socket \(path): accept failed (errno \(e)); "
                + "pausing \(Self.acceptPauseNanoseconds / 1_000_000) ms between attempts\n")
    }

    /// Reads or writes what the socket takes now; false when the client is done (answered,
    /// closed by its peer, or failed).
    private func step(_ c: inout Client) -> Bool {
        if c.response == nil {
            var buffer = [UInt8](repeating: 0, count: Self.maximumRequest)
            let n = read(c.fd, &buffer, Self.maximumRequest - c.request.count)
            if n < 0 { return errno == EINTR || errno == EAGAIN }
            if n == 0 && c.request.isEmpty { return false }  // closed without asking
            c.request += buffer[0..<n]
            let complete = n == 0 || c.request.contains(UInt8(ascii: "\n")) || c.request.count >= Self.maximumRequest
            guard complete else { return true }
            let line = String(decoding: c.request.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
                .trimmingCharacters(in: .whitespaces)
            let text =
                (answer(line.isEmpty ? "table" : line, stopBell) ?? Self.noAnswer) + "\n"
            c.response = Array(text.utf8)[...]
            c.deadline = uthreads_monotonic_ns() &+ writeTimeout
        }
        while var rest = c.response, !rest.isEmpty {
            let n = rest.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(UTHREADS_MSG_NOSIGNAL)) }
            if n < 0 { return errno == EINTR || errno == EAGAIN }
            rest = rest.dropFirst(n)
            c.response = rest
        }
        return false  // all written
    }

    /// Stops serving: wakes the loop, which closes every client at once; then joins the thread
    /// (bounded: the loop never waits for a client) and removes the socket.
    func stop() {
        _ = uthreads_eventfd_signal(stopBell)
        if let thread { pthread_join(thread, nil) }
        thread = nil
        close(listener)
        unlink(path)
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }

    fileprivate func trimmingCharacters(in _: Whitespace) -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }

    fileprivate enum Whitespace { case whitespaces }
}

extension UThreadRuntime {
    /// Sends one request line ("table" or "dump") to a runtime's control socket (see
    /// `Configuration.controlSocket`) and returns the JSON answer. A plain client for tools on
    /// ordinary kernel threads (`uthreads top`), not for user threads: it blocks the calling
    /// kernel thread, for at most `timeout` (a process that is stopped, or a socket nobody
    /// serves, would otherwise hold it forever).
    ///
    /// - Parameters:
    ///   - path: the socket's path.
    ///   - request: "table" or "dump".
    ///   - timeout: how long the whole exchange may take (zero or less: one look).
    /// - Returns: the answer's bytes (JSON).
    /// - Throws: `UThreadError.timedOut` when the answer is not complete in time;
    ///   `UThreadError.system` naming the call that failed (connect, write, read, poll).
    public static func queryControlSocket(
        _ path: String, request: String = "table",
        timeout: Duration = .seconds(10)
    ) throws -> [UInt8] {
        let fd = uthreads_unix_connect(path)
        guard fd >= 0 else { throw UThreadError.system(call: "connect(\(path))", errno: Errno(rawValue: -fd)) }
        defer { uthreads_sys_close(fd) }
        let start = uthreads_monotonic_ns()
        let deadline = Deadline.after(timeout, now: start) ?? .max  // past or zero: due at once
        /// Waits until `fd` is ready for `events`, or throws at the deadline.
        func ready(_ events: Int32) throws {
            while true {
                let now = uthreads_monotonic_ns()
                var p = pollfd(fd: fd, events: Int16(events), revents: 0)
                let n = poll(&p, 1, Int32(clamping: (deadline &- min(deadline, now) + 999_999) / 1_000_000))
                if n > 0 { return }
                if n < 0 && errno != EINTR { throw UThreadError.system(call: "poll", errno: .lastError) }
                if n == 0 && uthreads_monotonic_ns() >= deadline { throw UThreadError.timedOut }
            }
        }
        let line = Array((request + "\n").utf8)
        var sent = 0
        while sent < line.count {
            try ready(POLLOUT)
            let n = line[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw UThreadError.system(call: "write", errno: .lastError) }
            sent += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            try ready(POLLIN)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw UThreadError.system(call: "read", errno: .lastError) }
            if n == 0 { break }
            answer.append(contentsOf: buffer[0..<n])
        }
        return answer
    }
}
