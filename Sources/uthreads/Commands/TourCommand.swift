import ArgumentParser
import UserThreads

struct TourCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tour", abstract: "A tour of the runtime with real figures.")
    func run() throws {
        let table = try UThreadRuntime.run {
            let threads = (1...4).map { i in UThread(name: "worker \(i)") { i * i } }
            let snapshot = UThreadRuntime.threadTable()
            for t in threads { _ = try t.join() }
            return snapshot
        }
        print(table)
    }
}
