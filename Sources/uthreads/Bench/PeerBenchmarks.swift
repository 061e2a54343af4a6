// The comparison benchmarks: the rows the 1992 comparison needs beyond the core and sync groups —
// the same workload on both backends, processes (fork, pipes), Swift concurrency tasks, system
// calls per operation (ptrace), and how many threads fit in a memory budget.
import CKernelPeers
import Dispatch
import Glibc
import Synchronization
import UserThreads
import UserThreadsBackends

// MARK: the same workload code on both backends

enum BackendWorkloads {
    /// ns per handoff: two threads ping-pong over two unbuffered backend channels.
    static func channelHandoffNs(_ kind: BackendKind, roundTrips: Int) throws -> Double {
        try UThreadRuntime.run(backend: kind) { b in
            let ping = try b.makeChannel(of: Int.self)
            let pong = try b.makeChannel(of: Int.self)
            let echo = b.spawn { while let v = try ping.receive() { try pong.send(v) } }
            for i in 0..<100 {
                try ping.send(i)
                _ = try pong.receive()
            }
            let t0 = CoreBenchmarks.nowNs()
            for i in 0..<roundTrips {
                try ping.send(i)
                _ = try pong.receive()
            }
            let t1 = CoreBenchmarks.nowNs()
            ping.close()
            try echo.join()
            return Double(t1 - t0) / Double(2 * roundTrips)
        }
    }

    /// ns per acquisition: `threads` threads each take the mutex `rounds` times and hold it across
    /// a yield, so every acquisition finds it held (the contended case).
    static func contendedMutexNs(_ kind: BackendKind, threads: Int, rounds: Int) throws -> Double {
        try UThreadRuntime.run(backend: kind) { b in
            let m = b.makeMutex(name: "hot")
            let counter = Unprotected(0)
            let gate = try b.makeChannel(of: Int.self, capacity: threads)
            let go = try b.makeChannel(of: Int.self)
            let workers = (0..<threads).map { _ in
                b.spawn {
                    try gate.send(1)
                    _ = try go.receive()  // returns nil when the main thread closes it: start
                    for _ in 0..<rounds {
                        try m.withLock {
                            counter.value += 1
                            b.yield()
                        }
                    }
                }
            }
            for _ in 0..<threads { _ = try gate.receive() }
            let t0 = CoreBenchmarks.nowNs()
            go.close()
            for w in workers { try w.join() }
            let t1 = CoreBenchmarks.nowNs()
            precondition(counter.value == threads * rounds)
            return Double(t1 - t0) / Double(threads * rounds)
        }
    }

    /// ns per handoff of the Signal-Wait kind: a condition variable signalled by one thread and
    /// waited on by the other, turn by turn (UMutex + UCondition under user threads).
    static func conditionHandoffNs(_ kind: BackendKind, handoffs: Int) throws -> Double {
        try UThreadRuntime.run(backend: kind) { b in
            let m = b.makeMutex()
            let c = b.makeCondition()
            let turn = Unprotected(0)
            let rounds = handoffs / 2
            let partner = b.spawn {
                try m.withLock {
                    for _ in 0..<rounds {
                        try c.wait(m) { turn.value == 1 }
                        turn.value = 0
                        c.signal()
                    }
                }
            }
            let t0 = CoreBenchmarks.nowNs()
            try m.withLock {
                for _ in 0..<rounds {
                    turn.value = 1
                    c.signal()
                    try c.wait(m) { turn.value == 0 }
                }
            }
            let t1 = CoreBenchmarks.nowNs()
            try partner.join()
            return Double(t1 - t0) / Double(2 * rounds)
        }
    }
}

/// A value protected by a backend mutex, not by itself.
final class Unprotected<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

// MARK: Swift concurrency tasks

/// Runs `body` on the global concurrent executor and blocks the calling thread until it is done.
/// (The CLI is synchronous; this is only for the benchmarks.)
func blockOn<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let v = await body()
        result.withLock { $0 = v }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}

