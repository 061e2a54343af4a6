// Layer 6: the scheduling trace — one event ring per worker, filled by its scheduler, merged
// when read.
//
// Design. A fixed ring of 24-byte raw events (time on the slice clock, thread id, kind,
// detail) allocated once per worker; recording is a store and an increment, no allocation, no
// clock read beyond the one the switch hooks already made. When a ring is full its oldest
// events are overwritten (`dropped` counts them). Off by default: the scheduler's switch path
// then tests one flag (`hooks`, shared with time slices and M:N errno) and records nothing.
// Times become nanoseconds only when read (`events`): TSC ticks scaled by the calibrated rate,
// or virtual nanoseconds. Threads are also numbered in spawn order (`lane`), so that two runs
// of the same program — whose process-wide thread ids differ — give comparable traces
// (`signature`).
//
// Any number of workers. Each worker's scheduler owns a ring of its own (`TraceRing`: the
// events, the names and deadlines of the threads it started, its kernel thread): a worker
// writes only its ring, so recording shares no cache line and takes no lock at any N. The
// rings are attached in worker order when the runtime builds its schedulers (before any worker
// runs); the first attach resets the trace and takes the clock origin, which every ring
// shares. Reading merges the rings by time (ties: worker, then recording order) and numbers
// the threads in the merged spawn order; every event carries the worker that recorded it, so a
// thread that migrates shows its run on one worker and its next run on another (the Perfetto
// export draws a track per worker beside the track per thread). A reader runs after `run`
// returned (under `workers: 1` also on the runtime's own kernel thread during the run): the
// workers' exits order their writes before it.
//
// The clock across workers: the TSC (x86-64; CNTVCT on AArch64), as for time slices. The switch
// hooks read it anyway, so tracing adds no clock read per event, and on an invariant TSC
// (constant_tsc, nonstop_tsc) that the kernel has verified to be synchronised across CPUs (it
// then uses it as the clocksource: /sys/devices/system/clocksource/*/current_clocksource is
// "tsc"; on this machine it is) the raw values of two kernel threads are one time base, so a
// thread's events on two workers come out in the order they happened. CLOCK_MONOTONIC would be
// comparable on any machine, but is a vDSO call of ~20 ns per event where the TSC read is
// already paid; on a machine whose TSC the kernel does not trust, events of two workers closer
// together than the skew may be merged out of order.
//
// Rejected: one shared ring under a lock (a lock acquisition per event on every switch, and
// every worker writing the same cache lines); one shared ring with an atomic write index (no
// lock, but one contended cache line per event between workers, and a torn read when a
// worker overwrites a slot another is still filling); a Swift array of enum events (allocation
// and ARC on the switch path); strings in events (names are kept once per thread, at spawn).
import CUThreads

/// A recording of scheduling events, filled by a runtime when set as its
/// `Configuration.trace`, read after (or, under `workers: 1`, during) the run: `events`,
/// `segments()`, `perfettoJSON()`, `svgGantt()`.
///
/// ```swift
/// let trace = UThreadTrace()
/// var configuration = UThreadRuntime.Configuration()
/// configuration.trace = trace
/// try UThreadRuntime.run(configuration, policy: RoundRobinPolicy()) { … }
/// try trace.perfettoJSON().write(toFile: "trace.json")   // open in ui.perfetto.dev
/// ```
///
/// With several workers each worker records into a ring of its own (`capacity` events each),
/// and every event names its worker; read the trace after `run` has returned.
///
/// A trace belongs to one runtime at a time (it is not synchronised); give each concurrent
/// runtime its own.
public final class UThreadTrace: @unchecked Sendable {
    /// Events kept per worker.
    let capacity: Int
    /// One ring per worker, in worker order (the first exists from `init`).
    private var rings: [TraceRing]
    /// How many rings the last runtime attached (its workers).
    private var attached = 0
    /// Whether times are on the virtual clock.
    public private(set) var isVirtual = false

    /// The most events a trace keeps per worker: 2^24 (384 MiB of ring, allocated at once).
    public static let maximumCapacity = 1 << 24

    /// - Parameter capacity: events kept per worker, rounded up to a power of two within
    ///   16...`maximumCapacity` (a larger capacity keeps `maximumCapacity`); older ones are
    ///   dropped.
    public init(capacity: Int = 1 << 16) {
        var c = 16
        while c < min(capacity, UThreadTrace.maximumCapacity) { c <<= 1 }
        self.capacity = c
        rings = [TraceRing(capacity: c)]
    }

