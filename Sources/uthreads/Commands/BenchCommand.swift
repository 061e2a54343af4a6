import ArgumentParser
import UserThreads

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks side by side with kernel threads.", subcommands: [BenchSyncCommand.self])
    func run() throws {}
}
