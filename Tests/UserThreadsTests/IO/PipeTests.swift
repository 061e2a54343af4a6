import Glibc
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct PipeTests {
    @Test func readerParksUntilWriterWrites() throws {
        let got = try UThreadRuntime.run {
            let (r, w) = try Pipe.make()
            let reader = UThread.local { try r.read(upTo: 100) }
            UThread<Never>.yield()
            try w.write(all: "hello")
            return try reader.join()
        }
        #expect(got == Array("hello".utf8))
    }

    /// `read(upTo:)` below 1 throws instead of stopping the process (a negative count made the
    /// buffer array trap) or returning the empty array that means end of stream.
    @Test(arguments: syncWorkerCounts) func readUpToBelowOneThrows(workers: Int) throws {
        let data = try runOn(workers: workers) { () -> [UInt8] in
            let (r, w) = try Pipe.make()
            try w.write(all: "hi")
            for maxBytes in [-1, 0, Int.min] {
                let message = expectError(sameCaseAs: .invalidArgument(""), "maxBytes \(maxBytes)") {
                    try r.read(upTo: maxBytes)
                }
                #expect(message?.contains("maxBytes must be at least 1") == true)
            }
            return try r.read(upTo: 10)  // nothing was consumed
        }
        #expect(data == Array("hi".utf8))
    }

    /// A huge `read(upTo:)` (`Int.max`) allocates at most `maximumReadBytes`, not `Int.max`
    /// bytes (which stopped the process), and returns what the pipe holds.
    @Test(arguments: syncWorkerCounts) func aHugeReadUpToReadsWhatThereIs(workers: Int) throws {
        let data = try runOn(workers: workers) { () -> [[UInt8]] in
            let (r, w) = try Pipe.make()
            try w.write(all: "huge")
            let first = try r.read(upTo: .max)
            try w.write(all: "more")
            try w.close()
            return [first, try r.read(upTo: DescriptorStream.maximumReadBytes + 1), try r.read(upTo: .max)]
        }
        #expect(data == [Array("huge".utf8), Array("more".utf8), []])
    }

    @Test func manyThreadsOnManyPipes() throws {
        let total = try UThreadRuntime.run {
            var threads: [UThread<Int>] = []
            for i in 0..<200 {
                let (r, w) = try Pipe.make()
                threads.append(
                    UThread.local {
                        var sum = 0
                        while true {
                            let chunk = try r.read(upTo: 16)
                            if chunk.isEmpty { return sum }
                            sum += chunk.reduce(0) { $0 + Int($1) }
                        }
                    })
                threads.append(
                    UThread {
                        for _ in 0..<10 {
                            try w.write(all: [UInt8(i % 256)])
                            UThread<Never>.yield()
                        }
                        try w.close()
                        return 0
                    })
            }
            return try threads.reduce(0) { try $0 + $1.join() }
        }
        #expect(total == (0..<200).reduce(0) { $0 + 10 * ($1 % 256) })
    }

    @Test func severalReadersOnOnePipe() throws {
        let count = try UThreadRuntime.run {
            let (r, w) = try Pipe.make()
            let readers = (0..<8).map { _ in
                UThread.local { () throws -> Int in
                    var n = 0
                    while true {
                        let c = try r.read(upTo: 1)
                        if c.isEmpty { return n }
                        n += 1
                    }
                }
            }
            for _ in 0..<1000 {
                try w.write(all: [1])
                if Bool.random() { UThread<Never>.yield() }
            }
            try w.close()
            return try readers.reduce(0) { try $0 + $1.join() }
        }
        #expect(count == 1000)
    }

    @Test func socketpairsWithManyThreads() throws {
        let ok = try UThreadRuntime.run {
            var threads: [UThread<Bool>] = []
            for i in 0..<100 {
                let (a, b) = try UnixStream.pair()
                threads.append(
                    UThread.local {
                        try a.write(all: "ping \(i)")
                        let reply = try a.read(upTo: 100)
                        return reply == Array("pong \(i)".utf8)
                    })
                threads.append(
                    UThread {
                        let msg = try b.read(upTo: 100)
                        #expect(msg == Array("ping \(i)".utf8))
                        try b.write(all: "pong \(i)")
                        return true
                    })
            }
            return try threads.allSatisfy { try $0.join() }
        }
        #expect(ok)
    }

    @Test func partialWritesAndSlowReader() throws {
        let size = 4 * 1024 * 1024
        let received = try UThreadRuntime.run {
            let (r, w) = try Pipe.make()
            let writer = UThread.local {
                let data = [UInt8](repeating: 7, count: size)
                // a single write(2) is partial (the pipe holds 64 KiB): write(all:) waits for the reader
                let first = try data.withUnsafeBytes { try w.write($0) }
                #expect(first < size)
                try data.withUnsafeBytes { try w.write(all: UnsafeRawBufferPointer(rebasing: $0[first...])) }
                try w.close()
            }
            var n = 0
            while true {
                let c = try r.read(upTo: 8192)
                if c.isEmpty { break }
                n += c.count
                if n % (256 * 1024) < 8192 { UThread<Never>.yield() }  // slow reader
            }
            try writer.join()
            return n
        }
        #expect(received == size)
    }

    @Test func writeToClosedReaderIsEPIPE() throws {
        let error = try UThreadRuntime.run { () -> UThreadError? in
            let (r, w) = try Pipe.make()
            try r.close()
            do { try w.write(all: "x") } catch let e as UThreadError { return e }
            return nil
        }
        #expect(error == .system(call: "write", errno: .brokenPipe))
    }

    /// The same as a process's very first I/O, in a process of its own: in this one, another
    /// test may already have made SIGPIPE ignored (it once was, only by the first reactor, and a
    /// write that fails at once never makes one: such a process died of SIGPIPE).
    @Test func aFirstWriteToAClosedPipeThrowsInAFreshProcess() throws {
        let r = try ChildProcess.uthreads("selftest", "broken-pipe")
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stdout.contains("write to a closed pipe: write: Broken pipe"), "\(r.stdout)")
    }
}
