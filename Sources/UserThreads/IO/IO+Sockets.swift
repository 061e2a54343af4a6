// Layer 9: socket calls — socket, bind/listen, accept, connect, send/recv and their variants.
import CUThreads
import Glibc
import SystemPackage

extension IO {
    /// A new non-blocking, close-on-exec socket. `type` is SOCK_STREAM (1) or SOCK_DGRAM (2).
    public static func socket(family: SocketAddress.Family, type: Int32 = 1) throws -> Int32 {
        let domain: Int32 =
            switch family {
            case .ipv4: AF_INET
            case .ipv6: AF_INET6
            case .unix: AF_UNIX
            }
        let fd = uthreads_socket(domain, type, 0)
        if fd < 0 { throw UThreadError.system(call: "socket", errno: .lastError) }
        forgetStale(fd)
        return fd
    }

    /// Binds `fd` (with SO_REUSEADDR for IP sockets) and listens.
    public static func listen(_ fd: Int32, on address: SocketAddress, backlog: Int32 = 1024) throws {
        if address.family != .unix {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        if rc < 0 { throw UThreadError.system(call: "bind", errno: .lastError) }
        if Glibc.listen(fd, backlog) < 0 { throw UThreadError.system(call: "listen", errno: .lastError) }
    }

    /// Accepts a connection (accept4 with SOCK_CLOEXEC | SOCK_NONBLOCK).
    public static func accept(_ fd: Int32, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws
        -> Int32
    {
        let c = Int32(
            try retrying("accept4", fd, .read, .accept, timeout: timeout, deadline: deadline) {
                Int(uthreads_accept(fd, nil, nil))
            })
        forgetStale(c)
        return c
    }

    /// Accepts a connection and returns it with the peer's address.
    public static func acceptWithAddress(
        _ fd: Int32, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> (
        fd: Int32, peer: SocketAddress
    ) {
        var c: Int32 = -1
        let peer = try SocketAddress.fill { addr, len in
            let saved = len.pointee
            c = Int32(
                try retrying("accept4", fd, .read, .accept, timeout: timeout, deadline: deadline) {
                    len.pointee = saved
                    return Int(uthreads_accept(fd, addr, len))
                })
        }
        forgetStale(c)
        return (c, peer)
    }

    /// Connects a non-blocking socket: starts the connect, parks until the socket is writable,
    /// then reads the outcome from SO_ERROR.
    /// - Throws: `.system(call: "connect", errno: …)` (ECONNREFUSED, ENETUNREACH…), `.timedOut`,
    ///   `CancellationError`.
    public static func connect(
        _ fd: Int32, to address: SocketAddress, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        let started = try address.withSockAddr { sa, len in
            try attempt("connect") { Int(Glibc.connect(fd, sa, len)) }
        }
        if case .processed = started { return }
        try waitFor(fd, .write, .connect, &pending)
        while true {
            let error = uthreads_socket_error(fd)
            if error < 0 { throw UThreadError.system(call: "getsockopt", errno: .lastError) }
            if error == 0 { return }
            if error == EINPROGRESS || error == EALREADY {
                try waitFor(fd, .write, .connect, &pending)
                continue
            }
            throw UThreadError.system(call: "connect", errno: Errno(rawValue: error))
        }
    }

    /// recv(2); returns 0 when the peer has shut down its side.
    public static func recv(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        try retrying("recv", fd, .read, .read, timeout: timeout, deadline: deadline) {
            uthreads_sys_recv(fd, buffer.baseAddress, buffer.count, flags)
        }
    }

    /// send(2) with MSG_NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE.
    public static func send(
        _ fd: Int32, from buffer: UnsafeRawBufferPointer, flags: Int32 = 0, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        let f = flags | Int32(UTHREADS_MSG_NOSIGNAL)
        return try retrying("send", fd, .write, .write, timeout: timeout, deadline: deadline) {
            uthreads_sys_send(fd, buffer.baseAddress, buffer.count, f)
        }
    }

    /// Sends all of `buffer` with send(2) (MSG_NOSIGNAL), waiting as often as needed; the
    /// timeout and deadline cover the whole call.
    public static func send(
        _ fd: Int32, all buffer: UnsafeRawBufferPointer, flags: Int32 = 0, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    )
        throws
    {
        let f = flags | Int32(UTHREADS_MSG_NOSIGNAL)
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        var offset = 0
        while offset < buffer.count {
            switch try attempt(
                "send", { uthreads_sys_send(fd, buffer.baseAddress! + offset, buffer.count - offset, f) })
            {
            case .processed(let n): offset += n
            case .wouldBlock: try waitFor(fd, .write, .write, &pending)
            }
        }
    }

    /// recvfrom(2): a datagram (or bytes) and the sender's address.
    public static func recvfrom(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0,
        timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> (count: Int, from: SocketAddress) {
        var n = 0
        let from = try SocketAddress.fill { addr, len in
            let saved = len.pointee
            n = try retrying("recvfrom", fd, .read, .read, timeout: timeout, deadline: deadline) {
                len.pointee = saved
                return Glibc.recvfrom(fd, buffer.baseAddress, buffer.count, flags, addr, len)
            }
        }
        return (n, from)
    }

    /// sendto(2) with MSG_NOSIGNAL.
    public static func sendto(
        _ fd: Int32, from buffer: UnsafeRawBufferPointer, to address: SocketAddress,
        flags: Int32 = 0, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        let f = flags | Int32(UTHREADS_MSG_NOSIGNAL)
        return try address.withSockAddr { sa, len in
            try retrying("sendto", fd, .write, .write, timeout: timeout, deadline: deadline) {
                Glibc.sendto(fd, buffer.baseAddress, buffer.count, f, sa, len)
            }
        }
    }

    /// recvmsg(2) (ancillary data, scatter buffers).
    public static func recvmsg(
        _ fd: Int32, _ message: UnsafeMutablePointer<msghdr>, flags: Int32 = 0, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        try retrying("recvmsg", fd, .read, .read, timeout: timeout, deadline: deadline) {
            Glibc.recvmsg(fd, message, flags)
        }
    }

    /// sendmsg(2) with MSG_NOSIGNAL.
    public static func sendmsg(
        _ fd: Int32, _ message: UnsafePointer<msghdr>, flags: Int32 = 0, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        let f = flags | Int32(UTHREADS_MSG_NOSIGNAL)
        return try retrying("sendmsg", fd, .write, .write, timeout: timeout, deadline: deadline) {
            Glibc.sendmsg(fd, message, f)
        }
    }

    /// A connected pair of non-blocking Unix-domain sockets (SOCK_STREAM by default).
    public static func socketpair(type: Int32 = 1) throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        if uthreads_socketpair(AF_UNIX, type, &fds) < 0 {
            throw UThreadError.system(call: "socketpair", errno: .lastError)
        }
        forgetStale(fds[0])
        forgetStale(fds[1])
        return (fds[0], fds[1])
    }

    /// A non-blocking pipe.
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        if uthreads_pipe(&fds) < 0 { throw UThreadError.system(call: "pipe2", errno: .lastError) }
        forgetStale(fds[0])
        forgetStale(fds[1])
        return (fds[0], fds[1])
    }

    /// Sets O_NONBLOCK on a descriptor made elsewhere, so the wrappers can wait on it.
    public static func setNonBlocking(_ fd: Int32, _ on: Bool = true) throws {
        if uthreads_set_nonblocking(fd, on ? 1 : 0) < 0 { throw UThreadError.system(call: "fcntl", errno: .lastError) }
    }

    /// Closes `fd`, first waking every user thread waiting on it with `UThreadError.closed`.
    ///
    /// Under M:N, threads may wait on `fd` on several workers. When no other worker watches it
    /// (the common case) it is closed at once, as under M:1. Otherwise the other workers are
    /// asked to wake their waiters with `.closed`, and the last of them to let go calls
    /// close(2) (meanwhile a new wait on `fd` throws `.closed` and a second `IO.close(fd)`
    /// throws EBADF; the number is not reused before that close(2), so no wake reaches another
    /// file's waiters). The calling thread parks until then, not cancellable (microseconds
    /// while those workers idle; until their running thread's next safe point otherwise), as
    /// Go's `FD.Close` waits for its last reference: when this returns the file is closed, the
    /// peer sees EOF, a listener's port is free, and close(2)'s error is thrown here. Like any
    /// call that may park, do not make it while holding a lock other threads of the worker
    /// take. The deinits of `DescriptorStream` and the listeners never park: they leave the
    /// close to the last watcher, which writes an error from close(2) to stderr. Called outside
    /// a runtime's workers (a `blocking {}` body, another kernel thread), it finds the waiters
    /// through the runtime's registry of descriptors and does not wait for a deferred close.
    /// - Throws: `.system(call: "close", errno: .badFileDescriptor)` for an invalid descriptor
    ///   (or one whose deferred close is pending); other close(2) errors.
    public static func close(_ fd: Int32) throws {
        try close(fd, waiting: true)
    }

    /// `close`, with `waiting: false` for deinits (see `close(_:)`).
    static func close(_ fd: Int32, waiting: Bool) throws {
        if let s = Scheduler.active, let r = Reactor.existing(s) { return try r.closeEverywhere(fd, waiting: waiting) }
        try DescriptorRegistry.closeOutsideWorkers(fd)  // EINTR counts as closed: fd is gone on Linux
    }

    /// shutdown(2): `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2).
    public static func shutdown(_ fd: Int32, how: Int32) throws {
        if Glibc.shutdown(fd, how) < 0 { throw UThreadError.system(call: "shutdown", errno: .lastError) }
    }

    @inline(__always)
    static func forgetStale(_ fd: Int32) {
        if let s = Scheduler.active, let r = Reactor.existing(s) { r.forget(fd) }
    }
}
