import Glibc
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct TCPTests {
    @Test func thousandConcurrentLoopbackClients() throws {
        let limit = IO.raiseDescriptorLimit()
        let clients = min(1000, (limit - 64) / 2)
        #expect(clients >= 1000, "RLIMIT_NOFILE hard limit \(limit) is too low for the test")
        let served = try UThreadRuntime.run {
            let listener = try TCPListener(host: "127.0.0.1", port: 0, backlog: 4096)
            var connected = 0
            var allConnected = WaitFlag()
            let server = UThread.local(name: "accept") { () throws -> Int in
                var handlers: [UThread<Void>] = []
                for _ in 0..<clients {
                    let c = try listener.accept()
                    handlers.append(
                        UThread.local(stackSize: 64 * 1024) {
                            defer { try? c.close() }
                            let bytes = try c.read(upTo: 64)
                            try c.write(all: bytes.reversed())
                        })
                }
                for h in handlers { try h.join() }
                return handlers.count
            }
            let threads = (0..<clients).map { i in
                UThread.local(stackSize: 64 * 1024) { () throws -> Bool in
                    let s = try TCPStream.connect(to: listener.localAddress, timeout: .seconds(10))
                    defer { try? s.close() }
                    connected += 1
                    if connected == clients { allConnected.set() }
                    try allConnected.wait()  // all 1000 connections are open at the same time
                    let message = Array("client \(i)".utf8)
                    try s.write(all: message)
                    return try s.read(upTo: 64) == message.reversed()
                }
            }
            #expect(try threads.allSatisfy { try $0.join() })
            return try server.join()
        }
        #expect(served == clients)
    }

    /// Whether this machine can bind a TCP socket to ::1 (containers often have no IPv6).
    static let ipv6LoopbackAvailable: Bool = {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }()

    /// Skipped, with the reason in the test report, where ::1 cannot be bound.
    @Test(.enabled(if: ipv6LoopbackAvailable, "no IPv6 loopback on this machine (cannot bind ::1)"))
    func ipv6Loopback() throws {
        let reply = try UThreadRuntime.run { () throws -> [UInt8] in
            let listener = try TCPListener(host: "::1", port: 0)
            #expect(listener.localAddress.family == .ipv6)
            let server = UThread.local {
                let c = try listener.accept()
                try c.write(all: "v6")
                try c.close()
            }
            let s = try TCPStream.connect(host: "::1", port: listener.port)
            let r = try s.readToEnd()
            try server.join()
            return r
        }
        #expect(reply == Array("v6".utf8))
    }

    /// getaddrinfo runs on the offload pool: the trace shows the calling thread blocked on an
    /// offload wait for `resolve` and again for `connect(host:)`.
    @Test func nameResolutionThroughTheOffloadPool() throws {
        let trace = UThreadTrace()
        var c = UThreadRuntime.Configuration()
        c.trace = trace
        let ok = try UThreadRuntime.run(c) {
            let addresses = try SocketAddress.resolve(host: "localhost", port: 80)
            #expect(!addresses.isEmpty)
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let server = UThread.local { try listener.accept().write(all: "hi") }
            let s = try TCPStream.connect(host: "localhost", port: listener.port, timeout: .seconds(5))
            try server.join()
            return try s.read(upTo: 10) == Array("hi".utf8)
        }
        #expect(ok)
        let mainLane = try #require(trace.threads.first { $0.name == "main" }).lane
        let offloads = trace.events.filter { $0.lane == mainLane && $0.kind == .block && $0.waitReason == .offload }
        #expect(offloads.count == 2, "main waited on the offload pool \(offloads.count) times, not twice")
    }

    @Test func connectionRefusedIsAnError() throws {
        let error = try UThreadRuntime.run { () -> UThreadError? in
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let address = listener.localAddress
            try listener.close()
            do { _ = try TCPStream.connect(to: address) } catch let e as UThreadError { return e }
            return nil
        }
        #expect(error == .system(call: "connect", errno: .connectionRefused))
    }

    @Test func peerResetIsAnError() throws {
        let (readError, writeError) = try UThreadRuntime.run { () -> (UThreadError?, UThreadError?) in
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let client = try TCPStream.connect(to: listener.localAddress)
            let server = try listener.accept()
            // SO_LINGER 0: close sends RST.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(
                server.fileDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            let reader = UThread.local { () -> UThreadError? in
                do { _ = try client.read(upTo: 10) } catch let e as UThreadError { return e }
                return nil
            }
            UThread<Never>.yield()
            try server.close()
            let readError = try reader.join()
            var writeError: UThreadError?
            do {
                for _ in 0..<10 { try client.write(all: "after reset") }
            } catch let e as UThreadError { writeError = e }
            return (readError, writeError)
        }
        #expect(readError == .system(call: "read", errno: .connectionReset))
        #expect(
            writeError == .system(call: "send", errno: .brokenPipe)
                || writeError == .system(call: "send", errno: .connectionReset))
    }

    @Test func unixDomainListener() throws {
        let path = "/tmp/uthreads-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let text = try UThreadRuntime.run {
            let listener = try UnixListener(path: path)
            defer { try? listener.close() }
            let server = UThread.local {
                let c = try listener.accept()
                try c.write(all: try c.read(upTo: 100) + Array(" back".utf8))
                try c.close()
            }
            let s = try UnixStream.connect(path: path)
            try s.write(all: "there and")
            let reply = try s.readToEnd()
            try server.join()
            return String(decoding: reply, as: UTF8.self)
        }
        #expect(text == "there and back")
    }

    /// A listener's path that names a file other than a socket leaves that file alone and fails
    /// with EADDRINUSE (it used to unlink whatever was there); a socket file left behind by an
    /// earlier listener is still replaced.
    @Test func aUnixListenerNeverDeletesAFileThatIsNotASocket() throws {
        let path = "/tmp/uthreads-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        let content = Array("keep me".utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0 && write(fd, content, content.count) == content.count)
        close(fd)
        defer { unlink(path) }
        try UThreadRuntime.run {
            #expect(throws: UThreadError.system(call: "bind", errno: .addressInUse)) { try UnixListener(path: path) }
            let kept = try IO.readFile(path)
            #expect(kept == content)
        }

        let socketPath = path + ".sock"
        try UThreadRuntime.run {
            do { _ = try UnixListener(path: socketPath) }  // released without close(): its file stays
            #expect(access(socketPath, F_OK) == 0)
            let second = try UnixListener(path: socketPath)
            try second.close()
        }
        #expect(access(socketPath, F_OK) != 0)
    }
}

/// A one-shot event for tests: threads wait until it is set (no sleeping).
struct WaitFlag {
    private let queue = WaitQueue()
    private(set) var isSet = false

    mutating func set() {
        isSet = true
        let s = Scheduler.require("WaitFlag.set")
        while let t = queue.dequeue() { s.wake(t, .woken) }
    }

    func wait() throws {
        let s = Scheduler.require("WaitFlag.wait")
        guard !isSet else { return }
        queue.enqueue(s.current)
        try s.park(.custom).check()
    }
}
