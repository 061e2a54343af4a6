// Layer 13 (a benchmark harness over the public API): one workload, two thread implementations.
//
// Design essay
// ============
//
// The textbook comparison is only fair if the *same* workload code runs on user threads and on
// kernel threads. `ThreadingBackend` is the small set of operations both share — spawn, join,
// yield, sleep, mutex, condition variable, channel — and nothing else: no timeouts, no
// cancellation, no thread table (the kernel has its own, see `KernelThreadTable`).
//
//   * `UserThreadsBackend`: `UThread`, `UMutex`, `UCondition`, `Channel` on the M:1 runtime of
//     the calling kernel thread. Its wrappers are thin classes over the real primitives: the
//     user-thread fast paths themselves are untouched.
//   * `KernelThreadsBackend`: one pthread per thread, `pthread_mutex_t`, `pthread_cond_t`, a
//     channel built on them, `nanosleep`, `sched_yield`.
//
// How a workload chooses (the chosen entry point):
//
//     try UThreadRuntime.run(backend: .kernelThreads) { threads in
//         let t = threads.spawn { 6 * 7 }
//         return try t.join()
//     }
//
// `run(backend:)` hands the body an `any ThreadingBackend`. Under `.userThreads` it is
// `UThreadRuntime.run` (the body is the main user thread); under `.kernelThreads` the body runs
// on the calling kernel thread and every `spawn` is a `pthread_create`; `run` joins every thread
// still running before it returns (kernel threads cannot be cancelled here, so a thread that
// never ends keeps `run` waiting — as an unjoined pthread would keep a process alive).
//
// Sendability: under kernel threads closures cross kernel threads, so `spawn` takes a
// `@Sendable` closure returning a `Sendable` value, and the primitives are `Sendable`. The
// user-thread wrappers are `@unchecked Sendable`: every user thread of a runtime runs on one
// kernel thread, and the runtime refuses (`UThreadError.foreignRuntime`) or traps on use from
// another kernel thread, so they can never actually be shared across threads.
//
// Rejected designs:
//   * Associated types for the primitives (`associatedtype Mutex`): faster by a dynamic
//     dispatch, but every test and workload would have to be a generic function opened from an
//     existential; existentials keep the workload code plain and both backends pay the same
//     dispatch, which keeps the comparison fair. The benchmarks' headline rows call the
//     primitives directly (and the C peers), not through this layer.
//   * A global switch inside `UThread` ("if kernel mode, pthread_create"): it would put a
//     branch on the user-thread fast paths and mix two ownership models in one type.
import UserThreads

/// Which implementation of threads a workload runs on.
public enum BackendKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// User threads: the M:1 runtime of this package.
    case userThreads
    /// Kernel threads: one pthread per thread.
    case kernelThreads

    public var description: String { rawValue }
}

/// The operations user threads and kernel threads share. Obtain one from
/// `UThreadRuntime.run(backend:_:)`; call it from the threads of that run only.
public protocol ThreadingBackend: Sendable {
    /// Which implementation this is.
    var kind: BackendKind { get }
    /// Starts a thread running `body`.
    func spawn<R: Sendable>(name: String, _ body: @escaping @Sendable () throws -> R) -> BackendThread<R>
    /// Lets another thread run (`UThread.yield()` / `sched_yield()`).
    func yield()
    /// Blocks the calling thread for at least `duration`.
    func sleep(for duration: Duration) throws
    /// A new mutex (`name` shows in the user thread table's wait reasons; pthreads ignore it).
    func makeMutex(name: String) -> any BackendMutex
    /// A new condition variable, to be used with a mutex of the same backend.
    func makeCondition(name: String) -> any BackendCondition
    /// A new channel of `T` values; `capacity` 0 is a rendezvous.
    /// - Throws: `UThreadError.invalidArgument` when `capacity` is negative.
    func makeChannel<T: Sendable>(of type: T.Type, capacity: Int, name: String) throws(UThreadError)
        -> any BackendChannel<T>
}

