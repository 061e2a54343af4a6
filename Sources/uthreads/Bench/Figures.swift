// The figures in README.md and docs/BENCHMARKS.md, generated from run files kept in docs/runs/.
//
// A generated table sits between two marker comments, each at the start of a line, that name
// what it is and where it comes from:
//
//     <!-- figures: readme runs/2026-12-07-bench.json -->
//     …generated Markdown…
//     <!-- /figures -->
//
// The path is relative to the Markdown file's folder. `uthreads bench figures FILE…` rewrites
// every such block from its run file; `--check` only compares and fails on a difference (the
// test suite runs it, so a typed-over figure or a stale table is caught). Tables:
//
//   readme            the README's figures (user threads against kernel threads, ratios)
//   comparison        the 1992 comparison, one line per operation
//   rows GROUP,…      every row of those groups with its spread, samples, placement
//   instructions      callgrind counts per operation (a `--instructions --json` run)
//   http              the HTTP hello servers under wrk (scripts/compare.sh's run file)
//   targets           the M:N targets a run measured, each with its figure and whether it is
//                     met (today: the unpinned pair ÷ Go, from `bench sync`'s interleaved rows)
//
// Rejected: a script that edits the Markdown with sed from the text output (the text is for
// people and changes shape); figures typed by hand from a run (they drift from the run and
// cannot be checked).
import Foundation

/// The HTTP comparison's run file, written by scripts/compare.sh from wrk's output.
struct HTTPRun: Codable {
    struct Row: Codable {
        var server: String
        /// "pinned" (server on CPU 0, wrk on CPU 1) or "shared".
        var config: String
        var connections: Int
        var requestsPerSecond: Double?
        var p50ms: Double?
        var p99ms: Double?
        var rssMiB: Double?
        var errors: Int?
        var serverCPUPercent: Double?
        var microsecondsPerRequest: Double?
        var wrkCPUPercent: Double?
    }

    var date: String
    var commit: String
    var machine: BenchRun.Machine
    var wrk: String
    var durationSeconds: Int
    var rows: [Row]
}

enum Figures {
    struct Block {
        var table: String
        var arguments: [String]
        /// Character range of the generated content (between the two markers).
        var content: Range<String.Index>
    }

    static let end = "<!-- /figures -->"

    /// Every generated block of a Markdown text.
    static func blocks(in text: String) throws -> [Block] {
        var out: [Block] = []
        var search = text.startIndex
        while let open = text.range(of: "<!-- figures:", range: search..<text.endIndex) {
            // A marker starts a line; one quoted in prose (`<!-- figures: … -->`) is text.
            guard open.lowerBound == text.startIndex || text[text.index(before: open.lowerBound)] == "\n" else {
                search = open.upperBound
                continue
            }
            guard let close = text.range(of: "-->", range: open.upperBound..<text.endIndex) else {
                throw FiguresError("a '<!-- figures:' marker is not closed")
            }
            let words = text[open.upperBound..<close.lowerBound].split(separator: " ").map(String.init)
            guard let table = words.first else { throw FiguresError("a figures marker names no table") }
            let contentStart =
                text.index(after: close.upperBound) <= text.endIndex && text[close.upperBound...].hasPrefix("\n")
                ? text.index(after: close.upperBound) : close.upperBound
            guard let stop = text.range(of: end, range: contentStart..<text.endIndex) else {
                throw FiguresError("the '\(table)' figures block has no '\(end)'")
            }
            out.append(
                Block(table: table, arguments: Array(words.dropFirst()), content: contentStart..<stop.lowerBound))
            search = stop.upperBound
        }
        return out
    }

    /// `text` with every block regenerated; run files are read relative to `folder`.
    static func regenerate(_ text: String, folder: URL) throws -> String {
        var out = ""
        var last = text.startIndex
        for block in try blocks(in: text) {
            out += text[last..<block.content.lowerBound]
            out += try render(block, folder: folder)
            last = block.content.upperBound
        }
        return out + text[last...]
    }

