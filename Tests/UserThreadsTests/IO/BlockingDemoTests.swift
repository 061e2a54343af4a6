import CUThreads
import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// The seed's problem and its fix, as a test: a ticker keeps ticking while a reader waits on
/// an empty pipe with the wrapped read; with the raw read the whole kernel thread stops.
@Suite(.timeLimit(.minutes(1))) struct BlockingDemoTests {
    /// The ticker's period.
    static let tick = Duration.milliseconds(10)

    /// Returns the ticks that happened while the reader waited. The writer (a pool kernel
    /// thread) writes the byte the reader waits for once the outcome is decided:
    ///   * wrapped read: once the ticker has ticked 3 times during the wait (an event; were the
    ///     kernel thread blocked, it never comes and the read times out after 20 s);
    ///   * raw read: once the runtime's kernel thread is inside read(2) (/proc shows the call)
    ///     and 3 tick periods have passed since, time in which a free ticker would have ticked.
    func scene(raw: Bool) throws -> Int {
        try UThreadRuntime.run {
            var waiting = false
            var done = false
            let ticks = Atomic<Int>(0)
            let ticker = UThread.local {
                while !done {
                    try UThread.sleep(for: Self.tick)
                    if waiting { ticks.add(1, ordering: .relaxed) }
                }
            }
            var fds: [Int32] = [0, 0]
            if raw {
                #expect(Glibc.pipe(&fds) == 0)
            } else {
                let p = try IO.pipe()
                fds = [p.read, p.write]
            }
            let writeFD = fds[1]
            let runtimeThread = uthreads_gettid()
            let writer = UThread.local {
                _ = try blocking { () -> Int in
                    let end = ContinuousClock.now + .seconds(20)  // a bound, never expected
                    if raw {
                        while !Self.isInRead(runtimeThread) && ContinuousClock.now < end { sched_yield() }
                        let blockedSince = ContinuousClock.now
                        while ContinuousClock.now - blockedSince < Self.tick * 3 { sched_yield() }
                    } else {
                        while ticks.load(ordering: .relaxed) < 3 && ContinuousClock.now < end { sched_yield() }
                    }
                    return Glibc.write(writeFD, "x", 1)
                }
            }
            let reader = UThread.local {
                var b: UInt8 = 0
                waiting = true
                let n =
                    raw
                    ? Glibc.read(fds[0], &b, 1)
                    : try withUnsafeMutableBytes(of: &b) { try IO.read(fds[0], into: $0, timeout: .seconds(30)) }
                waiting = false
                #expect(n == 1)
            }
            try reader.join()
            try writer.join()
            done = true
            try ticker.join()
            try IO.close(fds[0])
            try IO.close(fds[1])
            return ticks.load(ordering: .relaxed)
        }
    }

    /// Whether kernel thread `tid` of this process is in read(2) (system call 0 on x86_64,
    /// 63 on AArch64): the first field of /proc/self/task/TID/syscall.
    static func isInRead(_ tid: Int32) -> Bool {
        let fd = open("/proc/self/task/\(tid)/syscall", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return false }
        let number = String(decoding: buffer[0..<n].prefix { $0 != UInt8(ascii: " ") && $0 != 10 }, as: UTF8.self)
        #if arch(x86_64)
            return number == "0"
        #else
            return number == "63"
        #endif
    }

    @Test func wrappedReadKeepsTheTickerTicking() throws {
        #expect(try scene(raw: true) == 0)
        #expect(try scene(raw: false) >= 3)
    }
}