    // MARK: Recording (each ring on its worker's kernel thread)

    /// The ring of the next worker of a runtime being built: `first` (the runtime's first or
    /// only scheduler) resets the trace and takes the clock origin the later workers share.
    func attach(first: Bool, virtual: Bool, nsPerUnit: Double) -> TraceRing {
        if first {
            attached = 0
            isVirtual = virtual
        }
        if attached == rings.count { rings.append(TraceRing(capacity: capacity)) }
        let ring = rings[attached]
        ring.begin(origin: first ? (virtual ? 0 : uthreads_ticks_inline()) : rings[0].origin, nsPerUnit: nsPerUnit)
        attached += 1
        return ring
    }

    // MARK: Reading

    /// The workers that recorded (1 under `workers: 1`).
    public var workers: Int { max(1, attached) }

    /// The kernel thread (gettid) of the runtime that recorded it: its first worker's.
    public var kernelThread: Int32 { rings[0].kernelThread }

    /// The kernel thread (gettid) of each worker, in worker order (0 for a worker that never
    /// started a thread).
    public var kernelThreads: [Int32] { recorded.map(\.kernelThread) }

    private var recorded: ArraySlice<TraceRing> { rings[0..<workers] }

    /// Events overwritten because a worker's ring was full (summed over the workers).
    public var dropped: Int { recorded.reduce(0) { $0 + $1.dropped } }

    /// Each thread seen spawning with the worker that started it, in spawn order.
    private var spawnOrder: [(id: UInt64, worker: Int, ring: TraceRing)] {
        guard workers > 1 else { return rings[0].order.map { ($0, 0, rings[0]) } }
        var all: [(time: UInt64, worker: Int, index: Int, id: UInt64)] = []
        for (w, ring) in recorded.enumerated() {
            for (i, id) in ring.order.enumerated() { all.append((ring.spawnTimes[i], w, i, id)) }
        }
        all.sort { ($0.time, $0.worker, $0.index) < ($1.time, $1.worker, $1.index) }
        return all.map { ($0.id, $0.worker, rings[$0.worker]) }
    }

    /// The threads seen spawning, in spawn order (lane 0 first).
    public var threads: [TraceThread] {
        spawnOrder.enumerated().map { lane, s in
            TraceThread(
                id: ThreadID(rawValue: s.id), name: s.ring.names[s.id] ?? "", lane: lane,
                deadlineAfterSpawn: s.ring.deadlines[s.id], worker: s.worker)
        }
    }

    /// The recorded events, oldest first, every worker's merged by time; times in nanoseconds
    /// since the runtime started.
    public var events: [TraceEvent] {
        var lanes: [UInt64: Int] = [:]
        for (lane, s) in spawnOrder.enumerated() { lanes[s.id] = lane }
        var out: [TraceEvent] = []
        var raw: [UInt64] = []  // clock values since the origin: finer than nanoseconds on the TSC
        for (w, ring) in recorded.enumerated() {
            ring.append(into: &out, times: &raw, worker: w, lanes: lanes, virtual: isVirtual)
        }
        guard workers > 1 else { return out }
        // Each ring is in time order already, appended in worker order: on equal times the
        // index orders by worker, then by recording order.
        return out.indices.sorted { (raw[$0], $0) < (raw[$1], $1) }.map { out[$0] }
    }

    /// The events without process-specific ids (threads by lane): equal for two runs that
    /// scheduled identically. One line per event.
    public var signature: String {
        events.map { "\($0.nanoseconds) \($0.kind.name) \($0.lane) \($0.detail)" }.joined(separator: "\n")
    }
}

/// One worker's part of a trace: its event ring and what it learnt at its spawns. Written only
/// by the worker's scheduler, on its kernel thread; read after the run (UThreadTrace's essay).
final class TraceRing {
    struct Raw {
        var time: UInt64
        var thread: UInt64
        var kind: UInt8
        var detail: UInt8
    }

    private let capacity: Int
    private let mask: UInt64
    private let ring: UnsafeMutablePointer<Raw>
    private var written: UInt64 = 0
    private(set) var origin: UInt64 = 0
    private var nsPerUnit: Double = 1
    /// The kernel thread (gettid) of the worker, learnt at its first spawn (0 before).
    private(set) var kernelThread: Int32 = 0
    private(set) var names: [UInt64: String] = [:]
    /// The threads this worker started, in order, and when (slice clock).
    private(set) var order: [UInt64] = []
    private(set) var spawnTimes: [UInt64] = []
    /// Deadlines given at spawn, as nanoseconds after the spawn.
    private(set) var deadlines: [UInt64: UInt64] = [:]