    static func render(_ block: Block, folder: URL) throws -> String {
        guard let file = block.arguments.last else {
            throw FiguresError("the '\(block.table)' block names no run file")
        }
        let data = try Data(contentsOf: folder.appendingPathComponent(file))
        switch block.table {
        case "readme": return readme(try BenchRun.decode(data), file: file)
        case "comparison": return comparison(try BenchRun.decode(data), file: file)
        case "rows":
            guard block.arguments.count == 2 else {
                throw FiguresError("usage: <!-- figures: rows GROUP,… RUNFILE -->")
            }
            let groups = block.arguments[0].split(separator: ",").map(String.init)
            return rows(try BenchRun.decode(data), groups: groups, file: file)
        case "instructions": return instructions(try BenchRun.decode(data), file: file)
        case "http": return http(try JSONDecoder().decode(HTTPRun.self, from: data), file: file)
        case "targets": return targets(try BenchRun.decode(data), file: file)
        default:
            throw FiguresError(
                "unknown figures table '\(block.table)' (readme, comparison, rows, instructions, http, targets)")
        }
    }

    // MARK: tables

    /// Where a table's figures come from. `medians`: say how many repetitions a row's median is
    /// of (a table whose rows count their own samples says it itself).
    static func source(_ run: BenchRun, file: String, medians: Bool = true) -> String {
        let m = run.machine
        let timed = run.rows.contains { $0.samples != nil }
        let load = run.loadAverage.map { l in
            " Load average as the run started: \(l.map { $0.fixed(2) }.joined(separator: ", ")) (1, 5, 15 min)."
        }
        return
            "Run file `\(file)`: \(run.date), commit \(run.commit.prefix(12)), \(run.build) build, `\(run.command)`; "
            + "\(m.cpu), \(m.cores) CPUs, Linux \(m.kernel). Clock: \(run.clock)"
            + (timed && medians ? "; medians of \(run.repetitions) repetitions." : ".") + (load ?? "")
            + (run.quick ? " **--quick: figures meaningless.**" : "")
    }

    static func find(_ run: BenchRun, _ name: String) -> BenchRow? {
        run.rows.last { $0.name == name } ?? run.rows.last { $0.name.hasPrefix(name) }
    }

    static func time(_ v: Double) -> String { Comparison.format(v, .time) }

    static func bytes(_ v: Double) -> String { "\(Int(v.rounded()).formatted()) B" }

    static func spread(_ r: BenchRow, _ f: (Double) -> String) -> String {
        guard let lo = r.min, let hi = r.max, (r.samples?.count ?? 0) > 1 else { return f(r.value) }
        return "\(f(r.value)) [\(f(lo)) – \(f(hi))]"
    }

    /// "N×" between two rows when they are comparable (same placement, neither capped).
    static func ratio(_ kernel: BenchRow?, _ user: BenchRow?) -> String {
        guard let kernel, let user else { return "" }
        let note = BenchReport.ratioNote(kernel, over: user, label: "")
        guard note.hasPrefix("= ") else { return "— (\(note))" }
        return "\(BenchReport.fmt(kernel.value / user.value))×"
    }

