// The conversion of time arguments to the runtime's clock (Timers/Deadline.swift), and what it
// means for sleeps under the real and the virtual clock.
import CUThreads
import Glibc
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct DeadlineTests {
    @Test func nanosecondsOverTheWholeRange() {
        #expect(Deadline.nanoseconds(.nanoseconds(-1)) == 0)
        #expect(Deadline.nanoseconds(.milliseconds(-500)) == 0)
        #expect(Deadline.nanoseconds(.milliseconds(-1500)) == 0)
        #expect(Deadline.nanoseconds(.seconds(Int64.min)) == 0)
        #expect(Deadline.nanoseconds(.zero) == 0)
        #expect(Deadline.nanoseconds(.nanoseconds(1)) == 1)
        #expect(Deadline.nanoseconds(.milliseconds(1500)) == 1_500_000_000)
        // A fraction of a nanosecond rounds up: a positive timeout is never "already due".
        #expect(Deadline.nanoseconds(.nanoseconds(1) / 2) == 1)
        #expect(Deadline.nanoseconds(.milliseconds(1) + .nanoseconds(1) / 1000) == 1_000_001)
        // The horizon and beyond: no deadline, even past Int64.max seconds (components traps there).
        #expect(Deadline.nanoseconds(Deadline.horizon - .nanoseconds(1)) == Deadline.horizonNanoseconds - 1)
        #expect(Deadline.nanoseconds(Deadline.horizon) == nil)
        #expect(Deadline.nanoseconds(.seconds(Int64.max)) == nil)
        #expect(Deadline.nanoseconds(.seconds(Int64.max) * 4) == nil)
        #expect(Deadline.clampedNanoseconds(.seconds(Int64.max)) == Deadline.horizonNanoseconds)
    }

    @Test func deadlinesFromDurationsAndInstants() {
        let now: UInt64 = 1_000_000_000
        #expect(Deadline.after(.milliseconds(-500), now: now) == now)
        #expect(Deadline.after(.nanoseconds(5), now: now) == now + 5)
        #expect(Deadline.after(.seconds(Int64.max), now: now) == nil)
        #expect(Deadline.after(.seconds(1), now: UInt64.max - 10) == nil, "saturates instead of wrapping")
        #expect(Deadline.at(.now - .milliseconds(300), now: now) == now)
        #expect(Deadline.at(.now - .seconds(Int64.max), now: now) == now)
        #expect(Deadline.at(.now + .seconds(Int64.max), now: now) == nil)
        let inAnHour = Deadline.at(.now + .seconds(3600), now: now)!
        #expect(inAnHour > now + 3599_000_000_000 && inAnHour <= now + 3600_000_000_000)
        // The earlier of the two wins; a limit that is "none" does not hide the other.
        #expect(Deadline.earliest(timeout: .seconds(1), deadline: .now - .seconds(1), now: now) == now)
        #expect(Deadline.earliest(timeout: .seconds(Int64.max), deadline: nil, now: now) == nil)
        #expect(Deadline.earliest(timeout: .seconds(Int64.max), deadline: .now - .seconds(1), now: now) == now)
        #expect(Deadline.earliest(timeout: nil, deadline: nil, now: now) == nil)
    }

    /// A kernel thread preempted between reading the two clocks must not end the wait before
    /// its instant: the runtime's clock is read after `ContinuousClock.now`, so the gap can only
    /// make the deadline later. The `now` argument below reads the monotonic clock and is then
    /// "preempted" for 5 ms; read first (the old order), the deadline came 5 ms early.
    @Test func aPreemptionBetweenTheClockReadsNeverMakesADeadlineEarly() {
        // Where the instant falls on the monotonic clock: a pair of reads (monotonic, then
        // continuous) overstates the clocks' offset by the gap between them, so each pair's
        // deadline is at most the true one; the pair with the smallest gap is within it.
        let instant = ContinuousClock.now + .milliseconds(50)
        var bound = UInt64.max
        for _ in 0..<100 {
            let m = uthreads_monotonic_ns()
            let w = ContinuousClock.now
            bound = min(bound, Deadline.after(instant - w, now: m)!)
        }
        let preempted = { () -> UInt64 in
            let m = uthreads_monotonic_ns()
            usleep(5000)
            return m
        }
        let at = Deadline.at(instant, now: preempted())!
        let earliest = Deadline.earliest(timeout: .seconds(20), deadline: instant, now: preempted())!
        // A tolerance of 1 ms for the bound's own gap; the old order was 5 ms early at least.
        #expect(at + 1_000_000 >= bound, "\(Int64(bound) - Int64(at)) ns early")
        #expect(earliest + 1_000_000 >= bound, "\(Int64(bound) - Int64(earliest)) ns early")
    }

    /// A sleep with no deadline, alone, can never end: the runtime reports it instead of
    /// hanging (for 146 years under the old sentinel deadline).
    @Test func aHugeSleepAloneIsADeadlockNotAHang() {
        #expect {
            try UThreadRuntime.run { try UThread.sleep(for: .seconds(Int64.max)) }
        } throws: { error in
            if case .deadlock? = error as? UThreadError { return true }
            return false
        }
    }

    @Test func virtualClockSleepsUntilInstants() throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.clock = .virtual
        let (pastMoved, futureMoved) = try UThreadRuntime.run(configuration) { () -> (UInt64, UInt64) in
            let s = Scheduler.active!
            let start = s.now()
            try UThread.sleep(until: .now - .milliseconds(300))
            let afterPast = s.now()
            try UThread.sleep(until: .now + .seconds(10 * 365 * 86_400))
            return (afterPast - start, s.now() - afterPast)
        }
        #expect(pastMoved == 0, "a past instant does not move the virtual clock")
        let tenYears: UInt64 = 10 * 365 * 86_400 * 1_000_000_000
        #expect(futureMoved <= tenYears && futureMoved > tenYears - 1_000_000_000, "\(futureMoved)")
    }

    /// Under the virtual clock a huge timeout must not move time to the end of time: a waiter
    /// with no deadline is cancelled while virtual time stays where the canceller left it.
    @Test func virtualClockIgnoresHugeTimeouts() throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.clock = .virtual
        let (moved, error) = try UThreadRuntime.run(configuration) { () -> (UInt64, (any Error)?) in
            let s = Scheduler.active!
            let start = s.now()
            let channel = Channel<Int>()
            let waiter = UThread { () -> (any Error)? in
                do { _ = try channel.receive(timeout: .seconds(Int64.max)) } catch { return error }
                return nil
            }
            try UThread.sleep(for: .seconds(1))  // the waiter parks meanwhile
            waiter.cancel()
            return (s.now() - start, try waiter.join())
        }
        #expect(moved == 1_000_000_000, "\(moved)")
        #expect(error is CancellationError)
    }
}
