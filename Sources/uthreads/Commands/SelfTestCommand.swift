// `uthreads selftest …`: scenarios that must run in a process of their own (they crash on
// purpose, or need a process with exactly one kernel thread). The test suite runs them as
// child processes and checks what they print.
import ArgumentParser
import CUThreads
import Glibc
import UserThreads

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest", abstract: "Scenarios for the test suite (some crash on purpose).", shouldDisplay: false)

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case overflow, canary, misuse, kernelThreads = "kernel-threads", mapLimit = "map-limit"
        case dumpOnSignal = "dump-on-signal", dumpWhileBusy = "dump-while-busy", gdbTarget = "gdb-target"
        case liveView = "live-view"
        case spawnLoop = "spawn-loop"
        case brokenPipe = "broken-pipe"
    }

    @Argument(help: "overflow | canary | misuse | kernel-threads | map-limit | dump-on-signal | dump-while-busy | gdb-target | live-view SOCKET STOPFILE | spawn-loop COUNT [BATCH] | broken-pipe")
    var scenario: Scenario

    @Argument(help: "live-view: the control socket path, then a file whose creation ends the run. spawn-loop: the count, then the batch size (default 1).")
    var paths: [String] = []

    func run() throws {
        switch scenario {
        case .overflow:
            var configuration = UThreadRuntime.Configuration()
            configuration.stackMode = .guarded
            try UThreadRuntime.run(configuration) {
                try UThread(name: "deep-recursion", stackSize: 64 * 1024) { _ = recurse(1_000_000) }.join()
            }
        case .canary:
            var configuration = UThreadRuntime.Configuration()
            configuration.stackMode = .dense
            try UThreadRuntime.run(configuration) {
                try UThread(name: "smasher") {
                    // Write below the stack's limit, as an overflow would, then switch.
                    smashBelowStackLimit()
                    try UThread.sleep(for: .milliseconds(1))  // a switch: the canary is checked
                }.join()
            }
        case .misuse:
            UThread.yield()
        case .kernelThreads:
            let counts = try UThreadRuntime.run {
                let before = kernelThreadCount()
                var threads: [UThread<Void>] = []
                for _ in 0..<10_000 { threads.append(UThread { UThread.yield() }) }
                UThread.yield()
                let during = kernelThreadCount()
                for t in threads { try t.join() }
                return (before, during, UThreadRuntime.threadTable().threads.count)
            }
            print("kernel threads before: \(counts.0), with 10000 user threads: \(counts.1)")
        case .mapLimit:
            // More guarded stacks than vm.max_map_count allows (two mappings each).
            let limit = Int(readFirstLine("/proc/sys/vm/max_map_count") ?? "") ?? 65530
            let wanted = limit / 2 + 2000
            for mode in [StackMode.guarded, .automatic] {
                var configuration = UThreadRuntime.Configuration()
                configuration.stackMode = mode
                configuration.stackSize = 16 * 1024
                try UThreadRuntime.run(configuration) {
                    var threads: [UThread<Void>] = []
                    var failure: (any Error)?
                    for _ in 0..<wanted {
                        do { threads.append(try UThread.spawn { try? UThread.sleep(for: .seconds(3600)) }) } catch {
                            failure = error
                            break
                        }
                    }
                    let stats = UThreadRuntime.stackStatistics
                    print("\(mode.rawValue): \(threads.count) of \(wanted) threads, switched to dense: \(stats.switchedToDense), error: \(failure.map { "\($0)" } ?? "none")")
                    for t in threads { t.cancel() }
                }
            }
        case .dumpOnSignal:
            // Threads in known states, then SIGQUIT to ourselves: raise() runs the handler on
            // this kernel thread before it returns, and the sleep below sends the scheduler to
            // its idle loop, where it answers the request. Deterministic, no timing.
            try UThreadRuntime.run {
                try KnownStates.withThreads {
                    raise(SIGQUIT)
                    try UThread.sleep(for: .milliseconds(1))
                }
            }
            print("done")
        case .dumpWhileBusy:
            // The same, but the scheduler never goes idle: two threads keep yielding, so the
            // request is answered by the maintenance pass (every 64th yield).
            try UThreadRuntime.run {
                try KnownStates.withThreads {
                    let spinner = UThread(name: "spinner") { for _ in 0..<1000 { UThread.yield() } }
                    raise(SIGQUIT)
                    for _ in 0..<1000 { UThread.yield() }
                    try spinner.join()
                }
            }
            print("done")
        case .liveView:
            // Serves its table on the socket with threads in known states until STOPFILE exists.
            guard paths.count == 2 else { throw ValidationError("live-view needs SOCKET STOPFILE") }
            var configuration = UThreadRuntime.Configuration()
            configuration.controlSocket = paths[0]
            try UThreadRuntime.run(configuration) {
                try KnownStates.withThreads {
                    let give = ContinuousClock.now + .seconds(120)  // never outlive a lost test
                    while access(paths[1], F_OK) != 0 && ContinuousClock.now < give {
                        try UThread.sleep(for: .milliseconds(2))
                    }
                }
            }
        case .spawnLoop:
            // A fixed number of `try UThread {}.join()` (the `bench spawn` loop) after 1000 to warm
            // the stack pool, for instruction counts: run it under callgrind with two counts and
            // divide the difference by the difference of the counts (docs/BENCHMARKS.md).
            // With BATCH > 1 (the `bench spawn` batch row): COUNT threads, BATCH spawned at a time
            // and then joined in spawn order.
            guard (1...2).contains(paths.count), let count = Int(paths[0]), count >= 0,
                  let batch = paths.count == 2 ? Int(paths[1]) : 1, batch >= 1
            else { throw ValidationError("spawn-loop needs COUNT [BATCH], COUNT >= 0, BATCH >= 1") }
            try UThreadRuntime.run {
                if batch == 1 {
                    for _ in 0..<1000 { try UThread {}.join() }
                    for _ in 0..<count { try UThread {}.join() }
                } else {
                    var threads: [UThread<Void>] = []
                    threads.reserveCapacity(batch)
                    for _ in 0..<(1000 + count) / batch {
                        for _ in 0..<batch { threads.append(UThread {}) }
                        for t in threads { try t.join() }
                        threads.removeAll(keepingCapacity: true)
                    }
                }
            }
        case .brokenPipe:
            // The process's first I/O is a write to a pipe whose reader is closed: it must throw
            // EPIPE, not die of SIGPIPE (which the runtime ignores from its start, before any
            // reactor exists: the write succeeds or fails without ever parking). SIGPIPE back
            // to its default first: an ignored signal stays ignored across exec, and the test
            // process that starts this one has it ignored.
            signal(SIGPIPE, SIG_DFL)
            let outcome = try UThreadRuntime.run { () -> String in
                let (r, w) = try Pipe.make()
                try r.close()
                do { try w.write(all: "x") } catch { return "\(error)" }
                return "no error"
            }
            print("write to a closed pipe: \(outcome)")
        case .gdbTarget:
            // Stops under a debugger (SIGTRAP) with threads in known states; see tools/gdb.
            try UThreadRuntime.run {
                try KnownStates.withThreads { raise(SIGTRAP) }
            }
        }
    }
}

