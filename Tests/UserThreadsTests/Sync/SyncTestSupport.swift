import Synchronization
import Testing

@testable import UserThreads

/// The configurations every behavioural sync suite runs on: the M:1 runtime and two workers.
let syncWorkerCounts = [1, 2]

/// Runs `body` as the main thread of a runtime with `workers` workers: `run { }` for 1,
/// `run(workers:)` otherwise.
func runOn<R: Sendable>(workers: Int, _ body: @escaping @Sendable () throws -> R) throws -> R {
    if workers == 1 { return try UThreadRuntime.run { try body() } }
    return try UThreadRuntime.run(workers: workers) { try body() }
}

/// A thread spawned by `spawn(workers:)`: a `UThread` on the M:1 runtime, an `MNThread` on M:N.
enum Spawned<T: Sendable> {
    case m1(UThread<T>)
    case mn(MNThread<T>)

    func join() throws -> T {
        switch self {
        case .m1(let t): try t.join()
        case .mn(let t): try t.join()
        }
    }

    func cancel() {
        switch self {
        case .m1(let t): t.cancel()
        case .mn(let t): t.cancel()
        }
    }
}

/// Spawns a thread of the kind the runtime of `runOn(workers:)` uses.
func spawn<T: Sendable>(workers: Int, name: String = "", _ body: @escaping @Sendable () throws -> T) -> Spawned<T> {
    workers == 1 ? .m1(UThread(name: name, body)) : .mn(MNThread(name: name, body))
}

/// Waits (parking between looks) until `condition` holds: an event wait on state the test
/// observes, bounded by the suite's time limit.
func waitFor(_ condition: () -> Bool) throws {
    while !condition() { try UThread.sleep(for: .microseconds(50)) }
}

/// An append-only log shared by threads on any worker.
final class SyncLog<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func add(_ x: T) { items.withLock { $0.append(x) } }
    var all: [T] { items.withLock { $0 } }
}
