// Runs the `uthreads` executable (built with the tests) as a child process.
import Foundation
import Testing

struct ChildResult {
    var status: Int32
    var stdout: String
    var stderr: String
    /// Killed by a signal (crash or abort) rather than exiting.
    var crashed: Bool
    /// Still running at the deadline `ChildProcess.run` gave it, and killed (SIGKILL).
    var timedOut = false
}

enum ChildProcess {
    /// The `uthreads` binary next to the test bundle.
    static var uthreadsPath: String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("uthreads").path
    }

    /// The repository root (for scripts and sources).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `executable` to its end, or kills it (SIGKILL) after `timeout`, so that a child that
    /// hangs fails its test (`timedOut`, with the output so far) instead of hanging the run.
    /// The default: 10 s less than the calling test's time limit (a minute if it has none).
    /// `directory`: the child's working directory (default: the test process's).
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        timeout: Duration? = nil, directory: URL? = nil
    ) throws -> ChildResult {
        let timeout = timeout ?? (Test.current?.timeLimit ?? .seconds(60)) - .seconds(10)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"  // keep crash output short and fast
        for (k, v) in environment { env[k] = v }
        process.environment = env
        // Output goes to files, not pipes: nothing to drain while the child runs.
        let dir = FileManager.default.temporaryDirectory
        let tag = "uthreads-child-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let outURL = dir.appendingPathComponent(tag + ".out")
        let errURL = dir.appendingPathComponent(tag + ".err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try launchUnblocked(process)
        let (seconds, attoseconds) = timeout.components
        var timedOut = false
        if exited.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)))
            == .timedOut
        {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            Issue.record("\(executable) \(arguments.joined(separator: " ")) still ran after \(timeout): killed")
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        let outData = try Data(contentsOf: outURL)
        let errData = try Data(contentsOf: errURL)
        return ChildResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self),
            crashed: process.terminationReason == .uncaughtSignal, timedOut: timedOut)
    }

    /// Starts `process` with no signal blocked. A child inherits the signal mask of the thread
    /// that spawns it, and test threads (Dispatch workers) block most signals: a gdb started
    /// with SIGCHLD blocked never notices its inferior stop.
    static func launchUnblocked(_ process: Process) throws {
        var none = sigset_t()
        var saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
    }

    static func uthreads(_ arguments: String...) throws -> ChildResult {
        try run(uthreadsPath, arguments)
    }
}
