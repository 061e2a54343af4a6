// Layer 9: Unix-domain stream sockets.

/// A connected Unix-domain stream socket.
public final class UnixStream: SocketStream {
    override var kindName: String { "UnixStream" }

    /// Wraps `fd`, a connected Unix-domain stream socket, which this object then owns: it is closed
    /// by `close()` or when the object is released.
    ///
    /// Precondition: `fd` is non-blocking (`IO.accept`, `IO.socketpair()` and `connect(path:timeout:deadline:)`
    /// make it so; use `IO.setNonBlocking(_:_:)` for a descriptor made elsewhere), otherwise a read
    /// with no data blocks the whole kernel thread instead of parking the user thread.
    public override init(owning fd: Int32) { super.init(owning: fd) }

    /// Connects to the socket at `path`.
    public static func connect(path: String, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws
        -> UnixStream
    {
        let address = try SocketAddress(unixPath: path)
        let fd = try IO.socket(family: .unix)
        let stream = UnixStream(owning: fd)
        try IO.connect(fd, to: address, timeout: timeout, deadline: deadline)
        return stream
    }

    /// A connected pair (socketpair(2)).
    public static func pair() throws -> (UnixStream, UnixStream) {
        let (a, b) = try IO.socketpair()
        return (UnixStream(owning: a), UnixStream(owning: b))
    }
}
