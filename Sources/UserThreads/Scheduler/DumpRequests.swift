// Layer 6: answering a dump signal (and a control-socket request) at a safe point.
//
// The signal handler (dump_signal.c) only increments a process-wide counter. The scheduler
// compares it with the last request it answered in `maintenance` (every 64th yield) and in its
// idle loop (whose nanosleep or epoll_wait the signal interrupts), never on the switch path,
// and writes the text dump to stderr with write(2). Each runtime answers each request once.
//
// A signal is delivered to one kernel thread. An M:N runtime registers each worker's reactor
// mailbox as a bell (dump_signal.c), so every worker wakes and looks. An M:1 runtime has no such
// bell (its reactor may not exist): idle in a long kernel wait while another kernel thread took
// the signal, it answers when that wait ends (its next timer or I/O event, or 10 ms with a
// control socket).
//
// An M:N worker does not write its own part: the dump must list every worker's threads. The
// first worker to notice a request hands it to its `WorkerHooks` (MN/MNObservability.swift), which
// writes one merged dump; the others only note it as answered.
import CUThreads

extension Scheduler {
    /// Writes a dump to stderr if a signal asked for one since the last, and answers a waiting
    /// control-socket request (SnapshotChannel.swift). Two atomic loads when there is none.
    @inline(__always)
    func answerSafePointRequests() {
        let requests = uthreads_dump_requests()
        if requests != dumpRequestsAnswered { writeRequestedDump(requests) }
        if let channel = snapshotChannel, channel.hasRequest { channel.answer(controlResponse) }
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