extension ThreadingBackend {
    /// Starts an unnamed thread running `body`.
    public func spawn<R: Sendable>(_ body: @escaping @Sendable () throws -> R) -> BackendThread<R> {
        spawn(name: "", body)
    }
    /// A new unnamed mutex.
    public func makeMutex() -> any BackendMutex { makeMutex(name: "") }
    /// A new unnamed condition variable.
    public func makeCondition() -> any BackendCondition { makeCondition(name: "") }
    /// A new unnamed channel (default: unbuffered).
    /// - Throws: `UThreadError.invalidArgument` when `capacity` is negative.
    public func makeChannel<T: Sendable>(of type: T.Type, capacity: Int = 0) throws(UThreadError) -> any BackendChannel<
        T
    > {
        try makeChannel(of: type, capacity: capacity, name: "")
    }
}

/// A mutual-exclusion lock of either backend (not recursive).
public protocol BackendMutex: AnyObject, Sendable {
    /// Acquires the lock, blocking while another thread holds it.
    func lock() throws
    /// Releases the lock (the caller must hold it).
    func unlock() throws
}

extension BackendMutex {
    /// Runs `body` holding the lock.
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { try? unlock() }
        return try body()
    }
}

/// A condition variable of either backend; `wait` takes a mutex of the same backend.
public protocol BackendCondition: AnyObject, Sendable {
    /// Atomically releases `mutex` (held by the caller), waits for a signal, reacquires it.
    /// Spurious wake-ups are possible under kernel threads: wait in a loop on a predicate.
    func wait(_ mutex: any BackendMutex) throws
    /// Wakes one waiter, if any.
    func signal()
    /// Wakes every waiter.
    func broadcast()
}

extension BackendCondition {
    /// Waits (holding `mutex`) until `predicate` is true.
    public func wait(_ mutex: any BackendMutex, until predicate: () throws -> Bool) throws {
        while try !predicate() { try wait(mutex) }
    }
}

/// A typed FIFO channel of either backend, with `Channel`'s semantics: capacity 0 is a
/// rendezvous; `receive` returns nil once closed and drained; `send` on a closed channel (or one
/// closed while the sender waits) throws `UThreadError.closed`.
public protocol BackendChannel<Element>: AnyObject, Sendable {
    /// The type of the values.
    associatedtype Element: Sendable
    /// How many values it buffers (0: a rendezvous).
    var capacity: Int { get }
    /// Sends `value`, blocking while no receiver is ready and the buffer is full.
    func send(_ value: Element) throws
    /// The next value, blocking while there is none; nil once closed and drained.
    func receive() throws -> Element?
    /// Returns false if it was already closed.
    @discardableResult func close() -> Bool
}

/// A thread of either backend; `join` waits for it and returns its value or rethrows its error.
/// Join it from any thread of the same run, any number of times.
public final class BackendThread<R: Sendable>: @unchecked Sendable {
    // @unchecked: `.user` is only ever touched on the one kernel thread of its runtime (see the
    // essay); `.kernel` is itself Sendable.
    enum Storage {
        case user(UThread<R>)
        case kernel(KernelThread<R>)
    }

    let storage: Storage
    init(_ storage: Storage) { self.storage = storage }

    /// Waits for the thread to finish; returns its value or rethrows its error.
    public func join() throws -> R {
        switch storage {
        case .user(let t): try t.join()
        case .kernel(let t): try t.join()
        }
    }
}

extension UThreadRuntime {
    /// Runs `body` with threads of the chosen backend: `.userThreads` runs it as the main user
    /// thread of a new M:1 runtime (with `configuration`); `.kernelThreads` runs it on the calling
    /// kernel thread, with one pthread per spawned thread, and joins every thread before
    /// returning. Returns the body's value or rethrows its error.
    public static func run<R>(
        backend kind: BackendKind,
        _ configuration: Configuration = Configuration(),
        _ body: (any ThreadingBackend) throws -> R
    ) throws -> R {
        switch kind {
        case .userThreads:
            return try run(configuration) { try body(UserThreadsBackend()) }
        case .kernelThreads:
            let backend = KernelThreadsBackend()
            defer { backend.joinAll() }
            return try body(backend)
        }
    }
}
