// Layer 9: a listening Unix-domain socket.
import Glibc

/// A Unix-domain listener bound to a path (an existing socket file there is replaced).
public final class UnixListener: CustomStringConvertible {
    /// The listening socket's descriptor (non-blocking, close-on-exec), or -1 once `close()` ran.
    /// Closed when the listener is released.
    public private(set) var fileDescriptor: Int32
    /// The filesystem path the socket is bound to; `close()` removes the socket file there.
    public let path: String

    /// Binds a Unix-domain stream socket to `path` and listens on it. An existing socket file at
    /// `path` is unlinked first, so a socket left behind by an earlier run is replaced; any other
    /// kind of file there is left alone (bind then fails with EADDRINUSE).
    ///
    /// - Parameters:
    ///   - path: the socket file's path (at most 107 bytes).
    ///   - backlog: the listen(2) backlog: connections the kernel queues before `accept` takes them.
    /// - Throws: `UThreadError.invalidArgument` if `path` is empty, too long or contains a NUL
    ///   byte; `UThreadError.system` if socket(2), bind(2) or listen(2) fails (e.g. EACCES,
    ///   ENOENT for a missing directory, EADDRINUSE for a file at `path` that is not a socket).
    public init(path: String, backlog: Int32 = 1024) throws {
        let address = try SocketAddress(unixPath: path)
        UnixListener.removeSocketFile(path)
        let fd = try IO.socket(family: .unix)
        do { try IO.listen(fd, on: address, backlog: backlog) } catch {
            try? IO.close(fd)
            throw error
        }
        fileDescriptor = fd
        self.path = path
    }

    deinit {
        if fileDescriptor >= 0 { try? IO.close(fileDescriptor, waiting: false) }  // a deinit never parks
    }

    /// Waits for and returns the next connection.
    public func accept(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> UnixStream {
        guard fileDescriptor >= 0 else { throw UThreadError.closed("UnixListener is closed") }
        return UnixStream(owning: try IO.accept(fileDescriptor, timeout: timeout, deadline: deadline))
    }

    /// Removes the file at `path` if it is a socket, and nothing else: a listener's path that
    /// names a regular file by mistake must not delete it.
    static func removeSocketFile(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
    }

    /// Stops listening and removes the socket file; blocked `accept`s throw `.closed`.
    public func close() throws {
        let fd = fileDescriptor
        guard fd >= 0 else { return }
        fileDescriptor = -1
        UnixListener.removeSocketFile(path)
        try IO.close(fd)
    }

    public var description: String { "UnixListener(\(path))" }
}
