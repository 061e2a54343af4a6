// Layer 13: the user-thread conformance of `ThreadingBackend`: thin wrappers over UThread, UMutex,
// UCondition and Channel. See ThreadingBackend.swift for the design and the Sendable argument.
import UserThreads

/// User threads of the M:1 runtime of the calling kernel thread.
public struct UserThreadsBackend: ThreadingBackend {
    /// The backend of the calling kernel thread's runtime (use it inside `UThreadRuntime.run`).
    public init() {}
    /// `.userThreads`.
    public var kind: BackendKind { .userThreads }

    /// A `UThread` running `body`.
    public func spawn<R: Sendable>(name: String, _ body: @escaping @Sendable () throws -> R) -> BackendThread<R> {
        BackendThread(.user(UThread(name: name, body)))
    }

    /// `UThread.yield()`.
    public func yield() { UThread.yield() }
    /// `UThread.sleep(for:)`.
    public func sleep(for duration: Duration) throws { try UThread.sleep(for: duration) }
    /// A `UMutex`.
    public func makeMutex(name: String) -> any BackendMutex { UserBackendMutex(UMutex(name: name)) }
    /// A `UCondition`.
    public func makeCondition(name: String) -> any BackendCondition { UserBackendCondition(UCondition(name: name)) }
    /// A `Channel<T>`.
    public func makeChannel<T: Sendable>(of type: T.Type, capacity: Int, name: String) throws(UThreadError)
        -> any BackendChannel<T>
    {
        UserBackendChannel(try Channel<T>(capacity: capacity, name: name))
    }
}

final class UserBackendMutex: BackendMutex, @unchecked Sendable {
    let mutex: UMutex
    init(_ mutex: UMutex) { self.mutex = mutex }
    func lock() throws { try mutex.lock() }
    func unlock() throws { try mutex.unlock() }
}

final class UserBackendCondition: BackendCondition, @unchecked Sendable {
    let condition: UCondition
    init(_ condition: UCondition) { self.condition = condition }
    func wait(_ mutex: any BackendMutex) throws {
        guard let m = mutex as? UserBackendMutex else {
            throw UThreadError.invalidArgument("a user-thread condition needs a user-thread mutex")
        }
        try condition.wait(m.mutex)
    }
    func signal() { condition.signal() }
    func broadcast() { condition.broadcast() }
}

final class UserBackendChannel<Element: Sendable>: BackendChannel, @unchecked Sendable {
    let channel: Channel<Element>
    init(_ channel: Channel<Element>) { self.channel = channel }
    var capacity: Int { channel.capacity }
    func send(_ value: Element) throws { try channel.send(value) }
    func receive() throws -> Element? { try channel.receive() }
    @discardableResult func close() -> Bool { channel.close() }
}
