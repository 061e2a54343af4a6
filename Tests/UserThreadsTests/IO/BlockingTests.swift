import Glibc
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct BlockingTests {
    @Test func returnsAFilesContent() throws {
        let path = "/tmp/uthreads-blocking-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let content = Array("the quick brown fox\n".utf8)
        let (read, viaBlocking) = try UThreadRuntime.run {
            try IO.writeFile(path, content)
            defer { unlink(path) }
            let viaBlocking = try blocking { () throws -> Int in
                var st = stat()
                guard stat(path, &st) == 0 else {
                    throw UThreadError.system(call: "stat", errno: .init(rawValue: errno))
                }
                return Int(st.st_size)
            }
            return (try IO.readFile(path), viaBlocking)
        }
        #expect(read == content)
        #expect(viaBlocking == content.count)
    }

    struct Oops: Error, Equatable { var code: Int }

    @Test func rethrowsTheClosuresError() throws {
        let result = try UThreadRuntime.run { () -> (any Error)? in
            do { _ = try blocking { () throws -> Int in throw Oops(code: 42) } } catch { return error }
            return nil
        }
        #expect(result as? Oops == Oops(code: 42))
        let missing = try UThreadRuntime.run { () -> (any Error)? in
            do { _ = try IO.readFile("/nonexistent/uthreads") } catch { return error }
            return nil
        }
        #expect(missing as? UThreadError == .system(call: "open", errno: .noSuchFileOrDirectory))
    }

    /// A job blocks a pool kernel thread in poll(2) on an empty pipe; only a ticker user thread
    /// that keeps running meanwhile (5 timer wake-ups) writes the byte that ends the poll. The
    /// poll's return says which happened: 1, the byte came; 0, it timed out after 10 s because
    /// the runtime stopped while the job blocked.
    @Test func otherThreadsRunWhileAJobBlocks() throws {
        let (polled, ticksDuringTheJob) = try UThreadRuntime.run { () -> (Int32, Int) in
            let (r, w) = try IO.pipe()
            defer {
                try? IO.close(r)
                try? IO.close(w)
            }
            let job = UThread { () throws -> Int32 in
                try blocking {
                    var p = pollfd(fd: r, events: Int16(POLLIN), revents: 0)
                    return poll(&p, 1, 10_000)  // a kernel thread blocks here until the pipe is written
                }
            }
            let ticker = UThread { () throws -> Int in
                // Ticks that found the job still waiting on the pool ("blocking call").
                var ticksDuringTheJob = 0
                for _ in 0..<5 {
                    try UThread.sleep(for: .milliseconds(2))
                    if UThreadRuntime.threadTable().threads.contains(where: {
                        $0.id == job.id && $0.waitReason?.kind == .offload
                    }) {
                        ticksDuringTheJob += 1
                    }
                }
                _ = try [UInt8(1)].withUnsafeBytes { try IO.write(w, from: $0) }
                return ticksDuringTheJob
            }
            let ticks = try ticker.join()
            return (try job.join(), ticks)
        }
        #expect(polled == 1, "the job's poll returned \(polled): it was not woken by the ticker's write")
        #expect(ticksDuringTheJob == 5)
    }

    @Test func manyJobsAtOnce() throws {
        let sum = try UThreadRuntime.run {
            let threads = (1...50).map { i in UThread { try blocking { i * 2 } } }
            return try threads.reduce(0) { try $0 + $1.join() }
        }
        #expect(sum == (1...50).reduce(0) { $0 + $1 * 2 })
        #expect(UThreadRuntime.blockingPoolThreads <= UThreadRuntime.blockingPoolSize)
    }

    @Test func noReactorWithoutIO() throws {
        let hasPoller = try UThreadRuntime.run { () -> Bool in
            let t = UThread { try UThread.sleep(for: .milliseconds(1)) }
            try t.join()
            return Scheduler.require("test").poller != nil
        }
        #expect(!hasPoller)
    }
}
