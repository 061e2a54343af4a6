import Testing
import UserThreads
import UserThreadsBackends

/// Out-of-range parameters of the sync objects are thrown as `invalidArgument` (naming the
/// parameter and the value), never a precondition stop. No runtime is needed to build them.
@Suite(.timeLimit(.minutes(1))) struct SyncBadInputTests {
    private func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch let UThreadError.invalidArgument(m) { return m } catch { return "unexpected \(error)" }
        return nil
    }

    @Test func negativeChannelCapacityThrows() throws {
        #expect(message { _ = try Channel<Int>(capacity: -1) } == "Channel capacity must be >= 0, not -1")
        #expect(try Channel<Int>(capacity: 0).capacity == 0)
        #expect(Channel<Int>().capacity == 0)
    }

    @Test func semaphoreAndBarrierRejectBadCounts() throws {
        #expect(message { _ = try USemaphore(value: -3) } == "USemaphore value must be >= 0, not -3")
        #expect(try USemaphore(value: 2).value == 2)
        #expect(USemaphore(name: "gate").value == 0)
        #expect(message { _ = try UBarrier(parties: 0) } == "UBarrier needs at least one party, not 0")
        #expect(try UBarrier(parties: 1).parties == 1)
    }

    @Test func backendChannelsRejectNegativeCapacityOnBothBackends() {
        for backend in [UserThreadsBackend() as any ThreadingBackend, KernelThreadsBackend()] {
            #expect(
                message { _ = try backend.makeChannel(of: Int.self, capacity: -2) }?.contains("not -2") == true,
                "\(backend.kind)")
        }
    }
}
