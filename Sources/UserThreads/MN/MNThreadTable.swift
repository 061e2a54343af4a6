// Layer 7: the merged thread table of an M:N runtime — every worker's rows in one snapshot.
//
// Design. Each worker's thread table belongs to its kernel thread: only that kernel thread may
// read its rows (no lock guards them, by design: the M:1 hot paths take none). So a merged
// snapshot is a question put to every worker. The caller takes its own worker's snapshot,
// posts an `MNMail.snapshot` request to every other worker and parks (not cancellable) with a
// deadline. Each worker answers when it next drains its mailbox — in its idle loop, or every
// 64 switches while its threads keep running (`maintenance`) — by adding its snapshot to the
// request; the last answer wakes the caller through the usual token-carrying cross-worker
// wake. A worker that does not answer before the deadline (one of its threads runs without a
// safe point) is listed in `unansweredWorkers`, and the table shows the others: a thread
// table never hangs. Rows keep their worker index (stored in every row at spawn), so the
// rendering shows a WORKER column.
//
// Rejected designs:
//   * Reading other workers' tables directly under a lock: every spawn, park and exit of every
//     worker would take it (M:1 would pay), or the reader would race with row reuse.
//   * A table per worker published after every change: a copy on the hot paths.
import CUThreads
import Glibc

/// A request for every worker's rows, answered through the workers' mailboxes.
final class MNTableRequest: WaitTarget, @unchecked Sendable {
    struct State {
        var waiter: MNWaiter?
        var tables: [Int: ThreadTable] = [:]
    }
    private let state = KernelLock(State())
    private unowned(unsafe) let runtime: MNRuntime
    let expected: Int

    init(runtime: MNRuntime, expected: Int) {
        self.runtime = runtime
        self.expected = expected
    }

    /// Publishes who to wake (before the request is posted).
    func setWaiter(_ w: MNWaiter) { state.withLock { $0.waiter = w } }

    /// A worker's answer; the last one wakes the requester (a late one is dropped by token).
    func deliver(worker: Int, table: ThreadTable) {
        let wake: MNWaiter? = state.withLock { st in
            st.tables[worker] = table
            return st.tables.count == expected ? st.waiter : nil
        }
        if let wake { runtime.wake(wake, .woken) }
    }

    /// The answers so far.
    var answers: [Int: ThreadTable] { state.withLock { $0.tables } }

    func waitDescription(kind: WaitReason.Kind) -> String {
        "thread-table snapshot (\(answers.count) of \(expected) other workers answered)"
    }
}

extension MNWorker {
    /// How long a merged snapshot waits for the other workers.
    static let tableTimeoutNanoseconds: UInt64 = 1_000_000_000

    /// Every worker's rows (see the essay). Called on a user thread of this worker.
    func threadTable(_ s: Scheduler) -> ThreadTable {
        let own = s.snapshot()
        let me = index
        let others = runtime.workers.filter { $0.index != me }
        var answers: [Int: ThreadTable] = [:]
        if !others.isEmpty {
            let request = MNTableRequest(runtime: runtime, expected: others.count)
            _ = withExtendedLifetime(request) {
                park(s, .custom, object: 0, target: request, deadline: uthreads_monotonic_ns() &+ MNWorker.tableTimeoutNanoseconds,
                     cancellable: false) { waiter in
                    request.setWaiter(waiter)
                    for w in others { w.post(.snapshot(request)) }
                    return true
                }
            }
            answers = request.answers
        }
        answers[me] = own
        let count = runtime.workers.count
        let tables = (0..<count).compactMap { answers[$0] }
        return ThreadTable(threads: tables.flatMap(\.threads), takenAtSeconds: own.takenAtSeconds,
                           switches: tables.reduce(0) { $0 &+ $1.switches }, spawned: tables.reduce(0) { $0 &+ $1.spawned },
                           tableBytes: tables.reduce(0) { $0 + $1.tableBytes },
                           workers: count, unansweredWorkers: (0..<count).filter { answers[$0] == nil })
    }
}
