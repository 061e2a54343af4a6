// Layer 4: the public, read-only view of the thread table.
import CUThreads

/// One row of a thread-table snapshot.
public struct ThreadInfo: Sendable, Codable, Hashable, Identifiable {
    /// The thread's id, unique in the process.
    public var id: ThreadID
    /// Its name ("" for none).
    public var name: String
    /// Ready, running, blocked, sleeping or finished.
    public var state: ThreadState
    /// What a blocked or sleeping thread waits for (nil otherwise).
    public var waitReason: WaitReason?
    /// Seconds it has waited so far (nil when not parked).
    public var waitingSeconds: Double?
    /// Seconds until its deadline, while it has one (negative: overdue, about to wake).
    public var deadlineInSeconds: Double?
    /// The priority given at spawn.
    public var priority: Int
    /// The thread that spawned it (nil for the main thread).
    public var parentID: ThreadID?
    /// Seconds since the runtime started.
    public var createdAtSeconds: Double
    /// Times it was switched in.
    public var switches: UInt64
    /// CPU time it has used, in seconds (0 when accounting is off).
    public var cpuSeconds: Double
    /// Its stack: mode, place, size and how deep it has been used.
    public var stack: StackInfo
    /// The saved stack pointer, where its registers are (the frame table in the .S file).
    public var savedStackPointer: UInt64
    /// Its program counter, stack pointer and callee-saved registers as its switch saved them,
    /// while it is suspended (ready, blocked or sleeping). Nil for the running thread, whose
    /// registers are in the CPU.
    public var registers: SavedRegisters? = nil
    /// Whether `cancel()` was called on it.
    public var isCancelled: Bool
    /// Whether it runs the closure given to `UThreadRuntime.run`.
    public var isMain: Bool
    /// The worker (kernel thread) that runs it, numbered from 0 (0 under `workers: 1`); nil
    /// only in tables made by hand.
    public var worker: Int? = nil
    /// Times the thread resumed on another worker than the one it last ran on (it migrated;
    /// 0 under `workers: 1`); nil only in tables made by hand.
    public var migrations: Int? = nil

    /// A thread's stack as the table shows it.
    public struct StackInfo: Sendable, Codable, Hashable {
        /// Guarded (own mapping and guard region) or dense (slab slot with a canary).
        public var mode: StackMode
        /// The lowest usable address.
        public var base: UInt64
        /// Usable bytes.
        public var size: Int
        /// Bytes of the `PROT_NONE` guard region below `base` (0 for dense stacks).
        public var guardSize: Int
        /// Deepest use so far, in bytes: the resident extent found with mincore (page
        /// granular, and it includes what an earlier thread on a recycled stack touched).
        public var highWater: Int
    }
}

/// A snapshot of a runtime's thread table.
///
/// Its JSON form (``json()``, the control socket, `uthreads table --json`) is versioned by its
/// `"version"` key: ``formatVersion`` (documented in the DocC catalog's "Seeing inside").
/// Decoding accepts every earlier version (``JSONFormatVersion``).
public struct ThreadTable: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The version of the JSON form this type writes: 2 spells enumerations (wait reason kinds)
    /// as strings and adds ``ThreadInfo/registers``; 1 (no `"version"` key) had numeric kinds.
    public static let formatVersion = 2

    /// The JSON format version this table was decoded from (``formatVersion`` when made here).
    @JSONFormatVersion public var version: Int = ThreadTable.formatVersion
    /// One row per live thread, in table order.
    public var threads: [ThreadInfo]
    /// Seconds since the runtime started.
    public var takenAtSeconds: Double
    /// Switches performed by the runtime so far.
    public var switches: UInt64
    /// Threads spawned so far.
    public var spawned: UInt64
    /// Bytes of the table's own rows.
    public var tableBytes: Int
    /// The number of workers whose rows were asked for (1 for `run {}`); nil for one worker's
    /// own part of a table with several.
    public var workers: Int?
    /// Workers that did not answer in time (a thread of theirs ran without a safe point):
    /// their threads are missing. Empty when every worker answered (always with one worker).
    public var unansweredWorkers: [Int]?

    /// A table; the runtime makes them (``UThreadRuntime/threadTable()``), tests and tools may too.
    public init(
        threads: [ThreadInfo], takenAtSeconds: Double, switches: UInt64, spawned: UInt64, tableBytes: Int,
        workers: Int? = nil, unansweredWorkers: [Int]? = nil
    ) {
        self.threads = threads
        self.takenAtSeconds = takenAtSeconds
        self.switches = switches
        self.spawned = spawned
        self.tableBytes = tableBytes
        self.workers = workers
        self.unansweredWorkers = unansweredWorkers
    }

    /// Whether the rows come from several workers, so that `render`'s WORKER column says
    /// something (under `workers: 1` it would say 0 on every row; `uthreads top` shows it anyway).
    var spansWorkers: Bool { (workers ?? 0) > 1 || threads.contains { ($0.worker ?? 0) > 0 } }

    /// Count of threads in each state.
    public var countsByState: [ThreadState: Int] {
        threads.reduce(into: [:]) { $0[$1.state, default: 0] += 1 }
    }

    public var description: String { render() }

    /// A `ps`-like rendering, one line per thread. `limit` caps the rows (the header says how
    /// many were left out). With several workers a WORKER column says where each thread runs.
    public func render(limit: Int = .max) -> String {
        var out = ""
        let counts = countsByState
        let summary = ThreadState.allCases.compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }.joined(
            separator: ", ")
        out +=
            "user threads: \(threads.count) (\(summary.isEmpty ? "none" : summary)); switches \(switches), spawned \(spawned)"
        if let workers { out += "; \(workers) worker\(workers == 1 ? "" : "s")" }
        if let missing = unansweredWorkers, !missing.isEmpty {
            out +=
                " (no answer from worker\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")))"
        }
        out += "\n"
        let showWorker = spansWorkers
        var header = ["TID", "NAME", "STATE", "PRI", "PARENT", "SWITCHES", "CPU ms", "STACK", "USED", "WAIT"]
        if showWorker { header.insert("WORKER", at: 3) }
        let rightAligned: Set<String> = ["TID", "WORKER", "PRI", "PARENT", "SWITCHES", "CPU ms", "STACK", "USED"]
        var rows: [[String]] = []
        for t in threads.prefix(limit) {
            var wait = t.waitReason.map { "\($0)" } ?? ""
            if let w = t.waitingSeconds { wait += " (\((w * 1000).fixed(1)) ms)" }
            if let d = t.deadlineInSeconds { wait += ", wakes in \((d * 1000).fixed(1)) ms" }
            if t.isCancelled { wait += wait.isEmpty ? "cancelled" : ", cancelled" }
            var row = [
                "\(t.id.rawValue)", t.name.isEmpty ? "-" : t.name, t.state.rawValue, "\(t.priority)",
                t.parentID.map { "\($0.rawValue)" } ?? "-", "\(t.switches)",
                (t.cpuSeconds * 1000).fixed(3),
                "\(t.stack.size / 1024)K\(t.stack.mode == .dense ? "d" : "")",
                "\(t.stack.highWater / 1024)K", wait,
            ]
            if showWorker { row.insert(t.worker.map { "\($0)" } ?? "-", at: 3) }
            rows.append(row)
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i == cells.count - 1 ? c : (rightAligned.contains(header[i]) ? pad + c : c + pad)
            }.joined(separator: "  ")
        }
        out += line(header) + "\n"
        for r in rows { out += line(r) + "\n" }
        if threads.count > limit { out += "… \(threads.count - limit) more\n" }
        return out
    }
}

