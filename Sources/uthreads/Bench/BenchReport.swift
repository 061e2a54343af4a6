// Shared printing of benchmark rows: one table per group, side by side with the peers.
import UserThreads

/// One measured figure.
struct BenchRow: Codable {
    var group: String
    var name: String
    var value: Double
    var unit: String
    /// Spread over repetitions (min, max), when measured several times.
    var min: Double?
    var max: Double?
    var note: String?
}

/// Collects rows and prints them as aligned text (and JSON on request).
final class BenchReport {
    private(set) var rows: [BenchRow] = []
    let quiet: Bool

    init(quiet: Bool = false) { self.quiet = quiet }

    func add(_ row: BenchRow) {
        rows.append(row)
        if !quiet { print(BenchReport.format(row)) }
    }

    /// Median of `samples` with its spread.
    func add(group: String, name: String, unit: String, samples: [Double], note: String? = nil) {
        let sorted = samples.sorted()
        let median = sorted.isEmpty ? .nan : sorted[sorted.count / 2]
        add(BenchRow(group: group, name: name, value: median, unit: unit, min: sorted.first, max: sorted.last, note: note))
    }

    func value(_ name: String) -> Double? { rows.last { $0.name == name }?.value }

    static func format(_ r: BenchRow) -> String {
        let name = r.name.padding(60)
        let value = fmt(r.value).leftPadding(10)
        var line = "\(name) \(value)  \(r.unit.padding(12))"
        if let lo = r.min, let hi = r.max { line += " [\(fmt(lo)) .. \(fmt(hi))]" }
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
