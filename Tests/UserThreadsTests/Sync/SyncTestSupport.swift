import Testing

@testable import UserThreads

/// The configurations every behavioural sync suite runs on: the M:1 runtime and two workers.
let syncWorkerCounts = [1, 2]

/// Runs `body` as the main thread of a runtime with `workers` workers.
func runOn<R: Sendable>(workers: Int, _ body: @escaping @Sendable () throws -> R) throws -> R {
    try UThreadRuntime.run(workers: workers) { try body() }
}

/// Waits (parking between looks) until `condition` holds: an event wait on state the test
/// observes, bounded by the suite's time limit.
func waitFor(_ condition: () -> Bool) throws {
    while !condition() { try UThread.sleep(for: .microseconds(50)) }
}

/// An append-only log shared by threads on any worker (under a `KernelLock`, which
/// ThreadSanitizer sees).
final class SyncLog<T: Sendable>: Sendable {
    private let items = KernelLock<[T]>([])
    func add(_ x: T) { items.withLock { $0.append(x) } }
    var all: [T] { items.withLock { $0 } }
}
