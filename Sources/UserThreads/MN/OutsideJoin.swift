// Layer 10: a join from a kernel thread outside every runtime, of a thread spawned into one through
// `UThread.runtime`'s handle: who may block in it, and what it throws when the runtime has ended.
// Both runtimes use it: the M:N thread object (MNThreadObject.swift) and, in the Runtime layer
// above, the thread injected into a runtime of one worker (Runtime/InjectedThread.swift); it is
// here, in the lower of the two layers, so that neither calls up.

extension UThreadError {
    /// What `join()` throws for a thread spawned from outside into a runtime that had ended (or
    /// was ending past the point where it would still run it), at any number of workers.
    static var runtimeEnded: UThreadError { .closed("the runtime has ended") }
}

/// Throws unless the calling kernel thread may block in a join from outside: a user thread of
/// another runtime gets `.foreignRuntime` (its thread is not this runtime's), a runtime's idle
/// loop `.invalidArgument` (blocking it would stop its runtime).
func checkOutsideJoin(_ api: StaticString) throws {
    guard let s = Scheduler.active else { return }
    if s.onUserThread { throw UThreadError.foreignRuntime }
    throw syncOutsideUserThread(api)
}
