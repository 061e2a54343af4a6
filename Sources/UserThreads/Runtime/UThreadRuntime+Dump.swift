// Layer 7: thread dumps on demand.
import CUThreads

extension UThreadRuntime {
    /// Every thread of the calling runtime with its state, wait reason, time waited and a
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
    public static func threadDump() -> ThreadDump {
        Scheduler.require("UThreadRuntime.threadDump()").threadDump(reason: "on demand")
    }
}
