// Layer 9: regular files through the offload pool (epoll cannot wait on them; a slow disk
// would block the whole runtime).
import Glibc
import SystemPackage

extension IO {
    /// The whole content of the file at `path`, read on the offload pool.
    ///
    /// The wait ends at `timeout`, at `deadline` (the earlier wins) or when the thread is
    /// cancelled; a read already started then runs on to its end on its pool thread and its
    /// bytes are dropped (see ``blocking(timeout:deadline:_:)``).
    /// - Throws: `UThreadError.system` naming the failed call; `.invalidArgument` when `path`
    ///   contains a NUL byte; `.timedOut`; `CancellationError`.
    public static func readFile(
        _ path: String, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> [UInt8] {
        try checkNoNUL(path, "path")
        return try blocking(timeout: timeout, deadline: deadline) { try readFileNow(path) }
    }

    /// Writes `bytes` to `path` (created or truncated, mode 0644) and fsyncs it, on the pool.
    ///
    /// The wait ends at `timeout`, at `deadline` (the earlier wins) or when the thread is
    /// cancelled. A write that no pool thread has started then never happens; one already
    /// started runs on to its end in the background (the file may be written after this
    /// throws: see ``blocking(timeout:deadline:_:)``).
    /// - Throws: `UThreadError.system` naming the failed call; `.invalidArgument` when `path`
    ///   contains a NUL byte; `.timedOut`; `CancellationError`.
    public static func writeFile(
        _ path: String, _ bytes: [UInt8], timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        try checkNoNUL(path, "path")
        try blocking(timeout: timeout, deadline: deadline) {
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { throw UThreadError.system(call: "open", errno: .lastError) }
            defer { Glibc.close(fd) }
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 {
                    if Glibc.errno == EINTR { continue }
                    throw UThreadError.system(call: "write", errno: .lastError)
                }
                offset += n
            }
            if fsync(fd) < 0 { throw UThreadError.system(call: "fsync", errno: .lastError) }
        }
    }

    /// Reads a file with plain blocking calls (runs on a pool thread).
    static func readFileNow(_ path: String) throws -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw UThreadError.system(call: "open", errno: .lastError) }
        defer { Glibc.close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw UThreadError.system(call: "read", errno: .lastError)
            }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }
}
