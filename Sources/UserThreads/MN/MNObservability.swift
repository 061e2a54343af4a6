// Layer 10: the dump signal and the control socket of an M:N runtime (`run(workers:)`): how its
// workers answer them. The Runtime layer above sets them up (Runtime/Observability+Workers.swift),
// as Runtime/Observability.swift does for `run {}`.
//
// Why SIGQUIT crashed an M:N program. Every Swift program on Linux starts with the Swift
// runtime's crash backtracer installed for SIGQUIT (and the fatal signals); it turns the signal
// into "Program crashed" and an exit. `run {}` replaces it with the dump handler when it starts
// (dump_signal.c); `run(workers:)` never did: no handler was installed, no runtime was in the
// registry (the handler's "is any runtime live" test), and the workers' idle loop never looked
// for requests. So the backtracer took the signal on whichever thread the kernel picked —
// every worker had it unblocked — and ended the process. The signal masks and the thread that
// receives it were not the cause, but they decide who notices: the kernel runs the handler on
// one thread (the main thread first, else any that does not block the signal), possibly not a
// worker at all (a Dispatch thread, the offload pool), while every worker may sleep in
// epoll_wait with no timeout.
//
// What is done instead, when the runtime starts:
//   * worker 0's table goes into the debugger registry (the runtime is live for the handler);
//     every other worker puts its own there when its kernel thread starts (the registry records
//     the kernel thread that registers, which debuggers show as each row's LWP), so gdb and LLDB
//     list every worker's threads;
//   * the handler is installed over the backtracer (Observability.installDumpSignal);
//   * each worker's completion-mailbox eventfd is registered as a *bell*: the handler writes to
//     every bell, so every worker wakes, whichever thread took the signal (dump_signal.c);
//   * each worker looks for requests in its idle pass as well as in `maintenance`.
// A dump must list every worker's threads, and only a worker may read its own table. The first
// worker to notice request N claims it (`MNObservation.claim`, a CAS) and spawns a pinned M:N
// thread that asks every other worker for its part through the mailboxes (MNThreadTable.swift,
// a deadline of one second) and writes one merged dump with write(2); the dumping thread leaves
// itself out. The other workers only note the request as answered. Any number of requests, each
// answered once.
//
// Rejected designs:
//   * Each worker writing its own dump: N interleaved partial dumps, none the runtime's.
//   * The last worker to add its part writes the dump: a worker that never reaches a safe point
//     (a thread computing without yielding) would hold back the whole dump; the spawned
//     thread's deadline lists it as unanswered instead.
//   * Ringing the workers' doorbells from the handler: a doorbell is drained only by the
//     worker that was rung through its `sleeping` flag; a ring from outside that protocol left
//     it readable and the worker's next sleeps returned at once. The mailbox eventfd is drained
//     on every event.
//   * A kernel thread per runtime waiting for dump requests: a thread in every M:N program
//     for a signal that rarely comes.
//
// The control socket: the server's kernel thread (Runtime/ControlSocket.swift) asks every
// worker through its mailbox and waits on the request's eventfd (`collectOutside`); a posted
// request rings a sleeping worker, so no idle wake-up interval is needed (M:1 has one).
import CUThreads
import Glibc
import Synchronization

/// Which dump requests a worker of the runtime has claimed (see the essay).
final class MNObservation: Sendable {
    private let claimed = Atomic<UInt64>(uthreads_dump_requests())

    /// True for exactly one caller per request number (requests seen earlier are not dumped
    /// again).
    func claim(_ request: UInt64) -> Bool {
        var seen = claimed.load(ordering: .relaxed)
        while seen < request {
            let (exchanged, original) = claimed.compareExchange(
                expected: seen, desired: request, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            seen = original
        }
        return false
    }
}

extension MNRuntime {
    /// The control socket's answer to `request`, asked from the server's kernel thread, which
    /// waits up to `timeoutNanoseconds` for the workers' parts.
    func controlResponse(_ request: String, stop: Int32, timeoutNanoseconds: UInt64) -> String {
        let count = workers.count
        switch request {
        case "table":
            let parts = collectOutside(.table, stop: stop, timeoutNanoseconds: timeoutNanoseconds)
            return MNRuntime.mergedTable(parts, count: count, takenAtSeconds: 0).json()
        case "dump":
            let reason = "control socket"
            let parts = collectOutside(.dump(reason: reason), stop: stop, timeoutNanoseconds: timeoutNanoseconds)
            return MNRuntime.mergedDump(parts, count: count, reason: reason).json()
        default: return Scheduler.unknownControlRequest(request)
        }
    }
}

extension MNWorker {
    /// Puts this worker's table in the debugger registry, on its own kernel thread; worker 0's
    /// is there already (Runtime/Observability+Workers.swift). Returns the slot to remove when the loop
    /// ends (-1: none, or every slot taken: those rows are invisible to debuggers).
    func registerForDebuggers(_ s: Scheduler) -> Int32 {
        index == 0 ? -1 : uthreads_registry_add(s.table.view, Unmanaged.passUnretained(s).toOpaque())
    }

    /// A dump signal reached this worker's safe point (see the essay): the first worker to see
    /// request `request` spawns the thread that writes the merged dump.
    func dumpRequested(_ s: Scheduler, request: UInt64, reason: String) {
        guard runtime.observation.claim(request) else { return }
        let object = MNThreadObject.make(
            runtime: runtime, name: "thread dump", isMain: false,
            stackSize: runtime.settings.mainStackSize
        ) { () -> Void in
            guard let (worker, s) = MNWorker.current() else { return }
            let me = s.current.pointee.id
            var dump = worker.threadDump(s, reason: reason)
            dump.threads.removeAll { $0.thread.id.rawValue == me }
            uthreads_write_stderr("\n" + dump.render() + "\n")
        }
        runtime.spawn(object, pinned: true)
    }
}
