// Tickets above SchedulingParameters.maximumTickets would give a stride of 0 (a thread that
// never yields its turn under StridePolicy): a spawn refuses them with a clear error.
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct TicketLimitTests {
    @Test func tooManyTicketsAreRefusedAtSpawn() throws {
        let error = try UThreadRuntime.run(policy: { try StridePolicy() }) { () -> UThreadError? in
            let t = UThread(scheduling: .init(tickets: SchedulingParameters.maximumTickets + 1)) {}
            do { try t.join() } catch let e as UThreadError { return e }
            return nil
        }
        guard case .invalidArgument(let message)? = error else {
            Issue.record("expected invalidArgument, got \(String(describing: error))")
            return
        }
        #expect(message.contains("tickets \(SchedulingParameters.maximumTickets + 1)"), "\(message)")
    }

    /// The most tickets still give a stride of at least 1, and such a thread shares the CPU:
    /// a one-ticket thread ready beside it still gets its turn.
    @Test func theMaximumStillLetsOthersRun() throws {
        #expect(StridePolicy.strideOne / UInt64(SchedulingParameters.maximumTickets) == 1)
        var configuration = UThreadRuntime.Configuration()
        configuration.clock = .virtual
        let order = try UThreadRuntime.run(configuration, policy: { try StridePolicy(quantum: .milliseconds(1)) }) {
            () -> [String] in
            var order: [String] = []
            let big = UThread.local(name: "big", scheduling: .init(tickets: SchedulingParameters.maximumTickets)) {
                for _ in 0..<3 {
                    UThread.simulateWork(for: .milliseconds(1))
                    order.append("big")
                }
            }
            let small = UThread.local(name: "small", scheduling: .init(tickets: 1)) { order.append("small") }
            try big.join()
            try small.join()
            return order
        }
        #expect(order.contains("small") && order.filter { $0 == "big" }.count == 3, "\(order)")
    }
}
