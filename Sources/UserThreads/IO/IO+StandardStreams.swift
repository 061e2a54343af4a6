// Layer 9: stdin, stdout and stderr without blocking the runtime.
//
// The standard descriptors are shared with the parent process (often a terminal the shell
// also uses), so they are left blocking: these calls wait for readiness through the reactor,
// then make the plain call. A readable descriptor's read returns at once; a writable pipe
// accepts at least 4 KiB, so writes go in chunks of at most 4 KiB. Regular files (redirected
// streams) are always ready.
import CUThreads
import Glibc

extension IO {
    /// Reads from standard input; 0 at end of file.
    public static func readStandardInput(
        into buffer: UnsafeMutableRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws
        -> Int
    {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        try waitReady(0, .read, &pending)
        return try retrying("read", 0, .read, .read, &pending) {
            uthreads_sys_read(0, buffer.baseAddress, buffer.count)
        }
    }

    /// Writes all of `bytes` to standard output.
    public static func writeStandardOutput(
        _ bytes: UnsafeRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        try writeStandard(1, bytes, timeout: timeout, deadline: deadline)
    }

    /// Writes all of `bytes` to standard error.
    public static func writeStandardError(
        _ bytes: UnsafeRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        try writeStandard(2, bytes, timeout: timeout, deadline: deadline)
    }

    /// Writes `text` to standard output (or standard error).
    public static func print(
        _ text: String, toStandardError: Bool = false, timeout: Duration? = nil,
        deadline: ContinuousClock.Instant? = nil
    ) throws {
        var copy = text
        try copy.withUTF8 {
            try writeStandard(toStandardError ? 2 : 1, UnsafeRawBufferPointer($0), timeout: timeout, deadline: deadline)
        }
    }

    private static func writeStandard(
        _ fd: Int32, _ bytes: UnsafeRawBufferPointer, timeout: Duration?, deadline: ContinuousClock.Instant?
    ) throws {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        var offset = 0
        while offset < bytes.count {
            try waitReady(fd, .write, &pending)
            let chunk = min(4096, bytes.count - offset)
            offset += try retrying("write", fd, .write, .write, &pending) {
                uthreads_sys_write(fd, bytes.baseAddress! + offset, chunk)
            }
        }
    }
}
