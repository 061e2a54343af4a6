// The core benchmarks: switch, spawn and memory of user threads against kernel threads.
import CKernelPeers
import CUThreads
import Glibc
import UserThreads

enum CoreBenchmarks {
    static func nowNs() -> UInt64 { uthreads_monotonic_ns() }

    /// ns per switch: two user threads yield to each other `switches / 2` times each.
    static func userYieldSwitchNs(switches: Int, cpuAccounting: Bool = true) throws -> Double {
        var configuration = UThreadRuntime.Configuration()
        configuration.cpuAccounting = cpuAccounting
        return try UThreadRuntime.run(configuration) {
            let rounds = switches / 2
            let partner = UThread(name: "partner") { for _ in 0..<rounds { UThread.yield() } }
            UThread.yield()  // let the partner start
            let t0 = nowNs()
            for _ in 0..<rounds { UThread.yield() }
            let t1 = nowNs()
            try partner.join()
            return Double(t1 - t0) / Double(rounds * 2)
        }
    }

    /// ns per spawn + run + join of an empty thread, one at a time.
    static func userSpawnJoinNs(count: Int, cpuAccounting: Bool = true) throws -> Double {
        var configuration = UThreadRuntime.Configuration()
        configuration.cpuAccounting = cpuAccounting
        return try UThreadRuntime.run(configuration) {
            for _ in 0..<1000 { try UThread {}.join() }  // warm the stack pool
            let t0 = nowNs()
            for _ in 0..<count { try UThread {}.join() }
            return Double(nowNs() - t0) / Double(count)
        }
    }

    /// ns per thread: spawn `batch` threads, then join them all.
    static func userSpawnBatchNs(count: Int, batch: Int) throws -> Double {
        try UThreadRuntime.run {
            var threads: [UThread<Void>] = []
            threads.reserveCapacity(batch)
            let t0 = nowNs()
            var done = 0
            while done < count {
                for _ in 0..<batch { threads.append(UThread {}) }
                for t in threads { try t.join() }
                threads.removeAll(keepingCapacity: true)
                done += batch
            }
            return Double(nowNs() - t0) / Double(done)
        }
    }

    struct ParkedMemory {
        var threads: Int
        var bytesPerThread: Double
        var spawnNsPerThread: Double
        var wakeNsPerThread: Double
        var tableBytes: Int
    }

    /// Spawns `count` threads that park (sleeping an hour), measures the RSS growth, then
    /// cancels them all and measures the wake-up.
    static func userParkedMemory(count: Int, mode: StackMode = .dense) throws -> ParkedMemory {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        configuration.cpuAccounting = false
        return try UThreadRuntime.run(configuration) {
            var threads: [UThread<Void>] = []
            threads.reserveCapacity(count)
            let before = residentBytes()
            let t0 = nowNs()
            for _ in 0..<count { threads.append(UThread { try? UThread.sleep(for: .seconds(3600)) }) }
            UThread.yield()  // FIFO: every new thread runs until it parks, then we continue
            let t1 = nowNs()
            let after = residentBytes()
            let table = UThreadRuntime.threadTable()
            for t in threads { t.cancel() }
            let t2 = nowNs()
            for t in threads { try t.join() }
            let t3 = nowNs()
            return ParkedMemory(
                threads: count, bytesPerThread: Double(after - before) / Double(count),
                spawnNsPerThread: Double(t1 - t0) / Double(count),
                wakeNsPerThread: Double(t3 - t2) / Double(count), tableBytes: table.tableBytes)
        }
    }

    /// VmRSS of this process in bytes.
    static func residentBytes() -> Int {
        guard let f = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(f) }
        var size = 0
        var resident = 0
        withUnsafeMutablePointer(to: &size) { s in
            withUnsafeMutablePointer(to: &resident) { r in
                _ = withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
            }
        }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Fields of /proc/meminfo in bytes (KernelStack, PageTables, SUnreclaim).
    static func meminfo(_ keys: [String]) -> [String: Int] {
        guard let f = fopen("/proc/meminfo", "r") else { return [:] }
        defer { fclose(f) }
        var out: [String: Int] = [:]
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let parts = text.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "\n" })
            if parts.count >= 2, keys.contains(String(parts[0])), let kb = Int(parts[1]) {
                out[String(parts[0])] = kb * 1024
            }
        }
        return out
    }

    struct PthreadMemory {
        var threads: Int
        var userBytes: Double
        var kernelBytes: Double
    }

    /// `count` pthreads parked in FUTEX_WAIT: user RSS and the kernel's share per thread.
    static func pthreadParkedMemory(count: Int) -> PthreadMemory {
        let keys = ["KernelStack", "PageTables", "SUnreclaim"]
        let before = residentBytes()
        let kBefore = meminfo(keys)
        var created: Int32 = 0
        var error: Int32 = 0
        let handle = peers_park_pthreads(Int32(count), &created, &error)
        let after = residentBytes()
        let kAfter = meminfo(keys)
        peers_unpark_pthreads(handle)
        let n = Double(max(1, created))
        let kernel = keys.reduce(0) { $0 + (kAfter[$1] ?? 0) - (kBefore[$1] ?? 0) }
        return PthreadMemory(
            threads: Int(created), userBytes: Double(after - before) / n, kernelBytes: Double(kernel) / n)
    }

    /// Runs `switches` user-thread switches in a forked child under a seccomp filter that
    /// traps and counts every system call; returns the count (-1 if it could not be checked).
    static func systemCallsDuringSwitches(_ switches: Int) -> Int {
        var n = switches
        let status = withUnsafeMutablePointer(to: &n) { p in
            peers_run_in_child(
                { raw in
                    let switches = raw!.load(as: Int.self)
                    let count: Int =
                        (try? UThreadRuntime.run {
                            let rounds = switches / 2
                            _ = UThread { for _ in 0..<rounds { UThread.yield() } }
                            UThread.yield()
                            guard peers_seccomp_trap_all() == 0 else { return 254 }
                            for _ in 0..<rounds { UThread.yield() }
                            let trapped = peers_seccomp_count()
                            _exit(Int32(min(trapped, 250)))  // before teardown: munmap would count
                        }) ?? 253
                    _exit(Int32(count))
                }, p)
        }
        return status >= 0 && status <= 250 ? Int(status) : -1
    }
}
