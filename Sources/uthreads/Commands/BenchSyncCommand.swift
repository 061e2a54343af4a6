// `uthreads bench sync`: the sync layer side by side with kernel threads in one run.
//
//   * channel ping-pong: one message each way between two user threads; the figure is per
//     handoff (half a round trip). Peer: two pthreads handing a turn back and forth with a
//     pthread mutex + condition variable, both pinned to one CPU (as the user threads share
//     one kernel thread), so the ratio compares like with like.
//   * uncontended UMutex lock+unlock.
//   * contended UMutex among 1,000 user threads, each holding it across a yield (so every
//     acquisition finds the mutex held): throughput and the spread of acquisitions per thread.
import ArgumentParser
import Glibc
import UserThreads

struct BenchSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Channels and mutexes vs. pthread mutex+condvar.")

    @Option(help: "Repetitions of each measurement (the median is shown).") var repetitions = 5
    @Option(help: "Round trips per ping-pong measurement.") var roundTrips = 200_000
    @Flag(help: "Print JSON rows instead of text.") var json = false
    @Flag(help: "Turn off per-thread CPU accounting (one TSC read per switch) in the measured runtimes.") var noAccounting = false
    @Option(help: "Run only one part: channel, mutex or contended (for profiling).") var only: String?

    func run() throws {
        let report = BenchReport(quiet: json)
        let group = "sync"
        let reps = max(1, repetitions), trips = max(1, roundTrips)

        if only == nil || only == "channel" {
        let switches = try (0..<reps).map { _ in try yieldPingPong(switches: trips * 2) }
        report.add(group: group, name: "reference: yield switch between 2 user threads", unit: "ns/switch", samples: switches)
        let channel = try (0..<reps).map { _ in try channelPingPong(roundTrips: trips) }
        report.add(group: group, name: "channel ping-pong handoff, user threads", unit: "ns/handoff", samples: channel,
                   note: "target <= 60")
        let pthread = (0..<reps).map { _ in pthreadPingPong(roundTrips: max(1, trips / 10)) }
        report.add(group: group, name: "mutex+condvar handoff, 2 pthreads on 1 CPU", unit: "ns/handoff", samples: pthread)
        if let u = report.value("channel ping-pong handoff, user threads"),
           let k = report.value("mutex+condvar handoff, 2 pthreads on 1 CPU") {
            report.add(BenchRow(group: group, name: "ratio pthread / user-thread handoff", value: k / u, unit: "x",
                                note: "target >= 20"))
        }

        }
        if only == nil || only == "mutex" {
        let uncontended = try (0..<reps).map { _ in try uncontendedMutex(iterations: 20_000_000) }
        report.add(group: group, name: "UMutex lock+unlock, uncontended", unit: "ns/pair", samples: uncontended,
                   note: "target <= 10")
        let pm = (0..<reps).map { _ in uncontendedPthreadMutex(iterations: 20_000_000) }
        report.add(group: group, name: "pthread_mutex lock+unlock, uncontended", unit: "ns/pair", samples: pm)

        }
        if only == nil || only == "contended" {
        var spreads: [(Int, Int)] = []
        let contended = try (0..<reps).map { _ -> Double in
            let (rate, lo, hi) = try contendedMutex(threads: 1_000, acquisitions: 1_000_000)
            spreads.append((lo, hi))
            return rate
        }
        let lo = spreads.map(\.0).min()!, hi = spreads.map(\.1).max()!
        report.add(group: group, name: "UMutex contended, 1,000 user threads", unit: "M acq/s", samples: contended,
                   note: "acquisitions per thread \(lo)...\(hi) (fair: 1000 each)")
        }
        if json {
            let rows = report.rows.map { r in
                "{\"group\":\"\(r.group)\",\"name\":\"\(r.name)\",\"value\":\(r.value),\"unit\":\"\(r.unit)\"}"
            }
            print("[" + rows.joined(separator: ",\n") + "]")
        }
    }

    /// ns per handoff between two user threads over two unbuffered channels.
    func channelPingPong(roundTrips: Int) throws -> Double {
        try UThreadRuntime.run(configuration) {
            let ping = Channel<Int>(), pong = Channel<Int>()
            let echo = UThread { while let v = try ping.receive() { try pong.send(v) } }
            for i in 0..<1_000 { try ping.send(i); _ = try pong.receive() }  // warm up
            let start = threadCPUNanoseconds()
            for i in 0..<roundTrips { try ping.send(i); _ = try pong.receive() }
            let elapsed = threadCPUNanoseconds() - start
            ping.close()
            try echo.join()
            return elapsed / Double(2 * roundTrips)
        }
    }

    var configuration: UThreadRuntime.Configuration {
        var c = UThreadRuntime.Configuration()
        c.cpuAccounting = !noAccounting
        return c
    }

    /// ns per switch when two user threads yield to each other (the floor under a handoff).
    func yieldPingPong(switches: Int) throws -> Double {
        try UThreadRuntime.run(configuration) {
            var stop = false
            let other = UThread { while !stop { UThread.yield() } }
            UThread.yield()
            let start = threadCPUNanoseconds()
            for _ in 0..<(switches / 2) { UThread.yield() }
            let elapsed = threadCPUNanoseconds() - start
            stop = true
            try other.join()
            return elapsed / Double(switches / 2 * 2)
        }
    }

    func uncontendedMutex(iterations: Int) throws -> Double {
        try UThreadRuntime.run(configuration) {
            let m = UMutex()
            var counter = 0
            let start = threadCPUNanoseconds()
            for _ in 0..<iterations {
                try m.lock()
                counter &+= 1
                try m.unlock()
            }
            let elapsed = threadCPUNanoseconds() - start
            precondition(counter == iterations)
            return elapsed / Double(iterations)
        }
    }

    /// Returns millions of acquisitions per second and the min/max acquisitions of one thread.
    func contendedMutex(threads: Int, acquisitions: Int) throws -> (Double, Int, Int) {
        try UThreadRuntime.run(configuration) {
            let m = UMutex(name: "hot")
            var counts = [Int](repeating: 0, count: threads)
            var total = 0
            let perThread = acquisitions / threads
            var started = 0
            let gate = UWaitGroup()
            try gate.add(1)
            var start = threadCPUNanoseconds()
            try withThreadGroup { g in
                for i in 0..<threads {
                    g.spawn {
                        started += 1
                        if started == threads { start = threadCPUNanoseconds(); try gate.done() } else { try gate.wait() }
                        for _ in 0..<perThread {
                            try m.lock()
                            counts[i] += 1
                            total += 1
                            UThread.yield()  // hold it across a switch: everyone else queues
                            try m.unlock()
                        }
                    }
                }
            }
            let elapsed = threadCPUNanoseconds() - start
            return (Double(total) / elapsed * 1e3, counts.min()!, counts.max()!)
        }
    }
}

