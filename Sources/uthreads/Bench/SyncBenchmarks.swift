// The sync layer side by side with kernel threads, in one run (`uthreads bench sync`).
//
//   * channel ping-pong: one message each way between two user threads; the figure is per
//     handoff (half a round trip). Peer: two pthreads handing a turn back and forth with a
//     pthread mutex + condition variable, both pinned to one CPU, as the user threads' kernel
//     thread is (the run's placement, BenchReport.swift), so the ratio compares like with like.
//   * uncontended UMutex lock+unlock, and pthread_mutex for contrast.
//   * contended UMutex among 1,000 user threads, each holding it across a yield (so every
//     acquisition finds the mutex held): throughput and the spread of acquisitions per thread.
//   * M:N: the same ping-pong over two unbuffered channels between two M:N threads
//     on different workers (each wake is a mailbox message to the other kernel thread), both
//     pinned to worker 0 of 2 (no kernel thread is crossed: the price of the shared channel's
//     locks and claims alone), on `run(workers: 1)` (the channel takes no lock), and
//     unpinned on two workers (where the scheduler puts them: Go's GOMAXPROCS=2 case; the
//     pair comes together on one worker);
//     peer: the mutex+condvar pair left free to run on both CPUs. Wall time: two kernel
//     threads take part.
//   * the unpinned pair against Go's goroutine ping-pong (GOMAXPROCS=2), in interleaved pairs
//     of short repetitions, when a Go peer is found (`--only go`; essay: GoPeer.swift).
//   * the same primitives at workers 1 and 2 (one family for every runtime): a UMutex two
//     threads take in turn, each holding it across a yield (at workers 1 every acquisition is
//     a FIFO handoff; at 2 the yield returns at once when nothing else is ready, so many
//     acquisitions find it free), and a USemaphore ping-pong (two semaphores, one signal each
//     way): on the M:1 runtime, and between two threads on two workers (every wake a mailbox
//     post).
//
// Every row is wall time, as the peers' are (the clock's essay is in BenchReport.swift).
import CUThreads
import Glibc
import UserThreads

enum SyncBenchmarks {
    /// ns per handoff between two user threads over two unbuffered channels.
    static func channelPingPong(roundTrips: Int) throws -> Double {
        try UThreadRuntime.run {
            let ping = Channel<Int>()
            let pong = Channel<Int>()
            let echo = UThread.local { while let v = try ping.receive() { try pong.send(v) } }
            for i in 0..<1_000 {
                try ping.send(i)
                _ = try pong.receive()
            }  // warm up
            let start = wallNanoseconds()
            for i in 0..<roundTrips {
                try ping.send(i)
                _ = try pong.receive()
            }
            let elapsed = wallNanoseconds() - start
            ping.close()
            try echo.join()
            return elapsed / Double(2 * roundTrips)
        }
    }

    /// ns per handoff between two M:N threads over two unbuffered Channels, main pinned to worker
    /// 0 and the echo thread bound to `echoWorker` (default: the last worker; pinned, else the
    /// runtime would bring the pair together): on 2 workers, apart, it crosses kernel threads on
    /// every message; both on worker 0 of 2, it never does but the channel is shared (locked);
    /// on 1 worker it never does and the channel takes no lock. Also the doorbells per handoff.
    /// Wall time.
    static func mnChannelPingPong(roundTrips: Int, workers: Int, echoWorker: Int? = nil) throws -> (
        ns: Double, doorbells: Double
    ) {
        try UThreadRuntime.run(workers: workers) {
            UThread.pin()
            let ping = Channel<Int>(name: "ping")
            let pong = Channel<Int>(name: "pong")
            let echo = try UThread.spawn(name: "echo", onWorker: echoWorker ?? workers - 1) {
                while let v = try ping.receive() { try pong.send(v) }
            }
            for i in 0..<1_000 {
                try ping.send(i)
                _ = try pong.receive()
            }  // warm up
            let before = UThread.runtime!.statistics.doorbells
            let start = uthreads_monotonic_ns()
            for i in 0..<roundTrips {
                try ping.send(i)
                _ = try pong.receive()
            }
            let elapsed = Double(uthreads_monotonic_ns() - start)
            let rung = Double(UThread.runtime!.statistics.doorbells - before)
            ping.close()
            try echo.join()
            return (elapsed / Double(2 * roundTrips), rung / Double(2 * roundTrips))
        }
    }

