// Layer 11: the M:N names of the primitives that now work on any number of workers (the one
// family: Sync/). Kept only so that code not yet renamed still compiles.

/// The mutex of every runtime: `UMutex`.
public typealias MNMutex = UMutex
/// The condition variable of every runtime: `UCondition`.
public typealias MNCondition = UCondition
/// The counting semaphore of every runtime: `USemaphore`.
public typealias MNSemaphore = USemaphore
