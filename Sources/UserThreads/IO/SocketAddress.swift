// Layer 9: socket addresses — IPv4, IPv6 and Unix-domain — as one value type.
import CUThreads
import Glibc

/// An address a socket can bind or connect to.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// Raw bytes of the sockaddr (sockaddr_in, sockaddr_in6 or sockaddr_un).
    private var bytes: [UInt8]

    /// The kind of address, which is also the socket domain used with it.
    public enum Family: Sendable {
        /// An IPv4 address and port (AF_INET, sockaddr_in).
        case ipv4
        /// An IPv6 address and port (AF_INET6, sockaddr_in6).
        case ipv6
        /// A Unix-domain socket path (AF_UNIX, sockaddr_un).
        case unix
    }

    /// From raw sockaddr bytes (as returned by accept or getaddrinfo).
    init(raw: UnsafeRawPointer, length: Int) {
        bytes = Array(UnsafeRawBufferPointer(start: raw, count: length))
    }

    /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1") and a port. Names are not resolved
    /// here: use `SocketAddress.resolve(host:port:)`.
    /// - Throws: `UThreadError.invalidArgument` when `host` is not a numeric address (or
    ///   contains a NUL byte).
    public init(host: String, port: UInt16) throws {
        try IO.checkNoNUL(host, "host")
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr = v4
            self.init(raw: &sa, length: MemoryLayout<sockaddr_in>.size)
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            sa.sin6_addr = v6
            self.init(raw: &sa, length: MemoryLayout<sockaddr_in6>.size)
            return
        }
        throw UThreadError.invalidArgument("'\(host)' is not a numeric IPv4 or IPv6 address")
    }

    /// A Unix-domain socket path (1...107 bytes).
    /// - Throws: `UThreadError.invalidArgument` when `path` is empty (bind would pick an abstract
    ///   address of its own), too long, or contains a NUL byte.
    public init(unixPath path: String) throws {
        guard !path.isEmpty else { throw UThreadError.invalidArgument("unix socket path is empty") }
        try IO.checkNoNUL(path, "unix socket path")
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        let utf8 = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: sa.sun_path)
        guard utf8.count < capacity else {
            throw UThreadError.invalidArgument("unix socket path is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &sa.sun_path) { p in
            for (i, b) in utf8.enumerated() { p[i] = b }
        }
        self.init(raw: &sa, length: MemoryLayout<sockaddr_un>.size)
    }

    /// The address family, read from the stored sockaddr's `sa_family` (anything other than
    /// AF_INET or AF_INET6 reads as `.unix`). Decides the socket domain when binding or connecting.
    public var family: Family {
        switch Int32(familyRaw) {
        case AF_INET: .ipv4
        case AF_INET6: .ipv6
        default: .unix
        }
    }

    var familyRaw: sa_family_t {
        bytes.withUnsafeBytes { $0.load(as: sa_family_t.self) }
    }

    /// The port of an IP address (0 for Unix-domain ones).
    public var port: UInt16 {
        switch family {
        case .ipv4: bytes.withUnsafeBytes { UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port) }
        case .ipv6: bytes.withUnsafeBytes { UInt16(bigEndian: $0.loadUnaligned(as: sockaddr_in6.self).sin6_port) }
        case .unix: 0
        }
    }

    /// "127.0.0.1:8080", "[::1]:8080" or "unix:/path".
    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch family {
        case .ipv4:
            var a = bytes.withUnsafeBytes { $0.load(as: sockaddr_in.self).sin_addr }
            inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
            return "\(SocketAddress.string(text)):\(port)"
        case .ipv6:
            var a = bytes.withUnsafeBytes { $0.loadUnaligned(as: sockaddr_in6.self).sin6_addr }
            inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
            return "[\(SocketAddress.string(text))]:\(port)"
        case .unix:
            let path = bytes.count > 2 ? bytes[2...].prefix { $0 != 0 } : []
            return "unix:" + String(decoding: path, as: UTF8.self)
        }
    }

    private static func string(_ c: [CChar]) -> String {
        String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Calls `body` with the sockaddr pointer and its length.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes {
            try body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
    }

    /// Reads an address filled in by the kernel into a sockaddr_storage.
    static func fill(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) throws -> Void) rethrows
        -> SocketAddress
    {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try withUnsafeMutablePointer(to: &storage) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, &length) }
        }
        return withUnsafeBytes(of: &storage) { SocketAddress(raw: $0.baseAddress!, length: Int(length)) }
    }
}
