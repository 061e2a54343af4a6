// Layer 4: how a kernel thread outside the runtime (the control socket's) gets a snapshot of
// the thread table without ever reading the table itself.
//
// The table belongs to the scheduler's kernel thread and is read without locks on the switch
// path, so no other thread may read it concurrently. Instead the outside thread posts a request
// in a slot behind a `KernelLock` (a pthread mutex, which ThreadSanitizer sees), raises an
// atomic flag and blocks on a pipe. The scheduler looks at the flag at its safe points
// (maintenance, the idle loop: one atomic load), builds the answer on its own thread, puts it
// in the slot and writes one byte to the pipe. One request at a time.
import Glibc
import Synchronization

final class SnapshotChannel: Sendable {
    private struct Slot {
        var request: String?
        var response: String?
        var closed = false
    }

    private let pending = Atomic<Bool>(false)
    private let slot = KernelLock(Slot())
    private let readEnd: Int32
    private let writeEnd: Int32

    /// Nil when no pipe can be had.
    init?() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }

    // MARK: The outside thread

    /// Posts `request` and blocks the calling kernel thread until the scheduler answers.
    /// Nil when the runtime has ended. Never call it from the runtime's own kernel thread.
    func ask(_ request: String) -> String? {
        let open = slot.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.request = request
            s.response = nil
            return true
        }
        guard open else { return nil }
        pending.store(true, ordering: .releasing)
        var byte: UInt8 = 0
        while read(readEnd, &byte, 1) < 0 && errno == EINTR {}
        return slot.withLock { $0.response }
    }

    // MARK: The scheduler

    /// Whether a request waits (one atomic load).
    @inline(__always) var hasRequest: Bool { pending.load(ordering: .acquiring) }

    /// Answers the waiting request, if any, with `respond(request)`.
    func answer(_ respond: (String) -> String) {
        guard pending.exchange(false, ordering: .acquiringAndReleasing) else { return }
        let request = slot.withLock { $0.request } ?? ""
        let response = respond(request)
        slot.withLock { $0.response = response }
        wakeAsker()
    }

    /// The runtime is ending: a waiting asker gets nil, later ones at once.
    func close() {
        slot.withLock { $0.closed = true; $0.response = nil }
        if pending.exchange(false, ordering: .acquiringAndReleasing) { wakeAsker() }
    }

    private func wakeAsker() {
        var byte: UInt8 = 1
        while write(writeEnd, &byte, 1) < 0 && errno == EINTR {}
    }
}

extension Scheduler {
    /// The answer to a control request: "table" (the thread table) or "dump" (with
    /// backtraces), as JSON.
    func controlResponse(_ request: String) -> String {
        switch request {
        case "dump": return threadDump(reason: "control socket").json()
        case "table": return snapshot().json()
        default: return "{\"error\":\"unknown request '\(request)'; ask for table or dump\"}"
        }
    }
}
