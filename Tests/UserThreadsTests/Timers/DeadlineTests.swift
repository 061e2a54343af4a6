// The conversion of time arguments to the runtime's clock (Timers/Deadline.swift), and what it
// means for sleeps under the real and the virtual clock.
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
