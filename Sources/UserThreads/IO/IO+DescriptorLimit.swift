// Layer 9: the process's descriptor limit, raised for servers that hold many connections.
import Glibc

extension IO {
    /// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit (-1 when
    /// getrlimit fails).
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
