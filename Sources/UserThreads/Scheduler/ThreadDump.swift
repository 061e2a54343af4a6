// Layer 6: thread dumps — every thread of a runtime with its state, what it waits for, for how
// long, and where it is stuck (a backtrace of its saved stack). Like Go's SIGQUIT dump and
// Java's `jcmd Thread.dump_to_file`, as text and as JSON.
//
// A dump is taken by the scheduler itself, at a point where the table is consistent: on demand
// from a user thread (`UThreadRuntime.dump`), or for a signal at the next safe point
// (DumpRequests.swift). Suspended threads are walked from their saved frames; the running
// thread (if the dump is taken on one) from its own frame pointer, so its innermost frames are
// the dump's own.
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import CUThreads
import Glibc

/// A snapshot of every thread of a runtime with a backtrace of each.
///
/// Its JSON form carries a `"version"` key, the same as ``ThreadTable``'s (its rows are
/// ``ThreadInfo``s): ``ThreadTable/formatVersion``.
public struct ThreadDump: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The JSON format version this dump was decoded from (``ThreadTable/formatVersion`` when
    /// made here).
    @JSONFormatVersion public var version: Int = ThreadTable.formatVersion
    /// Why the dump was taken ("on demand", "signal 3").
    public var reason: String
    /// The process and the kernel thread the runtime runs on.
    public var processID: Int32
    /// The kernel thread (gettid) whose runtime this is.
    public var kernelThreadID: Int32
    /// Seconds since the runtime started.
    public var takenAtSeconds: Double
    /// Switches performed by the runtime so far.
    public var switches: UInt64
    /// Threads spawned so far.
    public var spawned: UInt64
    /// Every live thread, in table order.
    public var threads: [Entry]
    /// The number of workers whose threads were asked for (1 for `run {}`); nil for one
    /// worker's own part of a dump with several.
    public var workers: Int? = nil
    /// Workers that did not answer in time (a thread of theirs ran without a safe point):
    /// their threads are missing. Empty when every worker answered (always with one worker).
    public var unansweredWorkers: [Int]? = nil

    /// One thread: its row of the thread table and its backtrace, innermost frame first.
    public struct Entry: Sendable, Codable, Hashable {
        /// Its row of the thread table.
        public var thread: ThreadInfo
        /// Where it is: innermost frame first, down to the trampoline every thread starts in.
        public var backtrace: [StackFrame]

        /// An entry; the runtime makes them, tests and tools may too.
        public init(thread: ThreadInfo, backtrace: [StackFrame]) {
            self.thread = thread
            self.backtrace = backtrace
        }
    }

    /// How `UThreadRuntime.dump(format:)` renders a dump.
    public enum Format: String, Sendable, Codable, CaseIterable {
        /// Readable text, one block per thread (``ThreadDump/render()``).
        case text
        /// JSON that decodes back into a ``ThreadDump``.
        case json
    }

    /// A dump; the runtime makes them (``UThreadRuntime/threadDump()``), tests and tools may too.
    public init(
        reason: String, processID: Int32, kernelThreadID: Int32, takenAtSeconds: Double,
        switches: UInt64, spawned: UInt64, threads: [Entry]
    ) {
        self.reason = reason
        self.processID = processID
        self.kernelThreadID = kernelThreadID
        self.takenAtSeconds = takenAtSeconds
        self.switches = switches
        self.spawned = spawned
        self.threads = threads
    }

    public var description: String { render() }

    /// The text form:
    ///
    /// ```
    /// uthreads: thread dump (on demand), pid 4242, kernel thread 4242, 3 threads, …
    ///
    /// thread #2 "sleeper" sleeping: sleep, waiting 12.0 ms, wakes in 3600.0 s
    ///     #0 0x55d0c1a3 in UserThreads.Scheduler.park(…) + 412 (uthreads)
    ///     …
    /// ```
    public func render() -> String {
        var out = "uthreads: thread dump (\(reason)), pid \(processID), kernel thread \(kernelThreadID), "
        out +=
            "\(threads.count) threads, \((takenAtSeconds).fixed(3)) s after start, switches \(switches), spawned \(spawned)"
        if let workers { out += ", \(workers) worker\(workers == 1 ? "" : "s")" }
        if let missing = unansweredWorkers, !missing.isEmpty {
            out +=
                " (no answer from worker\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")))"
        }
        out += "\n"
        for entry in threads {
            let t = entry.thread
            out += "\nthread \(t.id)" + (t.name.isEmpty ? "" : " \"\(t.name)\"") + " \(t.state.rawValue)"
            var notes: [String] = []
            if let reason = t.waitReason { notes.append("\(reason)") }
            if let w = t.waitingSeconds { notes.append("waiting \(Self.duration(w))") }
            if let d = t.deadlineInSeconds { notes.append("wakes in \(Self.duration(d))") }
            if t.isCancelled { notes.append("cancelled") }
            if t.isMain { notes.append("main") }
            if let worker = t.worker { notes.append("worker \(worker)") }
            if !notes.isEmpty { out += ": " + notes.joined(separator: ", ") }
            out += "\n"
            if entry.backtrace.isEmpty { out += "    (no backtrace)\n" }
            for (i, frame) in entry.backtrace.enumerated() { out += "    #\(i) \(frame)\n" }
        }
        return out
    }

    /// Pretty-printed JSON with sorted keys.
    public func json() -> String { encodeJSON(self) }

    static func duration(_ seconds: Double) -> String {
        abs(seconds) < 1 ? "\((seconds * 1000).fixed(1)) ms" : "\(seconds.fixed(1)) s"
    }
}

extension ThreadTable {
    /// Pretty-printed JSON with sorted keys (what the control socket serves).
    public func json() -> String { encodeJSON(self) }
}

/// Pretty-printed JSON with sorted keys.
func encodeJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    guard let data = try? encoder.encode(value) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

extension Scheduler {
    /// Builds a dump of this scheduler's threads. Call on the scheduler's kernel thread, from a
    /// user thread or the idle loop (never from a signal handler). O(threads × frames).
    func threadDump(reason: String) -> ThreadDump {
        let table = snapshot()
        var frames: [UInt64: [StackFrame]] = [:]
        self.table.forEachLive { t in
            switch t.pointee.state {
            case .stateReady, .stateBlocked, .stateSleeping: frames[t.pointee.id] = Backtrace.saved(t)
            case .stateRunning where t == current: frames[t.pointee.id] = Backtrace.here(t)
            default: break
            }
        }
        var dump = ThreadDump(
            reason: reason, processID: getpid(), kernelThreadID: uthreads_kernel_thread_id(),
            takenAtSeconds: table.takenAtSeconds, switches: table.switches, spawned: table.spawned,
            threads: table.threads.map { .init(thread: $0, backtrace: frames[$0.id.rawValue] ?? []) })
        (dump.workers, dump.unansweredWorkers) = (table.workers, table.unansweredWorkers)
        return dump
    }
}
