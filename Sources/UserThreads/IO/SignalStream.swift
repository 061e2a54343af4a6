// Layer 9: process signals as a descriptor a user thread reads, so a signal becomes an event.
//
// Design essay
// ============
//
// A signal handler may run only async-signal-safe code: no Swift (it allocates, retains and
// takes the runtime's locks), no scheduler. A server that wants to stop gracefully on SIGTERM
// must therefore turn the signal into something the runtime can wait on.
//
// Chosen: signalfd(2). The signals are blocked (so the kernel never runs a handler or the
// default action for them) and stay pending until a thread reads them from the descriptor,
// which is an ordinary readable descriptor: `next(timeout:deadline:)` parks on the reactor like any
// read, with a timeout, a deadline, cancellation and the wait reason `read fd N`. A blocked signal is delivered to
// any thread of the process that does not block it, so the mask must be set before other
// kernel threads start: `SignalStream.init` blocks the signals in the calling kernel thread and
// every thread it starts later (M:N workers, the offload pool) inherits the mask. Create it
// before `UThreadRuntime.run(workers:)`, or in a single-threaded process.
//
// Rejected: a self-pipe written by a C handler works with any mask but needs process-wide
// handler state (one pipe per signal number, shared by every runtime) and a handler that must
// save errno; signalfd needs neither. A flag polled at safe points (as the dump signal does)
// cannot wake a thread parked in a long wait without a timer that polls.
import CUThreads
import Glibc

/// A set of signals read as events: while it exists, the signals are blocked (no handler, no
/// default action) and each arrival is returned by `next(timeout:deadline:)`, on any user thread of any
/// runtime (it is `Sendable`: an M:N thread may wait on it).
///
/// Create it before any other kernel thread starts (before `UThreadRuntime.run(workers:)`):
/// the signals are blocked in the calling kernel thread and in threads it starts afterwards; a
/// thread started earlier that does not block them still receives them the usual way. The
/// signals stay blocked when the stream is released (a signal sent then stays pending).
public final class SignalStream: Sendable, CustomStringConvertible {
    /// The signals this stream reads.
    public let signals: [Int32]
    /// The signalfd descriptor (non-blocking, close-on-exec), closed when the stream is released.
    public let fileDescriptor: Int32

    /// Blocks `signals` in the calling kernel thread and opens a descriptor that reports them.
    /// - Throws: `UThreadError.invalidArgument` for an empty list or a number that is not a
    ///   signal, one that cannot be blocked (SIGKILL, SIGSTOP), or one a fault raises (SIGSEGV,
    ///   SIGBUS, SIGILL, SIGFPE: blocked, a fault kills the process at once, so the runtime's
    ///   stack-overflow report never runs); `.system(call: "signalfd", …)`.
    public init(signals: [Int32]) throws {
        guard !signals.isEmpty else { throw UThreadError.invalidArgument("SignalStream needs at least one signal") }
        for s in signals where s <= 0 || s >= 65 || [SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE].contains(s) {
            throw UThreadError.invalidArgument("SignalStream cannot read signal \(s)")
        }
        let fd = signals.withUnsafeBufferPointer { uthreads_signalfd_open($0.baseAddress!, Int32($0.count)) }
        if fd < 0 { throw UThreadError.system(call: "signalfd", errno: .lastError) }
        self.signals = signals
        fileDescriptor = fd
    }

    deinit { try? IO.close(fileDescriptor, waiting: false) }  // a deinit never parks

    /// Parks until one of the signals arrives and returns its number.
    /// - Throws: `.timedOut`, `CancellationError`, `.system(call: "read", …)`.
    public func next(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> Int32 {
        var info = [UInt8](repeating: 0, count: Int(UTHREADS_SIGNALFD_INFO_SIZE))
        let n = try info.withUnsafeMutableBytes {
            try IO.read(fileDescriptor, into: $0, timeout: timeout, deadline: deadline)
        }
        // signalfd returns whole records; ssi_signo (a UInt32) comes first.
        guard n == info.count else { throw UThreadError.closed("signalfd returned \(n) bytes") }
        return Int32(bitPattern: info.withUnsafeBytes { $0.load(as: UInt32.self) })
    }

    /// "SignalStream(fd N: signals …)".
    public var description: String { "SignalStream(fd \(fileDescriptor): signals \(signals))" }
}