extension ControlBlockTable {
    /// Builds the public snapshot. O(threads); one mincore per thread.
    func snapshot(
        nanosecondsPerTick: Double, startTick: UInt64, nowTick: UInt64, nowNanoseconds: UInt64,
        switches: UInt64, spawned: UInt64, object: (ControlBlock) -> ThreadObject?
    ) -> ThreadTable {
        var infos: [ThreadInfo] = []
        infos.reserveCapacity(liveCount)
        var names: [UInt64: String?] = [:]  // most suspended threads resume at a few addresses
        func name(_ pc: UInt64, _ isReturnAddress: Bool) -> String? {
            if let known = names[pc] { return known }
            let frame = Backtrace.symbolicate(pc, isReturnAddress: isReturnAddress)
            let text = frame.symbol.map { frame.offset == 0 ? $0 : "\($0) + \(frame.offset)" }
            names[pc] = text
            return text
        }
        func seconds(_ ticks: UInt64) -> Double { Double(ticks) * nanosecondsPerTick / 1e9 }
        forEachLive { t in
            let p = t.pointee
            var state = ThreadState(raw: p.state)
            if p.state == .stateFree { return }
            let parked = p.state == .stateBlocked || p.state == .stateSleeping
            let obj = object(t)
            var reason: WaitReason? = nil
            if parked {
                let kind = WaitReason.Kind(rawValue: p.wait_kind) ?? .custom
                reason = WaitReason(
                    kind: kind, object: p.wait_object,
                    detail: obj?.waitTarget?.waitDescription(kind: kind))
            }
            if state == .finished { state = .finished }
            let lo = UnsafeMutableRawPointer(p.stack_lo!)
            let hi = UnsafeMutableRawPointer(p.stack_hi!)
            let depth = uthreads_resident_depth(lo, hi)
            // forEachLive lists only rows this table owns (immigrants included): a suspended one's
            // saved frame is stable to read from this kernel thread.
            let suspended = p.state == .stateReady || parked
            let registers = suspended ? SavedRegisters.read(t, name: name) : nil
            infos.append(
                ThreadInfo(
                    id: ThreadID(rawValue: p.id),
                    name: obj?.name ?? t.cName,
                    state: state,
                    waitReason: reason,
                    waitingSeconds: parked ? seconds(nowTick &- p.wait_since_tick) : nil,
                    deadlineInSeconds: t.has(.flagTimer) ? (Double(p.deadline_ns) - Double(nowNanoseconds)) / 1e9 : nil,
                    priority: Int(p.priority),
                    parentID: p.parent_id == 0 ? nil : ThreadID(rawValue: p.parent_id),
                    createdAtSeconds: seconds(p.created_tick &- startTick),
                    switches: p.switches,
                    cpuSeconds: seconds(p.cpu_ticks),
                    stack: .init(
                        mode: p.stack_mode == UInt8(UTHREADS_STACK_DENSE) ? .dense : .guarded,
                        base: UInt64(UInt(bitPattern: lo)), size: hi - lo,
                        guardSize: Int(p.guard_size), highWater: max(0, depth)),
                    savedStackPointer: UInt64(UInt(bitPattern: p.sp)),
                    registers: registers,
                    isCancelled: t.has(.flagCancelled),
                    isMain: t.has(.flagMain),
                    worker: max(0, Int(p.worker)),  // a runtime of one worker is worker 0
                    migrations: Int(obj?.migrations ?? 0)))
        }
        return ThreadTable(
            threads: infos, takenAtSeconds: seconds(nowTick &- startTick), switches: switches,
            spawned: spawned, tableBytes: bytesReserved)
    }
}
