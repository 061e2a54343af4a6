// Layer 4: answering a dump signal (and a control-socket request) at a safe point.
//
// The signal handler (dump_signal.c) only increments a process-wide counter. The scheduler
// compares it with the last request it answered in `maintenance` (every 64th yield) and in its
// idle loop (whose nanosleep or epoll_wait the signal interrupts), never on the switch path,
// and writes the text dump to stderr with write(2). Each runtime answers each request once.
//
// Limit: a signal is delivered to one kernel thread. A runtime idle in a long kernel wait on
// another kernel thread answers when that wait ends (its next timer or I/O event).
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
        guard let signal = configuration.dumpSignal else { return }
        uthreads_write_stderr("\n" + threadDump(reason: "signal \(signal)").render() + "\n")
    }
}
