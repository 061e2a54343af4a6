// Layer 10: the merged thread table of an M:N runtime — every worker's rows in one snapshot
// (and the merged thread dump, the same question with backtraces).
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
// The same request serves a kernel thread outside the workers (the control socket's server):
// it asks *every* worker, and waits on the request's eventfd (poll with a deadline) instead of
// parking. The eventfd belongs to the request object, which every mailbox that holds the
// request retains: a late answer never writes to a closed descriptor.
//
// Rejected designs:
//   * Reading other workers' tables directly under a lock: every spawn, park and exit of every
//     worker would take it (M:1 would pay), or the reader would race with row reuse.
//   * A table per worker published after every change: a copy on the hot paths.
import CUThreads
import Glibc

/// A request for every worker's rows (or dump), answered through the workers' mailboxes.
final class MNTableRequest: WaitTarget, @unchecked Sendable {
    /// What each worker adds.
    enum Kind {
        case table
        case dump(reason: String)
    }

    /// One worker's answer.
    enum Part {
        case table(ThreadTable)
        case dump(ThreadDump)
    }

    struct State {
        var waiter: Waiter?
        var parts: [Int: Part] = [:]
    }
    private let state = KernelLock(State())
    private unowned(unsafe) let runtime: MNRuntime
    let kind: Kind
    let expected: Int
    /// For a requester that is not a user thread: written when the last answer arrives (-1:
    /// none). Closed with the request.
    let bell: Int32

    init(runtime: MNRuntime, kind: Kind, expected: Int, kernelWaiter: Bool = false) {
        self.runtime = runtime
        self.kind = kind
        self.expected = expected
        bell = kernelWaiter ? uthreads_eventfd_create() : -1
    }

    deinit { if bell >= 0 { uthreads_sys_close(bell) } }

    /// Publishes who to wake (before the request is posted).
    func setWaiter(_ w: Waiter) { state.withLock { $0.waiter = w } }

    /// A worker's answer, taken on its own kernel thread; the last one wakes the requester (a
    /// late one is dropped by token).
    func answer(worker: Int, _ s: Scheduler) {
        let part = MNTableRequest.part(kind, s)
        let (wake, complete): (Waiter?, Bool) = state.withLock { st in
            st.parts[worker] = part
            return st.parts.count == expected ? (st.waiter, true) : (nil, false)
        }
        if let wake { syncWake(wake) }
        if complete && bell >= 0 { _ = uthreads_eventfd_signal(bell) }
    }

    /// What `kind` asks of scheduler `s`, taken on its kernel thread.
    static func part(_ kind: Kind, _ s: Scheduler) -> Part {
        switch kind {
        case .table: return .table(s.snapshot())
        case .dump(let reason): return .dump(s.threadDump(reason: reason))
        }
    }

    /// The answers so far.
    var answers: [Int: Part] { state.withLock { $0.parts } }

    func waitDescription(kind: WaitReason.Kind) -> String {
        let what: String
        switch self.kind {
        case .table: what = "thread-table snapshot"
        case .dump: what = "thread dump"
        }
        return "\(what) (\(answers.count) of \(expected) other workers answered)"
    }

    /// Waits on the calling kernel thread (not a worker) until every worker answered, the
    /// deadline (CLOCK_MONOTONIC ns) passes, or `stop` (a descriptor, -1 for none) becomes
    /// readable. Returns the answers so far.
    func waitOutside(deadline: UInt64, stop: Int32) -> [Int: Part] {
        while state.withLock({ $0.parts.count }) < expected {
            let now = uthreads_monotonic_ns()
            guard now < deadline else { break }
            var fds = [
                pollfd(fd: bell, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
            ]
            let ms = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            let n = poll(&fds, nfds_t(stop >= 0 ? 2 : 1), ms)
            if n > 0 && fds[1].revents != 0 && stop >= 0 { break }
        }
        return answers
    }
}

extension MNRuntime {
    /// How long a merged snapshot waits for the other workers.
    static let tableTimeoutNanoseconds: UInt64 = 1_000_000_000

