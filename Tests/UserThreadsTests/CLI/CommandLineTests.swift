import Foundation
import Testing

/// Smoke tests of the command line (no assertion on speed: figures are for `uthreads bench`).
@Suite(.timeLimit(.minutes(1))) struct CommandLineTests {
    @Test func tourRuns() throws {
        let r = try ChildProcess.uthreads("tour", "--quick")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("The thread table"))
        #expect(r.stdout.contains("lists 1 kernel thread"))
        // Step 7: the M:N runtime, measured and seen (rows from both workers).
        #expect(r.stdout.contains("CPU-bound threads forked and joined: 1 worker"))
        #expect(r.stdout.contains("WORKER") && r.stdout.contains("mutex 'accounts' held by #"))
    }

    @Test func tableJSON() throws {
        let r = try ChildProcess.uthreads("table", "--json")
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let threads = object?["threads"] as? [[String: Any]] ?? []
        let states = Set(threads.compactMap { $0["state"] as? String })
        #expect(states.isSuperset(of: ["running", "ready", "blocked", "sleeping"]))
    }

    /// The M:N demo: the merged table of 2 workers, one thread parked on each M:N primitive.
    @Test func tableOfAnMNRuntime() throws {
        let r = try ChildProcess.uthreads("table", "--workers", "2")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("; 2 workers") && r.stdout.contains("WORKER"))
        for reason in [
            "mutex 'accounts' held by #1", "channel receive on 'jobs'", "channel send on 'results'",
            "select: channel receive on 'jobs'", "condition 'ready'", "semaphore 'slots'",
            "rwlock 'config' write-held by #1", "barrier 'phase' (1/2 arrived)", "once 'setup' running in #",
        ] {
            #expect(r.stdout.contains(reason), "missing \(reason)")
        }
        let json = try ChildProcess.uthreads("table", "--workers", "2", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let workers = Set((object?["threads"] as? [[String: Any]] ?? []).compactMap { $0["worker"] as? Int })
        #expect(workers == [0, 1])
    }

    /// Out-of-range option values end with a clear message and the usage exit code (64): none
    /// traps (negative counts made ranges and arrays trap), hangs (a negative load duration) or
    /// runs a meaningless measurement (no connections, an unknown variant). One child at a time:
    /// a test waiting for a child holds one of the two threads that run every test.
    @Test(
        .serialized,
        arguments: [
            ["demo", "buffer", "--consumers=-1"], ["demo", "buffer", "--producers=-1"],
            ["demo", "buffer", "--items=-1"],
            ["demo", "buffer", "--consumers=0"], ["demo", "barber", "--customers=-1"],
            ["demo", "barber", "--haircut=-5"],
            ["demo", "readers-writers", "--readers=-1"], ["demo", "readers-writers", "--operations=-1"],
            ["demo", "philosophers", "--meals=-5"], ["demo", "philosophers", "--philosophers=100000000"],
            ["demo", "blocking", "--delay=-100"], ["table", "--kernel", "--parked=-1"],
            ["bench", "io", "--duration=-1"],
            ["bench", "io", "--connections=0"], ["top", "1", "--iterations=0"], ["bench", "jacket", "--only", "bogus"],
            ["bench", "--repeat", "0"], ["serve", "--port", "70000"], ["selftest", "nope"], ["table", "--workers=0"],
            ["table", "--registers", "--json"],
        ])
    func badOptionValuesGetAClearMessageAndTheUsageExitCode(arguments: [String]) throws {
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, arguments, timeout: .seconds(30))
        #expect(!r.crashed && !r.timedOut && r.status == 64, "\(arguments): status \(r.status)\n\(r.stderr)")
        #expect(r.stderr.contains("Error: "), "\(arguments): \(r.stderr)")
        #expect(r.stderr.contains("Usage: uthreads \(arguments[0])"), "the usage of the command given: \(r.stderr)")
    }
}
