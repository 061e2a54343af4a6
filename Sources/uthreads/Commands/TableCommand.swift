import ArgumentParser
import UserThreads

struct TableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "table", abstract: "Print the thread table of a demo workload.")
    func run() throws {
        let table = try UThreadRuntime.run { UThreadRuntime.threadTable() }
        print(table)
    }
}
