// `uthreads demo blocking`: the problem (one blocking call stops every thread) and the fix.
import ArgumentParser
import Glibc
import UserThreads

struct DemoBlockingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blocking",
        abstract: "A ticker and a reader on an empty pipe: raw read() stalls the process, the wrapped read does not.",
        discussion: """
            A ticker thread prints every 100 ms while a reader thread reads an empty pipe that a \
            kernel thread of the offload pool fills after --delay ms. With Glibc.read the reader blocks \
            the kernel thread: the ticker stops (see the gap in the timestamps). With IO.read the \
            reader parks and the ticker keeps going.
            """)

    @Option(help: "Milliseconds before the pipe is written.") var delay = 500

    func validate() throws {
        guard (0...60_000).contains(delay) else { throw ValidationError("--delay must be 0...60000 ms") }
    }

    func run() throws {
        for raw in [true, false] {
            print(
                raw
                    ? "\n1. Raw Glibc.read on a blocking pipe: the whole process blocks"
                    : "\n2. IO.read (non-blocking descriptor, the reader parks): the ticker keeps ticking")
            let ticks = try BlockingDemo.run(raw: raw, delayMilliseconds: delay) { line in
                print(line)
                fflush(nil)
            }
            print("   ticks while the reader waited: \(ticks)")
        }
    }
}

/// The demo's scene, shared with the tour.
enum BlockingDemo {
    /// Runs one scene; returns how many ticks happened while the reader waited.
    static func run(raw: Bool, delayMilliseconds: Int, log: @escaping (String) -> Void) throws -> Int {
        try UThreadRuntime.run {
            let start = ContinuousClock.now
            func stamp(_ s: String) {
                let ms = (ContinuousClock.now - start) / .milliseconds(1)
                log("   +\(String(Int(ms)).leftPadding(5)) ms  \(s)")
            }
            var readerWaiting = false
            var ticksWhileWaiting = 0
            var done = false
            let ticker = UThread.local(name: "ticker") {
                var n = 0
                while !done {
                    try UThread.sleep(for: .milliseconds(100))
                    n += 1
                    if readerWaiting { ticksWhileWaiting += 1 }
                    stamp("ticker: tick \(n)")
                }
            }
            let fds: (read: Int32, write: Int32)
            if raw {
                var p: [Int32] = [0, 0]
                guard Glibc.pipe(&p) == 0 else {
                    throw UThreadError.system(call: "pipe", errno: .init(rawValue: errno))
                }
                fds = (p[0], p[1])
            } else {
                fds = try IO.pipe()
            }
            let writeFD = fds.write
            let delay = delayMilliseconds
            let writer = UThread(name: "writer") {
                // A kernel thread of the offload pool sleeps, then writes: it is outside the
                // runtime, so it can end even the raw read.
                _ = try blocking {
                    usleep(UInt32(delay) * 1000)
                    return Glibc.write(writeFD, "hello", 5)
                }
            }
            let reader = UThread.local(name: "reader") {
                try UThread.sleep(for: .milliseconds(150))
                var buffer = [UInt8](repeating: 0, count: 16)
                stamp(
                    raw
                        ? "reader: Glibc.read(fd \(fds.read)) on an empty pipe…"
                        : "reader: IO.read(fd \(fds.read)) on an empty pipe…")
                readerWaiting = true
                let n = try buffer.withUnsafeMutableBytes { b in
                    raw ? Glibc.read(fds.read, b.baseAddress, b.count) : try IO.read(fds.read, into: b)
                }
                readerWaiting = false
                stamp("reader: got \(n) bytes")
            }
            try reader.join()
            try writer.join()
            try UThread.sleep(for: .milliseconds(150))
            done = true
            try ticker.join()
            try IO.close(fds.read)
            try IO.close(fds.write)
            return ticksWhileWaiting
        }
    }
}
