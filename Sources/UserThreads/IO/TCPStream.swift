// Layer 9: a TCP connection (IPv4 or IPv6).
import CUThreads
import Glibc

/// A connected TCP socket. Reads and writes park the calling user thread, not the kernel thread.
///
/// ```swift
/// let s = try TCPStream.connect(host: "127.0.0.1", port: 8080, timeout: .seconds(2))
/// try s.write(all: "ping\n")
/// let reply = try s.read(upTo: 100)
/// ```
public final class TCPStream: SocketStream {
    override var kindName: String { "TCPStream" }

    /// Wraps a connected, non-blocking TCP socket (e.g. from `IO.accept`).
    public override init(owning fd: Int32) { super.init(owning: fd) }

    /// Connects to `address`.
    /// - Throws: `.system(call: "connect", …)` (ECONNREFUSED…), `.timedOut`, `CancellationError`.
    public static func connect(
        to address: SocketAddress, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> TCPStream {
        let fd = try IO.socket(family: address.family)
        let stream = TCPStream(owning: fd)
        try IO.connect(fd, to: address, timeout: timeout, deadline: deadline)
        return stream
    }

    /// Resolves `host` (on the offload pool unless numeric) and connects to the first address
    /// that accepts; the timeout covers the resolution and each attempt, the deadline all of
    /// them. A resolution that times out or is cancelled is abandoned to the pool (see
    /// ``SocketAddress/resolve(host:port:timeout:deadline:)``).
    /// - Throws: `.system(call: "connect", …)` (the last attempt's error),
    ///   `UThreadError.invalidArgument` (no such host), `.timedOut`, `CancellationError`.
    public static func connect(
        host: String, port: UInt16, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> TCPStream {
        try connect(host: host, port: port, timeout: timeout, deadline: deadline, using: SocketAddress.resolveNow)
    }

    /// `connect(host:…)` with the function that resolves names (the tests' seam:
    /// NameResolution.swift).
    static func connect(
        host: String, port: UInt16, timeout: Duration?, deadline: ContinuousClock.Instant?,
        using resolver: @escaping @Sendable (String, UInt16) throws -> [SocketAddress]
    ) throws -> TCPStream {
        var lastError: any Error = UThreadError.invalidArgument("no address for \(host)")
        let addresses = try SocketAddress.resolve(
            host: host, port: port, timeout: timeout, deadline: deadline, using: resolver)
        for address in addresses {
            do { return try connect(to: address, timeout: timeout, deadline: deadline) } catch { lastError = error }
        }
        throw lastError
    }

    /// Sets TCP_NODELAY (send small writes at once).
    public func setNoDelay(_ on: Bool = true) throws {
        var v: Int32 = on ? 1 : 0
        if setsockopt(try openDescriptor(), Int32(IPPROTO_TCP), TCP_NODELAY, &v, socklen_t(MemoryLayout<Int32>.size))
            < 0
        {
            throw UThreadError.system(call: "setsockopt", errno: .lastError)
        }
    }
}