// MARK: - The kernel-thread peer

private final class HandoffState {
    var mutex = pthread_mutex_t()
    var cond = pthread_cond_t()
    var turn = 0
    let roundTrips: Int
    init(roundTrips: Int) {
        self.roundTrips = roundTrips
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }
    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&cond)
    }
}

/// sched_setaffinity(2), looked up at run time: Glibc's module does not export it to Swift
/// (it needs _GNU_SOURCE). nil where unavailable; pinning is then skipped.
private let schedSetAffinity: (@convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32)? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else { return nil }  // RTLD_DEFAULT
    return unsafeBitCast(sym, to: (@convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32).self)
}()

/// Sets the calling kernel thread's CPU mask (first 64 CPUs; all bits set: every CPU).
private func setAffinity(_ mask: UInt64) {
    var set = [UInt64](repeating: mask == .max ? .max : 0, count: 16)  // 1024 CPUs, as cpu_set_t
    set[0] = mask
    _ = set.withUnsafeBytes { schedSetAffinity?(0, $0.count, $0.baseAddress!) }
}

/// Pins the calling kernel thread to CPU 0 (best effort).
private func pinToCPU0() { setAffinity(1) }

/// One side of the handoff: waits for `me`'s turn, passes it to the other side.
private func handoffLoop(_ s: HandoffState, me: Int) {
    pinToCPU0()
    for _ in 0..<s.roundTrips {
        pthread_mutex_lock(&s.mutex)
        while s.turn != me { pthread_cond_wait(&s.cond, &s.mutex) }
        s.turn = 1 - me
        pthread_cond_signal(&s.cond)
        pthread_mutex_unlock(&s.mutex)
    }
}

/// ns per handoff between two pthreads (mutex + condvar), both pinned to CPU 0.
func pthreadPingPong(roundTrips: Int) -> Double {
    let state = HandoffState(roundTrips: roundTrips)
    let arg = Unmanaged.passRetained(state).toOpaque()
    let start = ContinuousClock.now
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { p in
        handoffLoop(Unmanaged<HandoffState>.fromOpaque(p!).takeUnretainedValue(), me: 1)
        return nil
    }, arg)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    handoffLoop(state, me: 0)
    pthread_join(tid, nil)
    let elapsed = ContinuousClock.now - start
    Unmanaged<HandoffState>.fromOpaque(arg).release()
    // Unpin the calling thread again.
    setAffinity(.max)
    return elapsed.nanoseconds / Double(2 * roundTrips)
}

func uncontendedPthreadMutex(iterations: Int) -> Double {
    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(m, nil)
    defer { pthread_mutex_destroy(m); m.deallocate() }
    var counter = 0
    let start = ContinuousClock.now
    for _ in 0..<iterations {
        pthread_mutex_lock(m)
        counter &+= 1
        pthread_mutex_unlock(m)
    }
    let elapsed = ContinuousClock.now - start
    precondition(counter == iterations)
    return elapsed.nanoseconds / Double(iterations)
}

/// CPU time consumed by the calling kernel thread, in nanoseconds. The user-thread rows are
/// timed with it: every user thread of a runtime runs on that one kernel thread, and CPU time
/// does not count the time the machine gave to other processes (this 2-core box is shared).
func threadCPUNanoseconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) * 1e9 + Double(t.tv_nsec)
}

extension Duration {
    var nanoseconds: Double { Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9 }
}
