// `uthreads selftest …`: scenarios that must run in a process of their own (they crash on
// purpose, or need a process with exactly one kernel thread). The test suite runs them as
// child processes and checks what they print.
import ArgumentParser
import CUThreads
import Glibc
import Synchronization
import UserThreads

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest", abstract: "Scenarios for the test suite (some crash on purpose).", shouldDisplay: false
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case overflow, canary, misuse
        case kernelThreads = "kernel-threads"
        case mapLimit = "map-limit"
        case dumpOnSignal = "dump-on-signal"
        case dumpWhileBusy = "dump-while-busy"
        case gdbTarget = "gdb-target"
        case dumpOnSignalWorkers = "dump-on-signal-workers"
        case dumpWhileIdle = "dump-while-idle"
        case liveView = "live-view"
        case spawnLoop = "spawn-loop"
        case brokenPipe = "broken-pipe"
        case stackOverflow = "stack-overflow"
        case deadlock
        case workerStartFailure = "worker-start-failure"
        case epollClosed = "epoll-closed"
        case foreignCancel = "foreign-cancel"
        case controlSocketOutOfDescriptors = "control-socket-emfile"
    }

    @Argument(
        help:
            "overflow | canary | misuse [iterate] | kernel-threads | map-limit | dump-on-signal | dump-while-busy | dump-on-signal-workers N | dump-while-idle N | gdb-target [WORKERS] | live-view SOCKET STOPFILE [WORKERS] | spawn-loop COUNT [BATCH] [MODE] | broken-pipe | stack-overflow guarded|dense recursion|parking|frame [WORKERS] | deadlock | worker-start-failure | epoll-closed | foreign-cancel thread|task [WORKERS] | control-socket-emfile SOCKET"
    )
    var scenario: Scenario

    @Argument(
        help:
            "live-view: the control socket path, then a file whose creation ends the run, then optionally M:N workers. spawn-loop: the count, then optionally the batch size (default 1) and the stack mode. dump-on-signal-workers, dump-while-idle: the workers. stack-overflow: the stack mode, the kind of overflow, and M:N workers (none: M:1)."
    )
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
            if paths == ["iterate"] {  // a channel iterated outside a runtime: not an empty loop
                for _ in Channel<Int>(name: "jobs") {}
                print("the iteration ended silently")
                return
            }
            _ = UThread.current  // a property that cannot throw, with nothing to return here
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
                    print(
                        "\(mode.rawValue): \(threads.count) of \(wanted) threads, switched to dense: \(stats.switchedToDense), error: \(failure.map { "\($0)" } ?? "none")"
                    )
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
        case .dumpOnSignalWorkers:
            // An M:N runtime with a sleeping thread pinned to each worker, until a line (or EOF)
            // arrives on stdin; the test sends SIGQUIT from outside meanwhile. The runtime runs on
            // a kernel thread of its own and the process's main thread waits for it, so the
            // kernel runs the handler on the main thread, not on a worker: the workers, asleep in
            // epoll_wait, learn of the request only through their bells.
            guard paths.count == 1, let workers = Int(paths[0]), workers >= 1 else {
                throw ValidationError("dump-on-signal-workers needs WORKERS")
            }
            try runOnOwnKernelThread {
                try UThreadRuntime.run(workers: workers) {
                    try KnownStates.withSleeperOnEachWorker(workers) {
                        print("ready")
                        fflush(nil)  // every stream: `stdout` is not concurrency-safe to name here
                        var byte: UInt8 = 0
                        _ = try withUnsafeMutableBytes(of: &byte) {
                            try IO.readStandardInput(into: $0, timeout: .seconds(120))
                        }
                    }
                }
            }
            print("done")
        case .dumpWhileIdle:
            // A runtime whose main thread parks on a channel with a timeout far away and no
            // descriptor (under `workers: 1` its idle loop sleeps on its inbox's futex word), on a
            // kernel thread of its own; the kernel runs SIGQUIT's handler on the process's main
            // thread, so the runtime learns of the request only through its bell. A helper kernel
            // thread ends the run when a line (or EOF) arrives on stdin, by spawning into the
            // runtime a thread that sends to the channel.
            guard paths.count == 1, let workers = Int(paths[0]), workers >= 1 else {
                throw ValidationError("dump-while-idle needs WORKERS")
            }
            let shared = Mutex<(UThreadRuntime.Handle, Channel<Int>)?>(nil)
            KernelThread.spawn {
                let give = ContinuousClock.now + .seconds(120)  // never outlive a lost test
                var reached: (UThreadRuntime.Handle, Channel<Int>)?
                while reached == nil && ContinuousClock.now < give {
                    reached = shared.withLock { $0 }
                    usleep(1000)
                }
                guard let (handle, stop) = reached else { return }
                print("ready")
                fflush(nil)
                var byte: UInt8 = 0
                _ = read(0, &byte, 1)
                _ = try? handle.spawn(name: "stopper") { try stop.send(1) }.join(timeout: .seconds(30))
            }
            try runOnOwnKernelThread {
                try UThreadRuntime.run(workers: workers) {
                    let stop = Channel<Int>(name: "stop")
                    shared.withLock { $0 = (UThread.runtime!, stop) }
                    _ = try stop.receive(timeout: .seconds(120))
                }
            }
            print("done")
        case .liveView:
            // Serves its table on the socket with threads in known states until STOPFILE exists
            // (under `run(workers: WORKERS)`, a sleeping thread pinned to each worker, when given).
            guard paths.count == 2 || paths.count == 3 else {
                throw ValidationError("live-view needs SOCKET STOPFILE [WORKERS]")
            }
            var configuration = UThreadRuntime.Configuration()
            configuration.controlSocket = paths[0]
            if paths.count == 3 {
                guard let workers = Int(paths[2]), workers >= 1 else {
                    throw ValidationError("live-view: WORKERS must be at least 1")
                }
                let stop = paths[1]
                try UThreadRuntime.run(workers: workers, configuration) {
                    try KnownStates.withSleeperOnEachWorker(workers) {
                        let give = ContinuousClock.now + .seconds(120)  // never outlive a lost test
                        while access(stop, F_OK) != 0 && ContinuousClock.now < give {
                            try UThread.sleep(for: .milliseconds(2))
                        }
                    }
                }
                return
            }
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
            // Optional extra arguments: a batch size (BATCH > 1, the `bench spawn` batch row: COUNT
            // threads, BATCH spawned at a time and then joined in spawn order) and a stack mode
            // (default: the configuration's), in either order.
            guard (1...3).contains(paths.count), let count = Int(paths[0]), count >= 0 else {
                throw ValidationError(
                    "spawn-loop needs COUNT [BATCH] [guarded | dense | automatic], COUNT >= 0, BATCH >= 1")
            }
            var configuration = UThreadRuntime.Configuration()
            var batch = 1
            for extra in paths.dropFirst() {
                if let n = Int(extra) {
                    guard n >= 1 else {
                        throw ValidationError("spawn-loop needs COUNT [BATCH] [MODE], COUNT >= 0, BATCH >= 1")
                    }
                    batch = n
                } else if let mode = StackMode(rawValue: extra) {
                    configuration.stackMode = mode
                } else {
                    throw ValidationError(
                        "spawn-loop: \(extra) is neither a batch size nor a stack mode (guarded, dense, automatic)")
                }
            }
            try UThreadRuntime.run(configuration) {
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
        case .stackOverflow:
            try StackOverflowScenario(arguments: paths).run()
        case .deadlock:
            try DeadlockScenario.run()
        case .workerStartFailure:
            // Run with UTHREADS_TEST_FAIL_WORKER_START=2: worker 2 of 3 cannot start. The error
            // must come before any user code ran, and leave no descriptor open.
            let before = openDescriptorCount()
            do {
                try UThreadRuntime.run(workers: 3) { print("the main thread ran") }
                print("no error")
            } catch {
                print("error: \(error)")
            }
            print("descriptors before: \(before), after: \(openDescriptorCount())")
        case .epollClosed:
            // A raw close(2) of the reactor's epoll descriptor while a thread waits for I/O: the
            // idle loop's epoll_wait fails with EBADF and must stop the process with a
            // diagnostic, not spin or hang.
            try UThreadRuntime.run {
                let (reader, writer) = try Pipe.make()
                let waiter = UThread.local(name: "reader") { _ = try reader.read(upTo: 1) }
                UThread.yield()  // it parks: the reactor exists now
                for fd in descriptors(linkedTo: "anon_inode:[eventpoll]") { close(fd) }
                try waiter.join()
                try writer.close()
            }
        case .controlSocketOutOfDescriptors:
            guard paths.count == 1 else { throw ValidationError("control-socket-emfile needs SOCKET") }
            try ControlSocketOutOfDescriptors.scenario(socket: paths[0])
        case .foreignCancel:
            guard let via = paths.first, via == "thread" || via == "task", paths.count <= 2 else {
                throw ValidationError("foreign-cancel needs thread|task [WORKERS]")
            }
            var workers: Int?
            if paths.count == 2 {
                guard let w = Int(paths[1]), w >= 1 else {
                    throw ValidationError("foreign-cancel: WORKERS must be >= 1")
                }
                workers = w
            }
            try ForeignCanceller.scenario(viaTask: via == "task", workers: workers)
        case .gdbTarget:
            // Stops under a debugger (SIGTRAP) with threads in known states; see tools/gdb. With
            // WORKERS, an M:N runtime with a sleeping thread pinned to each worker.
            if let workers = paths.first.flatMap({ Int($0) }), workers >= 1 {
                try UThreadRuntime.run(workers: workers) {
                    try KnownStates.withSleeperOnEachWorker(workers) { raise(SIGTRAP) }
                }
                return
            }
            try UThreadRuntime.run {
                try KnownStates.withThreads { raise(SIGTRAP) }
            }
        }
    }
}

