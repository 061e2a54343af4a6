// Diagnostics the runtime writes on its own (configuration problems, mode switches).
import CUThreads

enum RuntimeLog {
    /// Writes one line to stderr with write(2): survives a crash that follows, and never
    /// allocates through stdio buffers that a crash would lose.
    static func notice(_ message: String) {
        uthreads_write_stderr("uthreads: \(message)\n")
    }
}
