import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// Records the registry's requests instead of posting them to workers.
private final class AskLog: DescriptorCloseDelegate, @unchecked Sendable {
    private let asked = Mutex<[Int]>([])
    func askToDrop(_ fd: Int32, worker: Int) { asked.withLock { $0.append(worker) } }
    var workers: [Int] { asked.withLock { $0 } }
}

/// A connected socketpair made with plain system calls (no runtime needed).
private func rawSocketPair() -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    return (fds[0], fds[1])
}

/// Whether `fd`'s peer is gone (a send fails with EPIPE): proof that the other end was really
/// closed, whatever other tests running in parallel do with descriptor numbers.
private func peerGone(_ fd: Int32) -> Bool {
    var byte: UInt8 = 0
    return send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == -1 && errno == EPIPE
}

private func add() throws(UThreadError) -> Bool { true }

/// The M:N runtime's record of which workers' reactors watch each descriptor, and its deferred
/// close.
@Suite(.timeLimit(.minutes(1))) struct DescriptorRegistryTests {
    /// Workers below 62 are bits; from 62 on they share bit 63 and an overflow set, which is
    /// cleared only when the last of them leaves.
    @Test func watchersOfAnyWorkerCount() throws {
        let r = DescriptorRegistry()
        let fd: Int32 = 1000  // never closed here: only the bookkeeping is exercised
        for w in [0, 5, 61, 62, 63, 64, 1023] {
            #expect(try r.watch(fd, worker: w, add))
        }
        #expect(r.watchers(of: fd).workers == [0, 5, 61, 62, 63, 64, 1023])
        #expect(r.watchers(of: fd).count == 7)
        #expect(!r.watchers(of: fd).isClosing)
        #expect(r.watchers(of: fd + 64).isEmpty)  // same stripe, next slot
        #expect(r.watchers(of: fd + 1).isEmpty)  // next stripe
        r.unwatch(fd, worker: 62)
        r.unwatch(fd, worker: 1023)
        r.unwatch(fd, worker: 63)
        #expect(r.watchers(of: fd).workers == [0, 5, 61, 64])
        r.unwatch(fd, worker: 64)
        #expect(r.watchers(of: fd).mask & DescriptorRegistry.overflowBit == 0)
        #expect(r.watchedCount == 1)
        for w in [0, 5, 61] { r.unwatch(fd, worker: w) }
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
            try r.watch(7, worker: 1) { () throws(UThreadError) -> Bool in
                throw .system(call: "epoll_ctl", errno: .badFileDescriptor)
            }
        }
        #expect(r.watchers(of: 7).isEmpty)
    }

    /// Nobody else watching: close(2) at once (the closer's own bit is cleared first). Bad
    /// descriptors throw EBADF.
    @Test func closesAtOnceWhenNobodyElseWatches() throws {
        let (a, b) = rawSocketPair()
        defer { Glibc.close(b) }
        let log = AskLog()
        let r = DescriptorRegistry()
        r.attach(log)
        #expect(try r.watch(a, worker: 0, add))
        #expect(try r.close(a, worker: 0) == .closed)
        #expect(log.workers.isEmpty)
        #expect(peerGone(b))
        #expect(r.watchedCount == 0)
        #expect(throws: UThreadError.system(call: "close", errno: .badFileDescriptor)) { try r.close(-1, worker: 0) }
        #expect(throws: UThreadError.system(call: "close", errno: .badFileDescriptor)) {
            try r.close(Int32.max, worker: nil)
        }
    }

    /// Other watchers: the close is deferred. The descriptor stays open and marked closing (a
    /// new watch throws `.closed`, a second close EBADF) until every addressed worker has
    /// answered; the last answer closes it.
    @Test func deferredCloseEndsWithTheLastAnswer() throws {
        let (a, b) = rawSocketPair()
        defer { Glibc.close(b) }
        let log = AskLog()
        let r = DescriptorRegistry()
        r.attach(log)
        for w in [0, 1, 70] { #expect(try r.watch(a, worker: w, add)) }
        #expect(try r.close(a, worker: 0) == .deferred(2))
        #expect(log.workers == [1, 70])
        #expect(r.watchers(of: a).isClosing)
        #expect(fcntl(a, F_GETFD) >= 0)  // still open (and still ours: nobody else could close it)
        #expect(throws: UThreadError.closed("descriptor \(a) is being closed (IO.close was called on it)")) {
            try r.watch(a, worker: 0, add)
        }
        #expect(throws: UThreadError.system(call: "close", errno: .badFileDescriptor)) { try r.close(a, worker: 2) }
        #expect(r.answer(a, worker: 70) == nil)
        #expect(!peerGone(b))
        #expect(r.answer(a, worker: 1) == nil)
        #expect(peerGone(b))  // closed by the last answer
        #expect(r.watchedCount == 0)
        #expect(r.finish().isEmpty)
    }

    /// A closer that is not a worker finds the watchers through the process's list of live
    /// registries; with none watching it simply closes. `finish` closes what was left closing.
    @Test func closersOutsideTheWorkersUseTheLiveRegistries() throws {
        let (a, b) = rawSocketPair()
        let (c, d) = rawSocketPair()
        defer {
            Glibc.close(b)
            Glibc.close(d)
        }
        let log = AskLog()
        let r = DescriptorRegistry()
        r.attach(log)
        r.activate()
        #expect(try r.watch(a, worker: 3, add))
        try DescriptorRegistry.closeOutsideWorkers(a)
        #expect(log.workers == [3])
        #expect(!peerGone(b))
        try DescriptorRegistry.closeOutsideWorkers(c)  // watched by nobody
        #expect(peerGone(d))
        #expect(throws: UThreadError.system(call: "close", errno: .badFileDescriptor)) {
            try DescriptorRegistry.closeOutsideWorkers(-1)
        }
        #expect(r.finish() == [a])  // never answered: closed by the teardown
        #expect(peerGone(b))
    }
}
