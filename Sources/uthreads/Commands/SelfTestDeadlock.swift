// `uthreads selftest deadlock`: wait-for cycles that the runtime must report by throwing
// `UThreadError.deadlock` instead of hanging, under M:1 and under M:N. A child process, so that
// a regression (a hang, a crash in the teardown) fails the test that runs it instead of the
// whole test run. Prints what happened; exits non-zero unless both were reported.
import UserThreads

enum DeadlockScenario {
    static func run() throws {
        var reported = 0
        // M:1: two threads join each other; main joins one of them.
        var unwound = 0
        reported += report("M:1") {
            try UThreadRuntime.run {
                var b: UThread<Void>?
                let a = UThread.local(name: "alice") {
                    defer { unwound += 1 }
                    UThread.yield()
                    try b!.join()
                }
                b = UThread.local(name: "bob") {
                    defer { unwound += 1 }
                    try a.join()
                }
                try a.join()
            }
        }
        print("M:1 threads unwound: \(unwound)")
        // M:N, two workers: each thread holds one mutex and waits for the other's.
        reported += report("M:N") {
            try UThreadRuntime.run(workers: 2) {
                let first = UMutex(name: "first")
                let second = UMutex(name: "second")
                let bothHold = UWaitGroup()
                try bothHold.add(2)
                let t1 = try UThread.spawn(name: "carol", onWorker: 0) {
                    try first.withLock {
                        try bothHold.done()
                        try bothHold.wait()
                        try second.withLock {}
                    }
                }
                let t2 = try UThread.spawn(name: "dave", onWorker: 1) {
                    try second.withLock {
                        try bothHold.done()
                        try bothHold.wait()
                        try first.withLock {}
                    }
                }
                try t1.join()
                try t2.join()
            }
        }
        if reported != 2 {
            throw UThreadError.invalidArgument("selftest deadlock: \(2 - reported) cycle(s) not reported")
        }
    }

    /// Runs `body`; prints the deadlock report it throws (1), or what happened instead (0).
    static func report(_ name: String, _ body: () throws -> Void) -> Int {
        do {
            try body()
            print("\(name): run returned although every thread waits forever")
        } catch UThreadError.deadlock(let report) {
            print("\(name) deadlock report:\n\(report)")
            return 1
        } catch {
            print("\(name): threw \(error) instead of a deadlock report")
        }
        return 0
    }
}
