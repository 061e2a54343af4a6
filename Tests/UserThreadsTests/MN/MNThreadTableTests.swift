import Testing
@testable import UserThreads

/// The merged thread table of an M:N runtime: one snapshot with every worker's threads.
@Suite(.timeLimit(.minutes(1))) struct MNThreadTableTests {
    @Test func mergedTableShowsThreadsOfEveryWorker() throws {
        let (table, ids) = try UThreadRuntime.run(workers: 2) { () -> (ThreadTable, [ThreadID?]) in
            let m = UMutex(name: "held")
            try m.lock()
            let ch = Channel<Int>(name: "jobs")
            let onOne = try UThread.spawn(name: "waits-on-1", onWorker: 1) {
                try m.lock()
                try m.unlock()
            }
            let onZero = try UThread.spawn(name: "waits-on-0", onWorker: 0) { _ = try ch.receive() }
            #expect(try waitUntilParked(onOne, .mutex))
            #expect(try waitUntilParked(onZero, .channelReceive))
            let table = UThreadRuntime.threadTable()
            try m.unlock()
            ch.close()
            try onOne.join()
            try onZero.join()
            return (table, [onOne.id, onZero.id])
        }
        #expect(table.workers == 2)
        #expect(table.unansweredWorkers == [])
        let one = table.threads.first { $0.id == ids[0] }
        let zero = table.threads.first { $0.id == ids[1] }
        #expect(one?.worker == 1)
        #expect(zero?.worker == 0)
        #expect(one?.waitReason?.description.contains("mutex 'held' held by #") == true)
        #expect(zero?.waitReason?.description.contains("channel receive on 'jobs'") == true)
        #expect(Set(table.threads.compactMap(\.worker)) == [0, 1])
        let text = table.render()
        #expect(text.contains("WORKER"))
        #expect(text.contains("2 workers"))
        #expect(text.split(separator: "\n").contains { $0.contains("waits-on-1") && $0.contains("blocked") })
    }

    /// One worker: the same fields (1 worker, every row on worker 0, every worker answered),
    /// and no WORKER column, which would say 0 on every row.
    @Test func aOneWorkerTableSaysOneWorkerWithoutAWorkerColumn() throws {
        let table = try UThreadRuntime.run { UThreadRuntime.threadTable() }
        #expect(table.workers == 1)
        #expect(table.unansweredWorkers == [])
        #expect(table.threads.allSatisfy { $0.worker == 0 && $0.migrations == 0 })
        #expect(!table.render().contains("WORKER"))
        #expect(table.render().contains("; 1 worker\n"))
    }
}
