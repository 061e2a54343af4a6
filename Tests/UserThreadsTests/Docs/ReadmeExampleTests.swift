import Testing
import UserThreads

/// README.md's example, compiled and run as written there.
@Suite(.timeLimit(.minutes(1))) struct ReadmeExampleTests {
    @Test func onEveryCore() throws {
        let sum = try UThreadRuntime.run(workers: UThreadRuntime.processorCount) {
            let results = Channel<Int>(name: "results")
            let threads = (1...8).map { n in
                UThread(name: "square \(n)") {
                    try UThread.sleep(for: .milliseconds(n))
                    try results.send(n * n)
                }
            }
            var sum = 0
            for _ in threads { sum += try results.receive()! }
            for t in threads { try t.join() }
            return sum
        }
        #expect(sum == 204)
    }
}
