import Glibc
import Testing
@testable import UserThreads

/// The seed's problem and its fix, as a test: a ticker keeps ticking while a reader waits on
/// an empty pipe with the wrapped read; with the raw read the whole kernel thread stops.
@Suite(.timeLimit(.minutes(1))) struct BlockingDemoTests {
    /// Returns the ticks that happened while the reader waited.
    func scene(raw: Bool) throws -> Int {
        try UThreadRuntime.run {
            var waiting = false
            var ticks = 0
            var done = false
            let ticker = UThread {
                while !done {
                    try UThread.sleep(for: .milliseconds(10))
                    if waiting { ticks += 1 }
                }
            }
            var fds: [Int32] = [0, 0]
            if raw { #expect(Glibc.pipe(&fds) == 0) } else { let p = try IO.pipe(); fds = [p.read, p.write] }
            let writeFD = fds[1]
            let writer = UThread {
                _ = try blocking { usleep(150_000); return Glibc.write(writeFD, "x", 1) }
            }
            let reader = UThread {
                try UThread.sleep(for: .milliseconds(15))
                var b: UInt8 = 0
                waiting = true
                let n = raw ? Glibc.read(fds[0], &b, 1) : try withUnsafeMutableBytes(of: &b) { try IO.read(fds[0], into: $0) }
                waiting = false
                #expect(n == 1)
            }
            try reader.join()
            try writer.join()
            done = true
            try ticker.join()
            try IO.close(fds[0]); try IO.close(fds[1])
            return ticks
        }
    }

    @Test func wrappedReadKeepsTheTickerTicking() throws {
        #expect(try scene(raw: true) == 0)
        #expect(try scene(raw: false) >= 5)  // ~13 in 135 ms; leave room for a loaded machine
    }
}
