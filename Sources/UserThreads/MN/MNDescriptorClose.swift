// Layer 7: closing a descriptor under M:N — its waiters on every worker are woken first.
//
// Design essay
// ============
//
// The problem. Each worker waits for descriptors in its own reactor (Reactor.swift). `IO.close`
// used to drop the descriptor only from the closer's reactor and then close(2) it: a thread
// parked on it on another worker (a reader whose supervisor closes the socket to unblock it;
// per-worker acceptors whose listener is closed at shutdown) was never woken, since the kernel
// silently removes a closed file from every epoll set.
//
// The protocol. The runtime's `DescriptorRegistry` (Reactor/DescriptorRegistry.swift) knows
// which workers' reactors have an entry for each descriptor; a reactor sets its bit with the
// epoll_ctl ADD and clears it when it drops the entry, both under the descriptor's stripe lock.
// `IO.close(fd)` on an M:N user thread (`closeDescriptor`):
//   1. drops the closer's own entry (`Reactor.closing`: its waiters throw `UThreadError.closed`);
//   2. under the stripe lock, reads the other workers' bits. None (the common case): close(2)
//      while still holding the lock, and return (no allocation, no park: one uncontended lock
//      more than M:1). So no worker can register the old file between the check and the
//      close: a later registration gets EBADF (thrown to its thread) or adds the file that
//      reused the number, which is that file's entry.
//   3. Otherwise it parks. In the park's registration (where its waiter exists) it takes the
//      lock again (nobody watching by then: close as in 2) and, still under the lock, posts
//      `MNMail.closeDescriptor` to each watching worker (one `MNCloseRequest` shared by them,
//      naming the closer's `MNWaiter`); the wait kind is `.close`, and the thread table says
//      which workers it waits for. Each addressed worker, on its own kernel thread when it
//      next drains its mailbox (idle loop, or every 64 yields), runs `closing(fd)` (its
//      waiters throw `.closed`, its bit is cleared) and answers; the last answer wakes the
//      closer through the usual token-carrying wake.
//   4. Then the closer starts again at 1: a thread (on any worker) may have waited on the
//      descriptor meanwhile. Rounds end when no worker watches it; each needs another thread
//      to start waiting on a descriptor being closed, so in practice there is one.
//
// Why a remote wake can only hit waiters of the file being closed: close(2) happens only once
// no worker has an entry (under the lock), so while any worker still has one — in particular
// while it handles the request — the descriptor is open and its number cannot have been
// reused. The entry a worker drops is the closing file's.
//
// The wait. It is not cancellable and has no timeout, like `blocking {}`: the close must
// happen, and an addressed worker answers at its next safe point (a worker whose thread runs
// without one delays the closer, as it delays a merged thread table). It is not a site where
// a thread may resume on another worker (`movable: false`): `IO.close` is called from any
// code, which was not written to come back on another kernel thread. Deadlock teardown cannot
// strike it while an answer is outstanding (pending mail is activity); if it wakes the closer
// anyway, the closer simply looks again.
//
// Closers that cannot park. `IO.close` can run where a park is impossible or unsafe: on a
// worker's scheduler context (a deinit run when the idle loop reaps a thread), inside
// another park's bookkeeping (a deinit run while a resumed thread reaps its predecessor: its
// wait kind is still set), or inside the worker's mail drain (a deinit run by a message: the
// messages after it, perhaps another closer's request to this worker, would wait for the
// park, and that closer may be waiting for ours). Then the close is handed on: the request names no waiter, and the
// last worker to answer continues the close itself (steps 1–4 without the park, on its own
// kernel thread). The caller returns at once; a close(2) error is logged, not thrown. A closer
// outside the runtime's workers (a `blocking {}` body, another kernel thread) has no registry
// to ask: it only closes, as before (documented at `IO.close`).
//
// Worker shutdown. A worker whose loop ended clears its bits (its reactor's shutdown), then
// answers the close requests left in its mailbox: requests are posted under the stripe lock,
// so any request for a bit it cleared is already there. No closer waits on a worker that is
// gone.
//
// Rejected designs:
//   * Closing first and telling the others afterwards: the number may be reused before they
//     drop their entries, and they would wake (or drop) waiters of the new file.
//   * Waking remote waiters with epoll tricks (shutdown(2), EPOLLHUP): only sockets have
//     shutdown, and it changes what the peer sees.
//   * A timeout on the closer's wait: the close would then have to happen with entries left, the
//     very hazard this removes.
//   * Letting the closer migrate while it waits: see "The wait".
import Glibc

/// One round of a close under M:N: the workers asked to drop `fd`, and whom to tell when all
/// have (the closer, or nobody: then the last worker to answer continues the close).
final class MNCloseRequest: WaitTarget, @unchecked Sendable {
    let fd: Int32
    private struct State {
        var waiter: MNWaiter?
        var pending: [Int] = []
    }
    private let state = KernelLock(State())

    init(fd: Int32) { self.fd = fd }

