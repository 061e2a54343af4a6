// Layer 11: a cross-worker waiter of the M:N runtime (the essay: MNRuntime.swift).

/// A cross-worker waiter: which runtime and worker, which row, which wait. The runtime is
/// carried so that any kernel thread can wake it (a `blocking {}` body, a thread holding an
/// `UThreadRuntime.Handle`), not only an M:N thread; a waiter is only in a list while its runtime runs.
@usableFromInline
struct MNWaiter: Sendable, Equatable {
    unowned(unsafe) let runtime: MNRuntime
    let worker: Int
    let block: UInt
    let token: UInt64

    @usableFromInline
    static func == (a: MNWaiter, b: MNWaiter) -> Bool {
        a.token == b.token && a.block == b.block && a.worker == b.worker && a.runtime === b.runtime
    }
}