/// Runs `body` on a new kernel thread and waits for it (pthread_join) on the calling one.
func runOnOwnKernelThread(_ body: @escaping () throws -> Void) throws {
    final class Job: @unchecked Sendable {
        let body: () throws -> Void
        var failure: (any Error)?
        init(_ body: @escaping () throws -> Void) { self.body = body }
    }
    let job = Job(body)
    var thread = pthread_t()
    let arg = Unmanaged.passRetained(job).toOpaque()
    let rc = pthread_create(
        &thread, nil,
        { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
            do { try job.body() } catch { job.failure = error }
            return nil
        }, arg)
    guard rc == 0 else {
        Unmanaged<Job>.fromOpaque(arg).release()
        throw ValidationError("pthread_create failed (errno \(rc))")
    }
    pthread_join(thread, nil)
    if let failure = job.failure { throw failure }
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

    /// M:N: a thread "sleeper K" pinned to each worker K, sleeping for an hour, while `body`
    /// runs on the calling M:N thread.
    static func withSleeperOnEachWorker(_ workers: Int, _ body: () throws -> Void) throws {
        let sleepers = try (0..<workers).map { k in
            try UThread.spawn(name: "sleeper \(k)", onWorker: k) { try UThread.sleep(for: .seconds(3600)) }
        }
        defer {
            for s in sleepers { s.cancel() }
            for s in sleepers { _ = try? s.join() }
        }
        // Until every one sleeps (a sleeper on another worker starts when that worker reads its mail).
        let give = ContinuousClock.now + .seconds(60)
        while UThreadRuntime.threadTable().threads.filter({ $0.name.hasPrefix("sleeper ") && $0.state == .sleeping })
            .count < workers
            && ContinuousClock.now < give
        {
            try UThread.sleep(for: .milliseconds(1))
        }
        try body()
    }
}

