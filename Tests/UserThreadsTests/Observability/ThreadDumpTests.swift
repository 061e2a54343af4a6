import Foundation
import Testing
@testable import UserThreads

/// Thread dumps: on demand (text and JSON) and on a signal (in a child process).
@Suite(.timeLimit(.minutes(1))) struct ThreadDumpTests {
    /// Threads parked in known states while `body` runs on main: "sleeper" sleeping,
    /// "joiner" blocked joining it, "fresh" ready (never run), main running.
    static func withKnownStates<R>(_ body: () throws -> R) throws -> R {
        try UThreadRuntime.run {
            let sleeper = UThread(name: "sleeper") { try UThread.sleep(for: .seconds(3600)) }
            let joiner = UThread(name: "joiner") { try sleeper.join() }
            UThread.yield()  // both run and park
            let fresh = UThread(name: "fresh") {}
            let result = try body()
            sleeper.cancel()
            _ = try? joiner.join()
            try fresh.join()
            return result
        }
    }

    @Test func textDumpShowsEveryStateWaitReasonAndBacktrace() throws {
        let text = try Self.withKnownStates { UThreadRuntime.dump(format: .text) }
        #expect(text.hasPrefix("uthreads: thread dump (on demand), pid \(getpid())"))
        let blocks = text.components(separatedBy: "\n\nthread ")
        func block(_ name: String) -> String? { blocks.first { $0.contains("\"\(name)\"") } }
        let main = try #require(block("main"))
        #expect(main.contains("\"main\" running"))
        #expect(main.contains("threadDump"))  // its own frames: the dump was taken on it
        let sleeper = try #require(block("sleeper"))
        #expect(sleeper.contains("\"sleeper\" sleeping: sleep, waiting "))
        #expect(sleeper.contains("wakes in 3599") || sleeper.contains("wakes in 3600"))
        #expect(sleeper.contains("UThread<A where A == Swift.Never>.sleep(for:"))
        let joiner = try #require(block("joiner"))
        let sleeperID = try #require(sleeper.split(separator: " ").first)  // "#N" (ids are process-wide)
        #expect(joiner.contains("\"joiner\" blocked: join \(sleeperID), waiting "))
        // Release builds inline join() into the runtime's waitUntilFinished, and park into it.
        #expect(joiner.contains("UserThreads.UThread.join()") || joiner.contains("UserThreads.waitUntilFinished("))
        let fresh = try #require(block("fresh"))
        #expect(fresh.contains("\"fresh\" ready"))
        #expect(fresh.contains("uthreads_trampoline"))  // never ran: its first frame
        for name in ["sleeper", "joiner"] {
            #expect(block(name)!.contains("uthreads_trampoline"), "the walk reaches the thread's first frame")
            #expect(block(name)!.contains("Scheduler.park(") || block(name)!.contains("UserThreads.waitUntilFinished("))
        }
    }

    @Test func jsonDumpDecodes() throws {
        let json = try Self.withKnownStates { UThreadRuntime.dump(format: .json) }
        let dump = try JSONDecoder().decode(ThreadDump.self, from: Data(json.utf8))
        #expect(dump.reason == "on demand")
        #expect(dump.processID == getpid())
        func entry(_ name: String) -> ThreadDump.Entry? { dump.threads.first { $0.thread.name == name } }
        #expect(entry("main")?.thread.state == .running)
        #expect(entry("sleeper")?.thread.state == .sleeping)
        #expect(entry("sleeper")?.thread.waitReason?.kind == .sleep)
        #expect((entry("sleeper")?.thread.waitingSeconds ?? -1) >= 0)
        #expect(entry("joiner")?.thread.state == .blocked)
        #expect(entry("joiner")?.thread.waitReason?.kind == .join)
        #expect(entry("joiner")?.thread.waitReason?.object == entry("sleeper")?.thread.id.rawValue)
        #expect(entry("fresh")?.thread.state == .ready)
        #expect(entry("fresh")?.thread.waitReason == nil)
        for name in ["main", "sleeper", "joiner", "fresh"] {
            let frames = entry(name)?.backtrace ?? []
            #expect(!frames.isEmpty, "\(name) has a backtrace")
            #expect(frames.allSatisfy { $0.address != 0 })
        }
        #expect(
            entry("joiner")?.backtrace.contains {
                // inlined in release
                $0.symbol?.contains("join()") == true || $0.symbol?.contains("waitUntilFinished(") == true
            } == true)
        #expect(entry("fresh")?.backtrace.last?.symbol == "uthreads_trampoline")
    }

    @Test func dumpSignalIsValidated() {
        var configuration = UThreadRuntime.Configuration()
        configuration.dumpSignal = SIGKILL
        #expect(throws: UThreadError.self) { try UThreadRuntime.run(configuration) {} }
    }

    @Test func sigquitWritesADumpToStderrAtTheNextSafePoint() throws {
        let r = try ChildProcess.uthreads("selftest", "dump-on-signal")
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stdout.contains("done"))
        #expect(r.stderr.contains("uthreads: thread dump (signal \(SIGQUIT))"))
        #expect(r.stderr.contains("thread #2 \"sleeper\" sleeping: sleep, waiting "))
        #expect(r.stderr.contains("thread #3 \"joiner\" blocked: join #2, waiting "))
        #expect(r.stderr.contains("thread #1 \"main\" sleeping"))
        #expect(r.stderr.contains("KnownStates.withThreads"), "frames of the program itself are named")
    }

    @Test func sigquitIsAnsweredByMaintenanceWhenTheSchedulerIsNeverIdle() throws {
        let r = try ChildProcess.uthreads("selftest", "dump-while-busy")
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "uthreads: thread dump (signal").count == 2, "exactly one dump")
        // Taken on a yielding thread: one is running, the other ready.
        #expect(r.stderr.contains("\"main\" running") || r.stderr.contains("\"spinner\" running"))
        #expect(r.stderr.contains("\"main\" ready") || r.stderr.contains("\"spinner\" ready"))
        #expect(r.stderr.contains("\"joiner\" blocked: join #2"))
    }

    @Test func sigquitDumpsAlsoWithTheSwiftBacktracerEnabled() throws {
        // The Swift runtime's backtracer claims SIGQUIT in every Swift program; the runtime
        // takes it over for dumps (and gives it back when no runtime is live). The child is
        // spawned from a test thread that may block SIGQUIT: the runtime unblocks it.
        let r = try ChildProcess.run(
            ChildProcess.uthreadsPath, ["selftest", "dump-on-signal"],
            environment: ["SWIFT_BACKTRACE": "enable=yes"])
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stderr.contains("uthreads: thread dump (signal \(SIGQUIT))"))
    }
}
