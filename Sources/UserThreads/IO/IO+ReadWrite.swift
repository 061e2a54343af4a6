// Layer 9: read, write, readv, writev and the waits they are built on.
import CUThreads
import Glibc

extension IO {
    /// Reads up to `buffer.count` bytes; returns 0 at end of file.
    /// - Throws: `UThreadError.system(call: "read", …)`, `.timedOut`, `.closed`,
    ///   `CancellationError`.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, timeout: Duration? = nil) throws
        -> Int
    {
        try retrying("read", fd, .read, .read, timeout: timeout) {
            uthreads_sys_read(fd, buffer.baseAddress, buffer.count)
        }
    }

    /// Writes up to `buffer.count` bytes; returns how many were written (maybe fewer).
    public static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer, timeout: Duration? = nil) throws -> Int {
        try retrying("write", fd, .write, .write, timeout: timeout) {
            uthreads_sys_write(fd, buffer.baseAddress, buffer.count)
        }
    }

    /// Writes all of `buffer`, waiting as often as needed; the timeout covers the whole call.
    public static func write(_ fd: Int32, all buffer: UnsafeRawBufferPointer, timeout: Duration? = nil) throws {
        var deadline = PendingDeadline(timeout: timeout)
        var offset = 0
        while offset < buffer.count {
            switch try attempt("write", { uthreads_sys_write(fd, buffer.baseAddress! + offset, buffer.count - offset) })
            {
            case .processed(let n): offset += n
            case .wouldBlock: try waitFor(fd, .write, .write, &deadline)
            }
        }
    }

    /// Scatter read into `vectors`.
    public static func readv(_ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>, timeout: Duration? = nil) throws -> Int
    {
        try retrying("readv", fd, .read, .read, timeout: timeout) {
            uthreads_sys_readv(fd, vectors.baseAddress, Int32(vectors.count))
        }
    }

    /// Gather write from `vectors`; returns the bytes written (maybe fewer than the total).
    public static func writev(_ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>, timeout: Duration? = nil) throws
        -> Int
    {
        try retrying("writev", fd, .write, .write, timeout: timeout) {
            uthreads_sys_writev(fd, vectors.baseAddress, Int32(vectors.count))
        }
    }

    /// Parks until `fd` is readable (or at end of file, or in error).
    public static func waitReadable(_ fd: Int32, timeout: Duration? = nil) throws {
        var deadline = PendingDeadline(timeout: timeout)
        if try pollNow(fd, Int16(POLLIN)) { return }
        try waitFor(fd, .read, .poll, &deadline)
    }

    /// Parks until `fd` is writable (or in error).
    public static func waitWritable(_ fd: Int32, timeout: Duration? = nil) throws {
        var deadline = PendingDeadline(timeout: timeout)
        if try pollNow(fd, Int16(POLLOUT)) { return }
        try waitFor(fd, .write, .poll, &deadline)
    }

    /// Whether `fd` is ready for `events` now (poll with a zero timeout; the edge-triggered
    /// reactor reports changes, so the present state must be looked at first).
    static func pollNow(_ fd: Int32, _ events: Int16) throws(UThreadError) -> Bool {
        var p = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let n = Glibc.poll(&p, 1, 0)
            if n >= 0 {
                if p.revents & Int16(POLLNVAL) != 0 { throw .system(call: "poll", errno: .badFileDescriptor) }
                return n > 0
            }
            if Glibc.errno != EINTR { throw .system(call: "poll", errno: .lastError) }
        }
    }
}