    /// The merged table of `answers` (worker index → its part) for a runtime of `count`
    /// workers; missing workers are listed as unanswered.
    static func mergedTable(_ answers: [Int: MNTableRequest.Part], count: Int, takenAtSeconds: Double) -> ThreadTable {
        let tables: [ThreadTable] = (0..<count).compactMap { if case .table(let t)? = answers[$0] { t } else { nil } }
        return ThreadTable(
            threads: tables.flatMap(\.threads), takenAtSeconds: tables.first?.takenAtSeconds ?? takenAtSeconds,
            switches: tables.reduce(0) { $0 &+ $1.switches }, spawned: tables.reduce(0) { $0 &+ $1.spawned },
            tableBytes: tables.reduce(0) { $0 + $1.tableBytes },
            workers: count, unansweredWorkers: (0..<count).filter { answers[$0] == nil })
    }

    /// The merged dump of `answers` (see `mergedTable`).
    static func mergedDump(_ answers: [Int: MNTableRequest.Part], count: Int, reason: String) -> ThreadDump {
        let dumps: [ThreadDump] = (0..<count).compactMap { if case .dump(let d)? = answers[$0] { d } else { nil } }
        var dump = ThreadDump(
            reason: reason, processID: getpid(), kernelThreadID: uthreads_kernel_thread_id(),
            takenAtSeconds: dumps.first?.takenAtSeconds ?? 0,
            switches: dumps.reduce(0) { $0 &+ $1.switches }, spawned: dumps.reduce(0) { $0 &+ $1.spawned },
            threads: dumps.flatMap(\.threads))
        dump.workers = count
        dump.unansweredWorkers = (0..<count).filter { answers[$0] == nil }
        return dump
    }

    /// Asks every worker from a kernel thread that is not one of them (the control socket's
    /// server), waiting up to `timeoutNanoseconds` (the control socket's answer deadline) or
    /// until `stop` is readable.
    func collectOutside(_ kind: MNTableRequest.Kind, stop: Int32, timeoutNanoseconds: UInt64)
        -> [Int: MNTableRequest.Part]
    {
        let count = workers.count
        let request = MNTableRequest(runtime: self, kind: kind, expected: count, kernelWaiter: true)
        guard request.bell >= 0 else { return [:] }
        for i in 0..<count { withWorker(i) { $0.post(.snapshot(request)) } }
        let deadline = uthreads_monotonic_ns() &+ timeoutNanoseconds
        return request.waitOutside(deadline: deadline, stop: stop)
    }
}

extension MNWorker {
    /// Every worker's answer to `kind` (see the essay). Called on a user thread of this worker.
    func collect(_ kind: MNTableRequest.Kind, _ s: Scheduler) -> [Int: MNTableRequest.Part] {
        let me = index
        let others = runtime.workers.filter { $0.index != me }
        // Its own part first: the park below may resume this thread on another worker, and
        // after it neither `s` nor this worker's table may be used.
        var answers: [Int: MNTableRequest.Part] = [me: MNTableRequest.part(kind, s)]
        if !others.isEmpty {
            let request = MNTableRequest(runtime: runtime, kind: kind, expected: others.count)
            _ = withExtendedLifetime(request) {
                s.parkWaiter(
                    .custom, object: 0, target: request,
                    deadline: uthreads_monotonic_ns() &+ MNRuntime.tableTimeoutNanoseconds,
                    cancellable: false
                ) { waiter in
                    request.setWaiter(waiter)
                    for w in others { w.post(.snapshot(request)) }
                    return true
                }
            }
            answers.merge(request.answers) { own, _ in own }
        }
        return answers
    }

    /// Every worker's rows (see the essay). Called on a user thread of this worker.
    func threadTable(_ s: Scheduler) -> ThreadTable {
        MNRuntime.mergedTable(collect(.table, s), count: runtime.workers.count, takenAtSeconds: 0)
    }

    /// Every worker's threads with backtraces. Called on a user thread of this worker.
    func threadDump(_ s: Scheduler, reason: String) -> ThreadDump {
        MNRuntime.mergedDump(collect(.dump(reason: reason), s), count: runtime.workers.count, reason: reason)
    }
}
