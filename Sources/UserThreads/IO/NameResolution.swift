// Layer 9: host names to addresses with getaddrinfo, on the offload pool (it reads files and
// may query DNS, with no non-blocking form in glibc).
//
// Design essay
// ============
//
// A resolution is a `blocking(timeout:deadline:)` call: the calling user thread waits at most
// until the earlier of its timeout and deadline, or until it is cancelled, and then throws
// (`UThreadError.timedOut`, `CancellationError`) while getaddrinfo runs on to its end on its
// pool thread; the list it returns is freed inside the call and the addresses built from it
// are released with the abandoned job (OffloadPool.swift, "Abandoned calls"). Go's
// `net.Resolver` with a context does the same for its cgo resolver: the goroutine stops
// waiting, the C call finishes on its thread. A numeric host is parsed on the calling thread
// and never waits.
//
// Tests need a resolver they can hold (a real slow DNS server cannot be arranged
// deterministically on a test machine: resolv.conf, nscd and the network belong to the host).
// The seam is a parameter, not a global: `resolve(host:port:timeout:deadline:using:)` and
// `TCPStream.connect(host:port:timeout:deadline:using:)` take the function that resolves
// (internal; the public calls pass `resolveNow`, getaddrinfo), so parallel tests each inject
// their own without touching the process's name service.
//
// Rejected: glibc's getaddrinfo_a with gai_cancel. gai_cancel only removes a request that no
// helper thread has started (`EAI_NOTCANCELED` for one in progress, which is exactly the slow
// case), so it gives no more than the offload pool already does for a queued job; the requests
// run on glibc's own helper threads (a second thread pool beside ours, with its own limits that
// the runtime cannot see or count); its completion is a signal or a new thread per request
// (SIGEV_THREAD), both worse than the pool's eventfd mailbox; it lives in libanl (an extra
// library to link) and is glibc-only. A resolver of our own speaking DNS over the reactor's
// non-blocking sockets (Go's pure-Go resolver) would be truly cancellable, but would have to
// reimplement nsswitch (files, mDNS, LDAP, systemd-resolved) to give the answers getaddrinfo
// gives: far beyond the need.
import CUThreads
import Glibc

extension SocketAddress {
    /// The addresses of `host` (a name or a numeric address) for TCP, IPv4 and IPv6, in
    /// getaddrinfo's order. Runs on the offload pool unless `host` is numeric.
    ///
    /// The wait ends at `timeout`, at `deadline` (given both, the earlier wins) or when the
    /// thread is cancelled; getaddrinfo itself cannot be interrupted and finishes on its pool
    /// thread, where its answer is dropped (see ``blocking(timeout:deadline:_:)``).
    /// - Throws: `UThreadError.invalidArgument` naming the EAI error, or when `host` contains a
    ///   NUL byte; `UThreadError.timedOut`; `CancellationError`.
    public static func resolve(
        host: String, port: UInt16, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> [SocketAddress] {
        try resolve(host: host, port: port, timeout: timeout, deadline: deadline, using: resolveNow)
    }

    /// `resolve` with the function that resolves names on the pool (the tests' seam: essay above).
    static func resolve(
        host: String, port: UInt16, timeout: Duration?, deadline: ContinuousClock.Instant?,
        using resolver: @escaping @Sendable (String, UInt16) throws -> [SocketAddress]
    ) throws -> [SocketAddress] {
        try IO.checkNoNUL(host, "host")
        if let numeric = try? SocketAddress(host: host, port: port) { return [numeric] }
        return try blocking(timeout: timeout, deadline: deadline) { try resolver(host, port) }
    }

    /// getaddrinfo, on the calling kernel thread (blocks it).
    @Sendable static func resolveNow(host: String, port: UInt16) throws -> [SocketAddress] {
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