/// One-slot semaphore between two tasks: `signal` resumes the waiter or records a pending signal.
final class TaskBaton: Sendable {
    struct State: ~Copyable {
        var waiter: CheckedContinuation<Void, Never>? = nil
        var pending = 0
    }
    let state = Mutex(State())

    func signal() {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending += 1
            return nil
        }
        w?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.pending > 0 {
                    s.pending -= 1
                    return true
                }
                s.waiter = c
                return false
            }
            if ready { c.resume() }
        }
    }
}

actor TaskCounter {
    var value = 0
    func increment() { value += 1 }
}

enum TaskBenchmarks {
    /// ns per `Task {}` created and awaited, one at a time.
    static func spawnAwaitNs(count: Int) -> Double {
        blockOn {
            for _ in 0..<100 { await Task {}.value }
            let t0 = CoreBenchmarks.nowNs()
            for _ in 0..<count { await Task {}.value }
            return Double(CoreBenchmarks.nowNs() - t0) / Double(count)
        }
    }

    /// ns per child task of a task group: `count` added, then all awaited.
    static func taskGroupNs(count: Int) -> Double {
        blockOn {
            let t0 = CoreBenchmarks.nowNs()
            await withTaskGroup(of: Void.self) { g in
                for _ in 0..<count { g.addTask {} }
            }
            return Double(CoreBenchmarks.nowNs() - t0) / Double(count)
        }
    }

    /// ns per handoff: two tasks resume each other's CheckedContinuation in turn.
    static func continuationHandoffNs(roundTrips: Int) -> Double {
        blockOn {
            let a = TaskBaton()
            let b = TaskBaton()
            let partner = Task.detached {
                for _ in 0..<roundTrips {
                    await b.wait()
                    a.signal()
                }
            }
            let t0 = CoreBenchmarks.nowNs()
            for _ in 0..<roundTrips {
                b.signal()
                await a.wait()
            }
            let t1 = CoreBenchmarks.nowNs()
            await partner.value
            return Double(t1 - t0) / Double(2 * roundTrips)
        }
    }

    /// ns per handoff over two AsyncStreams (the channel of Swift concurrency).
    static func streamHandoffNs(roundTrips: Int) -> Double {
        blockOn {
            let (toB, contB) = AsyncStream<Int>.makeStream()
            let (toA, contA) = AsyncStream<Int>.makeStream()
            let partner = Task.detached {
                for await v in toB { contA.yield(v) }
                contA.finish()
            }
            var it = toA.makeAsyncIterator()
            let t0 = CoreBenchmarks.nowNs()
            for i in 0..<roundTrips {
                contB.yield(i)
                _ = await it.next()
            }
            let t1 = CoreBenchmarks.nowNs()
            contB.finish()
            await partner.value
            return Double(t1 - t0) / Double(2 * roundTrips)
        }
    }

    /// ns per `Task.yield()` while two tasks yield in a loop.
    static func yieldNs(yields: Int) -> Double {
        blockOn {
            let other = Task.detached { for _ in 0..<yields { await Task.yield() } }
            let t0 = CoreBenchmarks.nowNs()
            for _ in 0..<yields { await Task.yield() }
            let t1 = CoreBenchmarks.nowNs()
            await other.value
            return Double(t1 - t0) / Double(yields)
        }
    }

    /// ns per lock+unlock of Synchronization.Mutex (what tasks use for a short critical section).
    static func uncontendedMutexNs(iterations: Int) -> Double {
        let m = Mutex(0)
        let t0 = CoreBenchmarks.nowNs()
        for _ in 0..<iterations { m.withLock { $0 &+= 1 } }
        let t1 = CoreBenchmarks.nowNs()
        precondition(m.withLock { $0 } == iterations)
        return Double(t1 - t0) / Double(iterations)
    }

    /// ns per call: `tasks` tasks each call an actor method `rounds` times (the actor serialises).
    static func contendedActorNs(tasks: Int, rounds: Int) -> Double {
        blockOn {
            let counter = TaskCounter()
            let t0 = CoreBenchmarks.nowNs()
            await withTaskGroup(of: Void.self) { g in
                for _ in 0..<tasks {
                    g.addTask { for _ in 0..<rounds { await counter.increment() } }
                }
            }
            let t1 = CoreBenchmarks.nowNs()
            let total = await counter.value
            precondition(total == tasks * rounds)
            return Double(t1 - t0) / Double(tasks * rounds)
        }
    }

