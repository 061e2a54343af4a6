// Layer 7: Unix-domain stream sockets.

/// A connected Unix-domain stream socket.
public final class UnixStream: SocketStream {
    override var kindName: String { "UnixStream" }

    public override init(owning fd: Int32) { super.init(owning: fd) }

    /// Connects to the socket at `path`.
    public static func connect(path: String, timeout: Duration? = nil) throws -> UnixStream {
        let address = try SocketAddress(unixPath: path)
        let fd = try IO.socket(family: .unix)
        let stream = UnixStream(owning: fd)
        try IO.connect(fd, to: address, timeout: timeout)
        return stream
    }

    /// A connected pair (socketpair(2)).
    public static func pair() throws -> (UnixStream, UnixStream) {
        let (a, b) = try IO.socketpair()
        return (UnixStream(owning: a), UnixStream(owning: b))
    }
}
