// Layer 11: the M:N names of the primitives that now work on any number of workers (the one
// family: Sync/). Kept only so that code not yet renamed still compiles.

/// The mutex of every runtime: `UMutex`.
public typealias MNMutex = UMutex
/// The condition variable of every runtime: `UCondition`.
public typealias MNCondition = UCondition
/// The counting semaphore of every runtime: `USemaphore`.
public typealias MNSemaphore = USemaphore
/// The wait group of every runtime: `UWaitGroup`.
public typealias MNWaitGroup = UWaitGroup
/// The barrier of every runtime: `UBarrier`.
public typealias MNBarrier = UBarrier
/// The once-initialiser of every runtime: `UOnce`.
public typealias MNOnce = UOnce
/// The read–write lock of every runtime: `URWLock`.
public typealias MNRWLock = URWLock
