import Foundation
import Testing

/// tools/lldb/uthreads.py in LLDB's batch mode against `uthreads selftest gdb-target`, which
/// parks named threads in known states and stops itself with SIGTRAP: once on the live process,
/// which also saves a core file, and once on that core file.
@Suite(.timeLimit(.minutes(3))) struct LldbScriptTests {
    /// The toolchain's LLDB: next to the `swift` that built the tests, or /opt/swift.
    static let lldb: String? = {
        var candidates = ["/opt/swift/usr/bin/lldb"]
        if let path = ProcessInfo.processInfo.environment["PATH"] {
            candidates += path.split(separator: ":").map { "\($0)/lldb" }
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// The toolchain's LLDB links libpython3.10, which Debian 12 does not package: a directory
    /// that has it (pyenv's, on this project's machines), for LD_LIBRARY_PATH.
    static let pythonLibrary: String? = {
        var dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]
        let pyenv = (ProcessInfo.processInfo.environment["PYENV_ROOT"] ?? "/root/.pyenv") + "/versions"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: pyenv)) ?? []
        dirs += versions.filter { $0.hasPrefix("3.10") }.sorted().map { "\(pyenv)/\($0)/lib" }
        return dirs.first { FileManager.default.fileExists(atPath: "\($0)/libpython3.10.so.1.0") }
    }()

    /// Why LLDB cannot run here, or nil when it can (it starts and runs Python).
    static let unavailable: String? = {
        guard let lldb else { return "no lldb in /opt/swift/usr/bin or on PATH" }
        guard let r = try? run(["--batch", "-o", "script print('python ' + 'ok')"]) else { return "lldb did not start" }
        if r.stdout.contains("python ok") { return nil }
        return
            "\(lldb) cannot start with Python (needs libpython3.10.so.1.0\(pythonLibrary == nil ? ", not found" : "")): \(r.stderr.prefix(200))"
    }()

    static func run(_ arguments: [String]) throws -> ChildResult {
        var environment: [String: String] = [:]
        if let dir = pythonLibrary {
            let old = ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"].map { ":" + $0 } ?? ""
            environment["LD_LIBRARY_PATH"] = dir + old
        }
        // timeout(1) bounds an LLDB that would wait forever (it must never hang the suite).
        return try ChildProcess.run(
            "/usr/bin/timeout", ["-s", "KILL", "150", lldb!, "--no-lldbinit"] + arguments,
            environment: environment)
    }

    static var script: String { ChildProcess.repositoryRoot.appendingPathComponent("tools/lldb/uthreads.py").path }

    /// The rows of `uthreads list` by thread id.
    static func rows(_ out: String) -> [Int: String] {
        var rows: [Int: String] = [:]
        for line in out.split(separator: "\n") where line.hasPrefix("#") {
            if let id = Int(line.dropFirst().prefix { $0.isNumber }) { rows[id] = String(line) }
        }
        return rows
    }

    /// What both runs must show: every thread in its state and the joiner's backtrace, named.
    static func expectKnownStates(_ out: String, _ context: String) {
        let rows = rows(out)
        #expect(out.contains("ID") && out.contains("STATE") && out.contains("SAVED SP"), "\(context): \(out)")
        #expect(rows[1]?.contains("main") == true && rows[1]?.contains("running") == true, "\(context)")
        #expect(rows[2]?.contains("sleeper") == true && rows[2]?.contains("sleeping") == true, "\(context)")
        #expect(
            rows[3]?.contains("joiner") == true && rows[3]?.contains("blocked") == true
                && rows[3]?.contains("join #2") == true, "\(context)")
        #expect(rows[4]?.contains("fresh") == true && rows[4]?.contains("ready") == true, "\(context)")
        // uthread bt 3: frames from its saved registers, named by LLDB (Swift names demangled).
        #expect(out.contains("User thread #3 \"joiner\" blocked: join #2"), "\(context)")
        #expect(out.contains("join()"), "\(context): \(out)")
        #expect(out.contains("KnownStates.withThreads"), "\(context)")
        #expect(out.contains("uthreads_trampoline"), "\(context)")
        #expect(!out.contains("$s"), "\(context): a Swift name left mangled")
        #expect(out.contains("User thread #4 \"fresh\" ready"), "\(context)")
        // uthread regs 3: the saved frame, the program counter named.
        #expect(out.contains("rbp = 0x") || out.contains("x29 = 0x"), "\(context)")
        // uthread select 3: an LLDB thread of its own (the OS plugin), which LLDB's bt unwinds.
        #expect(out.contains("Selected user thread #3 \"joiner\" (blocked) as LLDB thread"), "\(context): \(out)")
        #expect(
            out.contains("* thread #") && out.contains("name = 'uthread #3 joiner (blocked)'"), "\(context): \(out)")
        #expect(out.contains("UThread.join()") && out.contains("Scheduler.park("), "\(context): \(out)")
        #expect(!out.contains("Traceback") && !out.contains("error:"), "\(context): \(out)")
    }

    /// Under scripts/tsan.sh: the test only reads another process's memory (nothing for
    /// ThreadSanitizer to find), and a core of a TSan-built process carries its shadow memory.
    static let underTSan = "nothing for ThreadSanitizer to find; a TSan process's core holds its shadow memory"

    @Test(
        .enabled(if: unavailable == nil, "LLDB cannot run here: the lldb script is not tested"),
        .disabled(if: Sanitizers.thread, Comment(rawValue: underTSan)))
    func liveProcessAndCoreFile() throws {
        let core = FileManager.default.temporaryDirectory.appendingPathComponent("uthreads-lldb-\(getpid()).core").path
        defer { try? FileManager.default.removeItem(atPath: core) }
        let commands = ["uthreads list", "uthread bt 3", "uthread bt 4", "uthread regs 3", "uthread select 3", "bt 12"]
        // -k: commands run after the process stops on a signal (the SIGTRAP).
        let live = try Self.run(
            ["--batch", "-o", "command script import \(Self.script)", "-o", "run"]
                + (commands + ["uthread bt 1", "process save-core \(core)", "kill"]).flatMap { ["-k", $0] }
                + ["--", ChildProcess.uthreadsPath, "selftest", "gdb-target"])
        #expect(live.stdout.contains("SIGTRAP"), "the target stopped under lldb: \(live.stderr)")
        Self.expectKnownStates(live.stdout, "live")
        // The running thread's registers are in the CPU: its backtrace is LLDB's own.
        #expect(live.stdout.contains("It is running: its registers are live in the CPU"))
        #expect(live.stdout.contains("raise"), "the running thread's live frames: \(live.stdout)")

        try #require(FileManager.default.fileExists(atPath: core), "lldb saved no core file: \(live.stdout)")
        let dead = try Self.run(
            [
                "--batch", "-c", core, ChildProcess.uthreadsPath,
                "-o", "command script import \(Self.script)",
            ] + commands.flatMap { ["-o", $0] })
        Self.expectKnownStates(dead.stdout, "core file")
    }

    @Test(
        .enabled(if: unavailable == nil, "LLDB cannot run here: the lldb script is not tested"),
        .disabled(if: Sanitizers.thread, Comment(rawValue: underTSan)))
    func badArgumentsAreErrorsNotTracebacks() throws {
        // No process, a non-number, an unknown id: clear errors (batch mode stops at the first
        // error, so one run each).
        var text = ""
        for command in ["uthreads list", "uthread bt x", "uthread regs"] {
            let r = try Self.run([
                "--batch", "-o", "command script import \(Self.script)", "-o", command,
                ChildProcess.uthreadsPath,
            ])
            text += r.stdout + r.stderr
        }
        #expect(text.contains("error: no process"), "\(text)")
        #expect(text.contains("error: usage: uthread bt N"), "\(text)")
        #expect(text.contains("error: usage: uthread regs N"), "\(text)")
        #expect(!text.contains("Traceback"), "\(text)")
    }
}
