// The tour: `swift run -c release uthreads` with no arguments.
import ArgumentParser
import CKernelPeers
import UserThreads

struct TourCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tour", abstract: "A tour of the runtime with real figures (the default).")

    @Flag(help: "Smaller counts (a smoke test).")
    var quick = false

    func run() throws {
        print(
            """
            UserThreads — threads implemented in user space.
            Each runtime keeps its own thread table; a switch is a few instructions of assembly in user
            space (no system call, no trap); the kernel sees one ordinary thread.

            """)
        print("1. The thread table, at a moment when threads are in different states:\n")
        var table: ThreadTable?
        var kernelView = (0, 0)
        try UThreadRuntime.run {
            table = try DemoWorkload.snapshotWithEveryState()
            var parked: [UThread<Void>] = []
            for _ in 0..<10_000 { parked.append(UThread { try? UThread.sleep(for: .seconds(3600)) }) }
            UThread.yield()
            kernelView = (UThreadRuntime.threadTable().threads.count, kernelThreadCount())
            for t in parked { t.cancel() }
        }
        print(table!.render())
        // The textbook's table keeps each thread's program counter, stack pointer and registers:
        // here they are, read from the frame each suspended thread's switch saved on its stack.
        let suspended = table!.threads.filter { $0.registers != nil }.prefix(2)
        let running = table!.threads.filter { $0.state == .running }.prefix(1)
        var three = table!
        three.threads = Array(running + suspended)
        print("   The same table's registers (`uthreads table --registers`), three rows of it:\n")
        print(three.renderRegisters().split(separator: "\n").map { "   " + $0 }.joined(separator: "\n"))
        print(
            """

            2. The kernel's view: with \(kernelView.0) user threads alive, /proc/self/task lists \(kernelView.1) kernel thread\(kernelView.1 == 1 ? "" : "s").

            """)
        let n = quick ? 20_000 : 1_000_000
        let user = try CoreBenchmarks.userYieldSwitchNs(switches: n)
        let futex = peers_futex_handoff_ns(Int32(quick ? 2_000 : 100_000), 0)
        print("3. A switch: user threads \(user.fixed(1)) ns (yield through the public API);")
        print(
            "   kernel threads \(futex.fixed(0)) ns (futex handoff, both pinned to CPU 0): \((futex / user).fixed(0))x slower."
        )
        let syscalls = CoreBenchmarks.systemCallsDuringSwitches(quick ? 10_000 : 1_000_000)
        print(
            "   System calls during \(quick ? 10_000 : 1_000_000) user-thread switches, counted by a seccomp trap: \(syscalls < 0 ? "not checked" : "\(syscalls)").\n"
        )
        let spawn = try CoreBenchmarks.userSpawnJoinNs(count: quick ? 5_000 : 200_000)
        let pthread = peers_pthread_create_join_ns(Int32(quick ? 200 : 3_000))
        print(
            "4. Spawn + run + join of an empty thread: user \(spawn.fixed(0)) ns, pthread \(pthread.fixed(0)) ns: \((pthread / spawn).fixed(0))x.\n"
        )
        let m = try CoreBenchmarks.userParkedMemory(count: quick ? 2_000 : 100_000, mode: .dense)
        let p = CoreBenchmarks.pthreadParkedMemory(count: quick ? 200 : 2_000)
        print(
            "5. Memory of a parked thread: user \(Int(m.bytesPerThread)) bytes (\(m.threads) threads, dense stacks, table included);"
        )
        print(
            "   pthread \(Int(p.userBytes)) bytes user RSS + \(Int(p.kernelBytes)) bytes in the kernel (stack, page tables, slab): \(((p.userBytes + p.kernelBytes) / m.bytesPerThread).fixed(1))x.\n"
        )
        print("6. The known problem of user-space threads, and its fix: a ticker thread prints every 100 ms")
        print("   while a reader thread reads an empty pipe that is written after \(quick ? 250 : 450) ms.")
        for raw in [true, false] {
            print(
                raw
                    ? "   With a raw Glibc.read the kernel thread blocks, and every user thread with it:"
                    : "   With IO.read the reader parks on the epoll reactor and the others keep running:")
            let ticks = try BlockingDemo.run(raw: raw, delayMilliseconds: quick ? 250 : 450) { print("   " + $0) }
            print("   → ticks while the reader waited: \(ticks)\n")
        }
        print("   Code that calls the C library itself (a C client library, Glibc.read) can cooperate too: link")
        print(
            "   UserThreadsJacket or preload libuthreads-jacket.so. `uthreads demo jacket`: 1,000 libcurl transfers at once.\n"
        )

        try beyondTheTextbook()
        print(
            """
            More: `uthreads table [--json]`, `uthreads bench` (every benchmark side by side), `uthreads demo …`,
            `uthreads sched --policy all --workload mixed` (the scheduling lab), `uthreads serve` (HTTP), `uthreads --help`.
            """)
    }

    /// Step 7: the hybrid M:N runtime, measured (fork–join on 1 vs N workers, best of 3,
    /// alternated) and seen (the merged thread table's WORKER column).
    private func beyondTheTextbook() throws {
        let workers = max(2, UThreadRuntime.processorCount)
        let tasks = quick ? 8 : 32
        let iterations = quick ? 20_000 : 3_000_000
        print("7. Beyond the textbook, M:N: the same runtime with run(workers: \(workers)): user threads over")
        print("   \(workers) kernel threads (workers), each with its own run queue and reactor; idle workers steal")
        print("   queued threads and adopt ready ones. The API is the one of steps 1-6: UThread, UMutex, Channel.")
        var one: [Double] = []
        var many: [Double] = []
        for _ in 0..<(quick ? 1 : 3) {
            let a = try ParallelBenchmarks.forkJoinMs(workers: 1, tasks: tasks, iterations: iterations)
            let b = try ParallelBenchmarks.forkJoinMs(workers: workers, tasks: tasks, iterations: iterations)
            guard a.checksum == b.checksum else {
                throw ValidationError("fork-join checksum differs with \(workers) workers")
            }
            one.append(a.ms)
            many.append(b.ms)
        }
        let (t1, tn) = (one.min()!, many.min()!)
        print(
            "   \(tasks) CPU-bound threads forked and joined: 1 worker \(t1.fixed(0)) ms, \(workers) workers \(tn.fixed(0)) ms: "
                + "\((t1 / tn).fixed(2))x on \(UThreadRuntime.processorCount) CPU\(UThreadRuntime.processorCount == 1 ? "" : "s")."
        )
        print(
            "   The merged thread table of \(workers) workers, one thread parked on each primitive (3 rows per worker):\n"
        )
        let table = try MNDemoWorkload.snapshot(workers: workers)
        var shown = Set<String>()
        for w in 0..<workers {
            for t in table.threads.filter({ $0.worker == w && $0.name != "main" }).prefix(3) {
                shown.insert("\(t.id.rawValue)")
            }
        }
        let lines = table.render().split(separator: "\n")
        for (i, line) in lines.enumerated()
        where i < 2 || shown.contains(String(line.split(separator: " ").first ?? "")) {
            print("   " + line)
        }
        print(
            "   … (all of it: `uthreads table --workers \(workers)`; scaling, migration, HTTP: `uthreads bench parallel`)\n"
        )
    }
}
