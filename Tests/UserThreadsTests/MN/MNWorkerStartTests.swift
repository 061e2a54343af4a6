// A worker whose kernel thread cannot be started: run(workers:) throws before any user code
// runs, and every worker already started is gone with its descriptors.
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct MNWorkerStartTests {
    @Test func aFailedWorkerStartThrowsBeforeUserCodeAndLeaksNothing() throws {
        let r = try ChildProcess.run(
            ChildProcess.uthreadsPath, ["selftest", "worker-start-failure"],
            environment: ["UTHREADS_TEST_FAIL_WORKER_START": "2"])
        #expect(r.status == 0 && !r.crashed, "status \(r.status): \(r.stderr)")
        #expect(r.stdout.contains("error: pthread_create (M:N worker 2 of 3)"), "\(r.stdout)")
        #expect(!r.stdout.contains("the main thread ran"), "\(r.stdout)")
        let counts = r.stdout.split(separator: "\n").first { $0.hasPrefix("descriptors before:") }
        let numbers = counts.map { $0.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } } ?? []
        #expect(numbers.count == 2 && numbers[0] == numbers[1], "\(r.stdout)")
    }

    /// Without the hook the same scenario runs normally (the hook is what fails the start).
    @Test func withoutTheHookTheRuntimeRuns() throws {
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, ["selftest", "worker-start-failure"])
        #expect(r.stdout.contains("the main thread ran") && r.stdout.contains("no error"), "\(r.stdout) \(r.stderr)")
    }
}
