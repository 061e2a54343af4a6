// The `uthreads` command line: a tour of the runtime, benchmarks side by side with kernel
// threads, demos. Each subcommand lives in Commands/.
import ArgumentParser

@main
struct UThreadsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uthreads",
        abstract: "User-space threads for Swift: a tour, benchmarks against kernel threads, demos.",
        discussion: "With no subcommand, runs the tour.",
        subcommands: [
            TourCommand.self,
            TableCommand.self,
            TopCommand.self,
            BenchCommand.self,
            SelfTestCommand.self,
            DemoCommand.self,
            SchedCommand.self,
            ServeCommand.self,
            EchoServerCommand.self,
        ],
        defaultSubcommand: TourCommand.self
    )
}
