// Layer 6: the scheduling trace — an event ring buffer filled by the scheduler.
//
// Design. A fixed ring of 24-byte raw events (time on the slice clock, thread id, kind,
// detail) allocated once; recording is a store and an increment, no allocation, no clock read
// beyond the one the switch hooks already made. When the ring is full the oldest events are
// overwritten (`dropped` counts them). Off by default: the scheduler's switch path then tests
// one flag (`hooks`, shared with time slices) and records nothing. Times become nanoseconds
// only when read (`events`): TSC ticks scaled by the calibrated rate, or virtual nanoseconds.
// Threads are also numbered in spawn order (`lane`), so that two runs of the same program —
// whose process-wide thread ids differ — give comparable traces (`signature`).
//
// Rejected: a Swift array of enum events (allocation and ARC on the switch path); strings in
// events (names are kept once per thread, at spawn).
import CUThreads

/// A recording of scheduling events, filled by a runtime when set as its
/// `Configuration.trace`, read after (or during) the run: `events`, `segments()`,
/// `perfettoJSON()`, `svgGantt()`.
///
/// ```swift
/// let trace = UThreadTrace()
/// var configuration = UThreadRuntime.Configuration()
/// configuration.trace = trace
/// try UThreadRuntime.run(configuration, policy: RoundRobinPolicy()) { … }
/// try trace.perfettoJSON().write(toFile: "trace.json")   // open in ui.perfetto.dev
/// ```
///
/// A trace belongs to one runtime at a time (it is not synchronised); give each concurrent
/// runtime its own.
public final class UThreadTrace: @unchecked Sendable {
    struct Raw {
        var time: UInt64
        var thread: UInt64
        var kind: UInt8
        var detail: UInt8
    }

    let capacity: Int
    private let mask: UInt64
    private let ring: UnsafeMutablePointer<Raw>
    private var written: UInt64 = 0
    private var origin: UInt64 = 0
    private var nsPerUnit: Double = 1
    /// The kernel thread (gettid) of the runtime that recorded it.
    public private(set) var kernelThread: Int32 = 0
    /// Whether times are on the virtual clock.
    public private(set) var isVirtual = false
    private var names: [UInt64: String] = [:]
    private var lanes: [UInt64: Int] = [:]
    private var order: [UInt64] = []
    /// Deadlines given at spawn, as nanoseconds after the spawn.
    private var deadlines: [UInt64: UInt64] = [:]

    /// The most events a trace keeps: 2^24 (384 MiB of ring, allocated at once).
    public static let maximumCapacity = 1 << 24

    /// - Parameter capacity: events kept, rounded up to a power of two within
    ///   16...`maximumCapacity` (a larger capacity keeps `maximumCapacity`); older ones are
    ///   dropped.
    public init(capacity: Int = 1 << 16) {
        var c = 16
        while c < min(capacity, UThreadTrace.maximumCapacity) { c <<= 1 }
        self.capacity = c
        mask = UInt64(c - 1)
        ring = .allocate(capacity: c)
    }

    deinit { ring.deallocate() }

    // MARK: Recording (the scheduler's kernel thread)

    func begin(virtual: Bool, origin: UInt64, nsPerUnit: Double) {
        self.nsPerUnit = nsPerUnit
        written = 0
        names = [:]
        lanes = [:]
        order = []
        deadlines = [:]
        isVirtual = virtual
        self.origin = origin
        kernelThread = uthreads_gettid()
    }

    @inline(__always)
    func record(_ kind: TraceEvent.Kind, _ t: ControlBlock, detail: UInt8 = 0, at time: UInt64) {
        ring[Int(written & mask)] = Raw(time: time, thread: t.pointee.id, kind: kind.rawValue, detail: detail)
        written &+= 1
    }

    func spawned(_ t: ControlBlock, name: String, deadlineAfter: UInt64?, at time: UInt64) {
        let id = t.pointee.id
        names[id] = name
        if let deadlineAfter { deadlines[id] = deadlineAfter }
        lanes[id] = order.count
        order.append(id)
        record(.spawn, t, at: time)
    }

    func finish(nsPerUnit: Double) { self.nsPerUnit = nsPerUnit }

    // MARK: Reading

    /// Events overwritten because the ring was full.
    public var dropped: Int { Int(written > UInt64(capacity) ? written - UInt64(capacity) : 0) }

    /// The threads seen spawning, in spawn order (lane 0 first).
    public var threads: [TraceThread] {
        order.enumerated().map {
            TraceThread(id: ThreadID(rawValue: $1), name: names[$1] ?? "", lane: $0, deadlineAfterSpawn: deadlines[$1])
        }
    }

