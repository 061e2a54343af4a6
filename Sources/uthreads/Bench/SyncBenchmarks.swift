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
//     on different workers (each wake is a mailbox message to the other kernel thread), on
//     one worker (no kernel thread is crossed: the price of the locks and claims alone), and
//     unpinned on two workers (where the scheduler puts them: Go's GOMAXPROCS=2 case);
//     peer: the mutex+condvar pair left free to run on both CPUs. Wall time: two kernel
//     threads take part.
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
            let echo = UThread { while let v = try ping.receive() { try pong.send(v) } }
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

    /// ns per handoff between two M:N threads over two unbuffered channels, the echo thread
    /// bound to the last worker (main runs on worker 0): on 2 workers it crosses kernel threads
    /// on every message, on 1 worker it never does; `pinned: false` leaves the echo thread to
    /// the scheduler. Wall time.
    static func mnChannelPingPong(roundTrips: Int, workers: Int, pinned: Bool = true) throws -> Double {
        try UThreadRuntime.run(workers: workers) {
            let ping = Channel<Int>(name: "ping")
            let pong = Channel<Int>(name: "pong")
            let body: @Sendable () throws -> Void = { while let v = try ping.receive() { try pong.send(v) } }
            let echo =
                pinned ? try MNThread.spawn(name: "echo", onWorker: workers - 1, body) : MNThread(name: "echo", body)
            for i in 0..<1_000 {
                try ping.send(i)
                _ = try pong.receive()
            }  // warm up
            let start = uthreads_monotonic_ns()
            for i in 0..<roundTrips {
                try ping.send(i)
                _ = try pong.receive()
            }
            let elapsed = Double(uthreads_monotonic_ns() - start)
            ping.close()
            try echo.join()
            return elapsed / Double(2 * roundTrips)
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
                    g.spawn {
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