/// `selftest foreign-cancel thread|task [WORKERS]`: a sleeper's handle is cancelled from a
/// kernel thread that does not run its runtime (a pthread, or a Swift task) while the runtime
/// (M:1 `run {}`, or M:N with WORKERS) waits for it; prints how the sleeper ended. Then, after
/// the runtime has returned, cancels the same handle again from a pthread (the thread is gone:
/// nothing happens) and prints that it returned.
enum ForeignCanceller {
    /// The handle the pthread cancels (set before the pthread starts, read after it is joined).
    nonisolated(unsafe) static var handle: UThreadHandle?

    /// A handle handed to a task.
    struct Sent: @unchecked Sendable { let handle: UThreadHandle }

    /// The pthread that cancels (joined after the runtime returned).
    nonisolated(unsafe) static var canceller = pthread_t()

    static func cancelElsewhere(_ h: UThreadHandle, viaTask: Bool) {
        handle = h
        if viaTask {
            let sent = Sent(handle: h)
            Task.detached { sent.handle.cancel() }
        } else {
            pthread_create(
                &canceller, nil,
                { _ in
                    ForeignCanceller.handle?.cancel()
                    return nil
                }, nil)
        }
    }

    static func scenario(viaTask: Bool, workers: Int?) throws {
        let outcome: String
        if let workers {
            outcome = try UThreadRuntime.run(workers: workers) { () -> String in
                let handles = Channel<Sent>()
                let sleeper = UThread(name: "sleeper") { () -> String in
                    try handles.send(Sent(handle: UThread.current))
                    do { try UThread.sleep(for: .seconds(3600)) } catch { return "\(type(of: error))" }
                    return "slept"
                }
                guard let sent = try handles.receive() else { return "no handle" }
                cancelElsewhere(sent.handle, viaTask: viaTask)
                return try sleeper.join()
            }
        } else {
            outcome = try UThreadRuntime.run { () -> String in
                let sleeper = UThread(name: "sleeper") { () -> String in
                    do { try UThread.sleep(for: .seconds(3600)) } catch { return "\(type(of: error))" }
                    return "slept"
                }
                cancelElsewhere(sleeper.handle, viaTask: viaTask)
                return try sleeper.join()
            }
        }
        if !viaTask { pthread_join(canceller, nil) }
        print("sleeper: \(outcome)")
        // The runtime has ended: a cancel of its thread's handle must do nothing.
        pthread_create(
            &canceller, nil,
            { _ in
                ForeignCanceller.handle?.cancel()
                return nil
            }, nil)
        pthread_join(canceller, nil)
        print("cancel after the runtime returned")
    }
}

