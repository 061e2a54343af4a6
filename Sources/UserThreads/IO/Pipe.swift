// Layer 9: pipes as typed reader and writer ends.

/// The read end of a pipe.
public final class PipeReader: DescriptorStream {
    override var kindName: String { "PipeReader" }
    /// Wraps `fd`, the read end of a pipe, which this object then owns: it is closed by `close()`
    /// or when the object is released.
    ///
    /// Precondition: `fd` is non-blocking (`IO.pipe()` and `Pipe.make()` make it so; set it with
    /// `IO.setNonBlocking(_:_:)` for a descriptor made elsewhere), otherwise an empty pipe blocks
    /// the whole kernel thread instead of parking the user thread.
    public override init(owning fd: Int32) { super.init(owning: fd) }
}

/// The write end of a pipe. Writing after the reader closed throws EPIPE (SIGPIPE is ignored).
public final class PipeWriter: DescriptorStream {
    override var kindName: String { "PipeWriter" }
    /// Wraps `fd`, the write end of a pipe, which this object then owns: it is closed by
    /// `close()` or when the object is released.
    ///
    /// Precondition: `fd` is non-blocking (`IO.pipe()` and `Pipe.make()` make it so; set it with
    /// `IO.setNonBlocking(_:_:)` for a descriptor made elsewhere), otherwise a full pipe blocks
    /// the whole kernel thread instead of parking the user thread.
    public override init(owning fd: Int32) { super.init(owning: fd) }
}

/// Makes pipes.
public enum Pipe {
    /// A new non-blocking, close-on-exec pipe.
    public static func make() throws -> (reader: PipeReader, writer: PipeWriter) {
        let (r, w) = try IO.pipe()
        return (PipeReader(owning: r), PipeWriter(owning: w))
    }
}
