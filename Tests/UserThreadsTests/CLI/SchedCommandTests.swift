import Foundation
import Testing

/// The scheduling lab from the command line (virtual clock: exact figures).
@Suite(.timeLimit(.minutes(1))) struct SchedCommandTests {
    @Test func allPoliciesSideBySide() throws {
        let r = try ChildProcess.uthreads("sched", "--policy", "all", "--workload", "deadlines")
        #expect(r.status == 0, "\(r.stderr)")
        for title in ["FIFO", "round-robin", "priority+aging", "lottery", "stride", "MLFQ", "EDF", "fair share (CFS)"] {
            #expect(r.stdout.contains("\n\(title) "), "missing row \(title)")
        }
        let edf = r.stdout.split(separator: "\n").first { $0.hasPrefix("EDF ") }
        #expect(edf?.contains(" 0/5 ") == true, "EDF should meet every deadline: \(edf ?? "")")
    }

    @Test func onePolicyWritesSVGAndTrace() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sched-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let svg = dir.appendingPathComponent("rr.svg").path
        let json = dir.appendingPathComponent("rr.json").path
        let r = try ChildProcess.uthreads(
            "sched", "--policy", "rr", "--workload", "cpu", "--quantum", "4", "--svg", svg, "--trace", json)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("turnaround"))
        #expect(r.stdout.contains("Jain's fairness"))
        // RR, q = 4, bursts A 40, B 20, C 10, D 5 (by hand): A 0–4, B –8, C –12, D –16, A –20,
        // B –24, C –28, D –29 (done), A –33, B –37, C –39 (done), A –43, B –47, A –51, B –55
        // (done), A alone –75. Turnarounds: D 29, C 39, B 55, A 75.
        let rows = r.stdout.split(separator: "\n")
        for (name, turnaround) in [("D 5ms", "29.00"), ("C 10ms", "39.00"), ("B 20ms", "55.00"), ("A 40ms", "75.00")] {
            let row = rows.first { $0.hasPrefix(name) }.map(String.init) ?? ""
            #expect(row.split(separator: " ").contains { $0 == turnaround }, "\(name): \(row)")
        }
        let object =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        #expect((object?["traceEvents"] as? [Any])?.isEmpty == false)
        #expect(try String(contentsOfFile: svg, encoding: .utf8).hasPrefix("<?xml"))
    }
}
