// Layer 9: a listening TCP socket (IPv4 or IPv6).
import Glibc

/// A TCP listener. `accept()` parks the calling user thread until a connection arrives; several
/// threads may accept on one listener.
public final class TCPListener: CustomStringConvertible {
    /// The listening socket's descriptor (non-blocking, close-on-exec), or -1 once `close()` ran.
    /// Closed when the listener is released.
    public private(set) var fileDescriptor: Int32
    /// The bound address (with the port the kernel chose when binding port 0).
    public let localAddress: SocketAddress
    /// False for a borrowed descriptor (`init(borrowing:)`): deinit and close leave it open.
    private var owns = true

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

    /// A second listener object for a listening socket owned elsewhere (it does not close it):
    /// for M:N servers, where each worker accepts on the same descriptor with its own reactor.
    public init(borrowing fd: Int32) throws {
        localAddress = try SocketAddress.fill { a, l in
            if getsockname(fd, a, l) < 0 { throw UThreadError.system(call: "getsockname", errno: .lastError) }
        }
        fileDescriptor = fd
        owns = false
    }

    /// Binds and listens on a numeric host ("127.0.0.1", "::1", "0.0.0.0") and port (0: any).
    public convenience init(host: String = "127.0.0.1", port: UInt16, backlog: Int32 = 1024) throws {
        try self.init(bindingTo: SocketAddress(host: host, port: port), backlog: backlog)
    }

    deinit {
        if fileDescriptor >= 0 && owns { try? IO.close(fileDescriptor, waiting: false) }  // a deinit never parks
    }

    /// The bound port.
    public var port: UInt16 { localAddress.port }

    /// Waits for and returns the next connection.
    /// - Throws: `.closed` if the listener is closed meanwhile, `.timedOut`, `CancellationError`,
    ///   `.system(call: "accept4", …)` (EMFILE when out of descriptors).
    public func accept(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> TCPStream {
        guard fileDescriptor >= 0 else { throw UThreadError.closed("TCPListener is closed") }
        return TCPStream(owning: try IO.accept(fileDescriptor, timeout: timeout, deadline: deadline))
    }

    /// Stops listening; threads blocked in `accept` throw `UThreadError.closed`.
    public func close() throws {
        let fd = fileDescriptor
        guard fd >= 0 else { return }
        fileDescriptor = -1
        if owns { try IO.close(fd) }
    }

    public var description: String { "TCPListener(\(localAddress))" }
}
