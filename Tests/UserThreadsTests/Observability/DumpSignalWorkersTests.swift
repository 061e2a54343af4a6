import Foundation
import Testing
@testable import UserThreads

/// SIGQUIT under `run(workers:)`: one merged dump of every worker's threads per signal, any
/// number of times, and the process keeps running (child processes: the signal is the
/// process's).
@Suite(.timeLimit(.minutes(2))) struct DumpSignalWorkersTests {
    /// A `uthreads selftest …` child that the test talks to while it runs: signals, stdin,
    /// and its stdout and stderr (files, read as they grow).
    final class LiveChild {
        let process = Process()
        let input = Pipe()
        let out: URL, err: URL

        init(_ arguments: [String], environment: [String: String]) throws {
            let tag = "uthreads-live-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
            out = FileManager.default.temporaryDirectory.appendingPathComponent(tag + ".out")
            err = FileManager.default.temporaryDirectory.appendingPathComponent(tag + ".err")
            for url in [out, err] { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
            process.executableURL = URL(fileURLWithPath: ChildProcess.uthreadsPath)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            process.standardInput = input
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            // Spawned with nothing blocked (test threads block signals; a child inherits the mask).
            var none = sigset_t()
            var saved = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, &saved)
            defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
            try process.run()
        }

        deinit {
            if process.isRunning { process.terminate() }
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }

        var stdout: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

        /// Waits (bounded, polling the files) until `condition` holds or the child exits.
        @discardableResult
        func wait(upTo seconds: Int = 60, until condition: () -> Bool) -> Bool {
            let giveUp = ContinuousClock.now + .seconds(seconds)
            while !condition() {
                if !process.isRunning || ContinuousClock.now > giveUp { return condition() }
                usleep(2000)
            }
            return true
        }

        /// Ends the child's wait on stdin and waits for it to exit.
        func finish() -> (status: Int32, crashed: Bool) {
            try? input.fileHandleForWriting.write(contentsOf: Data("stop\n".utf8))
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
        }
    }

    static let header = "uthreads: thread dump (signal \(SIGQUIT))"

    /// With the Swift backtracer enabled (the case that crashed: it claims SIGQUIT in every
    /// Swift program) and disabled.
    @Test(arguments: [1, 2], ["yes", "no"])
    func everySigquitWritesOneMergedDumpAndTheProcessLivesOn(workers: Int, backtracer: String) throws {
        let child = try LiveChild(
            ["selftest", "dump-on-signal-workers", "\(workers)"],
            environment: ["SWIFT_BACKTRACE": "enable=\(backtracer)"])
        #expect(child.wait { child.stdout.contains("ready") }, "\(child.stderr)")
        for n in 1...2 {
            kill(child.process.processIdentifier, SIGQUIT)
            #expect(
                child.wait { child.stderr.components(separatedBy: Self.header).count - 1 >= n },
                "dump \(n) of 2: \(child.stderr)")
        }
        let (status, crashed) = child.finish()
        let stderr = child.stderr
        #expect(status == 0 && !crashed, "\(stderr)")
        #expect(child.stdout.contains("done"))
        #expect(!stderr.contains("Program crashed"))
        let dumps = stderr.components(separatedBy: Self.header).dropFirst()
        #expect(dumps.count == 2, "exactly one dump per signal: \(stderr)")
        for dump in dumps {
            #expect(dump.contains("\(workers) worker\(workers == 1 ? "" : "s")"))
            #expect(!dump.contains("no answer from"))
            for k in 0..<workers {
                #expect(dump.contains("\"sleeper \(k)\" sleeping: sleep, waiting "), "worker \(k)'s thread: \(dump)")
                #expect(dump.contains("worker \(k)\n"), "rows name their worker: \(dump)")
            }
            #expect(dump.contains("\"main\" blocked: poll fd 0"), "\(dump)")
            #expect(!dump.contains("\"thread dump\""), "the dumping thread leaves itself out")
        }
    }

    /// A runtime whose only thread is parked on a channel (timeout far away, no descriptor, so
    /// under `workers: 1` its idle loop sleeps on its inbox's futex word), while the kernel runs
    /// the handler on another kernel thread: the dump comes at once, written while the thread
    /// is still parked, not at the runtime's next wake.
    @Test(arguments: [1, 2])
    func anIdleRuntimeAnswersASignalTakenByAnotherKernelThread(workers: Int) throws {
        let child = try LiveChild(["selftest", "dump-while-idle", "\(workers)"], environment: [:])
        #expect(child.wait { child.stdout.contains("ready") }, "\(child.stderr)")
        kill(child.process.processIdentifier, SIGQUIT)
        #expect(child.wait { child.stderr.contains(Self.header) }, "no dump: \(child.stderr)")
        let (status, crashed) = child.finish()
        let stderr = child.stderr
        #expect(status == 0 && !crashed, "\(stderr)")
        #expect(child.stdout.contains("done"))
        let dumps = stderr.components(separatedBy: Self.header).dropFirst()
        #expect(dumps.count == 1, "\(stderr)")
        #expect(dumps.first?.contains("\"main\" blocked: ") == true, "parked when the dump was written: \(stderr)")
        #expect(dumps.first?.contains("'stop'") == true, "\(stderr)")
    }
}
