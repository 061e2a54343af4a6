// Layer 7: a listening Unix-domain socket.
import Glibc

/// A Unix-domain listener bound to a path (an existing socket file there is replaced).
public final class UnixListener: CustomStringConvertible {
    public private(set) var fileDescriptor: Int32
    public let path: String

    public init(path: String, backlog: Int32 = 1024) throws {
        let address = try SocketAddress(unixPath: path)
        unlink(path)
        let fd = try IO.socket(family: .unix)
        do { try IO.listen(fd, on: address, backlog: backlog) } catch {
            try? IO.close(fd)
            throw error
        }
        fileDescriptor = fd
        self.path = path
    }

    deinit {
        if fileDescriptor >= 0 { try? IO.close(fileDescriptor) }
    }

    /// Waits for and returns the next connection.
    public func accept(timeout: Duration? = nil) throws -> UnixStream {
        guard fileDescriptor >= 0 else { throw UThreadError.closed("UnixListener is closed") }
        return UnixStream(owning: try IO.accept(fileDescriptor, timeout: timeout))
    }

    /// Stops listening and removes the socket file; blocked `accept`s throw `.closed`.
    public func close() throws {
        let fd = fileDescriptor
        guard fd >= 0 else { return }
        fileDescriptor = -1
        unlink(path)
        try IO.close(fd)
    }

    public var description: String { "UnixListener(\(path))" }
}