    final class Parking: Sendable {
        let slots: Mutex<[CheckedContinuation<Void, Never>]>
        let parked = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        init(_ n: Int) {
            var a: [CheckedContinuation<Void, Never>] = []
            a.reserveCapacity(n)
            slots = Mutex(a)
        }
    }

    /// Bytes per task suspended in a CheckedContinuation — the growth of RSS or of malloc's
    /// in-use bytes, whichever is larger (freed memory of earlier groups is reused without
    /// growing RSS; tasks live on the heap) — and how many were parked (stops at `count` or when
    /// that growth passes `budget`).
    static func parkedTasks(count: Int, budget: Int) -> (tasks: Int, bytesPerTask: Double) {
        blockOn {
            let p = Parking(count)
            let before = CoreBenchmarks.residentBytes()
            let heapBefore = peers_malloc_in_use()
            func grown() -> Int { max(CoreBenchmarks.residentBytes() - before, peers_malloc_in_use() - heapBefore) }
            var spawned = 0
            while spawned < count {
                let step = min(10_000, count - spawned)
                for _ in 0..<step {
                    Task.detached {
                        await withCheckedContinuation { c in
                            p.slots.withLock { $0.append(c) }
                            p.parked.add(1, ordering: .releasing)
                        }
                        p.finished.add(1, ordering: .relaxed)
                    }
                }
                spawned += step
                while p.parked.load(ordering: .acquiring) < spawned { await Task.yield() }
                if grown() >= budget { break }
            }
            let used = grown()
            let continuations = p.slots.withLock { s -> [CheckedContinuation<Void, Never>] in
                defer { s.removeAll() }
                return s
            }
            for c in continuations { c.resume() }
            while p.finished.load(ordering: .relaxed) < spawned { await Task.yield() }
            return (spawned, Double(used) / Double(spawned))
        }
    }
}

// MARK: system calls per operation (ptrace, in a forked child)

enum SyscallCounts {
    enum Operation: Int {
        case userNullFork, kernelNullFork, processNullFork, taskNullFork
        case userSignalWait, kernelSignalWait, kernelCondvarSignalWait, processSignalWait, taskSignalWait
    }

    struct Job {
        var operation: Operation
        var count: Int
    }

    /// System calls per operation (per thread for Null Fork, per handoff for Signal-Wait):
    /// counted for `n` and `2n` operations, the difference divided by `n` (start-up and
    /// tear-down cancel out). Nil if ptrace is not allowed here.
    static func perOperation(_ op: Operation, n: Int) -> Double? {
        guard let one = count(op, n), let two = count(op, 2 * n) else { return nil }
        // `run` does n round trips (2n handoffs) for the Signal-Wait operations.
        let handoffsPerUnit: Double = op.rawValue >= Operation.userSignalWait.rawValue ? 2 : 1
        return max(0, Double(two - one) / (Double(n) * handoffsPerUnit))
    }

    static func count(_ op: Operation, _ n: Int) -> Int? {
        var job = Job(operation: op, count: n)
        let c = withUnsafeMutablePointer(to: &job) { p in
            peers_count_syscalls(
                { raw in
                    let job = raw!.load(as: Job.self)
                    SyscallCounts.run(job)
                }, p)
        }
        return c >= 0 ? c : nil
    }

    /// The body that runs in the traced child.
    static func run(_ job: Job) {
        let n = job.count
        switch job.operation {
        case .userNullFork:
            _ = try? UThreadRuntime.run { for _ in 0..<n { try UThread {}.join() } }
        case .kernelNullFork:
            _ = peers_pthread_create_join_ns(Int32(n))
        case .processNullFork:
            _ = peers_fork_wait_ns(Int32(n))
        case .taskNullFork:
            _ = TaskBenchmarks.spawnAwaitNs(count: n)
        case .userSignalWait:
            _ = try? BackendWorkloads.conditionHandoffNs(.userThreads, handoffs: 2 * n)
        case .kernelSignalWait:
            _ = peers_futex_handoff_ns(Int32(2 * n), 0)
        case .kernelCondvarSignalWait:
            _ = peers_condvar_handoff_ns(Int32(2 * n), 0)
        case .processSignalWait:
            _ = peers_pipe_handoff_ns(Int32(2 * n), 0)
        case .taskSignalWait:
            _ = TaskBenchmarks.continuationHandoffNs(roundTrips: n)
        }
        _exit(0)
    }
}