    /// The recorded events, oldest first; times in nanoseconds since the runtime started.
    public var events: [TraceEvent] {
        let n = min(written, UInt64(capacity))
        var out: [TraceEvent] = []
        out.reserveCapacity(Int(n))
        for i in (written - n)..<written {
            let r = ring[Int(i & mask)]
            let ns =
                isVirtual ? r.time &- origin : UInt64(max(0, Double(Int64(bitPattern: r.time &- origin)) * nsPerUnit))
            out.append(
                TraceEvent(
                    nanoseconds: ns, kind: TraceEvent.Kind(rawValue: r.kind) ?? .overrun,
                    thread: ThreadID(rawValue: r.thread),
                    lane: lanes[r.thread] ?? -1, detail: r.detail, kernelThread: kernelThread))
        }
        return out
    }

    /// The events without process-specific ids (threads by lane): equal for two runs that
    /// scheduled identically. One line per event.
    public var signature: String {
        events.map { "\($0.nanoseconds) \($0.kind.name) \($0.lane) \($0.detail)" }.joined(separator: "\n")
    }
}

/// A thread as a trace knows it.
public struct TraceThread: Sendable, Hashable {
    public var id: ThreadID
    /// The name it was spawned with ("" when it has none).
    public var name: String
    /// Its spawn order in the trace: its lane in the Gantt chart.
    public var lane: Int
    /// The deadline it was spawned with, in nanoseconds after its spawn (EDF), if any.
    public var deadlineAfterSpawn: UInt64?
    /// The id and the name (`#12 worker`), or just the id when the thread has no name: how
    /// exported timelines title the thread's row.
    public var label: String { name.isEmpty ? id.description : "\(id) \(name)" }
}

/// One scheduling event.
public struct TraceEvent: Sendable, Hashable {
    /// What happened to the thread. The raw value is what the trace's ring buffer stores.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// The thread was created (it is ready).
        case spawn
        /// It was switched in.
        case run
        /// It gave up the CPU with `yield()`.
        case yield
        /// It was switched out at a safe point (its slice ended, or the policy preferred another).
        case preempt
        /// It parked; `waitReason` says on what.
        case block
        /// Its park ended; `wakeResult` says how.
        case wake
        /// It finished.
        case exit
        /// The watchdog found it far past its quantum.
        case overrun

        /// The kind in lower case ("spawn", "run", …): used in `UThreadTrace.signature` and as the
        /// event category in the Perfetto export.
        public var name: String {
            switch self {
            case .spawn: "spawn"
            case .run: "run"
            case .yield: "yield"
            case .preempt: "preempt"
            case .block: "block"
            case .wake: "wake"
            case .exit: "exit"
            case .overrun: "overrun"
            }
        }
    }

    /// Nanoseconds since the runtime started (scheduler clock: virtual in simulation).
    public var nanoseconds: UInt64
    /// What happened.
    public var kind: Kind
    /// The thread it happened to (its process-wide id; see `lane` for a run-independent number).
    public var thread: ThreadID
    /// The thread's spawn order in the trace (-1 when its spawn was dropped from the ring).
    public var lane: Int
    /// `block`: the WaitReason.Kind raw value; `wake`: the WakeResult raw value.
    public var detail: UInt8
    /// The kernel thread (gettid) that ran the runtime.
    public var kernelThread: Int32

    /// For a `block` event, what the thread parked on (decoded from `detail`); nil for other
    /// kinds.
    public var waitReason: WaitReason.Kind? { kind == .block ? WaitReason.Kind(rawValue: detail) : nil }
    /// For a `wake` event, how the park ended (decoded from `detail`); nil for other kinds.
    public var wakeResult: WakeResult? { kind == .wake ? WakeResult(rawValue: detail) : nil }
}

/// The recorder as the scheduler holds it: the trace plus the clock origin.
final class TraceRecorder {
    let trace: UThreadTrace
    init(trace: UThreadTrace, virtual: Bool, nsPerUnit: Double) {
        self.trace = trace
        trace.begin(virtual: virtual, origin: virtual ? 0 : uthreads_ticks_inline(), nsPerUnit: nsPerUnit)
    }
    @inline(__always)
    func record(_ kind: TraceEvent.Kind, _ t: ControlBlock, detail: UInt8 = 0, at time: UInt64) {
        trace.record(kind, t, detail: detail, at: time)
    }
    func spawned(_ t: ControlBlock, name: String, deadlineAfter: UInt64?, at time: UInt64) {
        trace.spawned(t, name: name, deadlineAfter: deadlineAfter, at: time)
    }
    func finish(nsPerUnit: Double) { trace.finish(nsPerUnit: nsPerUnit) }
}
