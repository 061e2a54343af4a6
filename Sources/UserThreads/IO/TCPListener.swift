// Layer 7: a listening TCP socket (IPv4 or IPv6).
import Glibc

/// A TCP listener. `accept()` parks the calling user thread until a connection arrives; several
/// threads may accept on one listener.
public final class TCPListener: CustomStringConvertible {
    /// The listening socket's descriptor (non-blocking, close-on-exec), or -1 once `close()` ran.
    /// Closed when the listener is released.
    public private(set) var fileDescriptor: Int32
    /// The bound address (with the port the kernel chose when binding port 0).
    public let localAddress: SocketAddress

    /// Binds and listens on `address` (SO_REUSEADDR).
    public init(bindingTo address: SocketAddress, backlog: Int32 = 1024) throws {
        let fd = try IO.socket(family: address.family)
        do {
            try IO.listen(fd, on: address, backlog: backlog)
            localAddress = try SocketAddress.fill { a, l in
                if getsockname(fd, a, l) < 0 { throw UThreadError.system(call: "getsockname", errno: .lastError) }
            }
        } catch {
            try? IO.close(fd)
            throw error
        }
        fileDescriptor = fd
    }

    /// Binds and listens on a numeric host ("127.0.0.1", "::1", "0.0.0.0") and port (0: any).
    public convenience init(host: String = "127.0.0.1", port: UInt16, backlog: Int32 = 1024) throws {
        try self.init(bindingTo: SocketAddress(host: host, port: port), backlog: backlog)
    }

    deinit {
        if fileDescriptor >= 0 { try? IO.close(fileDescriptor) }
    }

    /// The bound port.
    public var port: UInt16 { localAddress.port }

    /// Waits for and returns the next connection.
    /// - Throws: `.closed` if the listener is closed meanwhile, `.timedOut`, `CancellationError`,
    ///   `.system(call: "accept4", …)` (EMFILE when out of descriptors).
    public func accept(timeout: Duration? = nil) throws -> TCPStream {
        guard fileDescriptor >= 0 else { throw UThreadError.closed("TCPListener is closed") }
        return TCPStream(owning: try IO.accept(fileDescriptor, timeout: timeout))
    }

    /// Stops listening; threads blocked in `accept` throw `UThreadError.closed`.
    public func close() throws {
        let fd = fileDescriptor
        guard fd >= 0 else { return }
        fileDescriptor = -1
        try IO.close(fd)
    }

    public var description: String { "TCPListener(\(localAddress))" }
}
