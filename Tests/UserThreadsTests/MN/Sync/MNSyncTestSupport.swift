import Synchronization
import Testing
@testable import UserThreads

/// Waits (parking between looks) until M:N thread `t` is parked with wait kind `kind`, as the
/// merged thread table shows it. An event wait: the table is the evidence that the thread is in
/// the wait, on whichever worker. False after `looks` looks (a generous cap, never expected).
func waitUntilParked<T>(_ t: UThread<T>, _ kind: WaitReason.Kind, looks: Int = 20_000) throws -> Bool {
    for _ in 0..<looks {
        if let row = UThreadRuntime.threadTable().threads.first(where: { $0.id == t.id }),
            row.state == .blocked, row.waitReason?.kind == kind
        {
            return true
        }
        try UThread.sleep(for: .microseconds(100))
    }
    return false
}

/// An append-only log shared by M:N threads (order of events across workers).
final class MNLog: Sendable {
    private let items = Mutex<[String]>([])
    func add(_ s: String) { items.withLock { $0.append(s) } }
    var all: [String] { items.withLock { $0 } }
}

/// An `Atomic<Int>` with relaxed accesses that several threads' `sending` closures may capture
/// (a class: a local `Atomic` captured by every closure of a loop is one region, which only one
/// of them may take).
final class SharedAtomic: Sendable {
    private let value: Atomic<Int>
    init(_ value: Int) { self.value = Atomic(value) }
    func load() -> Int { value.load(ordering: .relaxed) }
    func store(_ v: Int) { value.store(v, ordering: .relaxed) }
    func compareExchange(expected: Int, desired: Int) -> (exchanged: Bool, original: Int) {
        value.compareExchange(expected: expected, desired: desired, ordering: .relaxed)
    }
}
