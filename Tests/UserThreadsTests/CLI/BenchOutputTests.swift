import Foundation
import Testing

/// `uthreads bench --json` and the generated figures: the JSON is all of stdout and holds every
/// row the text prints; the committed README and BENCHMARKS tables are what their committed run
/// files give.
@Suite(.timeLimit(.minutes(5))) struct BenchOutputTests {
    /// The text's rows: the lines of the group tables (not headers, notes or the comparison).
    static func printedRowNames(_ text: String, knownNames: [String]) -> (matched: Int, unmatched: [String]) {
        var matched = 0
        var unmatched: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.allSatisfy(\.isWhitespace)
        {
            // the comparison table
            if line.hasPrefix("== user threads, kernel threads, processes, Swift tasks") { break }
            if line.hasPrefix("==") || line.hasPrefix("--") || line.hasPrefix("[bench]") { continue }
            if knownNames.contains(where: { line.hasPrefix($0) }) {
                matched += 1
            } else {
                unmatched.append(String(line))
            }
        }
        return (matched, unmatched)
    }

    @Test func jsonIsAllOfStdoutAndHoldsEveryPrintedRow() throws {
        let r = try ChildProcess.uthreads("bench", "--quick", "--repeat", "2", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let machine = try #require(object["machine"] as? [String: Any])
        #expect((machine["cores"] as? Int ?? 0) >= 1)
        #expect(!(machine["cpu"] as? String ?? "").isEmpty && !(machine["kernel"] as? String ?? "").isEmpty)
        #expect(object["commit"] is String && object["date"] is String)
        #expect((object["clock"] as? String ?? "").hasPrefix("wall time"))
        let rows = try #require(object["rows"] as? [[String: Any]])
        let names = rows.compactMap { $0["name"] as? String }
        #expect(names.count == rows.count)
        // Every printed row is in the JSON, and every JSON row was printed.
        let printed = Self.printedRowNames(r.stderr, knownNames: names)
        #expect(printed.unmatched.isEmpty, "printed but not in the JSON: \(printed.unmatched)")
        #expect(printed.matched == rows.count, "\(printed.matched) rows printed, \(rows.count) in the JSON")
        // Timed rows keep every sample and say where they ran.
        let timed = rows.filter { ($0["samples"] as? [Double])?.count == 2 }
        #expect(!timed.isEmpty)
        #expect(timed.allSatisfy { ["pinned 1 CPU", "free"].contains($0["placement"] as? String ?? "") })
        for expected in [
            "yield() between 2 threads", "futex handoff", "pthread_create+join", "parked, dense stacks",
            "parked pthread",
        ] {
            #expect(names.contains { $0.contains(expected) }, "missing row \(expected)")
        }
        let syscalls = rows.first { ($0["name"] as? String)?.contains("system calls") == true }
        #expect(syscalls?["value"] as? Double == 0)
    }

    /// The README's and BENCHMARKS' generated tables are exactly what their run files give.
    @Test func committedFiguresRegenerateFromTheirRunFiles() throws {
        let root = ChildProcess.repositoryRoot
        let r = try ChildProcess.uthreads(
            "bench", "figures", "--check", root.appendingPathComponent("README.md").path,
            root.appendingPathComponent("docs/BENCHMARKS.md").path)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("README.md: ") && !r.stdout.contains(": 0 figures table"))
    }

    /// A figure typed over in a generated table is caught; regenerating restores it.
    @Test func anEditedFigureFailsTheCheckAndRegenerationRestoresIt() throws {
        let root = ChildProcess.repositoryRoot
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- figures: readme "))
        // The README's run files, at the same place relative to the copy.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "uthreads-figures-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("docs"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: root.appendingPathComponent("docs/runs"), to: dir.appendingPathComponent("docs/runs"))
        let end = try #require(readme.range(of: "<!-- /figures -->", range: marker.upperBound..<readme.endIndex))
        let row = try #require(readme.range(of: "| spawn + run + join", range: marker.upperBound..<end.lowerBound))
        var edited = readme
        edited.replaceSubrange(row, with: "| spawn + run + join (typed over) ")
        let copy = dir.appendingPathComponent("README.md")
        try edited.write(to: copy, atomically: true, encoding: .utf8)
        let check = try ChildProcess.uthreads("bench", "figures", "--check", copy.path)
        #expect(check.status != 0)
        let fix = try ChildProcess.uthreads("bench", "figures", copy.path)
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(try String(contentsOf: copy, encoding: .utf8) == readme)
    }

    @Test func badFiguresInputIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "uthreads-figures-bad-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).md")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "<!-- figures: readme missing.json -->\nx\n<!-- /figures -->\n".write(
            to: dir, atomically: true, encoding: .utf8)
        let r = try ChildProcess.uthreads("bench", "figures", "--check", dir.path)
        #expect(r.status != 0 && !r.crashed)
        try "<!-- figures: nosuchtable x.json -->\n".write(to: dir, atomically: true, encoding: .utf8)
        let unclosed = try ChildProcess.uthreads("bench", "figures", "--check", dir.path)
        #expect(unclosed.status != 0 && !unclosed.crashed && unclosed.stderr.contains("/figures"))
    }

    /// The loops `--instructions` counts run on their own (valgrind itself runs in .ci/run).
    @Test(arguments: ["yield", "spawn", "channel", "mutex", "checkpoint"])
    func instructionLoopRuns(_ operation: String) throws {
        let r = try ChildProcess.uthreads("bench", "loop", operation, "1000")
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func badInstructionOptionsAreClearErrors() throws {
        let loop = try ChildProcess.uthreads("bench", "loop", "nonsense", "10")
        #expect(loop.status != 0 && !loop.crashed && loop.stderr.contains("unknown loop"))
        let ceilings = try ChildProcess.uthreads("bench", "--ceilings", "x.json")
        #expect(
            ceilings.status != 0 && !ceilings.crashed && ceilings.stderr.contains("--ceilings needs --instructions"))
    }
}

extension BenchOutputTests {
    /// The chart is drawn from a run file; capped counts are faded and labelled as lower bounds.
    @Test func chartFromTheCommittedRunFileShowsCapsAsLowerBounds() throws {
        let root = ChildProcess.repositoryRoot
        let benchmarks = try String(contentsOf: root.appendingPathComponent("docs/BENCHMARKS.md"), encoding: .utf8)
        let marker = try #require(benchmarks.range(of: "<!-- figures: comparison "))
        let run = root.appendingPathComponent("docs").appendingPathComponent(
            String(benchmarks[marker.upperBound...].prefix { $0 != " " }))
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent(
            "uthreads-chart-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let r = try ChildProcess.uthreads("bench", "figures", "--svg", svg.path, run.path)
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOf: svg, encoding: .utf8)
        #expect(text.hasPrefix("<svg") && text.contains("(capped)") && text.contains("fill-opacity"))
    }
}
