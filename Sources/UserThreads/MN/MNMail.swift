// Layer 10: the messages M:N workers send each other (the essay: MNRuntime.swift).

/// A message to a worker from another kernel thread.
enum MNMail: Sendable {
    /// Wake row `block`'s wait `token` (a `Waiter` of Sync/Waiter.swift, parked here).
    case wake(block: UInt, token: UInt64, WakeResult)
    /// A wake sent by a thread running on worker `waker`: the woken thread may be handed to
    /// that worker if it is idle (`MNWorker.pull`; a ping-pong pair ends on one worker).
    case wakeNear(block: UInt, token: UInt64, WakeResult, waker: Int)
    /// A started, ready thread handed to this worker (`MNWorker.pull`): adopt it.
    case adopt(MNMigrant)
    case cancel(block: UInt, id: UInt64)
    /// Start this thread here (a spawn bound to this worker; never stolen).
    case start(MNThreadObject)
    /// Add this worker's thread-table rows (or dump) to a merged one (MNThreadTable.swift).
    case snapshot(MNTableRequest)
    /// A row of yours (and its stack) whose thread finished on another worker: free it.
    case reclaim(block: UInt)
    /// Another thread closed this descriptor: drop it from your reactor (waking its waiters
    /// with `.closed`) and answer the registry; the last answer closes it
    /// (Reactor/DescriptorRegistry.swift, "The deferred close").
    case closeDescriptor(Int32)
}
