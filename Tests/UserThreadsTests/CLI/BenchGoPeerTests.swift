import Foundation
import Testing

/// `uthreads bench sync`'s pair against Go (Sources/uthreads/Bench/GoPeer.swift), with stub Go
/// peers: small shell scripts that print what gobench prints (or something else), so the tests
/// need no Go toolchain.
@Suite(.timeLimit(.minutes(5))) struct BenchGoPeerTests {
    static let goSample = "go: goroutine chan ping-pong, GOMAXPROCS=2"
    static let rowNames = [
        "M:N: Channel ping-pong, two unpinned threads, 2 workers, interleaved with Go",
        "Go: goroutine ping-pong, GOMAXPROCS=2",
        "unpinned pair ÷ Go (interleaved, median of per-pair ratios)",
        "unpinned pair ÷ Go (interleaved, ratio of medians)",
    ]

    /// A folder of its own for the stubs, removed by `cleanUp`.
    static func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "uthreads-gopeer-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// An executable shell script `body` in `dir`.
    static func stub(_ dir: URL, _ name: String, _ body: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try ("#!/bin/sh\n" + body + "\n").write(to: url, atomically: true, encoding: .utf8)
        #expect(chmod(url.path, 0o755) == 0)
        return url.path
    }

    /// gobench's output for `pingpong N 1`: one sample per GOMAXPROCS; exits 3 on other arguments.
    static let goodStub = """
        [ "$1" = pingpong ] && [ "$3" = 1 ] || exit 3
        printf 'SAMPLE\\tgo: goroutine chan ping-pong, GOMAXPROCS=1\\t90.00\\tns/handoff\\n'
        printf 'SAMPLE\\tgo: goroutine chan ping-pong, GOMAXPROCS=2\\t100.00\\tns/handoff\\n'
        """

    static func runFile(_ r: ChildResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    static func rows(_ run: [String: Any]) -> [String: [String: Any]] {
        let rows = run["rows"] as? [[String: Any]] ?? []
        return Dictionary(rows.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { $1 })
    }

    /// `--go STUB`: the Go row holds every sample of Go's GOMAXPROCS=2 figure, the ratio row one
    /// per-pair ratio per pair (pair sample ÷ Go sample), the ratio of medians beside it.
    @Test func theJSONHoldsTheGoRowAndThePerPairRatios() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let go = try Self.stub(dir, "gobench", Self.goodStub)
        let r = try ChildProcess.run(
            ChildProcess.uthreadsPath,
            ["bench", "sync", "--quick", "--only", "go", "--go", go, "--go-pairs", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let run = try Self.runFile(r)
        #expect(run["skipped"] == nil)
        #expect((run["loadAverage"] as? [Double])?.count == 3)  // the load the figures were taken under
        let rows = Self.rows(run)
        let ours = try #require(rows[Self.rowNames[0]]?["samples"] as? [Double])
        let goRow = try #require(rows[Self.rowNames[1]])
        let ratios = try #require(rows[Self.rowNames[2]]?["samples"] as? [Double])
        #expect(goRow["samples"] as? [Double] == [100, 100, 100])
        #expect(goRow["value"] as? Double == 100 && goRow["placement"] as? String == "free")
        let note = goRow["note"] as? String ?? ""
        #expect(note.contains("gobench pingpong 10000 1"))
        #expect(ours.count == 3 && ours.allSatisfy { $0 > 0 })
        #expect(ratios.count == 3)
        for (ratio, pair) in zip(ratios, ours) { #expect(abs(ratio - pair / 100) < 1e-9 * pair) }
        let medians = try #require(rows[Self.rowNames[3]]?["value"] as? Double)
        #expect(abs(medians - ours.sorted()[1] / 100) < 1e-9 * medians)
        #expect(rows[Self.rowNames[2]]?["unit"] as? String == "x")
    }

    /// The whole `bench sync --quick`, the stub named by UTHREADS_GOBENCH: every group's rows
    /// and the Go rows; the figures' targets table reads the ratio from the run file.
    @Test func theWholeSyncGroupFindsGoThroughTheEnvironment() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let go = try Self.stub(dir, "gobench", Self.goodStub)
        let r = try ChildProcess.run(
            ChildProcess.uthreadsPath, ["bench", "sync", "--quick", "--repeat", "1", "--json"],
            environment: ["UTHREADS_GOBENCH": go])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = Self.rows(try Self.runFile(r))
        for name in Self.rowNames + ["user threads: channel ping-pong handoff", "USemaphore ping-pong, M:1"] {
            #expect(rows[name] != nil, "missing row \(name)")
        }
        #expect((rows[Self.rowNames[2]]?["samples"] as? [Double])?.count == 3)  // --quick: 3 pairs
        let file = dir.appendingPathComponent("sync.json")
        try Data(r.stdout.utf8).write(to: file)
        let table = try ChildProcess.uthreads("bench", "figures", "--table", "targets", file.path)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(
            table.stdout.contains("Go's goroutine ping-pong") && table.stdout.contains("interleaved per-pair ratios"))
    }

    /// No Go peer anywhere it is looked for: the rows are skipped, the reason is on stderr and
    /// in the run file, and the targets table says it was not measured.
    @Test func withoutGoTheRowsAreSkippedWithTheReason() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try ChildProcess.run(
            ChildProcess.uthreadsPath, ["bench", "sync", "--quick", "--only", "go", "--json"],
            environment: ["UTHREADS_GOBENCH": "", "PEERS_BUILD": dir.appendingPathComponent("none").path],
            directory: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("[bench] skipped 4 sync row(s): no Go peer"))
        let run = try Self.runFile(r)
        #expect(Self.rows(run).isEmpty)
        let skipped = try #require(run["skipped"] as? [[String: Any]])
        #expect(skipped.count == 1)
        #expect(skipped.first?["rows"] as? [String] == Self.rowNames)
        let reason = skipped.first?["reason"] as? String ?? ""
        #expect(reason.contains("--go PATH"))
        let file = dir.appendingPathComponent("sync.json")
        try Data(r.stdout.utf8).write(to: file)
        let table = try ChildProcess.uthreads("bench", "figures", "--table", "targets", file.path)
        #expect(table.status == 0 && table.stdout.contains("not measured: no Go peer"), "\(table.stderr)")
    }

    /// What gobench printed or did, and the words of the error that must name it.
    static let badPeers: [(body: String, message: String)] = [
        ("echo hello", "printed no '\(goSample)' sample"),
        ("printf 'SAMPLE\\tgo: goroutine chan ping-pong, GOMAXPROCS=2\\tfast\\tns/handoff\\n'", "is not 'SAMPLE<tab>"),
        ("printf 'SAMPLE\\tgo: goroutine chan ping-pong, GOMAXPROCS=2\\n'", "is not 'SAMPLE<tab>"),
        ("printf 'SAMPLE\\tgo: goroutine chan ping-pong, GOMAXPROCS=2\\tnan\\tns/handoff\\n'", "is not 'SAMPLE<tab>"),
        ("printf 'SAMPLE\\tgo: goroutine chan ping-pong, GOMAXPROCS=2\\t5\\tms/op\\n'", "not ns/handoff"),
        ("exit 3", "exited with status 3"),
        ("kill -9 $$", "killed by signal 9"),
    ]

    /// Bad output or a failed Go peer is a clear error (exit status 1, the cause named), not a
    /// crash and not a row.
    @Test(arguments: 0..<badPeers.count) func badGoOutputIsAClearError(_ index: Int) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let go = try Self.stub(dir, "gobench", Self.badPeers[index].body)
        let r = try ChildProcess.uthreads("bench", "sync", "--quick", "--only", "go", "--go", go, "--go-pairs", "1")
        #expect(r.status == 1 && !r.crashed && !r.timedOut)
        #expect(r.stderr.contains(Self.badPeers[index].message), "\(r.stderr)")
        #expect(!r.stdout.contains("Go: goroutine ping-pong"))
    }

    @Test func badGoOptionsAreClearErrors() throws {
        let missing = try ChildProcess.uthreads("bench", "sync", "--only", "go", "--go", "/nonexistent/gobench")
        #expect(missing.status != 0 && !missing.crashed && missing.stderr.contains("not an executable file"))
        let folder = try ChildProcess.uthreads("bench", "sync", "--only", "go", "--go", "/tmp")
        #expect(folder.status != 0 && !folder.crashed && folder.stderr.contains("not an executable file"))
        let environment = try ChildProcess.run(
            ChildProcess.uthreadsPath, ["bench", "sync", "--quick", "--only", "go"],
            environment: ["UTHREADS_GOBENCH": "/nonexistent/gobench"])
        #expect(environment.status != 0 && environment.stderr.contains("UTHREADS_GOBENCH=/nonexistent/gobench"))
        let pairs = try ChildProcess.uthreads("bench", "sync", "--go-pairs", "0")
        #expect(pairs.status != 0 && !pairs.crashed && pairs.stderr.contains("--go-pairs must be 1...1000"))
        let only = try ChildProcess.uthreads("bench", "sync", "--only", "go,nonsense")
        #expect(only.status != 0 && !only.crashed && only.stderr.contains("unknown group 'nonsense'"))
    }
}
