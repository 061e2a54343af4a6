// The 1992 comparison, today: one table per operation with a column per thread model (user
// threads, kernel threads, processes, Swift tasks), ratio columns, the figures of Anderson,
// Bershad, Lazowska and Levy ("Scheduler Activations", ACM TOCS 10(1), 1992, Table I) beside
// them, as text, Markdown and an SVG chart with log-scale bars. Built from the rows of one run.
import Foundation

struct Comparison {
    static let columns = ["user threads", "kernel threads", "processes", "Swift tasks"]

    enum Kind { case time, bytes, count, syscalls }

    struct Operation {
        var name: String
        var kind: Kind
        /// Row names for each column (nil: no such peer).
        var rows: [String?]
        /// 1992 figures in µs: user-level threads, kernel threads, processes (Table I).
        var paper: [Double]?
        var note: String = ""
    }

    struct Line {
        var operation: Operation
        var values: [Double?]
        /// Per column: the value stopped at a cap (a lower bound: shown "≥ N (capped)", no ratio).
        var capped: [Bool] = []
        /// Per column: the row's placement (a ratio needs the same on both sides).
        var placements: [String?] = []
    }

    var lines: [Line]

    static let paperNullFork = [34.0, 948, 11_300]
    static let paperSignalWait = [37.0, 441, 1_840]

    static func operations(threadsContended n: Int, budgetGiB: Double) -> [Operation] {
        [
            Operation(
                name: "Null Fork (spawn+join an empty thread)", kind: .time,
                rows: [
                    "user threads: spawn+run+join, one at a time", "kernel threads: pthread_create+join",
                    "processes: fork+exit+waitpid", "Swift tasks: Task {} + value, one at a time",
                ],
                paper: paperNullFork),
            // Like for like: a user mutex+condition against a pthread mutex+condvar, both threads
            // on one CPU (as the M:1 runtime's are); the raw futex, the kernel's cheapest
            // handoff, has its own line.
            Operation(
                name: "Signal-Wait (one handoff, mutex+condition)", kind: .time,
                rows: [
                    "user threads: UMutex+UCondition handoff", "kernel threads: mutex+condvar handoff, pinned",
                    "processes: pipe handoff, pinned to 1 CPU", "Swift tasks: CheckedContinuation handoff",
                ],
                paper: paperSignalWait),
            Operation(
                name: "Signal-Wait, kernel side a raw futex", kind: .time,
                rows: [
                    "user threads: UMutex+UCondition handoff", "kernel threads: futex handoff, pinned to 1 CPU",
                    "processes: pipe handoff, pinned to 1 CPU", "Swift tasks: CheckedContinuation handoff",
                ]),
            Operation(
                name: "yield / switch", kind: .time,
                rows: [
                    "user threads: yield() between 2 threads (public API)",
                    "kernel threads: sched_yield handoff, pinned",
                    nil, "Swift tasks: Task.yield() between 2 tasks",
                ]),
            Operation(
                name: "mutex lock+unlock, uncontended", kind: .time,
                rows: [
                    "user threads: UMutex lock+unlock, uncontended",
                    "kernel threads: pthread_mutex lock+unlock, uncontended",
                    nil, "Swift tasks: Mutex.withLock, uncontended",
                ]),
            Operation(
                name: "mutex, contended by \(n) (per acquisition)", kind: .time,
                rows: [
                    "user threads: mutex contended by \(n), backend API",
                    "kernel threads: mutex contended by \(n), backend API",
                    nil, "Swift tasks: actor call, \(n) tasks contending",
                ]),
            Operation(
                name: "channel handoff", kind: .time,
                rows: [
                    "user threads: channel ping-pong handoff", "kernel threads: channel handoff, backend API",
                    "processes: pipe handoff, pinned to 1 CPU", "Swift tasks: AsyncStream handoff",
                ]),
            Operation(
                name: "memory per parked thread", kind: .bytes,
                rows: [
                    "user threads: parked, dense stacks, RSS incl. table",
                    "kernel threads: parked pthread, + kernel stack/page tables/slab",
                    "processes: parked process, private RSS + kernel share", "Swift tasks: suspended task, RSS or heap",
                ]),
            Operation(
                name: "most threads within \(BenchReport.fmt(budgetGiB)) GiB", kind: .count,
                rows: ["budget: user threads", "budget: kernel threads", "budget: processes", "budget: Swift tasks"]),
            Operation(
                name: "system calls per Null Fork (per thread)", kind: .syscalls,
                rows: [
                    "syscalls: user threads, Null Fork", "syscalls: kernel threads, Null Fork",
                    "syscalls: processes, Null Fork", "syscalls: Swift tasks, Null Fork",
                ]),
            Operation(
                name: "system calls per Signal-Wait handoff", kind: .syscalls,
                rows: [
                    "syscalls: user threads, Signal-Wait", "syscalls: kernel threads, Signal-Wait (condvar)",
                    "syscalls: processes, Signal-Wait (pipe)", "syscalls: Swift tasks, Signal-Wait",
                ]),
        ]
    }

