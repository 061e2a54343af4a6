// Layer 9: host names to addresses with getaddrinfo, on the offload pool (it reads files and
// may query DNS, with no non-blocking form in glibc).
import CUThreads
import Glibc

extension SocketAddress {
    /// The addresses of `host` (a name or a numeric address) for TCP, IPv4 and IPv6, in
    /// getaddrinfo's order. Runs on the offload pool.
    /// - Throws: `UThreadError.invalidArgument` naming the EAI error, or when `host` contains a
    ///   NUL byte.
    public static func resolve(host: String, port: UInt16) throws -> [SocketAddress] {
        try IO.checkNoNUL(host, "host")
        if let numeric = try? SocketAddress(host: host, port: port) { return [numeric] }
        return try blocking { try resolveNow(host: host, port: port) }
    }

    static func resolveNow(host: String, port: UInt16) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(UTHREADS_SOCK_STREAM)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        if rc != 0 {
            let message = String(cString: gai_strerror(rc))
            throw UThreadError.invalidArgument("getaddrinfo(\(host)): \(message)")
        }
        defer { freeaddrinfo(list) }
        var result: [SocketAddress] = []
        var p = list
        while let ai = p {
            if let addr = ai.pointee.ai_addr {
                let a = SocketAddress(raw: addr, length: Int(ai.pointee.ai_addrlen))
                if !result.contains(a) { result.append(a) }
            }
            p = ai.pointee.ai_next
        }
        return result
    }
}
