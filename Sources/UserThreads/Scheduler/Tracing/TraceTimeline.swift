// Layer 6: a trace turned into per-thread state intervals, and per-thread figures.
//
// Each event moves its thread between states: spawn/yield/preempt/wake → ready, run →
// running, block → blocked (sleeping for a sleep), exit → gone. The intervals feed both
// exports and the scheduling lab's turnaround, waiting and response times. O(events).

/// A stretch of time one thread spent in one state.
public struct TraceSegment: Sendable, Hashable {
    /// What a thread was doing during a segment. The raw value is the lower-case name used
    /// in exports.
    public enum State: String, Sendable, CaseIterable {
        /// Runnable and waiting for the CPU: after spawn, yield, preemption or wake-up.
        case ready
        /// Switched in and running.
        case running
        /// Parked on something other than a sleep (a lock, channel, I/O, join, …);
        /// `waitReason` says what.
        case blocked
        /// Parked in a sleep.
        case sleeping
    }
    /// The thread's spawn order in the trace (0 first): its row in the Gantt chart and in the
    /// exported timelines.
    public var lane: Int
    /// The thread this interval belongs to.
    public var thread: ThreadID
    /// What the thread was doing during the interval.
    public var state: State
    /// When the thread entered `state`, in nanoseconds since the runtime started (scheduler clock:
    /// virtual in simulation).
    public var start: UInt64
    /// When the thread left `state`, in nanoseconds since the runtime started; for a thread still
    /// in it when the trace ends, the time of the last event.
    public var end: UInt64
    /// For `blocked`: what it waited on.
    public var waitReason: WaitReason.Kind?
    /// The worker that recorded the event that began the interval (0 under `workers: 1`): for
    /// `running`, the worker the thread ran on.
    public var worker: Int = 0
}

/// What a trace says about one thread (nanoseconds since the runtime started).
public struct TraceThreadSummary: Sendable, Hashable {
    /// The thread these figures are about (id, name, lane).
    public var thread: TraceThread
    /// When it was spawned (0 if its spawn event was overwritten in the ring).
    public var spawned: UInt64
    /// First switch-in.
    public var firstRun: UInt64?
    /// When it finished; nil if it had not finished when the trace was read.
    public var exited: UInt64?
    /// Total time it ran (switched in), in nanoseconds.
    public var running: UInt64 = 0
    /// Total time it was ready but not running, in nanoseconds.
    public var ready: UInt64 = 0
    /// Total time it was parked, in nanoseconds: blocked on an object or sleeping.
    public var blocked: UInt64 = 0
    /// Times it was switched out at a safe point.
    public var preemptions = 0
    /// Sum and count of wake → run delays (the responsiveness of a thread that mostly waits).
    public var wakeLatencyTotal: UInt64 = 0
    /// How many wake → run delays `wakeLatencyTotal` sums: divide by it for the mean.
    public var wakeups = 0

    /// exit − spawn.
    public var turnaround: UInt64? { exited.map { $0 - spawned } }
    /// first run − spawn.
    public var response: UInt64? { firstRun.map { $0 - spawned } }
    /// Time ready but not running.
    public var waiting: UInt64 { ready }
}

extension UThreadTrace {
    /// The state intervals of every thread, in event order. A thread still in a state at the
    /// end of the trace gets an interval up to the last event.
    public func segments() -> [TraceSegment] {
        analyse().segments
    }

    /// Per-thread figures, in spawn order.
    public func summaries() -> [TraceThreadSummary] {
        analyse().summaries
    }

    func analyse() -> (segments: [TraceSegment], summaries: [TraceThreadSummary]) {
        let events = self.events
        let threads = self.threads
        var summaries = threads.map { TraceThreadSummary(thread: $0, spawned: 0) }
        var open: [Int: (state: TraceSegment.State, start: UInt64, reason: WaitReason.Kind?, worker: Int)] = [:]
        var wokenAt: [Int: UInt64] = [:]
        var segments: [TraceSegment] = []
        let end = events.last?.nanoseconds ?? 0
        func close(_ lane: Int, _ thread: ThreadID, at t: UInt64) {
            guard let o = open.removeValue(forKey: lane) else { return }
            segments.append(
                TraceSegment(
                    lane: lane, thread: thread, state: o.state, start: o.start, end: t, waitReason: o.reason,
                    worker: o.worker))
            let d = t - min(t, o.start)
            switch o.state {
            case .running: summaries[lane].running += d
            case .ready: summaries[lane].ready += d
            case .blocked, .sleeping: summaries[lane].blocked += d
            }
        }
        func enter(_ e: TraceEvent, _ state: TraceSegment.State, reason: WaitReason.Kind? = nil) {
            close(e.lane, e.thread, at: e.nanoseconds)
            open[e.lane] = (state, e.nanoseconds, reason, e.worker)
        }
        for e in events where e.lane >= 0 && e.lane < summaries.count {
            let l = e.lane
            switch e.kind {
            case .spawn:
                summaries[l].spawned = e.nanoseconds
                enter(e, .ready)
            case .run:
                if summaries[l].firstRun == nil { summaries[l].firstRun = e.nanoseconds }
                if let w = wokenAt.removeValue(forKey: l) {
                    summaries[l].wakeLatencyTotal += e.nanoseconds - min(e.nanoseconds, w)
                    summaries[l].wakeups += 1
                }
                enter(e, .running)
            case .yield:
                enter(e, .ready)
            case .preempt:
                summaries[l].preemptions += 1
                enter(e, .ready)
            case .block:
                let reason = e.waitReason
                enter(e, reason == .sleep ? .sleeping : .blocked, reason: reason)
            case .wake:
                wokenAt[l] = e.nanoseconds
                enter(e, .ready)
            case .exit:
                close(l, e.thread, at: e.nanoseconds)
                summaries[l].exited = e.nanoseconds
            case .overrun:
                break
            }
        }
        for (lane, _) in open.sorted(by: { $0.key < $1.key }) { close(lane, threads[lane].id, at: end) }
        return (segments, summaries)
    }
}
