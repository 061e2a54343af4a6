// Layer 5: the one conversion of the public time arguments (`Duration`, `ContinuousClock.Instant`)
// to the runtime's clock.
//
// Design essay
// ============
//
// The runtime keeps time as UInt64 nanoseconds of CLOCK_MONOTONIC (or of the virtual clock in
// simulation mode, which starts at 0): every timer in the heap, every `park` deadline and every
// policy deadline is such a number. The public API takes Swift's `Duration` (a 128-bit count of
// attoseconds, any sign, up to ~1.7e20 seconds) and `ContinuousClock.Instant`. Every timed call
// converts here, and nowhere else, so that every call treats the whole range alike:
//
//   * Negative or zero: "already due". The deadline is `now`; `Scheduler.park` returns
//     `.timedOut` at once for a deadline that is not in the future, so a timed call tries its
//     operation once (a free mutex is taken, ready data is read) and then times out. An instant
//     in the past is the same, however far in the past.
//   * A fraction of a nanosecond is rounded *up*: a positive timeout never becomes zero, so
//     `.nanoseconds(1) / 2` still means "a moment from now", not "already due" (in practice
//     both time out at the first park, but the rule keeps `timeout > 0` meaning "may wait").
//   * At or beyond `horizon` (2^62 ns, ~146 years) there is no deadline: the result is nil,
//     exactly as if no timeout had been given. `.seconds(Int64.max)` is therefore "wait
//     forever" — cancellation and the deadlock report still end such a wait, and the virtual
//     clock never jumps to the end of time. Below the horizon `now + ns` cannot overflow a
//     UInt64 (the monotonic clock is the time since boot; the virtual clock only moves to
//     deadlines, each below the horizon from the then-current time); the addition still
//     saturates to nil, so even a clock near 2^63 never wraps to a deadline in the past.
//   * An instant is turned into a duration from `ContinuousClock.now` and then added to the
//     runtime's `now` (both clocks tick at one rate; on Linux ContinuousClock is CLOCK_BOOTTIME,
//     which differs from CLOCK_MONOTONIC only by time suspended). Under the virtual clock an
//     instant means "this long from now on the virtual clock".
//   * The two clocks are read in that order: `ContinuousClock.now` first, the runtime's `now`
//     after it (which is why `now` is an autoclosure). A kernel thread may be preempted between
//     the two reads, for milliseconds on a loaded machine; with `now` read first, that gap was
//     subtracted from the wait, and a deadline `start + 30 ms` ended a write after 26.5 ms
//     (seen under load). Read in this order the gap is added instead: a wait may end late, as
//     any wait may on a loaded machine, but never before its instant.
//
// Nothing here traps. `Duration.components` traps for durations beyond Int64.max seconds and
// gives a negative attosecond part for negative sub-second durations (−500 ms is (0, −5e17)),
// which the old conversion passed to `UInt64(_:)`, a trap: so the sign and the horizon are
// decided by comparisons first, and `components` is only read for 0 < d < horizon, where both
// parts are non-negative. `instant - .now` cannot overflow either: it is computed only when the
// instant is later than now.
//
// Rejected: converting with `Double` (loses nanoseconds beyond ~104 days and rounds huge values
// to numbers that still overflow `UInt64(_:)`); a sentinel deadline such as UInt64.max / 2 for
// "never" (the old choice: it put a timer in the heap, made the deadlock check see a thread that
// "will wake", and under the virtual clock moved time forward by 146 years); throwing
// `invalidArgument` for negative timeouts (Go, Java and POSIX all treat a non-positive timeout
// as "poll once", and a deadline computed as `start + budget` passes naturally); one conversion
// per layer (the M:1 primitives, M:N primitives, I/O and the bridge each had their own, and the
// negative sub-second trap was in all of them).
//
// Layering: this file knows only Swift's clock types and nanoseconds; the scheduler, the
// policies, sync, I/O, M:N and the public API all call it.

/// Conversions of public time arguments to the runtime's nanosecond clock (see the essay above).
package enum Deadline {
    /// Timeouts at or beyond this many nanoseconds (2^62, ~146 years) mean "no deadline".
    static let horizonNanoseconds: UInt64 = 1 << 62
    /// `horizonNanoseconds` as a `Duration`.
    static let horizon: Duration = .nanoseconds(Int64(horizonNanoseconds))

    /// The length of `duration` in nanoseconds: 0 when not positive, a fraction of a nanosecond
    /// rounded up, nil at or beyond `horizon` (no limit). Never traps.
    static func nanoseconds(_ duration: Duration) -> UInt64? {
        if duration <= .zero { return 0 }
        if duration >= horizon { return nil }
        let (seconds, attoseconds) = duration.components  // both ≥ 0 here
        let (whole, fraction) = attoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        return UInt64(seconds) * 1_000_000_000 + UInt64(whole) + (fraction > 0 ? 1 : 0)
    }

    /// `nanoseconds(duration)` for lengths that must be finite (quanta, simulated work, limits):
    /// at or beyond the horizon it is the horizon.
    package static func clampedNanoseconds(_ duration: Duration) -> UInt64 {
        nanoseconds(duration) ?? horizonNanoseconds
    }

    /// The deadline `duration` after `now`: `now` itself when not positive (already due), nil
    /// (no deadline) at or beyond the horizon.
    static func after(_ duration: Duration, now: UInt64) -> UInt64? {
        guard let ns = nanoseconds(duration) else { return nil }
        let (sum, overflow) = now.addingReportingOverflow(ns)
        return overflow ? nil : sum
    }

    /// The deadline at `instant`, on the runtime's clock whose current time is `now`: `now`
    /// when the instant has passed (already due), nil when it is beyond the horizon. `now` is
    /// read after `ContinuousClock.now` (see the essay: never before the instant).
    static func at(_ instant: ContinuousClock.Instant, now: @autoclosure () -> UInt64) -> UInt64? {
        let wallNow = ContinuousClock.now  // first (see the essay)
        return at(instant, wallNow: wallNow, now: now())
    }

    /// `at` with both clocks read, `wallNow` first.
    private static func at(_ instant: ContinuousClock.Instant, wallNow: ContinuousClock.Instant, now: UInt64)
        -> UInt64?
    {
        guard instant > wallNow else { return now }
        return after(instant - wallNow, now: now)
    }

    /// The earlier of a timeout and a deadline (either may be nil); nil when neither limits.
    /// `now` is read once, after `ContinuousClock.now` when there is a deadline (see `at`).
    static func earliest(
        timeout: Duration?, deadline: ContinuousClock.Instant?, now: @autoclosure () -> UInt64
    ) -> UInt64? {
        guard let deadline else { return timeout.flatMap { after($0, now: now()) } }
        let wallNow = ContinuousClock.now  // first (see the essay)
        let now = now()
        let b = at(deadline, wallNow: wallNow, now: now)
        guard let a = timeout.flatMap({ after($0, now: now) }) else { return b }
        guard let b else { return a }
        return min(a, b)
    }
}
