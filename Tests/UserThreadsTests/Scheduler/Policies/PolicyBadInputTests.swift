import Testing
import UserThreads

/// Policy parameters out of range are thrown as `invalidArgument`, never a precondition stop.
@Suite(.timeLimit(.minutes(1))) struct PolicyBadInputTests {
    private func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch let UThreadError.invalidArgument(m) { return m } catch { return "unexpected \(error)" }
        return nil
    }

    @Test func nonPositiveDurationsThrowNamingTheParameter() {
        #expect(
            message { _ = try RoundRobinPolicy(quantum: .zero) }
                == "RoundRobinPolicy: the quantum must be positive, not 0.0 seconds")
        #expect(
            message { _ = try LotteryPolicy(quantum: .milliseconds(-1)) }?.hasPrefix(
                "LotteryPolicy: the quantum must be positive") == true)
        #expect(message { _ = try StridePolicy(quantum: .zero) }?.hasPrefix("StridePolicy: the quantum") == true)
        #expect(
            message { _ = try PriorityPolicy(agingInterval: .zero) }?.hasPrefix("PriorityPolicy: the aging interval")
                == true)
        #expect(
            message { _ = try EDFPolicy(recheckInterval: .seconds(-1)) }?.hasPrefix("EDFPolicy: the recheck interval")
                == true)
        #expect(
            message { _ = try FairSharePolicy(minGranularity: .zero) }?.hasPrefix(
                "FairSharePolicy: the minimum granularity") == true)
        #expect(
            message { _ = try MLFQPolicy(boostInterval: .zero) }?.hasPrefix("MLFQPolicy: the boost interval") == true)
    }

    @Test func mlfqNeedsOneToTwoHundredFiftyFiveLevels() throws {
        #expect(message { _ = try MLFQPolicy(quanta: []) } == "MLFQPolicy: 1...255 levels, not 0")
        #expect(
            message { _ = try MLFQPolicy(quanta: Array(repeating: .milliseconds(1), count: 256)) }
                == "MLFQPolicy: 1...255 levels, not 256")
        #expect(
            message { _ = try MLFQPolicy(quanta: [.milliseconds(1), .zero]) }?.hasPrefix("MLFQPolicy: every quantum")
                == true)
        #expect(try MLFQPolicy(quanta: [.milliseconds(1)]).quanta.count == 1)
        #expect(try EDFPolicy(recheckInterval: nil).recheckInterval == nil)
    }
}
