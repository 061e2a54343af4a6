import ArgumentParser
import UserThreads

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks side by side with kernel threads.", subcommands: [BenchIOCommand.self])
    func run() throws {}
}
