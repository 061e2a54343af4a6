// Layer 7: pipes as typed reader and writer ends.

/// The read end of a pipe.
public final class PipeReader: DescriptorStream {
    override var kindName: String { "PipeReader" }
    public override init(owning fd: Int32) { super.init(owning: fd) }
}

/// The write end of a pipe. Writing after the reader closed throws EPIPE (SIGPIPE is ignored).
public final class PipeWriter: DescriptorStream {
    override var kindName: String { "PipeWriter" }
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
