import ArgumentParser

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Demos: classic concurrency problems on user threads.",
        subcommands: [
            DemoPhilosophersCommand.self,
            DemoBoundedBufferCommand.self,
            DemoReadersWritersCommand.self,
            DemoSleepingBarberCommand.self,
        ])
}
