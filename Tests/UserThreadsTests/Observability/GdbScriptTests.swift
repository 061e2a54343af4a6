import Foundation
import Testing

/// tools/gdb/uthreads.py in gdb's batch mode against `uthreads selftest gdb-target`, which
/// parks named threads in known states and stops itself with SIGTRAP.
@Suite(.timeLimit(.minutes(1))) struct GdbScriptTests {
    static let gdb = ["/usr/bin/gdb", "/usr/local/bin/gdb"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: gdb != nil, "gdb is not installed: the gdb script is not tested"))
    func infoUThreadsAndUThreadBacktrace() throws {
        let script = ChildProcess.repositoryRoot.appendingPathComponent("tools/gdb/uthreads.py").path
        // timeout(1) bounds a gdb that would wait forever (it must never hang the suite).
        let r = try ChildProcess.run(
            "/usr/bin/timeout",
            [
                "-s", "KILL", "120", Self.gdb!,
                "-batch", "-nx", "-iex", "set complaints 0", "-iex", "set debuginfod enabled off",
                "-x", script, "-ex", "run", "-ex", "info uthreads",
                "-ex", "uthread bt 3", "-ex", "uthread bt 4", "-ex", "kill",
                "--args", ChildProcess.uthreadsPath, "selftest", "gdb-target",
            ])
        let out = r.stdout
        #expect(out.contains("SIGTRAP"), "the target stopped under gdb: \(r.stderr)")
        // info uthreads: every thread with its state and wait.
        let lines = out.split(separator: "\n").map(String.init)
        func row(_ id: Int) -> String? { lines.first { $0.hasPrefix("#\(id) " as String) } }
        #expect(lines.contains { $0.hasPrefix("ID") && $0.contains("STATE") && $0.contains("SAVED SP") })
        #expect(row(1)?.contains("main") == true && row(1)?.contains("running") == true)
        #expect(row(2)?.contains("sleeper") == true && row(2)?.contains("sleeping") == true)
        #expect(
            row(3)?.contains("joiner") == true && row(3)?.contains("blocked") == true
                && row(3)?.contains("join #2") == true)
        #expect(row(4)?.contains("fresh") == true && row(4)?.contains("ready") == true)
        // uthread bt 3: frames from its saved registers, named, down to the trampoline.
        #expect(out.contains("User thread #3 \"joiner\" blocked: join #2"))
        #expect(out.contains("park(") || out.contains("Scheduler.with<"))  // park is inlined in release builds
        #expect(out.contains("join()"))
        #expect(out.contains("KnownStates.withThreads"))
        #expect(out.contains("in uthreads_trampoline"))
        #expect(out.contains("User thread #4 \"fresh\" ready"))
        #expect(!out.contains("Python Exception"), "\(out)")
    }

    /// Under `run(workers:)` every worker's table is in the registry: the list has the thread
    /// pinned to each worker, with that worker and its own kernel thread (LWP).
    @Test(.enabled(if: gdb != nil, "gdb is not installed: the gdb script is not tested"))
    func infoUThreadsListsEveryWorkersThreads() throws {
        let script = ChildProcess.repositoryRoot.appendingPathComponent("tools/gdb/uthreads.py").path
        let r = try ChildProcess.run(
            "/usr/bin/timeout",
            [
                "-s", "KILL", "120", Self.gdb!,
                "-batch", "-nx", "-iex", "set complaints 0", "-iex", "set debuginfod enabled off",
                "-x", script, "-ex", "run", "-ex", "info uthreads", "-ex", "kill",
                "--args", ChildProcess.uthreadsPath, "selftest", "gdb-target", "2",
            ])
        let out = r.stdout
        #expect(out.contains("SIGTRAP"), "the target stopped under gdb: \(r.stderr)")
        let lines = out.split(separator: "\n").map(String.init)
        // Columns: ID NAME(2 words) STATE WAIT WORKER SAVED-SP LWP SWITCHES.
        func fields(_ name: String) -> [Substring]? {
            lines.first { $0.contains(" \(name) ") }.map { $0.split(separator: " ") }
        }
        let first = try #require(fields("sleeper 0"), "\(out)")
        let second = try #require(fields("sleeper 1"), "worker 1's thread is listed: \(out)")
        #expect(first.count == 9 && second.count == 9, "\(out)")
        #expect(first[3] == "sleeping" && second[3] == "sleeping", "\(out)")
        #expect(first[5] == "0" && second[5] == "1", "each on its worker: \(out)")
        #expect(first[7] != second[7], "each on its worker's kernel thread: \(out)")
        #expect(!out.contains("Python Exception"), "\(out)")
    }
}