    /// Looks rows up by name prefix (the core rows carry their counts in parentheses).
    init(report rows: [BenchRow], operations: [Operation]) {
        func row(_ name: String?) -> BenchRow? {
            guard let name else { return nil }
            let row = rows.last { $0.name == name } ?? rows.last { $0.name.hasPrefix(name) }
            guard let row, row.value.isFinite, row.value >= 0 else { return nil }
            return row
        }
        lines = operations.map { op in
            let found = op.rows.map(row)
            return Line(
                operation: op, values: found.map { $0?.value }, capped: found.map { $0?.capped == true },
                placements: found.map { $0?.placement })
        }
    }

    // MARK: formatting

    static func format(_ v: Double?, _ kind: Kind) -> String {
        guard let v else { return "—" }
        switch kind {
        case .time:
            if v >= 1e6 { return "\(BenchReport.fmt(v / 1e6)) ms" }
            if v >= 1e3 { return "\(BenchReport.fmt(v / 1e3)) µs" }
            return "\(BenchReport.fmt(v)) ns"
        case .bytes:
            if v >= 1_048_576 { return "\(BenchReport.fmt(v / 1_048_576)) MiB" }
            if v >= 1024 { return "\(BenchReport.fmt(v / 1024)) KiB" }
            return "\(Int(v.rounded())) B"
        case .count:
            return Int(v.rounded()).formatted()
        case .syscalls:
            return BenchReport.fmt(v)
        }
    }

    /// A cell: the value, or "≥ value (capped)" for a lower bound.
    static func cell(_ line: Line, _ i: Int) -> String {
        let text = format(line.values[i], line.operation.kind)
        return line.capped.indices.contains(i) && line.capped[i] ? "≥ \(text) (capped)" : text
    }

    /// How many times better user threads are than column `i` (for counts: more threads); "—"
    /// when a side is missing or capped, or the two were placed differently.
    static func ratio(_ line: Line, _ i: Int) -> String {
        guard let u = line.values[0], let o = line.values[i] else { return "—" }
        if line.capped.indices.contains(i) && (line.capped[0] || line.capped[i]) { return "—" }
        if line.placements.indices.contains(i), line.operation.kind == .time, line.placements[0] != line.placements[i] {
            return "—"
        }
        switch line.operation.kind {
        case .count: return o > 0 ? "\(BenchReport.fmt(u / o))×" : "—"
        case .syscalls: return u == 0 ? (o > 0 ? "0 vs \(BenchReport.fmt(o))" : "—") : "\(BenchReport.fmt(o / u))×"
        default: return u > 0 ? "\(BenchReport.fmt(o / u))×" : "—"
        }
    }

    static func paperCell(_ op: Operation) -> String {
        guard let p = op.paper else { return "" }
        return "\(Int(p[0])) / \(Int(p[1])) / \(Int(p[2]).formatted()) µs"
    }

    static func paperRatios(_ op: Operation) -> String {
        guard let p = op.paper else { return "" }
        return "\(BenchReport.fmt(p[1] / p[0]))× / \(BenchReport.fmt(p[2] / p[0]))×"
    }

    static let legend =
        "Every time is wall time; every row of a time line ran with the same placement (the run's, stated in its header) or has no ratio (—). Ratios: how many times slower (time), bigger (memory) or fewer (threads) the other model is than user threads; a count that stopped at the benchmark's cap is shown ≥ N (capped) and has no ratio."

    var header: [String] {
        ["operation"] + Self.columns + [
            "kernel ÷ user", "process ÷ user", "tasks ÷ user", "1992 u / k / p", "1992 k÷u / p÷u",
        ]
    }

    var cells: [[String]] {
        lines.map { l in
            [l.operation.name] + l.values.indices.map { Self.cell(l, $0) }
                + [
                    Self.ratio(l, 1), Self.ratio(l, 2), Self.ratio(l, 3), Self.paperCell(l.operation),
                    Self.paperRatios(l.operation),
                ]
        }
    }

