// Layer 11: thread dumps on demand.
import CUThreads

extension UThreadRuntime {
    /// Every thread of the calling runtime (every worker's, under `run(workers:)`) with its state, wait reason, time waited and a
    /// symbolicated backtrace of its stack, as text or JSON. Call it from a user thread.
    ///
    /// The same dump is written to stderr when the process receives
    /// ``Configuration/dumpSignal`` (SIGQUIT by default).
    ///
    /// ```swift
    /// print(UThreadRuntime.dump())              // text
    /// let json = UThreadRuntime.dump(format: .json)
    /// ```
    public static func dump(format: ThreadDump.Format = .text) -> String {
        let dump = threadDump()
        switch format {
        case .text: return dump.render()
        case .json: return dump.json()
        }
    }

    /// The calling runtime's threads and their backtraces as a value. Call it from a user thread.
    ///
    /// Inside an M:N runtime (`run(workers:)`) the dump has every worker's threads, each with
    /// its worker: the caller asks every other worker and waits for the answers (up to a second;
    /// a worker that does not answer is listed in `unansweredWorkers`), as ``threadTable()`` does.
    public static func threadDump() -> ThreadDump {
        let s = Scheduler.require("UThreadRuntime.threadDump()")
        if let worker = s.worker, s.onUserThread { return worker.threadDump(s, reason: "on demand") }
        return s.threadDump(reason: "on demand")
    }
}
