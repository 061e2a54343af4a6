// Layer 6: how a kernel thread outside the runtime (the control socket's) gets a snapshot of
// the thread table without ever reading the table itself.
//
// The table belongs to the scheduler's kernel thread and is read without locks on the switch
// path, so no other thread may read it concurrently. Instead the outside thread posts a request
// in a slot behind a `KernelLock` (a pthread mutex, which ThreadSanitizer sees), raises an
// atomic flag, rings the runtime's bell (its inbox: an idle runtime wakes at once, see
// ForeignCancels.swift) and waits on a pipe (poll, with a deadline and a stop descriptor). The
// scheduler looks at the flag at its safe points (maintenance, the idle loop: one atomic load), builds the
// answer on its own thread, puts it in the slot and writes one byte to the pipe. One request at
// a time; each carries a number, so an answer that comes after its asker gave up is dropped.
import CUThreads
import Glibc
import Synchronization

final class SnapshotChannel: Sendable {
    private struct Slot {
        var request: String?
        /// The number of the request in `request` (or last taken), and of the last answer.
        var asked: UInt64 = 0
        var answered: UInt64 = 0
        var response: String?
    }

    private let pending = Atomic<Bool>(false)
    private let slot = KernelLock(Slot())
    private let readEnd: Int32
    private let writeEnd: Int32
    /// Wakes the idle runtime after a request is posted.
    private let bell: (@Sendable () -> Void)?

    /// Nil when no pipe can be had. `bell` wakes the runtime's idle loop.
    init?(bell: (@Sendable () -> Void)?) {
        self.bell = bell
        var fds: [Int32] = [0, 0]
        guard uthreads_pipe(&fds) == 0 else { return nil }  // non-blocking, close-on-exec
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        uthreads_sys_close(readEnd)
        uthreads_sys_close(writeEnd)
    }

    // MARK: The outside thread

    /// Posts `request` and waits on the calling kernel thread until the scheduler answers,
    /// `timeoutNanoseconds` pass, or `stop` (a descriptor; -1: none) becomes readable. Nil when
    /// the runtime did not answer in time (or has ended). Never call it from the runtime's own
    /// kernel thread. One asker at a time.
    func ask(_ request: String, timeoutNanoseconds: UInt64, stop: Int32 = -1) -> String? {
        let number: UInt64 = slot.withLock { s in
            s.asked &+= 1
            s.request = request
            s.response = nil
            return s.asked
        }
        pending.store(true, ordering: .releasing)
        bell?()
        let deadline = uthreads_monotonic_ns() &+ timeoutNanoseconds
        while true {
            if let answer = slot.withLock({ s in s.answered == number ? s.response : nil }) { return answer }
            let now = uthreads_monotonic_ns()
            if now >= deadline { break }
            var fds = [
                pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
            ]
            let n = poll(&fds, stop >= 0 ? 2 : 1, Int32(clamping: (deadline - now + 999_999) / 1_000_000))
            if n > 0 && stop >= 0 && fds[1].revents != 0 { break }
            if n > 0 && fds[0].revents != 0 {
                var bytes = [UInt8](repeating: 0, count: 64)
                _ = read(readEnd, &bytes, bytes.count)  // non-blocking: stale wakes are drained too
            }
        }
        pending.store(false, ordering: .releasing)  // withdrawn; a late answer is dropped by number
        return nil
    }

    // MARK: The scheduler

    /// Whether a request waits (one atomic load).
    @inline(__always) var hasRequest: Bool { pending.load(ordering: .acquiring) }

    /// Answers the waiting request, if any, with `respond(request)`.
    func answer(_ respond: (String) -> String) {
        guard pending.exchange(false, ordering: .acquiringAndReleasing) else { return }
        guard let (request, number) = slot.withLock({ s in s.request.map { ($0, s.asked) } }) else { return }
        let response = respond(request)
        slot.withLock { s in
            guard s.asked == number else { return }  // its asker gave up and asked again
            s.response = response
            s.answered = number
        }
        wakeAsker()
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
        default: return Scheduler.unknownControlRequest(request)
        }
    }

    /// The answer to a request that is neither "table" nor "dump" (JSON). The request is the
    /// client's bytes: encoded, not pasted, so a quote or a control character in it cannot make
    /// the answer invalid JSON.
    static func unknownControlRequest(_ request: String) -> String {
        encodeJSON(["error": "unknown request '\(request)'; ask for table or dump"])
    }
}
