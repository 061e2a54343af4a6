// Layer 6: time slices at safe points, the switch hooks, the watchdog, simulated work.
//
// Design (the essay in Scheduler.swift has the why). Everything here runs only when the
// policy is not FIFO, a trace is recorded, or the scheduler is an M:N worker's (errno travels
// with its threads) (`Scheduler.hooks`); the M:1 FIFO switch path tests that one flag and goes on.
//
//   * switch-in (`switchHooks` → `beginSlice`): asks `policy.timeSlice(for:)`, turns it into an
//     end on the slice clock (TSC ticks; virtual ns in simulation), arms the checkpoint
//     countdown. O(1) plus the policy's timeSlice.
//   * leaving the CPU (`charge`, from yield, park and exit, before the policy hears of it):
//     tells the policy how long the thread ran (`ran(_:nanoseconds:)`), and lets the watchdog
//     look at how far past its slice end it ran.
//   * `checkpointSlow` (when the countdown reaches zero): reads the clock once; if the slice is
//     over, marks the thread over-quantum and switches it out (reason `.preempted`); else, if
//     threads became ready, asks the policy whether one should preempt it; then re-arms the
//     countdown so that the clock is read about every `min(slice/8, 50 µs)`, from the measured
//     cost of one checkpoint-to-checkpoint stretch of the caller's loop. In simulation the
//     countdown is always 1: decisions depend on the virtual clock alone, so they replay.
//
// Rejected: reading the TSC in every checkpoint (~10 ns on this machine's rdtsc, five times the
// budget); a timer signal setting a flag (a signal per quantum and EINTR in every blocking
// call of the process, for the same safe-point semantics the countdown gives).
import CUThreads
import Glibc

extension Scheduler {
    /// Per-switch work of M:N workers (errno), non-FIFO policies and tracing. `from` may equal
    /// `to` (a thread preempted or yielding with nothing better to run starts a new slice).
    /// Small on purpose: an M:N worker under FIFO without tracing (the common case) only moves
    /// errno here, in a frame that saves no register; the rest is `sliceHooks`' (the errno
    /// swap cost ~42 instructions per switch inside the whole hook's frame, ~20 alone).
    @inline(never)
    func switchHooks(from: ControlBlock, to: ControlBlock) {
        if migrating {
            // Errno is the kernel thread's; under M:N the incoming thread may last have
            // run on another worker, so each thread's own value is saved and restored (in its
            // object; the idle loop's in the scheduler).
            let location = errnoLocation
            let e = location.pointee
            if from == idleBlock { idleErrno = e } else { objectOf(from).savedErrno = e }
            location.pointee = to == idleBlock ? idleErrno : objectOf(to).savedErrno
            if !timed && recorder == nil { return }
        }
        sliceHooks(from: from, to: to)
    }

    /// The time-slice and tracing half of `switchHooks`.
    @inline(never)
    private func sliceHooks(from: ControlBlock, to: ControlBlock) {
        let clock = sliceClock()
        if let recorder {
            if from != idleBlock {
                switch from.pointee.state {
                case .stateReady: recorder.record(preempting ? .preempt : .yield, from, at: clock)
                case .stateBlocked, .stateSleeping:
                    recorder.record(.block, from, detail: from.pointee.wait_kind, at: clock)
                case .stateFinished: recorder.record(.exit, from, at: clock)
                default: break
                }
            }
            if to != idleBlock { recorder.record(.run, to, at: clock) }
        }
        preempting = false
        if timed { beginSlice(to, clock: clock) }
    }

    /// Starts `t`'s time slice at `clock`.
    @inline(__always)
    private func beginSlice(_ t: ControlBlock, clock: UInt64) {
        runStart = clock
        t.clear(.flagOverQuantum)
        guard t != idleBlock, let slice = policy.timeSlice(for: ThreadRef(t)) else {
            sliceEnd = .max
            uthreads_checkpoint_arm(Int64.max / 2)
            return
        }
        let ns = max(1, Deadline.clampedNanoseconds(slice))
        sliceLength = max(1, UInt64(Double(ns) / nsPerSliceUnit))
        sliceEnd = clock &+ sliceLength
        armedAt = clock
        armedCalls = simulated ? 1 : 16
        uthreads_checkpoint_arm(armedCalls)
    }

