// Layer 6: the access statics — how every layer above finds the calling kernel thread's
// scheduler without retaining it, and what a call from outside a user thread gets (a thrown
// error, or a clear stop where the API cannot throw).
//
// The why is in the essay at the top of Scheduler.swift ("Per-kernel-thread state").
import CUThreads
import Glibc

extension Scheduler {
    /// The scheduler of the calling kernel thread, or nil outside a runtime.
    @inline(__always)
    static var active: Scheduler? {
        guard let p = uthreads_get_runtime() else { return nil }
        return Unmanaged<Scheduler>.fromOpaque(p).takeUnretainedValue()
    }

    /// The scheduler of the calling kernel thread; stops with a clear message outside one.
    @inline(__always)
    static func require(_ api: StaticString) -> Scheduler {
        guard let p = uthreads_get_runtime() else { misuse(api) }
        return Unmanaged<Scheduler>.fromOpaque(p).takeUnretainedValue()
    }

    /// Runs `body` with the calling kernel thread's scheduler without retaining it (the hot
    /// paths: yield, spawn, park). Stops with a clear message outside a runtime.
    @inline(__always)
    static func with<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) rethrows -> R {
        guard let p = uthreads_get_runtime() else { misuse(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `with`, reading the runtime inline (`uthreads_get_runtime_here`: ~5 instructions less),
    /// for an entry point kept out of line (`@inline(never)`) that reads it once, before
    /// anything else (the header says why only there).
    @inline(__always)
    static func withAtEntry<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) rethrows -> R {
        guard let p = uthreads_get_runtime_here() else { misuse(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `withAtEntry` for an entry point that answers outside a runtime instead of stopping
    /// (`UThread.init`: a finished thread), with `outside()`. The same cost when a runtime
    /// runs; keeps `body` inlined (a closure literal given to `_withUnsafeGuaranteedRef` in
    /// the entry point itself stayed a function of its own: +74 instructions per spawn).
    @inline(__always)
    static func withAtEntry<R>(orElse outside: () throws -> R, _ body: (Scheduler) throws -> R) rethrows -> R {
        guard let p = uthreads_get_runtime_here() else { return try outside() }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `withOrThrow`, reading the runtime inline, on the terms of `withAtEntry`.
    @inline(__always)
    static func withOrThrowAtEntry<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) throws -> R {
        guard let p = uthreads_get_runtime_here() else { throw outsideUserThread(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// `require` for the entry points that throw: a call from outside a runtime is an error they
    /// report, not a reason to stop the process (only those that cannot throw stop).
    /// - Throws: `UThreadError.invalidArgument` naming `api` (`outsideUserThread`).
    @inline(__always)
    static func requireOrThrow(_ api: StaticString) throws(UThreadError) -> Scheduler {
        guard let p = uthreads_get_runtime() else { throw outsideUserThread(api) }
        return Unmanaged<Scheduler>.fromOpaque(p).takeUnretainedValue()
    }

    /// `with` for the entry points that throw (see `requireOrThrow`); the same cost when a
    /// runtime runs.
    @inline(__always)
    static func withOrThrow<R>(_ api: StaticString, _ body: (Scheduler) throws -> R) throws -> R {
        guard let p = uthreads_get_runtime() else { try throwOutsideUserThread(api) }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// The error of a throwing entry point called outside a user thread (outside any runtime,
    /// or on a runtime's idle loop).
    @inline(never)
    static func outsideUserThread(_ api: StaticString) -> UThreadError {
        .invalidArgument("\(api) must be called on a user thread (inside UThreadRuntime.run { … })")
    }

    /// Throws `outsideUserThread(api)`: out of line with the error's boxing, so that an entry
    /// point's frame holds only its fast path.
    @usableFromInline @inline(never)
    static func throwOutsideUserThread(_ api: StaticString) throws -> Never {
        throw outsideUserThread(api)
    }

    @inline(never)
    static func misuse(_ api: StaticString) -> Never {
        let message =
            "UserThreads: \(api) was called outside a user thread. Call it from code running inside UThreadRuntime.run { … }."
        uthreads_write_stderr("\n" + message + "\n")
        preconditionFailure(message)
    }
}