/// Open descriptors whose /proc/self/fd link reads `target`.
func descriptors(linkedTo target: String) -> [Int32] {
    (0..<Int32(1024)).filter { fd in
        var link = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(fd)", &link, 255)
        return n > 0 && String(decoding: link.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) == target
    }
}

/// Entries in /proc/self/fd (open descriptors, the directory's own included).
func openDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while readdir(dir) != nil { n += 1 }
    return n
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

/// `selftest control-socket-emfile SOCKET`: a runtime serves its control socket while the
/// process has no descriptor left, so the server's accept fails with EMFILE and the client
/// waits in the backlog. Prints the CPU time the process spent in 500 ms of that ("cpu-ms N":
/// a server that polls the listener in a loop spends about all of it), then frees the
/// descriptors and prints whether the waiting client got its answer.
enum ControlSocketOutOfDescriptors {
    static func cpuNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    static func scenario(socket: String) throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = min(limit.rlim_cur, 256)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        var configuration = UThreadRuntime.Configuration()
        configuration.controlSocket = socket
        try UThreadRuntime.run(configuration) {
            // Every descriptor but one taken; the client takes that one.
            var fillers: [Int32] = []
            while true {
                let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
                if fd < 0 { break }
                fillers.append(fd)
            }
            if let last = fillers.popLast() { close(last) }
            let client = uthreads_unix_connect(socket)
            guard client >= 0 else {
                print("connect failed: errno \(-client)")
                return
            }
            _ = "table\n".withCString { write(client, $0, 6) }
            let before = cpuNanoseconds()
            try UThread.sleep(for: .milliseconds(500))
            print("cpu-ms \((cpuNanoseconds() - before) / 1_000_000)")
            for fd in fillers { close(fd) }
            _ = uthreads_set_nonblocking(client, 1)
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            let give = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < give {
                let n = read(client, &buffer, buffer.count)
                if n > 0 {
                    answer += buffer[0..<n]
                    continue
                }
                if n == 0 || (errno != EAGAIN && errno != EINTR) { break }
                try UThread.sleep(for: .milliseconds(5))  // the runtime must run to answer
            }
            close(client)
            print("answered: \(answer.first == UInt8(ascii: "{"))")
        }
    }
}