    /// Sets who waits and which workers must answer; call before posting the request.
    func arm(waiter: MNWaiter?, workers: [Int]) {
        state.withLock { st in
            st.waiter = waiter
            st.pending = workers
        }
    }

    /// What the answering worker does next.
    enum Answer {
        /// Others have yet to answer.
        case pending
        /// The last answer: wake the closer.
        case wake(MNWaiter)
        /// The last answer, and nobody waits: continue the close here.
        case continueHere
    }

    /// `worker` dropped its entry. O(workers asked).
    func answer(worker: Int) -> Answer {
        state.withLock { st in
            st.pending.removeAll { $0 == worker }
            guard st.pending.isEmpty else { return .pending }
            if let w = st.waiter { return .wake(w) }
            return .continueHere
        }
    }

    func waitDescription(kind: WaitReason.Kind) -> String {
        let pending = state.withLock { $0.pending }
        let who = pending.map(String.init).joined(separator: ", ")
        return "close fd \(fd) (waiting for worker\(pending.count == 1 ? "" : "s") \(who) to drop it)"
    }
}

extension MNWorker {
    /// `IO.close(fd)` on this worker (see the essay above): wakes `fd`'s waiters on every
    /// worker with `.closed`, then close(2). Parks the calling thread while other workers drop
    /// their entries (not cancellable). O(workers watching `fd`).
    /// - Throws: `.system(call: "close", …)` from close(2) (EBADF for a bad descriptor).
    func closeDescriptor(_ fd: Int32, _ s: Scheduler) throws {
        // A park needs a user thread that is not inside another park's bookkeeping (a deinit
        // run by a resumed thread reaping its predecessor: its wait kind is still set) nor
        // inside this worker's mail drain (the messages after it would wait for the park).
        guard s.onUserThread, s.current.pointee.wait_kind == 0, !drainingMail else { return try closeWithoutWaiting(fd) }
        let object = UInt64(UInt32(bitPattern: fd))
        while true {
            reactor.closing(fd)
            if try closeIfUnwatched(fd) { return }  // the common case: one lock, no request, no park
            let request = MNCloseRequest(fd: fd)
            let parked = try withExtendedLifetime(request) {
                try park(s, .close, object: object, target: request, deadline: nil, cancellable: false, movable: false) { waiter in
                    try !askOthers(fd, request, waiter)
                }
            }
            if parked == nil { return }  // nobody else watched it: closed
            // Every addressed worker dropped its entry (or deadlock teardown woke us): look again.
            // Not movable, so this is still this worker and `s`.
        }
    }

    /// Under `fd`'s stripe lock: closes it if no worker watches it (true), else false.
    private func closeIfUnwatched(_ fd: Int32) throws -> Bool {
        try rt { runtime in try runtime.descriptors.closeUnlessWatched(fd) { _ in } }
    }

    /// Under `fd`'s stripe lock: closes it if no worker watches it (true), else arms `request`
    /// and posts it to every watcher (false).
    private func askOthers(_ fd: Int32, _ request: MNCloseRequest, _ waiter: MNWaiter?) throws -> Bool {
        try rt { runtime in
            try runtime.descriptors.closeUnlessWatched(fd) { watchers in
                request.arm(waiter: waiter, workers: watchers.workers)
                watchers.forEach { w in runtime.withWorker(w) { $0.post(.closeDescriptor(request)) } }
            }
        }
    }

    /// The close for callers that cannot park: drops this worker's entry, then closes at once
    /// if nobody else watches `fd`, or hands the close to the last watcher to answer.
    func closeWithoutWaiting(_ fd: Int32) throws {
        reactor.closing(fd)
        if try closeIfUnwatched(fd) { return }
        _ = try askOthers(fd, MNCloseRequest(fd: fd), nil)
    }

    /// Mail: another thread closes `request.fd`. Drops this worker's entry (its waiters throw
    /// `.closed`) and answers; the last answer wakes the closer or continues its close here.
    func dropDescriptor(_ request: MNCloseRequest) {
        reactor.closing(request.fd)
        switch request.answer(worker: index) {
        case .pending:
            break
        case .wake(let waiter):
            rt { $0.wake(waiter, .woken) }
        case .continueHere:
            do { try closeWithoutWaiting(request.fd) } catch {
                runtime.configuration.logger.warning("a descriptor closed where its closer could not wait failed to close",
                                                     metadata: ["fd": "\(request.fd)", "error": "\(error)"])
            }
        }
    }

    /// After the worker's loop ended and its reactor left the registry: answers the close
    /// requests still in the mailbox (every request for a bit this worker had is there by now).
    func answerCloseRequestsAfterShutdown() {
        let mail: [MNMail] = mailbox.withLock { m in
            let all = m
            m.removeAll()
            mailCount.wrappingSubtract(all.count, ordering: .relaxed)
            return all
        }
        for case .closeDescriptor(let request) in mail { dropDescriptor(request) }
    }
}
