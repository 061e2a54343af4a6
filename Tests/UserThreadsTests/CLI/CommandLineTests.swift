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
}
