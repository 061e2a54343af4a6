// The command line: the kernel's table beside the user table.
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1))) struct KernelCommandLineTests {
    @Test func tableKernelShowsOneKernelThreadForThousandsOfUserThreads() throws {
        let r = try ChildProcess.uthreads("table", "--kernel", "--parked", "2000", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let user = (object?["user"] as? [String: Any])?["threads"] as? [Any] ?? []
        let kernel = (object?["kernel"] as? [String: Any])?["threads"] as? [[String: Any]] ?? []
        #expect(user.count > 2000)
        #expect(kernel.count == 1)  // the M:1 runtime: one kernel thread runs them all
        #expect(kernel.first?["voluntarySwitches"] is Int)

        let text = try ChildProcess.uthreads("table", "--kernel")
        #expect(text.status == 0)
        #expect(text.stdout.contains("the kernel sees 1 thread"))
    }
}

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite(.timeLimit(.minutes(5))) struct KernelBenchCommandLineTests {
    /// Smoke test of the comparison (no assertion on speed): every operation has its rows, the
    /// JSON parses, the Markdown table and the SVG chart come out, and the SVG is well-formed XML.
    @Test func benchQuickComparisonRowsMarkdownAndWellFormedSVG() throws {
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent(
            "uthreads-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let r = try ChildProcess.uthreads(
            "bench", "compare", "--quick", "--repeat", "1", "--json", "--markdown", "--svg", svg.path)
        #expect(r.status == 0, "\(r.stderr)")
        let run = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = try #require(run["rows"] as? [[String: Any]])
        let names = rows.compactMap { $0["name"] as? String }
        for expected in [
            "spawn+run+join", "pthread_create+join", "fork+exit+waitpid", "Task {} + value",
            "UMutex+UCondition handoff", "futex handoff", "pipe handoff", "CheckedContinuation handoff",
            "channel handoff, backend API", "mutex contended by", "actor call", "parked pthread",
            "parked process", "suspended task", "budget: user threads", "budget: kernel threads",
            "budget: processes", "budget: Swift tasks", "syscalls: user threads, Null Fork",
            "syscalls: kernel threads, Signal-Wait", "1992 (Anderson et al., Table I): Null Fork",
        ] {
            #expect(names.contains { $0.contains(expected) }, "missing row \(expected)")
        }
        // The comparison table, its 1992 columns and the Markdown version (on stderr: --json
        // keeps stdout for the JSON).
        #expect(r.stderr.contains("Null Fork (spawn+join an empty thread)"))
        #expect(r.stderr.contains("34 / 948 / 11,300 µs"))
        #expect(r.stderr.contains("| operation | user threads | kernel threads | processes | Swift tasks |"))
        #expect(r.stderr.contains("in 1992 →"))
        // Counts stopped by a cap are lower bounds, never divided by.
        let capped = rows.filter { $0["capped"] as? Bool == true }
        #expect(!capped.isEmpty)
        #expect(r.stderr.contains("(capped)"))
        // The chart: well-formed XML with an <svg> root and bars.
        let data = try Data(contentsOf: svg)
        let parser = XMLParser(data: data)
        let collector = ElementCollector()
        parser.delegate = collector
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(collector.root == "svg")
        #expect(collector.count("rect") > 20)
    }
}

extension KernelBenchCommandLineTests {
    @Test func benchScaleQuickReportsWhereThePthreadsStopped() throws {
        let r = try ChildProcess.uthreads("bench", "scale", "--quick", "--repeat", "1")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("user threads: parked (10000)"))
        #expect(r.stdout.contains("stopped by"))
        #expect(r.stdout.contains("limits: threads-max"))
        #expect(r.stderr.contains("[bench] scale"))  // progress goes to stderr
    }
}

final class ElementCollector: NSObject, XMLParserDelegate {
    var root: String?
    var names: [String: Int] = [:]
    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if root == nil { root = name }
        names[name, default: 0] += 1
    }
    func count(_ name: String) -> Int { names[name] ?? 0 }
}
