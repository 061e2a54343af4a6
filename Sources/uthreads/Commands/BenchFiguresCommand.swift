// `uthreads bench figures FILE…`: regenerate (or check) the generated tables of Markdown files
// from the run files their markers name (Bench/Figures.swift).
import ArgumentParser
import Foundation

struct BenchFiguresCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "figures",
        abstract:
            "Regenerate the figures tables of Markdown files (between <!-- figures: … --> markers) from their run files."
    )
    @Flag(help: "Only compare: fail, naming the files, when a table differs from what its run file gives.")
    var check = false
    @Option(
        help:
            "Print one table (readme, comparison, rows, instructions, http, targets) from the run file given as the argument instead."
    )
    var table: String?
    @Option(help: "With --table rows: the groups, comma-separated.")
    var groups: String?
    @Option(
        help:
            "Write the comparison chart (log-scale bars, capped counts faded) of the run file given as the argument to this SVG path instead."
    )
    var svg: String?
    @Argument(help: "Markdown files (README.md docs/BENCHMARKS.md); with --table or --svg, one run file.")
    var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one Markdown file") }
        if (table != nil || svg != nil) && files.count != 1 {
            throw ValidationError("--table and --svg take one run file")
        }
    }

    func run() throws {
        if let svg {
            let run = try BenchRun.decode(Data(contentsOf: URL(fileURLWithPath: files[0])))
            let title =
                "uthreads bench: user threads vs kernel threads vs processes vs Swift tasks (\(run.machine.cores) CPUs, \(run.date.prefix(10)))"
            try Figures.chart(run).svg(title: title).write(toFile: svg, atomically: true, encoding: .utf8)
            print("wrote \(svg) from \(files[0])")
            return
        }
        if let table {
            let url = URL(fileURLWithPath: files[0])
            let block = Figures.Block(
                table: table, arguments: (groups.map { [$0] } ?? []) + [url.lastPathComponent],
                content: "".startIndex..<"".endIndex)
            print(try Figures.render(block, folder: url.deletingLastPathComponent()), terminator: "")
            return
        }
        var stale: [String] = []
        for path in files {
            let url = URL(fileURLWithPath: path)
            let text = try String(contentsOf: url, encoding: .utf8)
            let blocks = try Figures.blocks(in: text)
            let fresh = try Figures.regenerate(text, folder: url.deletingLastPathComponent())
            if fresh == text {
                print("\(path): \(blocks.count) figures table(s) up to date")
            } else if check {
                stale.append(path)
                print("\(path): a figures table differs from its run file (run scripts/update-figures.sh)")
            } else {
                try fresh.write(to: url, atomically: true, encoding: .utf8)
                print("\(path): \(blocks.count) figures table(s) regenerated")
            }
        }
        if !stale.isEmpty { throw ExitCode(1) }
    }
}
