// Layer 9: read, write, readv, writev and the waits they are built on.
import CUThreads
import Glibc

extension IO {
    /// Reads up to `buffer.count` bytes; returns 0 at end of file.
    /// - Throws: `UThreadError.system(call: "read", …)`, `.timedOut`, `.closed`,
    ///   `CancellationError`.
    public static func read(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws
        -> Int
    {
        try retrying("read", fd, .read, .read, timeout: timeout, deadline: deadline) {
            uthreads_sys_read(fd, buffer.baseAddress, buffer.count)
        }
    }

    /// Writes up to `buffer.count` bytes; returns how many were written (maybe fewer).
    public static func write(
        _ fd: Int32, from buffer: UnsafeRawBufferPointer, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        try retrying("write", fd, .write, .write, timeout: timeout, deadline: deadline) {
            uthreads_sys_write(fd, buffer.baseAddress, buffer.count)
        }
    }

    /// Writes all of `buffer`, waiting as often as needed; the timeout and deadline cover the
    /// whole call.
    public static func write(
        _ fd: Int32, all buffer: UnsafeRawBufferPointer, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        var offset = 0
        while offset < buffer.count {
            switch try attempt("write", { uthreads_sys_write(fd, buffer.baseAddress! + offset, buffer.count - offset) })
            {
            case .processed(let n): offset += n
            case .wouldBlock: try waitFor(fd, .write, .write, &pending)
            }
        }
    }

    /// Scatter read into `vectors`.
    public static func readv(
        _ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        try retrying("readv", fd, .read, .read, timeout: timeout, deadline: deadline) {
            uthreads_sys_readv(fd, vectors.baseAddress, Int32(vectors.count))
        }
    }

    /// Gather write from `vectors`; returns the bytes written (maybe fewer than the total).
    public static func writev(
        _ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws
        -> Int
    {
        try retrying("writev", fd, .write, .write, timeout: timeout, deadline: deadline) {
            uthreads_sys_writev(fd, vectors.baseAddress, Int32(vectors.count))
        }
    }

    /// Parks until `fd` is readable (or at end of file, or in error).
    public static func waitReadable(_ fd: Int32, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil)
        throws
    {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        try waitReady(fd, .read, &pending)
    }

    /// Parks until `fd` is writable (or in error).
    public static func waitWritable(_ fd: Int32, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil)
        throws
    {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        try waitReady(fd, .write, &pending)
    }

    /// Parks until `fd` is ready for `direction`, by a deadline shared with the caller's
    /// other waits.
    static func waitReady(_ fd: Int32, _ direction: IODirection, _ deadline: inout PendingDeadline) throws {
        if try pollNow(fd, Int16(direction == .read ? POLLIN : POLLOUT)) { return }
        try waitFor(fd, direction, .poll, &deadline)
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