    /// A ping-pong between two unpinned M:N threads over two unbuffered Channels on 2
    /// workers: the runtime decides where they run. Returns ns per handoff, the doorbells and
    /// mailed wakes per handoff, and whether both ended on one worker. Wall time.
    static func mnChannelPingPongUnpinned(roundTrips: Int) throws -> (
        ns: Double, doorbells: Double, mailed: Double, together: Bool
    ) {
        try UThreadRuntime.run(workers: 2) {
            let ping = Channel<Int>(name: "ping")
            let pong = Channel<Int>(name: "pong")
            let echo = UThread(name: "echo") { () -> Int in
                while let v = try ping.receive() { try pong.send(v) }
                return UThread.worker
            }
            let pinger = UThread(name: "ping") {
                () -> (Double, UThreadRuntime.Statistics, UThreadRuntime.Statistics, Int) in
                let handle = UThread.runtime!
                for i in 0..<1_000 {
                    try ping.send(i)
                    _ = try pong.receive()
                }  // warm up
                let before = handle.statistics
                let start = uthreads_monotonic_ns()
                for i in 0..<roundTrips {
                    try ping.send(i)
                    _ = try pong.receive()
                }
                let elapsed = Double(uthreads_monotonic_ns() - start)
                let after = handle.statistics
                let worker = UThread.worker
                ping.close()
                return (elapsed, before, after, worker)
            }
            let (elapsed, before, after, worker) = try pinger.join()
            let echoWorker = try echo.join()
            let handoffs = Double(2 * roundTrips)
            return (
                elapsed / handoffs, Double(after.doorbells - before.doorbells) / handoffs,
                Double(after.mailedWakes - before.mailedWakes) / handoffs, worker == echoWorker
            )
        }
    }

    static func uncontendedMutex(iterations: Int) throws -> Double {
        try UThreadRuntime.run {
            let m = UMutex()
            var counter = 0
            let start = wallNanoseconds()
            for _ in 0..<iterations {
                try m.lock()
                counter &+= 1
                try m.unlock()
            }
            let elapsed = wallNanoseconds() - start
            precondition(counter == iterations)
            return elapsed / Double(iterations)
        }
    }

    /// Returns millions of acquisitions per second and the min/max acquisitions of one thread.
    static func contendedMutex(threads: Int, acquisitions: Int) throws -> (Double, Int, Int) {
        try UThreadRuntime.run {
            let m = UMutex(name: "hot")
            var counts = [Int](repeating: 0, count: threads)
            var total = 0
            let perThread = acquisitions / threads
            var started = 0
            let gate = UWaitGroup()
            try gate.add(1)
            var start = wallNanoseconds()
            try withThreadGroup { g in
                for i in 0..<threads {
                    try g.spawnLocal {
                        started += 1
                        if started == threads {
                            start = wallNanoseconds()
                            try gate.done()
                        } else {
                            try gate.wait()
                        }
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
            let elapsed = wallNanoseconds() - start
            return (Double(total) / elapsed * 1e3, counts.min()!, counts.max()!)
        }
    }
}

func uncontendedPthreadMutex(iterations: Int) -> Double {
    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(m, nil)
    defer {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    var counter = 0
    let start = wallNanoseconds()
    for _ in 0..<iterations {
        pthread_mutex_lock(m)
        counter &+= 1
        pthread_mutex_unlock(m)
    }
    let elapsed = wallNanoseconds() - start
    precondition(counter == iterations)
    return elapsed / Double(iterations)
}

/// CLOCK_MONOTONIC in nanoseconds: the one clock of every timed row.
func wallNanoseconds() -> Double { Double(uthreads_monotonic_ns()) }

extension Duration {
    var nanoseconds: Double { Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9 }
}

extension SyncBenchmarks {
    /// Runs `body` (main thread) and `partner` (a second thread) on the M:1 runtime when
    /// `workers` is 1, else on `workers` workers with the partner bound to the last one.
    private static func pair<R: Sendable>(
        workers: Int, _ partner: @escaping @Sendable () throws -> Void, _ body: @escaping @Sendable () throws -> R
    ) throws -> R {
        if workers == 1 {
            return try UThreadRuntime.run {
                let t = UThread { try partner() }
                let r = try body()
                try t.join()
                return r
            }
        }
        return try UThreadRuntime.run(workers: workers) {
            let t = try UThread.spawn(name: "partner", onWorker: workers - 1) { try partner() }
            let r = try body()
            try t.join()
            return r
        }
    }

    /// ns per acquisition of a UMutex two threads take in turn, each holding it across a yield
    /// (see the header for what that means at 1 and 2 workers). Wall time.
    static func mutexHandoff(rounds: Int, workers: Int) throws -> Double {
        let m = UMutex(name: "handoff")
        let work: @Sendable () throws -> Void = {
            for _ in 0..<rounds {
                try m.lock()
                UThread.yield()
                try m.unlock()
            }
        }
        return try pair(workers: workers, work) { () -> Double in
            let start = uthreads_monotonic_ns()
            try work()
            return Double(uthreads_monotonic_ns() - start) / Double(2 * rounds)
        }
    }

    /// ns per handoff of a USemaphore ping-pong (two semaphores, one signal each way). Wall time.
    static func semaphorePingPong(roundTrips: Int, workers: Int) throws -> Double {
        let (ping, pong) = (USemaphore(name: "ping"), USemaphore(name: "pong"))
        return try pair(
            workers: workers,
            {
                for _ in 0..<roundTrips {
                    try ping.wait()
                    pong.signal()
                }
            }
        ) { () -> Double in
            let start = uthreads_monotonic_ns()
            for _ in 0..<roundTrips {
                ping.signal()
                try pong.wait()
            }
            return Double(uthreads_monotonic_ns() - start) / Double(2 * roundTrips)
        }
    }
}