    /// The running thread `t` leaves the CPU (yield, preemption, park, exit): tells the policy
    /// how long it ran and lets the watchdog check how far past its slice it went.
    func charge(_ t: ControlBlock) {
        let clock = sliceClock()
        let ran = clock &- runStart
        runStart = clock
        if sliceEnd != .max && clock > sliceEnd {
            let over = UInt64(Double(clock &- sliceEnd) * nsPerSliceUnit)
            if over > watchdog.limitNanoseconds {
                let report = WatchdogReport(
                    thread: ThreadID(rawValue: t.pointee.id), name: objectOf(t).name,
                    quantumNanoseconds: UInt64(Double(sliceLength) * nsPerSliceUnit),
                    overrunNanoseconds: over)
                recorder?.record(.overrun, t, at: clock)
                watchdog.report(report)
            }
        }
        sliceEnd = .max
        policy.ran(ThreadRef(t), nanoseconds: UInt64(Double(ran) * nsPerSliceUnit))
    }

    /// The slow path of `UThread.checkpoint()`: the countdown ran out. `audited`: called from
    /// `UThread.checkpoint()`, a site audited for resuming on another M:N worker (nothing uses
    /// `self` after a preemption); `simulateWork`'s own safe points are not.
    @inline(never)
    func checkpointSlow(audited: Bool = false) {
        let me = current
        if migrating && !timed {
            // An M:N FIFO worker arms the countdown for its own sake: every
            // `checkpointBatch` calls a long-running thread lets the worker do its maintenance
            // (mail, shedding ready threads to idle workers). The thread itself keeps the CPU.
            if me != idleBlock { maintenance() }
            uthreads_checkpoint_arm(Scheduler.checkpointBatch)
            return
        }
        guard me != idleBlock, timed, sliceEnd != .max else {
            uthreads_checkpoint_arm(Int64.max / 2)
            return
        }
        let clock = sliceClock()
        if !timers.isEmpty, let next = timers.nextDeadline, next <= now() { fireTimers(now: now()) }
        if clock >= sliceEnd {
            me.set(.flagOverQuantum)
            preempt(me, audited: audited)
            return
        }
        if hasReadyThreads && policy.shouldPreempt(ThreadRef(me)) {
            preempt(me, audited: audited)
            return
        }
        // Re-arm: read the clock again after about min(slice/8, 50 µs), or at the slice end.
        if simulated {
            armedCalls = 1
        } else {
            let perCall = max(1, (clock &- armedAt) / UInt64(max(1, armedCalls)))
            let target = min(sliceLength / 8, UInt64(50_000 / nsPerSliceUnit), sliceEnd &- clock)
            armedCalls = Int64(min(max(1, target / perCall), 1 << 24))
        }
        armedAt = clock
        uthreads_checkpoint_arm(armedCalls)
    }

    /// Checkpoints between two maintenance passes of an M:N FIFO worker (~µs of a typical loop).
    static let checkpointBatch: Int64 = 4096

    /// Switches the running thread out at a safe point, back to the policy as `.preempted`.
    /// Under M:N a preemption that is not `audited` keeps the thread on this worker (flag
    /// UNAUDITED while it is ready): its caller uses `self` after the switch.
    private func preempt(_ me: ControlBlock, audited: Bool) {
        maintenance()  // timers and I/O are due for a look at every preemption
        me.pointee.state = .stateReady
        preempting = true
        if migrating && !audited { me.set(.flagUnaudited) }
        requeueTimed(me, .preempted)
        switchAway(from: me)
        me.clear(.flagUnaudited)
    }

