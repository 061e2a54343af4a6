// Layer 6: answering a dump signal (and a control-socket request) at a safe point.
//
// The signal handler (dump_signal.c) only increments a process-wide counter. The scheduler
// compares it with the last request it answered in `maintenance` (every 64th yield) and in its
// idle loop, never on the switch path, and writes the text dump to stderr with write(2). Each
// runtime answers each request once.
//
// A signal is delivered to one kernel thread, which may be none of the runtime's. So every idle
// wait has a bell the handler rings (dump_signal.c): an M:N runtime registers each worker's
// reactor mailbox, so every worker wakes and looks; a runtime of one worker registers its inbox's
// futex word (its idle sleep without a reactor) and, once it has one, its reactor's eventfd
// (its idle epoll_wait). An idle runtime answers at once, whichever kernel thread took the
// signal.
//
// An M:N worker does not write its own part: the dump must list every worker's threads. The
// first worker to notice a request hands it to its `WorkerHooks` (MN/MNObservability.swift), which
// writes one merged dump; the others only note it as answered.
import CUThreads

extension Scheduler {
    /// Writes a dump to stderr if a signal asked for one since the last, answers a waiting
    /// control-socket request (SnapshotChannel.swift) and publishes metrics when due
    /// (SafePointSampler.swift). Two atomic loads and two branches when there is none.
    @inline(__always)
    func answerSafePointRequests() {
        let requests = uthreads_dump_requests()
        if requests != dumpRequestsAnswered { writeRequestedDump(requests) }
        if let channel = snapshotChannel, channel.hasRequest { channel.answer(controlResponse) }
        if let sampler { sampler.sampleIfDue(self) }
    }

    @inline(never)
    private func writeRequestedDump(_ requests: UInt64) {
        dumpRequestsAnswered = requests
        guard let signal = settings.dumpSignal else { return }
        if let worker {
            worker.dumpRequested(self, request: requests, reason: "signal \(signal)")
            return
        }
        uthreads_write_stderr("\n" + threadDump(reason: "signal \(signal)").render() + "\n")
    }
}
