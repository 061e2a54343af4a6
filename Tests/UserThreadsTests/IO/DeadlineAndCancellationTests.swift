import Glibc
import Testing
@testable import UserThreads

/// Every wrapper that can wait: its timeout and its cancellation.
@Suite(.timeLimit(.minutes(1))) struct DeadlineAndCancellationTests {
    /// A call that would wait forever, given a fresh pipe/socketpair/listener.
    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var call: @Sendable (Fixture, Duration?) throws -> Void
    }

    /// Descriptors on which every call blocks.
    final class Fixture {
        let pipe: (read: Int32, write: Int32)
        /// Nothing is ever written to this pipe.
        let emptyPipe: (read: Int32, write: Int32)
        let pair: (Int32, Int32)
        let dgram: (Int32, Int32)
        /// An unconnected datagram socket whose receiver at `receiverAddress` is full.
        let sender: Int32
        let receiver: Int32
        let receiverAddress: SocketAddress
        let path = "/tmp/uthreads-dgram-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let listener: TCPListener
        var buffer = [UInt8](repeating: 0, count: 64)

        init() throws {
            pipe = try IO.pipe()
            emptyPipe = try IO.pipe()
            receiverAddress = try SocketAddress(unixPath: path)
            let r = try IO.socket(family: .unix, type: 2)
            receiver = r
            _ = receiverAddress.withSockAddr { bind(r, $0, $1) }
            sender = try IO.socket(family: .unix, type: 2)
            let address = receiverAddress
            let fd = sender
            while (address.withSockAddr { a, l in
                [UInt8](repeating: 0, count: 512).withUnsafeBytes {
                    Glibc.sendto(fd, $0.baseAddress, $0.count, 0, a, l)
                }
            }) > 0 {}
            pair = try IO.socketpair()
            dgram = try IO.socketpair(type: 2)
            listener = try TCPListener(host: "127.0.0.1", port: 0)
            // Fill the send buffers so writes block.
            let big = [UInt8](repeating: 1, count: 1 << 16)
            for fd in [pipe.write, pair.1] {
                while (big.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }) > 0 {}
            }
            while (big.withUnsafeBytes { Glibc.send(dgram.1, $0.baseAddress, 1024, 0) }) > 0 {}
        }

        private var closed = false

        /// Idempotent: a second close(2) of a number could close another test's descriptor.
        func close() {
            guard !closed else { return }
            closed = true
            for fd in [
                pipe.read, pipe.write, emptyPipe.read, emptyPipe.write, pair.0, pair.1, dgram.0, dgram.1, sender,
                receiver,
            ] { try? IO.close(fd) }
            unlink(path)
            try? listener.close()
        }
    }

    static let cases: [Case] = [
        Case(description: "read") { f, t in
            _ = try f.buffer.withUnsafeMutableBytes { try IO.read(f.emptyPipe.read, into: $0, timeout: t) }
        },
        Case(description: "write") { f, t in
            _ = try f.buffer.withUnsafeBytes { try IO.write(f.pipe.write, from: $0, timeout: t) }
        },
        Case(description: "write(all:)") { f, t in
            try f.buffer.withUnsafeBytes { try IO.write(f.pipe.write, all: $0, timeout: t) }
        },
        Case(description: "readv") { f, t in
            try f.buffer.withUnsafeMutableBytes { b in
                var v = [iovec(iov_base: b.baseAddress, iov_len: b.count)]
                _ = try v.withUnsafeBufferPointer { try IO.readv(f.pair.1, $0, timeout: t) }
            }
        },
        Case(description: "writev") { f, t in
            try f.buffer.withUnsafeMutableBytes { b in
                var v = [iovec(iov_base: b.baseAddress, iov_len: b.count)]
                _ = try v.withUnsafeBufferPointer { try IO.writev(f.pair.1, $0, timeout: t) }
            }
        },
        Case(description: "recv") { f, t in
            _ = try f.buffer.withUnsafeMutableBytes { try IO.recv(f.pair.1, into: $0, timeout: t) }
        },
        Case(description: "send") { f, t in
            _ = try f.buffer.withUnsafeBytes { try IO.send(f.pair.1, from: $0, timeout: t) }
        },
        Case(description: "recvfrom") { f, t in
            // dgram.1's peer dgram.0 has a full queue, but dgram.1 itself has nothing to read
            _ = try f.buffer.withUnsafeMutableBytes { try IO.recvfrom(f.dgram.1, into: $0, timeout: t) }
        },
        Case(description: "sendto") { f, t in
            _ = try f.buffer.withUnsafeBytes { try IO.sendto(f.sender, from: $0, to: f.receiverAddress, timeout: t) }
        },
        Case(description: "recvmsg") { f, t in
            try f.buffer.withUnsafeMutableBytes { b in
                var v = iovec(iov_base: b.baseAddress, iov_len: b.count)
                var m = msghdr()
                try withUnsafeMutablePointer(to: &v) { vp in
                    m.msg_iov = vp
                    m.msg_iovlen = 1
                    _ = try IO.recvmsg(f.pair.1, &m, timeout: t)
                }
            }
        },
        Case(description: "sendmsg") { f, t in
            try f.buffer.withUnsafeMutableBytes { b in
                var v = iovec(iov_base: b.baseAddress, iov_len: b.count)
                var m = msghdr()
                try withUnsafeMutablePointer(to: &v) { vp in
                    m.msg_iov = vp
                    m.msg_iovlen = 1
                    _ = try IO.sendmsg(f.pair.1, &m, timeout: t)
                }
            }
        },
        Case(description: "accept") { f, t in _ = try f.listener.accept(timeout: t) },
        Case(description: "waitReadable") { f, t in try IO.waitReadable(f.emptyPipe.read, timeout: t) },
        Case(description: "waitWritable") { f, t in try IO.waitWritable(f.pipe.write, timeout: t) },
    ]

    @Test(arguments: cases)
    func timesOut(_ c: Case) throws {
        let (error, elapsed) = try UThreadRuntime.run { () -> ((any Error)?, Duration) in
            let f = try Fixture()
            defer { f.close() }
            let start = ContinuousClock.now
            do { try c.call(f, .milliseconds(30)) } catch { return (error, ContinuousClock.now - start) }
            return (nil, ContinuousClock.now - start)
        }
        #expect((error as? UThreadError) == .timedOut, "\(c): \(String(describing: error))")
        #expect(elapsed >= .milliseconds(29))
    }

    /// Given both a timeout and a deadline, the earlier ends the wait, whichever kind it is.
    /// Timed out, not returned, and after the near limit: the far one never comes due here.
    @Test(arguments: [true, false])
    func theEarlierOfTimeoutAndDeadlineWins(deadlineFirst: Bool) throws {
        let (error, elapsed) = try UThreadRuntime.run { () -> ((any Error)?, Duration) in
            let f = try Fixture()
            defer { f.close() }
            let (near, far) = (Duration.milliseconds(30), Duration.seconds(20))
            let start = ContinuousClock.now
            do {
                try f.buffer.withUnsafeBytes {
                    try IO.write(
                        f.pipe.write, all: $0, timeout: deadlineFirst ? far : near,
                        deadline: start + (deadlineFirst ? near : far))
                }
            } catch { return (error, ContinuousClock.now - start) }
            return (nil, ContinuousClock.now - start)
        }
        #expect((error as? UThreadError) == .timedOut, "\(String(describing: error))")
        #expect(elapsed >= .milliseconds(29))
        #expect(elapsed < .seconds(10), "the far limit (20 s) ended the wait")
    }

    @Test(arguments: cases)
    func isCancellable(_ c: Case) throws {
        let error = try UThreadRuntime.run { () -> (any Error)? in
            let f = try Fixture()
            defer { f.close() }
            let t = UThread.local { () -> (any Error)? in
                do { try c.call(f, nil) } catch { return error }
                return nil
            }
            UThread<Never>.yield()  // let it park
            #expect(UThreadRuntime.threadTable().threads.contains { $0.state == .blocked })
            t.cancel()
            return try t.join()
        }
        #expect(error is CancellationError, "\(c): \(String(describing: error))")
    }

    @Test(arguments: cases)
    func closeWhileBlockedWakesWithClosed(_ c: Case) throws {
        let error = try UThreadRuntime.run { () -> (any Error)? in
            let f = try Fixture()
            defer { f.close() }
            let t = UThread.local { () -> (any Error)? in
                do { try c.call(f, .seconds(20)) } catch { return error }
                return nil
            }
            UThread<Never>.yield()
            // close every descriptor the call might wait on
            f.close()
            return try t.join()
        }
        guard case .closed? = error as? UThreadError else {
            Issue.record("\(c): expected .closed, got \(String(describing: error))")
            return
        }
    }

    @Test func connectTimesOutAndIsCancellable() throws {
        try UThreadRuntime.run {
            // A listener with a full accept queue drops SYNs: connects hang.
            let listener = try TCPListener(host: "127.0.0.1", port: 0, backlog: 0)
            var held: [TCPStream] = []
            var timedOut = false
            for _ in 0..<8 {
                do {
                    held.append(try TCPStream.connect(to: listener.localAddress, timeout: .milliseconds(50)))
                } catch UThreadError.timedOut {
                    timedOut = true
                    break
                }
            }
            #expect(timedOut)
            let t = UThread { () -> (any Error)? in
                do { _ = try TCPStream.connect(to: listener.localAddress) } catch { return error }
                return nil
            }
            UThread<Never>.yield()
            t.cancel()
            #expect(try t.join() is CancellationError)
        }
    }

    @Test func badDescriptorsAreEBADF() throws {
        let errors = try UThreadRuntime.run { () -> [UThreadError?] in
            var b = [UInt8](repeating: 0, count: 8)
            func error(_ body: () throws -> Void) -> UThreadError? {
                do { try body() } catch let e as UThreadError { return e } catch {}
                return nil
            }
            // Never a valid descriptor (above any RLIMIT_NOFILE here). Closing a real descriptor
            // twice is no test: tests run in parallel and the number may already be reused.
            let r: Int32 = 999_999
            let w: Int32 = 999_998
            return [
                error { _ = try b.withUnsafeMutableBytes { try IO.read(r, into: $0) } },
                error { _ = try b.withUnsafeBytes { try IO.write(w, from: $0) } },
                error { _ = try b.withUnsafeMutableBytes { try IO.recv(-1, into: $0) } },
                error { _ = try IO.accept(r) },
                error { try IO.waitReadable(r) },
                error { try IO.close(r) },
            ]
        }
        #expect(errors[0] == .system(call: "read", errno: .badFileDescriptor))
        #expect(errors[1] == .system(call: "write", errno: .badFileDescriptor))
        #expect(errors[2] == .system(call: "recv", errno: .badFileDescriptor))
        #expect(errors[3] == .system(call: "accept4", errno: .badFileDescriptor))
        #expect(errors[4] == .system(call: "poll", errno: .badFileDescriptor))
        #expect(errors[5] == .system(call: "close", errno: .badFileDescriptor))
    }

    @Test func threadTableShowsTheDescriptor() throws {
        let text = try UThreadRuntime.run {
            let (r, w) = try Pipe.make()
            let t = UThread.local(name: "reader") { _ = try r.read(upTo: 1) }
            UThread<Never>.yield()
            let table = UThreadRuntime.threadTable().description
            try w.write(all: "x")
            try t.join()
            return (table, r.fileDescriptor)
        }
        #expect(text.0.contains("read fd \(text.1)"), "\(text.0)")
    }
}
