// Layer 4: answering a dump signal at a safe point.
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
    /// Writes a dump to stderr if a signal asked for one since the last. One atomic load when
    /// there is none.
    @inline(__always)
    func answerDumpRequest() {
        let requests = uthreads_dump_requests()
        if requests != dumpRequestsAnswered { writeRequestedDump(requests) }
    }

    @inline(never)
    private func writeRequestedDump(_ requests: UInt64) {
        dumpRequestsAnswered = requests
        guard let signal = configuration.dumpSignal else { return }
        uthreads_write_stderr("\n" + threadDump(reason: "signal \(signal)").render() + "\n")
    }
}
