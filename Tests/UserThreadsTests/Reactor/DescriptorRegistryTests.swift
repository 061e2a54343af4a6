import Glibc
import Testing
@testable import UserThreads

/// The M:N runtime's record of which workers' reactors watch each descriptor.
@Suite struct DescriptorRegistryTests {
    /// Workers below 63 are bits; from 63 on they share bit 63 and an overflow set, which is
    /// cleared only when the last of them leaves.
    @Test func watchersOfAnyWorkerCount() throws {
        let r = DescriptorRegistry()
        let fd: Int32 = 1000  // never closed here: only the bookkeeping is exercised
        for w in [0, 5, 62, 63, 64, 1023] {
            #expect(try r.watch(fd, worker: w) { () throws(UThreadError) -> Bool in true })
        }
        #expect(r.watchers(of: fd).workers == [0, 5, 62, 63, 64, 1023])
        #expect(r.watchers(of: fd).count == 6)
        #expect(r.watchers(of: fd + 64).isEmpty)  // same stripe, next slot
        #expect(r.watchers(of: fd + 1).isEmpty)   // next stripe
        r.unwatch(fd, worker: 63)
        r.unwatch(fd, worker: 1023)
        #expect(r.watchers(of: fd).workers == [0, 5, 62, 64])
        r.unwatch(fd, worker: 64)
        #expect(r.watchers(of: fd).mask & DescriptorRegistry.overflowBit == 0)
        #expect(r.watchedCount == 1)
        for w in [0, 5, 62] { r.unwatch(fd, worker: w) }
        #expect(r.watchers(of: fd).isEmpty)
        #expect(r.watchedCount == 0)
        r.unwatch(123_456, worker: 3)  // never watched: nothing to do
        #expect(r.watchers(of: -1).isEmpty)
    }

    /// A descriptor epoll refuses (the add returns false) or whose add fails is not recorded.
    @Test func refusedOrFailedAddsAreNotRecorded() throws {
        let r = DescriptorRegistry()
        #expect(try !r.watch(7, worker: 1) { () throws(UThreadError) -> Bool in false })
        #expect(throws: UThreadError.self) {
            try r.watch(7, worker: 1) { () throws(UThreadError) -> Bool in throw .system(call: "epoll_ctl", errno: .badFileDescriptor) }
        }
        #expect(r.watchers(of: 7).isEmpty)
    }

    /// `closeUnlessWatched` closes when nobody watches, else hands the watchers to `ask` under
    /// the lock and leaves the descriptor open; bad descriptors throw EBADF.
    @Test func closeUnlessWatched() throws {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let (a, b) = (fds[0], fds[1])
        defer { Glibc.close(b) }
        let r = DescriptorRegistry()
        #expect(try r.watch(a, worker: 1) { () throws(UThreadError) -> Bool in true })
        var asked: [Int] = []
        #expect(try !r.closeUnlessWatched(a) { asked = $0.workers })
        #expect(asked == [1])
        #expect(fcntl(a, F_GETFD) >= 0)  // still open
        r.unwatch(a, worker: 1)
        #expect(try r.closeUnlessWatched(a) { _ in Issue.record("nobody watches") })
        var byte: UInt8 = 0
        #expect(send(b, &byte, 1, Int32(MSG_NOSIGNAL)) == -1 && errno == EPIPE)  // the peer is gone
        #expect(throws: UThreadError.system(call: "close", errno: .badFileDescriptor)) {
            _ = try r.closeUnlessWatched(-1) { _ in }
        }
        #expect(throws: UThreadError.system(call: "close", errno: .badFileDescriptor)) {
            _ = try r.closeUnlessWatched(Int32.max) { _ in }
        }
    }
}
