// Layer 1: the errors every layer throws (the base layer, below everything else in the library).
// (Stacks throw resourceExhausted, the scheduler's wake results map to these, the API rethrows.)
import Glibc
import SystemPackage

/// Errors thrown by the runtime. Cancellation is reported as Swift's `CancellationError`.
public enum UThreadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A parameter is out of range (the message says which and why).
    case invalidArgument(String)
    /// A `UThreadRuntime.Configuration` value is out of range.
    case invalidConfiguration(String)
    /// The kernel refused memory or mappings (stacks), or a limit was reached.
    case resourceExhausted(String)
    /// A wait's deadline passed.
    case timedOut
    /// What the thread waited on was closed or destroyed.
    case closed(String)
    /// No thread could ever run again; the message is the report (thread table, cycles).
    case deadlock(String)
    /// `UThreadRuntime.run` was called on a kernel thread that already runs a runtime.
    case nestedRuntime
    /// A thread of another runtime (another kernel thread) was used; M:1 runtimes share nothing.
    case foreignRuntime
    /// A system call failed.
    case system(call: String, errno: Errno)

    public var description: String {
        switch self {
        case .invalidArgument(let m): "invalid argument: \(m)"
        case .invalidConfiguration(let m): "invalid configuration: \(m)"
        case .resourceExhausted(let m): "resource exhausted: \(m)"
        case .timedOut: "timed out"
        case .closed(let m): "closed: \(m)"
        case .deadlock(let report): "deadlock: no user thread can ever run again\n\(report)"
        case .nestedRuntime: "UThreadRuntime.run called inside a running runtime on the same kernel thread"
        case .foreignRuntime: "the thread belongs to another runtime (another kernel thread)"
        case .system(let call, let errno): "\(call): \(errno)"
        }
    }
}

extension Errno {
    /// The calling kernel thread's errno, read at once (before anything can switch threads).
    @inline(__always)
    package static var lastError: Errno { Errno(rawValue: Glibc.errno) }
}
