import ArgumentParser

/// `uthreads demo <scene>`: small programs that make one runtime behaviour visible.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Demos that make one behaviour of the runtime visible.",
        subcommands: [
            DemoBlockingCommand.self,
            DemoJacketCommand.self,
            DemoPhilosophersCommand.self,
            DemoBoundedBufferCommand.self,
            DemoReadersWritersCommand.self,
            DemoSleepingBarberCommand.self,
        ])
}