    func text() -> String {
        let all = [header] + cells
        var widths = header.map(\.count)
        for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func row(_ r: [String]) -> String {
            r.enumerated().map { i, c in i == 0 ? c.padding(widths[i]) : c.leftPadding(widths[i]) }.joined(
                separator: "  ")
        }
        var out = [row(header), String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))]
        out += cells.map(row)
        out.append(Self.legend)
        out.append(contentsOf: movement())
        return out.joined(separator: "\n")
    }

    func markdown() -> String {
        var out = [
            "| " + header.joined(separator: " | ") + " |", "|" + String(repeating: " --- |", count: header.count),
        ]
        out += cells.map { "| " + $0.joined(separator: " | ") + " |" }
        out.append("")
        out.append(Self.legend)
        out.append("")
        out += movement().map { "- " + $0 }
        return out.joined(separator: "\n")
    }

    /// How the ratios moved since 1992.
    func movement() -> [String] {
        lines.compactMap { l -> String? in
            guard let p = l.operation.paper, let u = l.values[0] else { return nil }
            var parts: [String] = []
            let name = String(l.operation.name.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces)
            if let k = l.values[1], Self.ratio(l, 1) != "—" {
                parts.append("kernel ÷ user \(BenchReport.fmt(p[1] / p[0]))× in 1992 → \(BenchReport.fmt(k / u))× now")
            }
            if let pr = l.values[2], Self.ratio(l, 2) != "—" {
                parts.append("process ÷ user \(BenchReport.fmt(p[2] / p[0]))× → \(BenchReport.fmt(pr / u))×")
            }
            parts.append(
                "user threads \(Int(p[0])) µs → \(Self.format(u, .time)) (\(BenchReport.fmt(p[0] * 1000 / u))× faster)")
            return "\(name): " + parts.joined(separator: "; ")
        }
    }

    // MARK: SVG

    static let colours = ["#1b7837", "#c2185b", "#5e35b1", "#ef6c00"]

    struct Panel {
        var title: String
        var unit: String
        var groups: [(label: String, values: [Double?])]
        var series: [String]
        var colours: [String]
        var format: (Double) -> String
        /// Per group and column: a capped value (a lower bound), drawn faded and labelled "≥ N (capped)".
        var capped: [[Bool]] = []
        /// Axis labels at powers of ten.
        var tick: (Double) -> String = { BenchReport.fmt($0) }
    }

    func panels() -> [Panel] {
        let times = lines.filter { $0.operation.kind == .time }
        let time = Panel(
            title: "Time per operation (log scale; shorter is better)", unit: "ns",
            groups: times.map { ($0.operation.name, $0.values) }, series: Self.columns, colours: Self.colours,
            format: { Self.format($0, .time) }, tick: { Self.format($0, .time) })
        var panels = [time]
        if let memory = lines.first(where: { $0.operation.kind == .bytes }) {
            panels.append(
                Panel(
                    title: "Memory per parked thread (log scale; smaller is better)", unit: "bytes",
                    groups: [(memory.operation.name, memory.values)], series: Self.columns, colours: Self.colours,
                    format: { Self.format($0, .bytes) },
                    tick: { v in v >= 1e6 ? "\(Int(v / 1e6)) MB" : v >= 1e3 ? "\(Int(v / 1e3)) kB" : "\(Int(v)) B" }))
        }
        if let budget = lines.first(where: { $0.operation.kind == .count }) {
            panels.append(
                Panel(
                    title:
                        "\(budget.operation.name.prefix(1).uppercased() + budget.operation.name.dropFirst()) (log; longer is better; faded bars stopped at a cap: lower bounds)",
                    unit: "threads", groups: [(budget.operation.name, budget.values)], series: Self.columns,
                    colours: Self.colours, format: { Self.format($0, .count) }, capped: [budget.capped],
                    tick: { Self.format($0, .count) }))
        }
        // 1992 against now, for the two operations the paper measured (µs → ns).
        var then: [(String, [Double?])] = []
        for l in lines where l.operation.paper != nil {
            let short = String(l.operation.name.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces)
            then.append(("\(short), 1992", l.operation.paper!.map { $0 * 1000 } + [nil]))
            then.append(("\(short), now", l.values))
        }
        if !then.isEmpty {
            panels.append(
                Panel(
                    title: "1992 (Anderson et al., Table I) against this run (log scale)", unit: "ns",
                    groups: then, series: Self.columns, colours: Self.colours, format: { Self.format($0, .time) },
                    tick: { Self.format($0, .time) }))
        }
        return panels
    }

    func svg(title: String) -> String {
        let width = 960.0
        let labelWidth = 300.0
        let barHeight = 14.0
        let groupGap = 12.0
        let right = 90.0
        var y = 70.0
        var body = ""
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        for panel in panels() {
            let values = panel.groups.flatMap { $0.values.compactMap { $0 } }.filter { $0 > 0 }
            guard let lo = values.min(), let hi = values.max() else { continue }
            let lo10 = floor(log10(lo))
            let hi10 = max(lo10 + 1, ceil(log10(hi)))
            let plotWidth = width - labelWidth - right
            func x(_ v: Double) -> Double {
                labelWidth + (log10(max(v, pow(10, lo10))) - lo10) / (hi10 - lo10) * plotWidth
            }
            body += "<text x=\"20\" y=\"\(y)\" class=\"panel\">\(esc(panel.title))</text>\n"
            y += 14
            let top = y
            let height = Double(panel.groups.count) * (Double(panel.series.count) * barHeight + groupGap)
            // decade grid lines
            var d = lo10
            while d <= hi10 {
                let gx = x(pow(10, d))
                body += "<line x1=\"\(gx)\" y1=\"\(top)\" x2=\"\(gx)\" y2=\"\(top + height)\" class=\"grid\"/>\n"
                body +=
                    "<text x=\"\(gx)\" y=\"\(top + height + 14)\" class=\"axis\">\(esc(panel.tick(pow(10, d))))</text>\n"
                d += 1
            }
            for (gi, g) in panel.groups.enumerated() {
                let gy = y
                body +=
                    "<text x=\"\(labelWidth - 8)\" y=\"\(gy + Double(panel.series.count) * barHeight / 2 + 4)\" class=\"label\">\(esc(g.label))</text>\n"
                for (i, v) in g.values.enumerated() {
                    let by = y + Double(i) * barHeight
                    if let v, v > 0 {
                        let w = max(1, x(v) - labelWidth)
                        let capped =
                            panel.capped.indices.contains(gi) && panel.capped[gi].indices.contains(i)
                            && panel.capped[gi][i]
                        body +=
                            "<rect x=\"\(labelWidth)\" y=\"\(by + 1)\" width=\"\(w)\" height=\"\(barHeight - 2)\" fill=\"\(panel.colours[i])\"\(capped ? " fill-opacity=\"0.35\"" : "")/>\n"
                        let label = capped ? "≥ \(panel.format(v)) (capped)" : panel.format(v)
                        body +=
                            "<text x=\"\(labelWidth + w + 4)\" y=\"\(by + barHeight - 3)\" class=\"value\">\(esc(label))</text>\n"
                    } else if v == nil {
                        body += "<text x=\"\(labelWidth + 4)\" y=\"\(by + barHeight - 3)\" class=\"none\">—</text>\n"
                    } else {
                        body +=
                            "<text x=\"\(labelWidth + 4)\" y=\"\(by + barHeight - 3)\" class=\"value\">\(esc(panel.format(v ?? 0)))</text>\n"
                    }
                }
                y += Double(panel.series.count) * barHeight + groupGap
            }
            y += 40
        }
        var legend = ""
        for (i, s) in Self.columns.enumerated() {
            let lx = 20.0 + Double(i) * 170
            legend +=
                "<rect x=\"\(lx)\" y=\"38\" width=\"12\" height=\"12\" fill=\"\(Self.colours[i])\"/><text x=\"\(lx + 18)\" y=\"49\" class=\"legend\">\(esc(s))</text>\n"
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(y))" viewBox="0 0 \(Int(width)) \(Int(y))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
            <style>
            .title { font-size: 17px; font-weight: bold; }
            .panel { font-size: 14px; font-weight: bold; }
            .label { font-size: 11px; text-anchor: end; }
            .value { font-size: 10px; fill: #222; }
            .none { font-size: 10px; fill: #999; }
            .axis { font-size: 10px; fill: #555; text-anchor: middle; }
            .legend { font-size: 12px; }
            .grid { stroke: #ddd; stroke-width: 1; }
            </style>
            <rect width="100%" height="100%" fill="white"/>
            <text x="20" y="24" class="title">\(esc(title))</text>
            \(legend)\(body)</svg>

            """
    }
}
