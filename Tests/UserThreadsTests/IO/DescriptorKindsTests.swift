import Glibc
import Testing
@testable import UserThreads

/// Descriptors other than streams: regular files (epoll refuses them: always ready), datagrams
/// with addresses, scatter/gather.
@Suite(.timeLimit(.minutes(1))) struct DescriptorKindsTests {
    @Test func regularFilesAreAlwaysReady() throws {
        let n = try UThreadRuntime.run {
            let fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0)
            defer { try? IO.close(fd) }
            try IO.waitReadable(fd, timeout: .seconds(1))
            var b = [UInt8](repeating: 0, count: 64)
            return try b.withUnsafeMutableBytes { try IO.read(fd, into: $0, timeout: .seconds(1)) }
        }
        #expect(n > 0)
    }

    @Test func datagramsWithAddresses() throws {
        let path = "/tmp/uthreads-dg-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let (text, count) = try UThreadRuntime.run {
            let address = try SocketAddress(unixPath: path)
            let receiver = try IO.socket(family: .unix, type: 2)
            defer {
                try? IO.close(receiver)
                unlink(path)
            }
            _ = address.withSockAddr { bind(receiver, $0, $1) }
            let sender = try IO.socket(family: .unix, type: 2)
            defer { try? IO.close(sender) }
            let r = UThread { () throws -> String in
                var b = [UInt8](repeating: 0, count: 64)
                let (n, _) = try b.withUnsafeMutableBytes { try IO.recvfrom(receiver, into: $0, timeout: .seconds(5)) }
                return String(decoding: b[0..<n], as: UTF8.self)
            }
            UThread<Never>.yield()
            let sent = try Array("datagram".utf8).withUnsafeBytes { try IO.sendto(sender, from: $0, to: address) }
            return (try r.join(), sent)
        }
        #expect(text == "datagram" && count == 8)
    }

    @Test func scatterGather() throws {
        let got = try UThreadRuntime.run {
            let (a, b) = try IO.socketpair()
            defer {
                try? IO.close(a)
                try? IO.close(b)
            }
            var one = Array("hello ".utf8)
            var two = Array("world".utf8)
            let written = try one.withUnsafeMutableBytes { p1 in
                try two.withUnsafeMutableBytes { p2 in
                    let v = [
                        iovec(iov_base: p1.baseAddress, iov_len: p1.count),
                        iovec(iov_base: p2.baseAddress, iov_len: p2.count),
                    ]
                    return try v.withUnsafeBufferPointer { try IO.writev(a, $0) }
                }
            }
            #expect(written == 11)
            var x = [UInt8](repeating: 0, count: 5)
            var y = [UInt8](repeating: 0, count: 6)
            let n = try x.withUnsafeMutableBytes { p1 in
                try y.withUnsafeMutableBytes { p2 in
                    var v = [
                        iovec(iov_base: p1.baseAddress, iov_len: p1.count),
                        iovec(iov_base: p2.baseAddress, iov_len: p2.count),
                    ]
                    var m = msghdr()
                    return try v.withUnsafeMutableBufferPointer { vp in
                        m.msg_iov = vp.baseAddress
                        m.msg_iovlen = 2
                        return try IO.recvmsg(b, &m, timeout: .seconds(5))
                    }
                }
            }
            #expect(n == 11)
            return String(decoding: x + y, as: UTF8.self)
        }
        #expect(got == "hello world")
    }
}