func readFirstLine(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, 256, f) != nil else { return nil }
    return String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Named threads parked in known states while `body` runs on the main thread: "sleeper"
/// sleeping for an hour, "joiner" blocked joining it, "fresh" ready (never run).
enum KnownStates {
    static func withThreads(_ body: () throws -> Void) throws {
        let sleeper = UThread(name: "sleeper") { try UThread.sleep(for: .seconds(3600)) }
        let joiner = UThread(name: "joiner") { try sleeper.join() }
        UThread.yield()  // both run and park
        let fresh = UThread(name: "fresh") {}
        try body()
        sleeper.cancel()
        _ = try? joiner.join()
        try fresh.join()
    }
}

/// Entries in /proc/self/task: the kernel's list of this process's threads.
func kernelThreadCount() -> Int {
    guard let dir = opendir("/proc/self/task") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { n += 1 }
    }
    return n
}

@inline(never)
func recurse(_ n: Int) -> Int {
    var frame = [UInt8](repeating: 0, count: 0)
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { buffer in
        buffer.initialize(repeating: UInt8(truncatingIfNeeded: n))
        frame.append(buffer[n % 512])
        return n == 0 ? 0 : recurse(n - 1) &+ Int(buffer[0]) &+ frame.count
    }
}

@inline(never)
func smashBelowStackLimit() {
    // The running thread's stack limit is in its table row; overwrite the canary word there.
    let table = UThreadRuntime.threadTable()
    guard let me = table.threads.first(where: { $0.state == .running }) else { return }
    let canary = UnsafeMutablePointer<UInt64>(bitPattern: UInt(me.stack.base) - 16)!
    canary.pointee = 0xdead
}
