// The rows of one benchmark run and the run they came from: printed as aligned text while the
// run goes on, written as one JSON document (the run file) at the end.
//
// What makes a row comparable with another is recorded on the row, not assumed by the reader:
//
//   * clock: every timed row is wall time (CLOCK_MONOTONIC). Thread CPU time was rejected: the
//     user-thread rows used it and the kernel peers wall time, and on a shared machine CPU time
//     leaves out exactly the time the peers were charged for, so the peers looked worse.
//   * placement: "pinned 1 CPU" (the benchmarking kernel thread and every thread it starts
//     share CPU 0: BenchPlacement) or "free" (all online CPUs). A ratio is only printed between
//     two rows of the same placement measured in the same run (`BenchReport.ratioNote`).
//   * capped: a count that stopped at the benchmark's own cap is a lower bound, shown as
//     "≥ N (capped)" and never divided by.
//
// The JSON goes to stdout alone (`--json`): everything else the run prints goes to stderr
// then (BenchOutput), so `uthreads bench --json | python3 -m json.tool` works.
import CKernelPeers
import Foundation
import Glibc
import UserThreads

/// One measured figure.
struct BenchRow: Codable {
    var group: String
    var name: String
    /// The median of `samples` (or the single measurement).
    var value: Double
    var unit: String
    /// Spread over repetitions (min, max), when measured several times.
    var min: Double?
    var max: Double?
    var note: String?
    /// Every repetition's figure, in the order measured.
    var samples: [Double]?
    /// "pinned 1 CPU" or "free" (see BenchPlacement); nil for figures that are not timings
    /// of threads (counts of system calls, limits).
    var placement: String?
    /// The value stopped at a cap of the benchmark: a lower bound, not a measured limit.
    var capped: Bool?

    init(
        group: String, name: String, value: Double, unit: String, min: Double? = nil, max: Double? = nil,
        note: String? = nil, samples: [Double]? = nil, placement: String? = nil, capped: Bool? = nil
    ) {
        self.group = group
        self.name = name
        self.value = value
        self.unit = unit
        self.min = min
        self.max = max
        self.note = note
        self.samples = samples
        self.placement = placement
        self.capped = capped
    }
}

/// Rows a run could not measure, and why (a peer that is not installed): the run file says so
/// instead of leaving the reader to notice an absence.
struct BenchSkip: Codable, Equatable {
    var group: String
    var rows: [String]
    var reason: String
}

/// The machine, build and options a run was made with, and its rows: the run file.
struct BenchRun: Codable {
    struct Machine: Codable {
        var cpu: String
        var cores: Int
        var kernel: String
        var memoryBytes: Int
    }

    var schema = 1
    var tool = "uthreads bench"
    var command: String
    var date: String
    /// HEAD of the checkout the command ran in, when it started ("-dirty": tracked files differed).
    var commit: String
    var build: String
    var machine: Machine
    var clock = "wall time (CLOCK_MONOTONIC) for every timed row"
    var quick: Bool
    var repetitions: Int
    var rows: [BenchRow]
    /// Rows not measured in this run, with the reason (absent when every row was measured).
    var skipped: [BenchSkip]?
    /// The 1-, 5- and 15-minute load averages as the run started: other load on a shared machine
    /// moves every timed row (absent in run files written before it was recorded).
    var loadAverage: [Double]?

