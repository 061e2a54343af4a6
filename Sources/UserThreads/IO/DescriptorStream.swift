// Layer 9: the typed layer's base — an owned, non-blocking descriptor with byte-stream calls.
//
// Subclasses (TCPStream, UnixStream, PipeReader, PipeWriter) add what is specific to them. The
// descriptor is closed by `close()` (which wakes threads blocked on it with
// `UThreadError.closed`) or, as a last resort, when the object is released.
import CUThreads
import Glibc
import SystemPackage

/// A byte stream over a descriptor owned by this object.
public class DescriptorStream: CustomStringConvertible {
    /// The descriptor, or -1 once closed.
    public private(set) var fileDescriptor: Int32

    init(owning fd: Int32) { fileDescriptor = fd }

    deinit {
        if fileDescriptor >= 0 { try? IO.close(fileDescriptor, waiting: false) }  // a deinit never parks
    }

    /// Whether the descriptor is gone: `close()` was called or `release()` gave it up. Calls on
    /// a closed stream throw `UThreadError.closed`.
    public var isClosed: Bool { fileDescriptor < 0 }

    @inline(__always)
    func openDescriptor() throws -> Int32 {
        let fd = fileDescriptor
        if fd < 0 { throw UThreadError.closed("\(kindName) is closed") }
        return fd
    }

    var kindName: String { "stream" }

    /// The last read returned fewer bytes than asked: the kernel buffer was empty after it, so
    /// the next read waits for a new edge before calling read(2) (see DescriptorWaiters).
    private var drained = false

    /// Reads up to `buffer.count` bytes; 0 at end of stream.
    public func read(
        into buffer: UnsafeMutableRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        let fd = try openDescriptor()
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        if drained {
            drained = false
            if let s = Scheduler.active, let r = Reactor.existing(s) {
                try r.waitForReadEdge(fd, deadline: pending.resolve(now: s.now()))
            }
        }
        while true {
            switch try IO.attempt("read", { uthreads_sys_read(fd, buffer.baseAddress, buffer.count) }) {
            case .processed(let n):
                drained = n > 0 && n < buffer.count
                return n
            case .wouldBlock:
                try IO.waitFor(fd, .read, .read, &pending)
            }
        }
    }

    /// Reads up to `maxBytes` (at least 1); an empty array at end of stream. One read takes at
    /// most `DescriptorStream.maximumReadBytes` (16 MiB) whatever `maxBytes` says: a read may
    /// always return less than asked, and `read(upTo: .max)` must not try to allocate
    /// `Int.max` bytes. The array's storage is not zero-filled first.
    /// - Throws: `UThreadError.invalidArgument` when `maxBytes` is below 1 (an empty result
    ///   would be indistinguishable from the end of the stream); as `read(into:timeout:deadline:)`.
    public func read(upTo maxBytes: Int = 64 * 1024, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil)
        throws -> [UInt8]
    {
        guard maxBytes >= 1 else {
            throw UThreadError.invalidArgument("read(upTo: \(maxBytes)): maxBytes must be at least 1")
        }
        let capacity = min(maxBytes, DescriptorStream.maximumReadBytes)
        return try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            count = try read(into: UnsafeMutableRawBufferPointer(buffer), timeout: timeout, deadline: deadline)
        }
    }

    /// The most one `read(upTo:)` asks the kernel for (16 MiB).
    public static let maximumReadBytes = 16 << 20

    /// Reads until end of stream.
    public func readToEnd(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = try read(upTo: 64 * 1024, timeout: timeout, deadline: deadline)
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    /// Writes some of `buffer`; returns how many bytes were written.
    public func write(
        _ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        try IO.write(try openDescriptor(), from: buffer, timeout: timeout, deadline: deadline)
    }

    /// Writes all of `buffer` (waiting for the reader as needed: backpressure).
    public func write(
        all buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        try IO.write(try openDescriptor(), all: buffer, timeout: timeout, deadline: deadline)
    }

    /// Writes all of `bytes`.
    public func write(all bytes: [UInt8], timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        try bytes.withUnsafeBytes { try write(all: $0, timeout: timeout, deadline: deadline) }
    }

    /// Writes all of `text` as UTF-8.
    public func write(all text: String, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        var copy = text
        try copy.withUTF8 { try write(all: UnsafeRawBufferPointer($0), timeout: timeout, deadline: deadline) }
    }

    /// Closes the descriptor, waking threads blocked on it with `UThreadError.closed`.
    /// Idempotent.
    public func close() throws {
        let fd = fileDescriptor
        guard fd >= 0 else { return }
        fileDescriptor = -1
        try IO.close(fd)
    }

    /// Gives up ownership: returns the descriptor, which this object no longer closes.
    public func release() -> Int32 {
        let fd = fileDescriptor
        fileDescriptor = -1
        return fd
    }

    public var description: String { "\(kindName)(fd \(fileDescriptor))" }
}

/// A connected socket stream (the part TCP and Unix-domain streams share).
public class SocketStream: DescriptorStream {
    /// send(2) with MSG_NOSIGNAL: a reset peer gives EPIPE/ECONNRESET as an error.
    public func send(
        _ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws -> Int {
        try IO.send(try openDescriptor(), from: buffer, timeout: timeout, deadline: deadline)
    }

    /// Writes all of `buffer` with send(2) (MSG_NOSIGNAL).
    public override func write(
        all buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws {
        try IO.send(try openDescriptor(), all: buffer, timeout: timeout, deadline: deadline)
    }

    /// Shuts down the writing side (the peer reads end of stream).
    public func shutdownWrite() throws { try IO.shutdown(try openDescriptor(), how: Int32(SHUT_WR)) }

    /// The peer's address.
    public var peerAddress: SocketAddress? {
        guard fileDescriptor >= 0 else { return nil }
        return try? SocketAddress.fill { a, l in
            if getpeername(fileDescriptor, a, l) < 0 {
                throw UThreadError.system(call: "getpeername", errno: .lastError)
            }
        }
    }

    /// The local address.
    public var localAddress: SocketAddress? {
        guard fileDescriptor >= 0 else { return nil }
        return try? SocketAddress.fill { a, l in
            if getsockname(fileDescriptor, a, l) < 0 {
                throw UThreadError.system(call: "getsockname", errno: .lastError)
            }
        }
    }
}
