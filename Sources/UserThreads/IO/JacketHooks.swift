// Layer 9: the runtime's side of the jacket — what the opt-in interposer of the C library's
// blocking calls (Sources/UserThreadsJacket, essay in its jacket_core.c) may ask of a runtime.
//
// The jacket is C and may be a preloaded shared object, so it cannot call into this module by
// name. When the first runtime of the process starts, `connect()` hands it a table of C
// function pointers (CUThreadsJacketABI) — the same reactor wait that `IO.read` uses on EAGAIN,
// a user-thread sleep, the offload pool, and `IO.close` — plus the offset of the
// per-kernel-thread "current user thread" pointer, which the jacket reads itself (one load)
// to decide whether a call is made on a user thread. Programs without a jacket are unaffected:
// `connect()` then costs one weak-symbol test and one dlsym, once per process.
//
// Each hook returns 0 or an errno value, never throws across the C boundary: ETIMEDOUT for a
// passed deadline, ECANCELED for a cancelled thread, EBADF for a descriptor closed while the
// thread waited, EPERM for a descriptor epoll refuses (a regular file: the jacket then makes
// the real call), the errno of a failed epoll_ctl otherwise.
import CUThreads
import CUThreadsJacketABI
import Glibc
import SystemPackage

enum JacketHooks {
    /// Offers the hooks to the jacket, once per process (a global's lazy initialisation).
    @inline(__always)
    static func connect() { _ = connected }

    private static let connected: Bool = {
        let table = UnsafeMutablePointer<uthreads_jacket_runtime>.allocate(capacity: 1)  // lives for the process
        table.initialize(
            to: uthreads_jacket_runtime(
                version: 0, current_tls_offset: 0,
                now: { Scheduler.active?.now() ?? uthreads_monotonic_ns() },
                wait_fd: { fd, shown, direction, kind, deadline in
                    JacketHooks.wait(fd, direction, kind, deadline, shown: shown)
                },
                sleep_until: { deadline in JacketHooks.sleep(until: deadline) },
                offload: { body, context in JacketHooks.offload(body, context) },
                closing: { fd in JacketHooks.close(fd) }))
        return uthreads_jacket_connect(table) != 0
    }()

    private static func wait(
        _ fd: Int32, _ direction: Int32, _ kind: Int32, _ deadline: UInt64, shown: Int32
    ) -> Int32 {
        guard let s = Scheduler.active, s.onUserThread else { return EPERM }
        let reason: WaitReason.Kind =
            switch Int(kind) {
            case Int(UTHREADS_JACKET_KIND_WRITE): .write
            case Int(UTHREADS_JACKET_KIND_ACCEPT): .accept
            case Int(UTHREADS_JACKET_KIND_CONNECT): .connect
            case Int(UTHREADS_JACKET_KIND_POLL): .poll
            case Int(UTHREADS_JACKET_KIND_SLEEP): .sleep
            default: .read
            }
        return errnoValue {
            let reactor = try Reactor.of(s)
            let waited = try reactor.jacketWait(
                fd, direction == Int32(UTHREADS_JACKET_WRITE) ? .write : .read,
                kind: reason, deadline: deadline == .max ? nil : deadline, shown: shown >= 0 ? shown : fd)
            return waited ? 0 : EPERM
        }
    }

    /// The jacket's close: `IO.close` (every worker's waiters woken, close(2) by the last
    /// watcher, the caller parked until then); -1 off a user thread (the jacket closes).
    private static func close(_ fd: Int32) -> Int32 {
        guard let s = Scheduler.active, s.onUserThread else { return -1 }
        return errnoValue {
            try IO.close(fd, waiting: true)
            return 0
        }
    }

    private static func sleep(until deadline: UInt64) -> Int32 {
        guard let s = Scheduler.active, s.onUserThread else { return EPERM }
        return errnoValue {
            if deadline == .max {
                while true { try UThread.sleep(for: .seconds(86_400)) }  // poll(NULL, 0, -1): until cancelled
            }
            let now = s.now()
            try UThread.sleep(for: .nanoseconds(Int64(clamping: deadline > now ? deadline - now : 0)))
            return 0
        }
    }

    /// The C body and its context, handed to a pool thread that runs it to completion.
    private struct CCall: @unchecked Sendable {
        let body: @convention(c) (UnsafeMutableRawPointer?) -> Void
        let context: UnsafeMutableRawPointer?
    }

    private static func offload(
        _ body: @convention(c) (UnsafeMutableRawPointer?) -> Void,
        _ context: UnsafeMutableRawPointer?
    ) -> Int32 {
        guard let s = Scheduler.active, s.onUserThread else { return EPERM }
        let call = CCall(body: body, context: context)
        return errnoValue {
            try blockingToCompletion { call.body(call.context) }
            return 0
        }
    }

    /// Runs `body` and turns what it throws into the errno the jacket reports.
    private static func errnoValue(_ body: () throws -> Int32) -> Int32 {
        do { return try body() } catch let error as UThreadError {
            switch error {
            case .timedOut: return ETIMEDOUT
            case .closed: return EBADF
            case .system(_, let errno): return errno.rawValue
            default: return EIO
            }
        } catch is CancellationError {
            return ECANCELED
        } catch {
            return EIO
        }
    }
}