    /// Simulated CPU work: `nanoseconds` of the calling thread's own CPU time, with safe points
    /// often enough that quanta apply. Virtual clock: advances it, stopping at the slice end and
    /// at the next timer so that preemptions and wake-ups happen at their exact times. Real
    /// clock: spins on the TSC, counting only time this thread spent on the CPU.
    func simulateWork(nanoseconds: UInt64) {
        if simulated {
            var left = nanoseconds
            while left > 0 {
                var step = left
                if sliceEnd != .max { step = min(step, sliceEnd > virtualNow ? sliceEnd - virtualNow : 0) }
                if let next = timers.nextDeadline, next > virtualNow { step = min(step, next - virtualNow) }
                virtualNow &+= step
                left -= step
                // Wake the sleepers due now, so that their wake time is exact (under every
                // policy, FIFO included).
                if let next = timers.nextDeadline, next <= virtualNow { fireTimers(now: virtualNow) }
                // A safe point, unless the work is done: then the thread goes on to whatever it
                // does next (a finished burst is not preempted at its last instant).
                if left > 0 { checkpointSlow() }
            }
            return
        }
        let ticksPerNs = 1 / nsPerSliceUnit
        var leftTicks = UInt64(Double(nanoseconds) * ticksPerNs)
        let chunk = UInt64(2_000 * ticksPerNs)  // 2 µs between safe points
        while leftTicks > 0 {
            let t0 = uthreads_ticks_inline()
            let want = min(leftTicks, chunk)
            var t1 = t0
            while t1 &- t0 < want { t1 = uthreads_ticks_inline() }
            leftTicks -= min(leftTicks, t1 &- t0)
            if uthreads_checkpoint_tick() != 0 { checkpointSlow() }
        }
    }

    /// Copies a thread's scheduling parameters into its control block (before the policy
    /// first sees it).
    @inline(__always)
    func setSchedulingParameters(_ t: ControlBlock, _ p: SchedulingParameters?) {
        guard let p else {
            // The common spawn: no parameters. Defaults without building a struct (this path
            // is on every spawn; the general one cost ~35 instructions).
            t.pointee.nice = 0
            t.pointee.tickets = UInt32(SchedulingParameters.defaultTickets)
            t.pointee.sched_deadline_ns = .max
            return
        }
        t.pointee.priority = Int32(clamping: p.priority)
        t.pointee.nice = Int32(min(19, max(-20, p.nice)))
        t.pointee.tickets = UInt32(clamping: max(1, p.tickets))
        t.pointee.sched_deadline_ns = p.deadline.flatMap { Deadline.after($0, now: now()) } ?? .max
    }
}

/// What the watchdog says about a thread that ran far past its quantum without a safe point.
public struct WatchdogReport: Sendable, Hashable, CustomStringConvertible {
    /// The thread that overran its slice.
    public var thread: ThreadID
    /// The thread's name ("" when it has none): shown in the report line next to its id.
    public var name: String
    /// Its time slice.
    public var quantumNanoseconds: UInt64
    /// How long it ran past the end of its slice before it reached a safe point.
    public var overrunNanoseconds: UInt64

    public var description: String {
        let label = name.isEmpty ? "\(thread)" : "\(thread) \"\(name)\""
        return
            "thread \(label) ran \(Watchdog.milliseconds(overrunNanoseconds)) past its \(Watchdog.milliseconds(quantumNanoseconds)) quantum without reaching a safe point (call UThread.checkpoint() in long loops)"
    }
}

/// Rate-limited reporting of quantum overruns: at most one line per second to stderr (the
/// hook, when set, gets every report; another layer routes it to a logger).
struct Watchdog {
    let limitNanoseconds: UInt64
    let handler: (@Sendable (WatchdogReport) -> Void)?
    private var lastLine: UInt64 = 0
    private var suppressed = 0

    init(limit: Duration?, handler: (@Sendable (WatchdogReport) -> Void)?) {
        self.limitNanoseconds = limit.map(Deadline.clampedNanoseconds) ?? .max
        self.handler = handler
    }

    mutating func report(_ r: WatchdogReport) {
        if let handler {
            handler(r)
            return
        }
        let t = uthreads_monotonic_ns()
        if lastLine != 0 && t &- lastLine < 1_000_000_000 {
            suppressed += 1
            return
        }
        let more = suppressed > 0 ? " (\(suppressed) similar reports suppressed)" : ""
        suppressed = 0
        lastLine = t
        uthreads_write_stderr("uthreads: watchdog: \(r)\(more)\n")
    }

    mutating func flush() {
        if suppressed > 0 {
            uthreads_write_stderr("uthreads: watchdog: \(suppressed) more overrun reports suppressed\n")
        }
        suppressed = 0
    }

    static func milliseconds(_ ns: UInt64) -> String {
        let ms = (Double(ns) / 1e4).rounded() / 100  // two decimals
        return ms == ms.rounded() ? "\(Int(ms)) ms" : "\(ms) ms"
    }
}
