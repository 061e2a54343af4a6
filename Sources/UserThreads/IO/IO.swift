// Layer 9: blocking-style I/O for user threads — the system-call wrappers.
//
// Design essay
// ============
//
// Every wrapper has the shape of SwiftNIO's NIOPosix/System.swift, plus a park:
//
//     loop: n = syscall(...)           // the descriptor is O_NONBLOCK
//           n >= 0          -> return n
//           errno == EINTR  -> retry
//           errno == EAGAIN -> park this user thread until the reactor reports readiness
//                              (or the deadline passes, or cancel()), then retry
//           otherwise       -> throw UThreadError.system(call: "read", errno: …)
//
// `errno` is read immediately after the call, before anything can switch threads (a switch
// would let another user thread's call overwrite it). EAGAIN is a value inside the loop
// (`IOResult.wouldBlock`), never an error the caller sees.
//
// Timeouts and cancellation. Every wrapper takes `timeout:` and `deadline:` (nil: no limit; both
// given: the earlier wins, and a deadline already past means one non-blocking try, then
// `.timedOut`: the rules of Timers/Deadline.swift, as for the sync primitives); they are turned
// into one CLOCK_MONOTONIC deadline at the first wait, so a call that parks several times
// (a partial `write(all:)`) still ends by the same instant: `UThreadError.timedOut`. Every wait
// is cancellable: `UThread.cancel()` ends it with `CancellationError`. A call that does not
// need to wait completes even for a cancelled thread, so a cancelled thread's `defer` can still
// flush and close.
//
// Descriptors. Descriptors made here (pipes, socketpairs, sockets, accepted connections) are
// O_NONBLOCK and O_CLOEXEC. A descriptor from elsewhere must be made non-blocking first
// (`IO.setNonBlocking`), except the standard streams, which are shared with the parent process
// (setting O_NONBLOCK on a terminal changes it for the shell too): `IO.standardInput` and
// friends wait for readiness first and then make the plain call (at most 4 KiB per write, which
// a writable pipe always accepts). Close waited-on descriptors with `IO.close` (the typed
// layer does): it wakes the waiters with `UThreadError.closed` (under M:N on every worker: when
// other workers watch the descriptor the close is deferred to the last of them, and `IO.close`
// waits for it; a deinit's close does not, Reactor/DescriptorRegistry.swift).
//
// SIGPIPE is ignored process-wide when the first runtime starts (Scheduler.init), and `send` adds
// MSG_NOSIGNAL; writing to a closed peer throws EPIPE instead of killing the process.
import CUThreads
import Glibc
import SystemPackage

/// System-call wrappers that park the calling user thread instead of blocking its kernel
/// thread. Call them from code running inside `UThreadRuntime.run`.
///
/// Every call that may wait takes `timeout:` (a `Duration` from the call) and `deadline:` (a
/// `ContinuousClock.Instant`), both optional: given both, the earlier wins; one not in the
/// future means a single non-blocking try, then `UThreadError.timedOut`.
public enum IO {}

extension IO {
    /// Throws unless `text` can be handed to C as it is: C reads a string up to its first NUL
    /// byte, so "/tmp/a\0b" would silently name "/tmp/a" (bind, connect, open, unlink there).
    /// `what` names the argument in the message.
    static func checkNoNUL(_ text: String, _ what: String) throws(UThreadError) {
        guard !text.utf8.contains(0) else {
            throw .invalidArgument("\(what) \(text.debugDescription) contains a NUL byte")
        }
    }
}

/// The outcome of one non-blocking attempt: done, or "would block" (EAGAIN as a value).
enum IOResult<T> {
    case processed(T)
    case wouldBlock
}

extension IO {
    /// One attempt of a call returning `ssize_t`: retries EINTR, maps EAGAIN to `.wouldBlock`,
    /// throws other errors naming `call`.
    @inline(__always)
    static func attempt(_ call: StaticString, _ body: () -> Int) throws(UThreadError) -> IOResult<Int> {
        while true {
            let n = body()
            if n >= 0 { return .processed(n) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS { return .wouldBlock }
            throw .system(call: call.description, errno: Errno(rawValue: e))
        }
    }

    /// Tries `body` until it does not return EAGAIN, parking for `direction` in between.
    @inline(__always)
    static func retrying(
        _ call: StaticString, _ fd: Int32, _ direction: IODirection, _ kind: WaitReason.Kind,
        timeout: Duration?, deadline: ContinuousClock.Instant?, _ body: () -> Int
    ) throws -> Int {
        var pending = PendingDeadline(timeout: timeout, deadline: deadline)
        return try retrying(call, fd, direction, kind, &pending, body)
    }

    /// `retrying` by a deadline shared with the caller's other waits.
    @inline(__always)
    static func retrying(
        _ call: StaticString, _ fd: Int32, _ direction: IODirection, _ kind: WaitReason.Kind,
        _ deadline: inout PendingDeadline, _ body: () -> Int
    ) throws -> Int {
        while true {
            switch try attempt(call, body) {
            case .processed(let n): return n
            case .wouldBlock: try waitFor(fd, direction, kind, &deadline)
            }
        }
    }

    /// Parks the caller until the reactor reports `fd` ready (or may be ready).
    @inline(never)
    static func waitFor(
        _ fd: Int32, _ direction: IODirection, _ kind: WaitReason.Kind,
        _ deadline: inout PendingDeadline
    ) throws {
        let s = try Scheduler.requireOrThrow("an I/O call that must wait")
        try Reactor.of(s).wait(fd, direction, kind: kind, deadline: deadline.resolve(now: s.now()))
    }
}

/// The call's `timeout:` and `deadline:` turned into one deadline at the first wait (no clock
/// read for calls that never wait): the earlier of the two, by `Deadline.earliest`.
struct PendingDeadline {
    private var timeout: Duration?
    private var instant: ContinuousClock.Instant?
    private var resolved = false
    private var deadline: UInt64?

    init(timeout: Duration?, deadline: ContinuousClock.Instant?) {
        self.timeout = timeout
        self.instant = deadline
    }

    mutating func resolve(now: @autoclosure () -> UInt64) -> UInt64? {
        if !resolved {
            resolved = true
            deadline = Deadline.earliest(timeout: timeout, deadline: instant, now: now())  // nil: no limit
        }
        return deadline
    }
}
