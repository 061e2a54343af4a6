// A small workload whose thread table shows every state at once: used by the tour and by
// `uthreads table`.
import UserThreads

enum DemoWorkload {
    /// Spawns threads that end up running, ready, sleeping, blocked and finished, takes a
    /// snapshot at that moment, then lets everything finish. Call inside a runtime.
    static func snapshotWithEveryState() throws -> ThreadTable {
        let sleeper = UThread(name: "sleeper") { try UThread.sleep(for: .milliseconds(50)) }
        let waiter = UThread(name: "waiter") { try sleeper.join() }
        let workers = (1...3).map { i in
            UThread(name: "worker \(i)", priority: i) { () -> Int in
                var sum = 0
                for round in 0..<3 {
                    for k in 0..<10_000 { sum &+= k * round }
                    UThread.yield()
                }
                return sum
            }
        }
        let done = UThread(name: "quick") { 42 }
        UThread.yield()  // every thread has had one turn: sleeper and waiter parked, workers mid-way
        _ = try done.join()
        let table = UThreadRuntime.threadTable()
        for w in workers { _ = try w.join() }
        try waiter.join()
        return table
    }
}