// MARK: how many fit in a memory budget

struct BudgetResult {
    var reached: Int
    var bytesPerUnit: Double
    /// Why it stopped: "budget", "cap", or the limit that refused.
    var stoppedBy: String
    var seconds: Double
}

enum BudgetBenchmarks {
    static let kernelKeys = ["KernelStack", "PageTables", "SUnreclaim"]

    static func kernelShare(_ before: [String: Int]) -> Int {
        let now = CoreBenchmarks.meminfo(kernelKeys)
        return kernelKeys.reduce(0) { $0 + (now[$1] ?? 0) - (before[$1] ?? 0) }
    }

    /// The limits that can stop thread creation: threads-max, RLIMIT_NPROC, max_map_count.
    static func limits() -> String {
        func read(_ path: String) -> String {
            guard let f = fopen(path, "r") else { return "?" }
            defer { fclose(f) }
            var line = [CChar](repeating: 0, count: 64)
            guard fgets(&line, 64, f) != nil else { return "?" }
            return String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        var r = rlimit()
        getrlimit(__rlimit_resource_t(6), &r)  // RLIMIT_NPROC (not imported into Swift)
        let nproc = r.rlim_cur == rlim_t.max ? "unlimited" : String(r.rlim_cur)
        return
            "threads-max \(read("/proc/sys/kernel/threads-max")), RLIMIT_NPROC \(nproc), vm.max_map_count \(read("/proc/sys/vm/max_map_count"))"
    }

    /// Which limit would stop pthread creation first beyond a cap: threads-max (system-wide),
    /// RLIMIT_NPROC (per user, all their processes), vm.max_map_count (each pthread stack is two
    /// mappings: stack and guard), or `memory` bytes at `bytesPerThread`.
    static func firstLimit(bytesPerThread: Double, memory: Double) -> (threads: Int, name: String) {
        func number(_ path: String) -> Int? {
            guard let f = fopen(path, "r") else { return nil }
            defer { fclose(f) }
            var v = 0
            return withUnsafeMutablePointer(to: &v) { p in withVaList([p]) { vfscanf(f, "%ld", $0) } } == 1 ? v : nil
        }
        var r = rlimit()
        getrlimit(__rlimit_resource_t(6), &r)  // RLIMIT_NPROC
        var candidates: [(Int, String)] = [
            (Int(memory / bytesPerThread), "memory (\(BenchReport.fmt(memory / 1_073_741_824)) GiB)")
        ]
        if let t = number("/proc/sys/kernel/threads-max") { candidates.append((t, "threads-max")) }
        if r.rlim_cur != rlim_t.max { candidates.append((Int(r.rlim_cur), "RLIMIT_NPROC")) }
        if let m = number("/proc/sys/vm/max_map_count") {
            candidates.append((m / 2, "vm.max_map_count (2 mappings per stack)"))
        }
        return candidates.min { $0.0 < $1.0 }!
    }

    /// Parked pthreads (stack `stackSize`, 0: default) until user RSS + kernel share passes
    /// `budget`, `cap` threads, or pthread_create refuses. Released before it returns.
    static func pthreads(budget: Int, cap: Int, stackSize: Int, progress: (Int) -> Void = { _ in }) -> BudgetResult {
        let rss0 = CoreBenchmarks.residentBytes()
        let k0 = CoreBenchmarks.meminfo(kernelKeys)
        let t0 = CoreBenchmarks.nowNs()
        let set = peers_thread_set_new(Int32(cap))
        defer { peers_thread_set_release(set) }
        var stoppedBy = "cap"
        var used = 0
        while Int(peers_thread_set_count(set)) < cap {
            let e = peers_thread_set_add(set, 500, stackSize)
            used = CoreBenchmarks.residentBytes() - rss0 + kernelShare(k0)
            progress(Int(peers_thread_set_count(set)))
            if e != 0 {
                stoppedBy = "pthread_create: \(String(cString: strerror(e)))"
                break
            }
            if used >= budget {
                stoppedBy = "budget"
                break
            }
        }
        let n = Int(peers_thread_set_count(set))
        return BudgetResult(
            reached: n, bytesPerUnit: Double(used) / Double(max(1, n)), stoppedBy: stoppedBy,
            seconds: Double(CoreBenchmarks.nowNs() - t0) / 1e9)
    }

    /// Parked child processes until their private pages + kernel share pass `budget`, or `cap`.
    static func processes(budget: Int, cap: Int) -> BudgetResult {
        let k0 = CoreBenchmarks.meminfo(kernelKeys)
        let t0 = CoreBenchmarks.nowNs()
        let set = peers_process_set_new(Int32(cap))
        defer { peers_process_set_release(set) }
        var stoppedBy = "cap"
        var used = 0
        while Int(peers_process_set_count(set)) < cap {
            let e = peers_process_set_add(set, 100)
            used = Int(peers_process_set_private_bytes(set)) + kernelShare(k0)
            if e != 0 {
                stoppedBy = "fork: \(String(cString: strerror(e)))"
                break
            }
            if used >= budget {
                stoppedBy = "budget"
                break
            }
        }
        let n = Int(peers_process_set_count(set))
        return BudgetResult(
            reached: n, bytesPerUnit: Double(used) / Double(max(1, n)), stoppedBy: stoppedBy,
            seconds: Double(CoreBenchmarks.nowNs() - t0) / 1e9)
    }

    /// Parked user threads (dense stacks) until RSS growth passes `budget` or `cap`.
    static func userThreads(budget: Int, cap: Int) throws -> BudgetResult {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = .dense
        configuration.cpuAccounting = false
        return try UThreadRuntime.run(configuration) {
            var threads: [UThread<Void>] = []
            threads.reserveCapacity(cap)
            let before = CoreBenchmarks.residentBytes()
            let t0 = CoreBenchmarks.nowNs()
            var stoppedBy = "cap"
            var used = 0
            while threads.count < cap {
                for _ in 0..<min(10_000, cap - threads.count) {
                    threads.append(UThread { try? UThread.sleep(for: .seconds(3600)) })
                }
                UThread.yield()
                used = CoreBenchmarks.residentBytes() - before
                if used >= budget {
                    stoppedBy = "budget"
                    break
                }
            }
            let seconds = Double(CoreBenchmarks.nowNs() - t0) / 1e9
            for t in threads { t.cancel() }
            for t in threads { try t.join() }
            return BudgetResult(
                reached: threads.count, bytesPerUnit: Double(used) / Double(threads.count), stoppedBy: stoppedBy,
                seconds: seconds)
        }
    }
}

// MARK: Signal-Wait on user threads, through the primitives themselves

enum UserSignalWait {
    /// ns per handoff: UCondition signalled by one user thread and waited on by the other, turn
    /// by turn, under one UMutex (what a pthread mutex+condvar handoff does with kernel threads).
    static func conditionHandoffNs(handoffs: Int) throws -> Double {
        try UThreadRuntime.run {
            let m = UMutex()
            let c = UCondition()
            var turn = 0
            let rounds = handoffs / 2
            let partner = UThread.local {
                try m.lock()
                for _ in 0..<rounds {
                    while turn != 1 { try c.wait(m) }
                    turn = 0
                    c.signal()
                }
                try m.unlock()
            }
            UThread.yield()
            let t0 = CoreBenchmarks.nowNs()
            try m.lock()
            for _ in 0..<rounds {
                turn = 1
                c.signal()
                while turn != 0 { try c.wait(m) }
            }
            try m.unlock()
            let t1 = CoreBenchmarks.nowNs()
            try partner.join()
            return Double(t1 - t0) / Double(2 * rounds)
        }
    }
}