    static func readme(_ run: BenchRun, file: String) -> String {
        let placements = Set(run.rows.compactMap { $0.group == "switch" ? $0.placement : nil })
        var out = [
            source(run, file: file),
            "Placement of the timed rows: \(placements.sorted().joined(separator: ", ")) (both sides of each ratio alike).",
            "",
            "| | user threads | kernel threads | kernel ÷ user |", "| --- | --- | --- | --- |",
        ]
        func line(_ label: String, _ user: String, _ kernel: String?, _ f: (Double) -> String = Figures.time) {
            let u = find(run, user)
            let k = kernel.flatMap { find(run, $0) }
            guard let u else { return }
            out.append("| \(label) | \(spread(u, f)) | \(k.map { spread($0, f) } ?? "") | \(ratio(k, u)) |")
        }
        line(
            "switch: `yield()` through the public API vs futex handoff",
            "user threads: yield() between 2 threads (public API)",
            "kernel threads: futex handoff, pinned to 1 CPU")
        line(
            "the same without per-thread CPU accounting (one TSC read less)",
            "user threads: the same, cpuAccounting off (no TSC read)", nil)
        line(
            "spawn + run + join of an empty thread vs `pthread_create` + `join`",
            "user threads: spawn+run+join, one at a time",
            "kernel threads: pthread_create+join")
        line(
            "channel handoff vs mutex+condvar handoff", "user threads: channel ping-pong handoff",
            "kernel threads: mutex+condvar handoff, pinned")
        line(
            "uncontended mutex lock+unlock (`UMutex` vs `pthread_mutex`)",
            "user threads: UMutex lock+unlock, uncontended",
            "kernel threads: pthread_mutex lock+unlock, uncontended")
        line(
            "memory of a parked thread (dense stacks, table included) vs a pthread incl. the kernel's share",
            "user threads: parked, dense stacks, RSS incl. table",
            "kernel threads: parked pthread, + kernel stack/page tables/slab", bytes)
        if let s = run.rows.last(where: { $0.name.hasPrefix("system calls during") }) {
            out.append(
                "| \(s.name.replacingOccurrences(of: " (seccomp trap count)", with: "")) (seccomp) | \(Int(s.value)) | | |"
            )
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The 1992 comparison of a run (its operations named as the run named them).
    static func chart(_ run: BenchRun) -> Comparison {
        let contended =
            run.rows.lazy.compactMap { r -> Int? in
                guard r.name.hasPrefix("user threads: mutex contended by ") else { return nil }
                return Int(r.name.dropFirst("user threads: mutex contended by ".count).prefix { $0.isNumber })
            }.first ?? 100
        let budget = run.quick ? 1.0 / 32 : CompareBenchRuns.budgetGiB  // CompareBenchRuns.budgetBytes
        return Comparison(
            report: run.rows, operations: Comparison.operations(threadsContended: contended, budgetGiB: budget))
    }

    static func comparison(_ run: BenchRun, file: String) -> String {
        let c = chart(run)
        let placements = Set(run.rows.compactMap { $0.unit.hasPrefix("ns") ? $0.placement : nil }).sorted()
        return source(run, file: file) + " Placements in this run: \(placements.joined(separator: ", ")).\n\n"
            + c.markdown() + "\n"
    }

    static func rows(_ run: BenchRun, groups: [String], file: String) -> String {
        var out = [
            source(run, file: file), "", "| row | median | unit | min – max | n | placement | note |",
            "| --- | ---: | --- | --- | ---: | --- | --- |",
        ]
        for r in run.rows where groups.contains(r.group) {
            let value =
                (r.capped == true ? "≥ " : "") + BenchReport.fmt(r.value) + (r.capped == true ? " (capped)" : "")
            let range = r.min.flatMap { lo in r.max.map { "\(BenchReport.fmt(lo)) – \(BenchReport.fmt($0))" } } ?? ""
            let note = (r.note ?? "").replacingOccurrences(of: "|", with: "\\|")
            out.append(
                "| \(r.name.replacingOccurrences(of: "|", with: "\\|")) | \(value) | \(r.unit) | \(range) | \(r.samples?.count ?? 1) | \(r.placement ?? "") | \(note) |"
            )
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func instructions(_ run: BenchRun, file: String) -> String {
        var out = [source(run, file: file), "", "| operation | instructions | per |", "| --- | ---: | --- |"]
        for r in run.rows where r.group == "instructions" {
            out.append(
                "| \(r.name) | \(Int(r.value.rounded())) | \(r.unit.replacingOccurrences(of: "instructions/", with: "")) |"
            )
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The M:N targets with a figure in the run: measured, not measured (and why), or absent.
    static func targets(_ run: BenchRun, file: String) -> String {
        var out = [source(run, file: file, medians: false), "", "| target | this run | met? |", "| --- | --- | --- |"]
        let target =
            "`workers: 2`: unpinned `Channel` ping-pong ≤ 0.5× Go's goroutine ping-pong (GOMAXPROCS=2), in the same run"
        if let ratio = run.rows.last(where: { $0.name == SyncBenchRuns.pairOverGoRow }) {
            let ours = run.rows.last { $0.name == SyncBenchRuns.pairInterleavedRow }
            let go = run.rows.last { $0.name == SyncBenchRuns.goRow }
            let medians = run.rows.last { $0.name == SyncBenchRuns.pairOverGoMediansRow }
            var measured =
                "**\(ratio.value.fixed(2))×**, the median of \(ratio.samples?.count ?? 1) interleaved per-pair ratios"
            if let lo = ratio.min, let hi = ratio.max { measured += " [\(lo.fixed(2)) – \(hi.fixed(2))]" }
            if let medians { measured += "; ratio of medians \(medians.value.fixed(2))×" }
            if let ours, let go {
                measured += " (pair \(spread(ours, time)), Go \(spread(go, time)) per handoff)"
            }
            var met = ratio.value <= 0.5 ? "**yes**" : "**no**"
            if let load = run.loadAverage?.first, load > Double(run.machine.cores) {
                met += " (load \(load.fixed(1)) on \(run.machine.cores) CPUs: not a verdict)"
            }
            out.append("| \(target) | \(measured) | \(met) |")
        } else if let skip = run.skipped?.first(where: { $0.rows.contains(SyncBenchRuns.pairOverGoRow) }) {
            out.append("| \(target) | not measured: \(skip.reason.replacingOccurrences(of: "|", with: "\\|")) | — |")
        } else {
            out.append("| \(target) | not in this run (`uthreads bench sync --only go`) | — |")
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func http(_ run: HTTPRun, file: String) -> String {
        func f(_ v: Double?, _ digits: Int = 1) -> String { v.map { $0.fixed(digits) } ?? "—" }
        let m = run.machine
        var out = [
            "Run file `\(file)` (scripts/compare.sh): \(run.date), commit \(run.commit.prefix(12)); \(m.cpu), \(m.cores) CPUs, "
                + "Linux \(m.kernel); \(run.wrk), \(run.durationSeconds) s per row, a fresh server process per row. Pinned: server "
                + "on CPU 0, wrk on CPU 1. `µs/req` is server CPU (user+system) per request, the steadiest figure. "
                + "Where `srv %` and `wrk %` are both well below 100, other load on the machine starved both: req/s then says "
                + "how much CPU each server was given, not what it can serve.", "",
            "| server | config | conns | req/s | p50 ms | p99 ms | µs/req | µs/req ÷ c-epoll | req/s ÷ uthreads | srv % | wrk % | RSS MiB | errors |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in run.rows {
            let epoll = run.rows.first {
                $0.server == "c-epoll" && $0.config == r.config && $0.connections == r.connections
            }
            let ours = run.rows.first {
                $0.server.hasPrefix("uthreads") && $0.config == r.config && $0.connections == r.connections
            }
            var cpuRatio = "—"
            var rpsRatio = "—"
            if let a = r.microsecondsPerRequest, let b = epoll?.microsecondsPerRequest, b > 0 {
                cpuRatio = (a / b).fixed(2) + "×"
            }
            if let a = r.requestsPerSecond, let b = ours?.requestsPerSecond, b > 0 { rpsRatio = (a / b).fixed(2) + "×" }
            out.append(
                "| \(r.server) | \(r.config) | \(r.connections) | \(r.requestsPerSecond.map { Int($0.rounded()).formatted() } ?? "—") | "
                    + "\(f(r.p50ms, 2)) | \(f(r.p99ms, 2)) | \(f(r.microsecondsPerRequest)) | \(cpuRatio) | \(rpsRatio) | "
                    + "\(f(r.serverCPUPercent, 0)) | \(f(r.wrkCPUPercent, 0)) | \(f(r.rssMiB)) | \(r.errors.map(String.init) ?? "—") |"
            )
        }
        return out.joined(separator: "\n") + "\n"
    }
}

struct FiguresError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