    init(capacity: Int) {
        self.capacity = capacity
        mask = UInt64(capacity - 1)
        ring = .allocate(capacity: capacity)
    }

    deinit { ring.deallocate() }

    func begin(origin: UInt64, nsPerUnit: Double) {
        self.nsPerUnit = nsPerUnit
        written = 0
        names = [:]
        order = []
        spawnTimes = []
        deadlines = [:]
        self.origin = origin
        kernelThread = 0
    }

    @inline(__always)
    func record(_ kind: TraceEvent.Kind, _ t: ControlBlock, detail: UInt8 = 0, at time: UInt64) {
        ring[Int(written & mask)] = Raw(time: time, thread: t.pointee.id, kind: kind.rawValue, detail: detail)
        written &+= 1
    }

    func spawned(_ t: ControlBlock, name: String, deadlineAfter: UInt64?, at time: UInt64) {
        if kernelThread == 0 { kernelThread = uthreads_gettid() }  // spawns run on the worker's thread
        let id = t.pointee.id
        names[id] = name
        if let deadlineAfter { deadlines[id] = deadlineAfter }
        order.append(id)
        spawnTimes.append(time)
        record(.spawn, t, at: time)
    }

    func finish(nsPerUnit: Double) { self.nsPerUnit = nsPerUnit }

    var dropped: Int { Int(written > UInt64(capacity) ? written - UInt64(capacity) : 0) }

    /// Appends this ring's events, oldest first, as worker `worker`'s, and their clock values
    /// to `times`.
    func append(
        into out: inout [TraceEvent], times: inout [UInt64], worker: Int, lanes: [UInt64: Int], virtual: Bool
    ) {
        let n = min(written, UInt64(capacity))
        out.reserveCapacity(out.count + Int(n))
        for i in (written - n)..<written {
            let r = ring[Int(i & mask)]
            times.append(r.time &- origin)
            let ns =
                virtual ? r.time &- origin : UInt64(max(0, Double(Int64(bitPattern: r.time &- origin)) * nsPerUnit))
            out.append(
                TraceEvent(
                    nanoseconds: ns, kind: TraceEvent.Kind(rawValue: r.kind) ?? .overrun,
                    thread: ThreadID(rawValue: r.thread), lane: lanes[r.thread] ?? -1, detail: r.detail,
                    kernelThread: kernelThread, worker: worker))
        }
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
    /// The worker that started it (0 under `workers: 1`); it may have run on others since.
    public var worker: Int = 0
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
    /// The kernel thread (gettid) of the worker that recorded it.
    public var kernelThread: Int32
    /// The worker that recorded it (0 under `workers: 1`): for `run`, the worker the thread
    /// ran on.
    public var worker: Int = 0

    /// For a `block` event, what the thread parked on (decoded from `detail`); nil for other
    /// kinds.
    public var waitReason: WaitReason.Kind? { kind == .block ? WaitReason.Kind(rawValue: detail) : nil }
    /// For a `wake` event, how the park ended (decoded from `detail`); nil for other kinds.
    public var wakeResult: WakeResult? { kind == .wake ? WakeResult(rawValue: detail) : nil }
}

/// The recorder as a scheduler holds it: its worker's ring of the trace.
final class TraceRecorder {
    let trace: UThreadTrace
    let ring: TraceRing
    /// `first`: the runtime's first (or only) scheduler, built before the others (MNRuntime
    /// builds its workers' schedulers in worker order, so ring i is worker i's).
    init(trace: UThreadTrace, first: Bool, virtual: Bool, nsPerUnit: Double) {
        self.trace = trace
        ring = trace.attach(first: first, virtual: virtual, nsPerUnit: nsPerUnit)
    }
    @inline(__always)
    func record(_ kind: TraceEvent.Kind, _ t: ControlBlock, detail: UInt8 = 0, at time: UInt64) {
        ring.record(kind, t, detail: detail, at: time)
    }
    func spawned(_ t: ControlBlock, name: String, deadlineAfter: UInt64?, at time: UInt64) {
        ring.spawned(t, name: name, deadlineAfter: deadlineAfter, at: time)
    }
    func finish(nsPerUnit: Double) { ring.finish(nsPerUnit: nsPerUnit) }
}
