// `uthreads table`: the thread table of a demo workload.
import ArgumentParser
import Foundation
import UserThreads

struct TableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table", abstract: "Print the thread table of a demo workload (ps-like text, registers or JSON).")

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(
        help:
            "Show each thread's saved program counter (and its function), stack pointer and callee-saved registers, as the textbook draws the thread table."
    )
    var registers = false

    @Flag(help: "Show the kernel's thread table (/proc/self/task) next to the user thread table.")
    var kernel = false

    @Option(help: "With --kernel: how many parked user threads to spawn first.")
    var parked = 1000

    @Option(
        help:
            "Run an M:N demo on this many workers instead: one thread parked on each M:N primitive, the merged table of every worker."
    )
    var workers: Int?

    /// Here, not in `run`: a ValidationError thrown from `run` prints the usage of `uthreads`
    /// itself instead of this command's.
    func validate() throws {
        guard (0...1_000_000).contains(parked) else { throw ValidationError("--parked must be 0...1000000") }
        if registers && json && !kernel {
            throw ValidationError("--registers is for the text table: the JSON has every row's \"registers\" already")
        }
        if let workers, !(1...1024).contains(workers) { throw ValidationError("--workers must be 1...1024") }
    }

    func run() throws {
        if kernel { return try TableKernelView.run(parked: parked, json: json) }
        let table =
            try workers.map { try MNDemoWorkload.snapshot(workers: $0) }
            ?? UThreadRuntime.run { try DemoWorkload.snapshotWithEveryState() }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(table), as: UTF8.self))
        } else if registers {
            print(table.renderRegisters())
        } else {
            print(table.render())
        }
    }
}