    static func current(command: String, quick: Bool, repetitions: Int, rows: [BenchRow]) -> BenchRun {
        BenchRun(
            command: command, date: isoDate(), commit: gitCommit(), build: buildConfiguration(),
            machine: .init(
                cpu: cpuModel(), cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), kernel: kernelRelease(),
                memoryBytes: Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))),
            quick: quick, repetitions: repetitions, rows: rows, loadAverage: loadAverages())
    }

    static func loadAverages() -> [Double]? {
        var loads = [Double](repeating: 0, count: 3)
        return getloadavg(&loads, 3) == 3 ? loads : nil
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    static func decode(_ data: Data) throws -> BenchRun {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(BenchRun.self, from: data)
    }

    static func isoDate() -> String {
        var t = time(nil)
        var tm = tm()
        gmtime_r(&t, &tm)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `git rev-parse HEAD` of the working directory ("unknown" outside a checkout), with
    /// "-dirty" when tracked files differ from it.
    static func gitCommit() -> String {
        guard let head = shell(["git", "rev-parse", "HEAD"]), !head.isEmpty else { return "unknown" }
        let dirty = shell(["git", "status", "--porcelain", "--untracked-files=no"]).map { !$0.isEmpty } ?? false
        return head + (dirty ? "-dirty" : "")
    }

    static func buildConfiguration() -> String {
        #if DEBUG
            return "debug"
        #else
            return "release"
        #endif
    }

    static func cpuModel() -> String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
                ?? "unknown"
        }
        return "unknown"
    }

    static func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Runs a short command and returns its trimmed standard output (nil if it failed).
    static func shell(_ args: [String]) -> String? {
        guard let (pid, out) = try? ChildProcess.spawnWithStdoutPipe(args, searchPath: true) else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(out, &buffer, buffer.count)
            if n > 0 { bytes += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        Glibc.close(out)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { return nil }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Where the threads of a timing ran: every row records the placement in force when it was added.
enum BenchPlacement: String {
    /// The benchmarking kernel thread on CPU 0; every kernel thread it starts inherits that.
    case pinned = "pinned 1 CPU"
    /// Every online CPU.
    case free = "free"

    nonisolated(unsafe) private(set) static var current: BenchPlacement = .free

    /// Runs `body` with the calling kernel thread (and the threads it starts) placed as asked,
    /// then restores the previous placement.
    static func with<T>(_ placement: BenchPlacement, _ body: () throws -> T) rethrows -> T {
        let previous = current
        apply(placement)
        defer { apply(previous) }
        return try body()
    }

    private static func apply(_ placement: BenchPlacement) {
        peers_pin_self(placement == .pinned ? 0 : -1)
        current = placement
    }
}

/// Where the run's text goes: stdout, or stderr while `--json` keeps stdout for the JSON alone.
enum BenchOutput {
    nonisolated(unsafe) private static var jsonDescriptor: Int32 = -1

    /// From now on file descriptor 1 is stderr (for `print` here, in the library and in
    /// children); the JSON is written to the original stdout by `writeJSON`.
    static func reserveStdoutForJSON() {
        guard jsonDescriptor < 0 else { return }
        fflush(nil)
        jsonDescriptor = dup(1)
        dup2(2, 1)
    }

    static func writeJSON(_ data: Data) {
        fflush(nil)
        let fd = jsonDescriptor >= 0 ? jsonDescriptor : 1
        let bytes = [UInt8](data) + [10]
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
    }
}

/// Collects rows and prints them as aligned text.
final class BenchReport {
    private(set) var rows: [BenchRow] = []
    private(set) var skipped: [BenchSkip] = []
    let quiet: Bool

    init(quiet: Bool = false) { self.quiet = quiet }

    func add(_ row: BenchRow) {
        var row = row
        if row.placement == nil && row.unit.hasPrefix("ns") { row.placement = BenchPlacement.current.rawValue }
        rows.append(row)
        if !quiet { print(BenchReport.format(row)) }
    }

    /// Median of `samples` with its spread; every sample is kept. With `ratioOver`, the note
    /// is this row's ratio to that earlier row, called `ratioLabel` (when the two are comparable).
    func add(
        group: String, name: String, unit: String, samples: [Double], note: String? = nil,
        ratioOver other: String? = nil,
        ratioLabel: String = "user threads"
    ) {
        let sorted = samples.sorted()
        let median = sorted.isEmpty ? .nan : sorted[sorted.count / 2]
        var row = BenchRow(
            group: group, name: name, value: median, unit: unit, min: sorted.first, max: sorted.last, note: note,
            samples: samples, placement: BenchPlacement.current.rawValue)
        if let other, let base = self.row(other) {
            row.note = BenchReport.ratioNote(row, over: base, label: ratioLabel)
        }
        add(row)
    }

    /// Records rows that cannot be measured in this run; the reason goes to stderr (not a row).
    func skip(group: String, rows names: [String], reason: String) {
        skipped.append(BenchSkip(group: group, rows: names, reason: reason))
        progress("skipped \(names.count) \(group) row(s): \(reason)")
    }

    func row(_ name: String) -> BenchRow? { rows.last { $0.name == name } }

    func value(_ name: String) -> Double? { row(name)?.value }

    /// "= N.Nx <label>" when both rows were measured with the same placement and neither is
    /// capped; otherwise why there is no ratio.
    static func ratioNote(_ a: BenchRow, over b: BenchRow, label: String) -> String {
        if a.capped == true || b.capped == true { return "no ratio: a capped count is a lower bound" }
        if a.placement != b.placement {
            return "no ratio: placed \(a.placement ?? "?") vs \(b.placement ?? "?")"
        }
        guard b.value > 0, a.value.isFinite else { return "no ratio" }
        return "= \((a.value / b.value).fixed(1))x \(label)"
    }

    static func format(_ r: BenchRow) -> String {
        let name = r.name.padding(60)
        let value = (r.capped == true ? "≥ " + fmt(r.value) : fmt(r.value)).leftPadding(10)
        var line = "\(name) \(value)  \(r.unit.padding(12))"
        if let lo = r.min, let hi = r.max { line += " [\(fmt(lo)) .. \(fmt(hi))]" }
        if r.capped == true { line += "  (capped)" }
        if let note = r.note { line += "  \(note)" }
        return line
    }

    static func fmt(_ v: Double) -> String {
        if !v.isFinite { return "-" }
        if abs(v) >= 1000 { return Int(v.rounded()).description }
        if abs(v) >= 100 { return v.fixed(0) }
        if abs(v) >= 10 { return v.fixed(1) }
        return v.fixed(2)
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    func leftPadding(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
