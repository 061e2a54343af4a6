// Layer 14: the graceful-stop request shared by the acceptors of one server.
//
// `uthreads serve --workers N` runs one `HTTPServer.run()` per worker on one listening socket,
// and a stop (a signal read on some worker) must reach all of them, including an acceptor
// that is parked at the connection cap rather than in accept(2). The request is a pipe whose
// write end `stop()` closes: every reader on every worker and runtime then reads end of file,
// which the kernel reports to each epoll set watching the read end, so each server's watcher
// thread wakes in its own reactor. Rejected: cancelling the acceptors (a cancelled thread's
// later waits throw at once, so it could not wait out the grace period), and a flag polled by
// a timer (a wait that polls is late or busy).
import Glibc
import Synchronization
import UserThreads

/// A graceful-stop request for the `HTTPServer`s that share it (`HTTPServer.stop`), e.g. one
/// per worker on one listener. `stop()` may be called from any kernel thread, any number of
/// times; each server then stops accepting, lets requests in flight finish within its
/// `shutdownGracePeriod` and returns from `run()`.
public final class HTTPServerStop: Sendable {
    /// The read end: reaches end of file once `stop()` closed the write end. Only its
    /// descriptor number is read after `init`, from any thread.
    nonisolated(unsafe) private let reader: PipeReader
    private let writeEnd: Atomic<Int32>

    /// A stop request not yet made.
    /// - Throws: `.system(call: "pipe2", …)` when out of descriptors.
    public init() throws {
        let (r, w) = try IO.pipe()
        reader = PipeReader(owning: r)
        writeEnd = Atomic(w)
    }

    deinit {
        let w = writeEnd.load(ordering: .relaxed)
        if w >= 0 { _ = Glibc.close(w) }  // never watched by a reactor
    }

    /// Requests the stop (idempotent; any kernel thread).
    public func stop() {
        let w = writeEnd.exchange(-1, ordering: .acquiringAndReleasing)
        if w >= 0 { _ = Glibc.close(w) }
    }

    /// Whether `stop()` was called.
    public var isStopped: Bool { writeEnd.load(ordering: .acquiring) < 0 }

    /// Parks the calling user thread until `stop()` is called (from any thread).
    /// - Throws: `CancellationError`, `.system(call: "read", …)`.
    func wait() throws {
        var byte: UInt8 = 0
        while try withUnsafeMutableBytes(of: &byte, { try IO.read(reader.fileDescriptor, into: $0) }) != 0 {}
    }
}
