// `uthreads table`: the thread table of a demo workload.
import ArgumentParser
import Foundation
import UserThreads

struct TableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table", abstract: "Print the thread table of a demo workload (ps-like text or JSON).")

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let table = try UThreadRuntime.run { try DemoWorkload.snapshotWithEveryState() }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(table), as: UTF8.self))
        } else {
            print(table.render())
        }
    }
}
