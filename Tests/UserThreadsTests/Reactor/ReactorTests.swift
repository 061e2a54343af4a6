import Glibc
import Synchronization
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct ReactorTests {
    func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    @Test func waitingForIOCostsNoCPU() throws {
        let (cpu, error) = try UThreadRuntime.run { () -> (UInt64, (any Error)?) in
            let (r, w) = try Pipe.make()
            defer {
                try? r.close()
                try? w.close()
            }
            let before = threadCPUNanoseconds()
            var error: (any Error)?
            do { _ = try r.read(upTo: 1, timeout: .milliseconds(200)) } catch let e { error = e }
            return (threadCPUNanoseconds() - before, error)
        }
        #expect((error as? UThreadError) == .timedOut)
        #expect(cpu < 20_000_000, "the kernel thread burned \(cpu) ns of CPU while waiting 200 ms")
    }

    @Test func timersFireWhileOthersWaitForIO() throws {
        let order = try UThreadRuntime.run {
            let (r, w) = try Pipe.make()
            var order: [String] = []
            let reader = UThread.local {
                _ = try r.read(upTo: 1)
                order.append("read")
            }
            let sleeper = UThread.local {
                try UThread.sleep(for: .milliseconds(20))
                order.append("slept")
                try w.write(all: "x")
            }
            try sleeper.join()
            try reader.join()
            return order
        }
        #expect(order == ["slept", "read"])
    }

    /// Two threads yield in a loop, so the run queue is never empty; a byte written by another
    /// kernel thread once they are spinning must still reach the reader (only the reactor's
    /// periodic poll can notice it). The read has a deadline: starved, it fails with
    /// `timedOut` instead of hanging.
    @Test func busyThreadsDoNotStarveIO() throws {
        let spins = Atomic<Int>(0)
        let spinsAtWake = try UThreadRuntime.run { () throws -> Int in
            let (r, w) = try IO.pipe()
            defer {
                try? IO.close(r)
                try? IO.close(w)
            }
            var done = false
            let spinner = UThread.local {
                while !done {
                    spins.add(1, ordering: .relaxed)
                    UThread<Never>.yield()
                }
            }
            let spinner2 = UThread.local { while !done { UThread<Never>.yield() } }
            let reader = UThread.local { () throws -> Int in
                var b: UInt8 = 0
                _ = try withUnsafeMutableBytes(of: &b) { try IO.read(r, into: $0, timeout: .seconds(20)) }
                done = true
                return spins.load(ordering: .relaxed)
            }
            // Another kernel thread writes once the spinners are busy (an event, not a delay).
            let writeFD = w
            _ = try blocking { () -> Int in
                let end = ContinuousClock.now + .seconds(20)  // a bound, never expected
                while spins.load(ordering: .relaxed) < 1_000 && ContinuousClock.now < end { sched_yield() }
                return Glibc.write(writeFD, "x", 1)
            }
            let atWake = try reader.join()
            try spinner.join()
            try spinner2.join()
            return atWake
        }
        #expect(spinsAtWake >= 1_000)  // the byte arrived while the run queue was busy
    }

    @Test func reactorIsPerRuntime() throws {
        // Two runtimes on two kernel threads, each with its own epoll set, pass bytes between
        // them through a pipe.
        let (r, w) = try IO.pipe()
        defer {
            Glibc.close(r)
            Glibc.close(w)
        }
        let done = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { done.deallocate() }
        var thread = pthread_t()
        let writeFD = w
        pthread_create(
            &thread, nil,
            { arg in
                let fd = Int32(Int(bitPattern: arg))
                _ = try? UThreadRuntime.run {
                    for i in 0..<100 { try [UInt8(i)].withUnsafeBytes { try IO.write(fd, all: $0) } }
                }
                return nil
            }, UnsafeMutableRawPointer(bitPattern: Int(writeFD)))
        let sum = try UThreadRuntime.run { () throws -> Int in
            var sum = 0
            var count = 0
            var b = [UInt8](repeating: 0, count: 100)
            while count < 100 {
                let n = try b.withUnsafeMutableBytes { try IO.read(r, into: $0, timeout: .seconds(10)) }
                for x in b[0..<n] { sum += Int(x) }
                count += n
            }
            return sum
        }
        pthread_join(thread, nil)
        #expect(sum == (0..<100).reduce(0, +))
    }
}
