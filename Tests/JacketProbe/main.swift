// jacket-probe: the jacket's scenarios, each in a fresh process (Tests/UserThreadsTests/Jacket
// runs them). This binary links UserThreadsJacket, so every C library call in it — the plain C
// calls of CJacketProbe, libcurl's — goes through the jacket; with UTHREADS_JACKET=0 the
// jacket stays off and the same scenarios show the real calls' behaviour.
//
// Usage: jacket-probe <scenario> [--workers N] [arguments]. Prints `key=value` lines; exits
// 1 with `FAIL …` on stderr when a scenario's own check fails.
import CJacketCurl
import CJacketProbe
import Foundation
import Glibc
import UserThreads
import UserThreadsJacket

/// The command line: the scenario and its arguments, and `--workers N`.
enum Options {
    static let workers: Int = {
        let a = CommandLine.arguments
        if let i = a.firstIndex(of: "--workers"), i + 1 < a.count, let n = Int(a[i + 1]) { return n }
        return 1
    }()
    static let arguments: [String] = {
        var a = Array(CommandLine.arguments.dropFirst())
        if let i = a.firstIndex(of: "--workers"), i + 1 < a.count { a.removeSubrange(i...(i + 1)) }
        return a
    }()
}
let arguments = Options.arguments
signal(SIGPIPE, SIG_IGN)

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("FAIL \(message)\n".utf8))
    exit(1)
}

/// A blocking pipe (the caller's view: no O_NONBLOCK).
func blockingPipe() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { fail("pipe: \(errno)") }
    return (fds[0], fds[1])
}

/// Runs `body` on the main user thread of a runtime with `workers` workers.
func inRuntime(_ body: @escaping @Sendable () throws -> Void) {
    do {
        try UThreadRuntime.run(workers: Options.workers) { try body() }
    } catch { fail("runtime: \(error)") }
}

/// Spawns a worker-local user thread (M:1 `UThread`, M:N pinned `UThread`) and returns its join.
func spawn(_ name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () throws -> Void) -> () throws -> Void {
    if Options.workers > 1 {
        let t = UThread(name: name, pinned: true, stackSize: stackSize, body)
        return { try t.join() }
    }
    let t = UThread(name: name, stackSize: stackSize, body)
    return { try t.join() }
}

/// Spawns a user thread on worker 1 of an M:N runtime (another worker than the caller's, on
/// worker 0), or a worker-local one under M:1; returns its join.
func spawnElsewhere(_ name: String, _ body: @escaping @Sendable () throws -> Void) throws -> () throws -> Void {
    guard Options.workers > 1 else { return spawn(name, body) }
    let t = try UThread.spawn(name: name, onWorker: 1, body)
    return { try t.join() }
}

/// Counts ticks of a ticker thread, shared by the threads of one scenario.
final class Counter: @unchecked Sendable {
    var value = 0
}

/// Lines computed on a user thread, read after the runtime ends.
final class Box: @unchecked Sendable {
    var lines: [String] = []
}

/// The ticker of the waiting scenarios: 3 ticks of 1 ms user-thread sleeps, then one byte to `w`.
func tickThenWrite(_ ticks: Counter, _ w: Int32) throws {
    for _ in 0..<3 {
        try UThread.sleep(for: .milliseconds(1))
        ticks.value += 1
    }
    var b: UInt8 = 1
    _ = probe_write(w, &b, 1)
}

func describe(_ r: probe_result) -> String { "\(r.value)/\(r.error)" }

/// A signal scenario's result: a nanosleep's also says whether the time left was reported.
nonisolated func signalResult(_ r: probe_result, _ which: Int32) -> String {
    describe(r) + (which == Int32(PROBE_SIGNAL_NANOSLEEP) ? " left=\(r.extra)" : "")
}

/// One byte through the pipe (`w` to `r`) on the calling user thread: the jacket makes both
/// ends, created by this process, non-blocking.
func passByte(_ w: Int32, _ r: Int32) {
    var byte: UInt8 = 1
    _ = probe_write(w, &byte, 1)
    _ = probe_read(r, &byte, 1)
}

/// The calls of the "errno" scenario, with their values and errno.
func errnoCalls() -> [String] {
    var out: [String] = []
    var byte: UInt8 = 7
    var (r, w) = blockingPipe()
    _ = fcntl(r, F_SETFL, O_NONBLOCK)
    out.append("nonblocking-empty-read \(describe(probe_read(r, &byte, 1)))")
    out.append("zero-read \(describe(probe_read(r, &byte, 0)))")
    out.append("bad-fd-read \(describe(probe_read(-1, &byte, 1)))")
    out.append("bad-fd-write \(describe(probe_write(9_999, &byte, 1)))")
    out.append("pipe-write \(describe(probe_write(w, &byte, 1)))")
    out.append("pipe-read \(describe(probe_read(r, &byte, 1))) byte=\(byte)")
    _ = probe_close(r)
    out.append("closed-reader-write \(describe(probe_write(w, &byte, 1)))")
    _ = probe_close(w)
    (r, w) = blockingPipe()
    out.append("poll-timeout \(describe(probe_poll(r, Int16(POLLIN), 20)))")
    out.append("select-timeout \(describe(probe_select_read(r, 20)))")
    out.append("poll-ready \(describe(probe_poll(w, Int16(POLLOUT), 20)))")
    out.append(
        "poll-bad-fd \(describe(probe_poll(9_999, Int16(POLLIN), 20))) revents=\(probe_poll(9_999, Int16(POLLIN), 20).extra)"
    )
    out.append("usleep \(describe(probe_usleep(1_000)))")
    out.append("nanosleep-invalid \(describe(probe_nanosleep(0, 2_000_000_000)))")
    out.append("nanosleep \(describe(probe_nanosleep(0, 1_000_000)))")
    _ = probe_close(r)
    _ = probe_close(w)
    var port: UInt16 = 0
    let listener = probe_tcp_listener(&port)
    _ = probe_close(listener)  // nobody listens on `port` now
    let s = probe_tcp_socket()
    out.append("connect-refused \(describe(probe_connect_loopback(s, port)))")
    _ = probe_close(s)
    var pair: [Int32] = [0, 0]
    _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair)
    _ = probe_set_receive_timeout(pair[0], 30)
    out.append("recv-timeout \(describe(probe_recv(pair[0], &byte, 1, 0)))")
    out.append("recv-dontwait \(describe(probe_recv(pair[0], &byte, 1, Int32(MSG_DONTWAIT))))")
    _ = probe_close(pair[0])
    _ = probe_close(pair[1])
    out.append("close-bad \(describe(probe_close(9_999)))")
    let file = open("/proc/self/exe", O_RDONLY)  // a regular file: left alone, read whole
    var page = [UInt8](repeating: 0, count: 65_536)
    out.append("regular-file-read \(describe(probe_read(file, &page, page.count)))")
    _ = probe_close(file)
    return out
}

switch arguments.first ?? "" {
case "active":
    // Whether the jacket took the runtime's hooks (it does on the first run).
    inRuntime {}
    print("active=\(uthreads_jacket_active())")

case "pipe-read":
    // A plain read on an empty blocking pipe. With the jacket the ticker keeps ticking while
    // the reader waits (the writer writes after 3 ticks); without it the kernel thread blocks
    // until another kernel thread writes, and the ticker has not ticked.
    let (r, w) = blockingPipe()
    let ticks = Counter()
    inRuntime {
        let jacketed = uthreads_jacket_active() == 1
        let reader = spawn("reader") {
            var byte: UInt8 = 0
            let result = probe_read(r, &byte, 1)
            print("read=\(describe(result)) byte=\(byte) ticks=\(ticks.value)")
        }
        let ticker = spawn("ticker") {
            for _ in 0..<3 {
                try UThread.sleep(for: .milliseconds(1))
                ticks.value += 1
            }
            if jacketed {
                var b: UInt8 = 42
                _ = probe_write(w, &b, 1)
            }
        }
        if !jacketed {
            let writer = Thread {
                usleep(50_000)
                var b: UInt8 = 42
                _ = probe_write(w, &b, 1)
            }
            writer.start()
        }
        try reader()
        try ticker()
    }

case "errno":
    // The same calls outside a runtime, then on a user thread: results and errno must match.
    let outside = errnoCalls()
    let inside = Counter()
    let done = Counter()
    let results = Box()
    inRuntime {
        let ticker = spawn("ticker") {
            while done.value == 0 {
                try UThread.sleep(for: .milliseconds(1))
                inside.value += 1
            }
        }
        results.lines = errnoCalls()
        done.value = 1
        try ticker()
    }
    let after = errnoCalls()  // the jacket is installed now, but this is no user thread
    for ((a, b), c) in zip(zip(outside, results.lines), after) {
        print("\(a) | \(b) | \(c)")
        if a != b { fail("before a runtime \(a) != on a user thread \(b)") }
        if a != c { fail("before a runtime \(a) != after it \(c)") }
    }
    if results.lines.count != outside.count || after.count != outside.count { fail("missing results") }
    print("ticks=\(inside.value)")

case "cancel":
    // A user thread blocked in a jacketed read is cancelled: the read fails with ECANCELED.
    let (r, _) = blockingPipe()
    inRuntime {
        let reader = UThread(name: "reader") { () -> probe_result in
            var byte: UInt8 = 0
            return probe_read(r, &byte, 1)
        }
        while !UThreadRuntime.threadTable().description.contains("read fd \(r) (jacket)") { UThread.yield() }
        reader.cancel()
        print("read=\(describe(try reader.join()))")
    }

case "table":
    // The thread table names a jacketed wait: `read fd N (jacket)`, `poll fd N (jacket)`.
    let (r, w) = blockingPipe()
    inRuntime {
        let reader = spawn("reader") {
            var b: UInt8 = 0
            _ = probe_read(r, &b, 1)
        }
        let poller = spawn("poller") { _ = probe_poll(r, Int16(POLLIN), -1) }
        var table = ""
        while !(table.contains("read fd \(r) (jacket)") && table.contains("poll fd \(r) (jacket)")) {
            UThread.yield()
            table = UThreadRuntime.threadTable().description
        }
        print(table.split(separator: "\n").filter { $0.contains("(jacket)") }.joined(separator: "\n"))
        _ = probe_write(w, "ab", 2)  // one byte for the reader, one left for the poller
        try poller()
        try reader()
    }

case "select-huge":
    // select with a timeout of 20211507185753197 s (beyond any deadline: the kernel saturates
    // it) waits until the byte the ticker writes after 3 ticks; it must not time out at once
    // (seconds × 10^9 wraps to 512 ns in 64 bits).
    let (r, w) = blockingPipe()
    let ticks = Counter()
    inRuntime {
        let selecter = spawn("selecter") {
            let p = probe_select_read_timeval(r, 20_211_507_185_753_197, 0)
            print("select=\(describe(p)) set=\(p.extra) ticks=\(ticks.value)")
        }
        let ticker = spawn("ticker") { try tickThenWrite(ticks, w) }
        try selecter()
        try ticker()
    }

case "stderr-raw":
    // The runtime's crash-diagnostic write to stderr runs in fault handlers on a user thread's
    // stack, where nothing may park: with stderr a full blocking pipe it must block its kernel
    // thread as write(2) does, not park in the jacket (the ticker would tick meanwhile).
    let (r, w) = blockingPipe()
    let (go, started) = blockingPipe()
    guard probe_fill_pipe(w) > 0 else { fail("could not fill the pipe") }
    let saved = dup(2)
    dup2(w, 2)
    let drainer = Thread {  // a kernel thread: once the write has begun, empties the pipe
        var b: UInt8 = 0
        _ = read(go, &b, 1)
        usleep(50_000)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        _ = read(r, &buffer, buffer.count)
    }
    drainer.start()
    let ticks = Counter()
    let seen = Counter()
    inRuntime {
        let writer = spawn("writer") {
            var b: UInt8 = 1
            _ = probe_write(started, &b, 1)
            probe_runtime_stderr("stderr-raw\n")
            seen.value = ticks.value
        }
        let ticker = spawn("ticker") {
            for _ in 0..<3 {
                try UThread.sleep(for: .milliseconds(1))
                ticks.value += 1
            }
        }
        try writer()
        try ticker()
    }
    dup2(saved, 2)
    print("ticks-during-write=\(seen.value)")

case "close-elsewhere":
    // A plain close of a descriptor a user thread waits on, under M:N from another worker
    // than the reader's: the wait ends with EBADF (the jacket's promise), it does not hang.
    let (r, _) = blockingPipe()
    inRuntime {
        let read = Box()
        let readThat = { @Sendable in
            var byte: UInt8 = 0
            read.lines.append(describe(probe_read(r, &byte, 1)))
        }
        let join = try spawnElsewhere("reader", readThat)
        while !UThreadRuntime.threadTable().description.contains("read fd \(r) (jacket)") { UThread.yield() }
        print("close=\(describe(probe_close(r))) on worker \(UThread.worker)")
        try join()
        print("read=\(read.lines.joined())")
    }

case "poll-many":
    // poll on two pipes and select on one park until the second pipe gets a byte (after the
    // ticker's 3 ticks): the ticker runs meanwhile.
    let (r1, _) = blockingPipe()
    let (r2, w2) = blockingPipe()
    let ticks = Counter()
    inRuntime {
        let poller = spawn("poller") {
            let p = probe_poll2(r1, r2, 10_000)
            print("poll=\(describe(p)) revents1=\(p.extra & 0xFFFF) revents2=\(p.extra >> 16) ticks=\(ticks.value)")
        }
        let selecter = spawn("selecter") {
            let p = probe_select_read(r2, 10_000)
            print("select=\(describe(p)) set=\(p.extra) ticks=\(ticks.value)")
        }
        let ticker = spawn("ticker") { try tickThenWrite(ticks, w2) }
        try poller()
        try selecter()
        try ticker()
    }

case "accept-connect":
    // A blocking listener and blocking sockets: accept, connect, write and read all park.
    var boundPort: UInt16 = 0
    let listener = probe_tcp_listener(&boundPort)
    guard listener >= 0 else { fail("listener: \(-listener)") }
    let port = boundPort
    inRuntime {
        let server = spawn("server") {
            let a = probe_accept(listener)
            var buffer = [UInt8](repeating: 0, count: 5)
            let n = probe_read(Int32(a.extra), &buffer, 5)
            print(
                "accept=\(a.value >= 0 ? "ok" : describe(a)) read=\(describe(n)) text=\(String(decoding: buffer.prefix(max(0, n.value)), as: UTF8.self))"
            )
            _ = probe_close(Int32(a.extra))
        }
        let client = spawn("client") {
            let fd = probe_tcp_socket()
            let c = probe_connect_loopback(fd, port)
            let w = probe_write(fd, "hello", 5)
            print("connect=\(describe(c)) write=\(describe(w))")
            _ = probe_close(fd)
        }
        try server()
        try client()
    }

case "sleep":
    // Two plain usleep(20 ms) calls overlap, and a ticker runs meanwhile.
    let ticks = Counter()
    let done = Counter()
    inRuntime {
        let sleepers = (0..<2).map { _ in
            spawn("sleeper") {
                _ = probe_usleep(20_000)
                done.value += 1
            }
        }
        let ticker = spawn("ticker") {
            while done.value < 2 {
                try UThread.sleep(for: .milliseconds(1))
                ticks.value += 1
            }
        }
        for s in sleepers { try s() }
        try ticker()
    }
    print("sleepers=\(done.value) ticked=\(ticks.value > 0)")

case "modes":
    // The caller's view of a pipe the jacket made non-blocking: F_GETFL, fcntl/ioctl
    // round trips, a blocking-looking read that parks, EAGAIN where the caller asked for it,
    // SO_RCVTIMEO on a plain read, and the record after dup, dup2 and close.
    let (r, w) = blockingPipe()
    print("created record=\(uthreads_jacket_descriptor(r))")
    let ticks = Counter()
    inRuntime {
        var byte: UInt8 = 1
        passByte(w, r)
        print(
            "adopted record=\(uthreads_jacket_descriptor(r)) view=\(probe_nonblocking(r)) kernel=\(probe_kernel_nonblocking(r))"
        )
        let reader = spawn("reader") {
            var b: UInt8 = 0
            print("blocking-read=\(describe(probe_read(r, &b, 1))) ticks=\(ticks.value)")
        }
        let ticker = spawn("ticker") { try tickThenWrite(ticks, w) }
        try reader()
        try ticker()
        _ = probe_set_nonblocking(r, 1)
        print("fcntl-on view=\(probe_nonblocking(r)) read=\(describe(probe_read(r, &byte, 1)))")
        _ = probe_set_nonblocking(r, 0)
        print("fcntl-off view=\(probe_nonblocking(r)) kernel=\(probe_kernel_nonblocking(r))")
        _ = probe_fionbio(r, 1)
        print("ioctl-on view=\(probe_nonblocking(r)) read=\(describe(probe_read(r, &byte, 1)))")
        _ = probe_fionbio(r, 0)
        print("ioctl-off view=\(probe_nonblocking(r)) kernel=\(probe_kernel_nonblocking(r))")
        var pair: [Int32] = [0, 0]
        _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair)
        _ = probe_set_receive_timeout(pair[0], 30)
        let start = ContinuousClock.now
        let timedOut = probe_read(pair[0], &byte, 1)
        let waited = (ContinuousClock.now - start) >= .milliseconds(25)
        print("rcvtimeo-read=\(describe(timedOut)) waited=\(waited) record=\(uthreads_jacket_descriptor(pair[0]))")
        let copy = dup(r)
        print("dup record=\(uthreads_jacket_descriptor(copy))")
        _ = dup2(pair[1], copy)  // over the copy: the record is pair[1]'s (created, never touched)
        print("dup2 record=\(uthreads_jacket_descriptor(copy))")
        for fd in [copy, pair[0], pair[1], r] { _ = probe_close(fd) }
        print("closed record=\(uthreads_jacket_descriptor(r))")
        _ = probe_write(w, &byte, 1)  // adopted too
        // The runtime's own close (close(2) directly, not through the jacket) forgets the
        // record too, so a number reused by open() is never taken for the old file.
        let (r3, w3) = blockingPipe()
        passByte(w3, r3)
        let before = uthreads_jacket_descriptor(r3)
        try IO.close(r3)
        print("runtime-close before=\(before) after=\(uthreads_jacket_descriptor(r3))")
        _ = probe_close(w3)
    }
    // Off a user thread the pipe the jacket made non-blocking still blocks its caller: a read
    // waits for a kernel thread's late write, and a write larger than the pipe waits for room.
    let (r2, w2) = blockingPipe()
    inRuntime { passByte(w2, r2) }
    let late = Thread {
        usleep(20_000)
        var b: UInt8 = 5
        _ = probe_write(w2, &b, 1)
    }
    late.start()
    var byte: UInt8 = 0
    print("offthread-read=\(describe(probe_read(r2, &byte, 1))) byte=\(byte) record=\(uthreads_jacket_descriptor(r2))")
    let drainer = Thread {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while total < 1 << 17 {
            let n = probe_read(r2, &buffer, buffer.count).value
            if n <= 0 { break }
            total += n
        }
    }
    drainer.start()
    let big = [UInt8](repeating: 7, count: 1 << 17)
    print("offthread-write=\(describe(probe_write(w2, big, big.count)))")

case "fork":
    // fork gives every file the jacket made non-blocking its caller's blocking mode back
    // first: the child (jacket off) sees blocking files, and the parent's jacketed read of
    // the same pipe still parks (the per-call path) while a ticker runs.
    let (r, w) = blockingPipe()
    let ticks = Counter()
    inRuntime {
        passByte(w, r)
        print("before kernel=\(probe_kernel_nonblocking(r)) record=\(uthreads_jacket_descriptor(r))")
        print("child=\(probe_fork_nonblocking(r))")
        print("after kernel=\(probe_kernel_nonblocking(r)) view=\(probe_nonblocking(r))")
        let reader = spawn("reader") {
            var b: UInt8 = 0
            print("parent-read=\(describe(probe_read(r, &b, 1))) ticks=\(ticks.value)")
        }
        let ticker = spawn("ticker") { try tickThenWrite(ticks, w) }
        try reader()
        try ticker()
    }

case "stdin-mode":
    // The child of "spawn": its standard input's O_NONBLOCK as the kernel has it.
    print("child-stdin-kernel=\(probe_kernel_nonblocking(0))")

case "spawn":
    // posix_spawn (Foundation's Process) gives a file the jacket made non-blocking its
    // blocking mode back when the child inherits it: here as the child's standard input.
    let (r, w) = blockingPipe()
    inRuntime { passByte(w, r) }
    print("before kernel=\(probe_kernel_nonblocking(r)) record=\(uthreads_jacket_descriptor(r))")
    let child = Process()
    do {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        child.executableURL = URL(fileURLWithPath: path)
        child.arguments = ["stdin-mode"]
        child.standardInput = FileHandle(fileDescriptor: r, closeOnDealloc: false)
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        print(text.trimmingCharacters(in: .whitespacesAndNewlines))
    } catch { fail("spawn: \(error)") }
    print("after kernel=\(probe_kernel_nonblocking(r)) record=\(uthreads_jacket_descriptor(r))")

case "signals":
    // A SIGUSR1 handler without and with SA_RESTART, sent by another thread (pthread_kill of
    // its own kernel thread) once the target waits: each call's result and errno, first the
    // real calls on kernel threads, then the jacketed ones on user threads (under M:N the
    // target runs on another worker than the sender). Lines: `real|jacket <case> value/errno`.
    // (case, call, how the handler is installed: 0/1 sigaction without/with SA_RESTART, or PROBE_HANDLER_*)
    let cases: [(String, Int32, Int32)] = [
        ("read-interrupting", Int32(PROBE_SIGNAL_READ), 0), ("read-restarting", Int32(PROBE_SIGNAL_READ), 1),
        ("read-signal", Int32(PROBE_SIGNAL_READ), Int32(PROBE_HANDLER_SIGNAL)),
        ("read-siginterrupt", Int32(PROBE_SIGNAL_READ), Int32(PROBE_HANDLER_SIGNAL_SIGINTERRUPT)),
        ("poll-restarting", Int32(PROBE_SIGNAL_POLL), 1), ("nanosleep-restarting", Int32(PROBE_SIGNAL_NANOSLEEP), 1),
        ("ppoll-blocking-mask", Int32(PROBE_SIGNAL_PPOLL_BLOCKING), 0),
        ("epoll-pwait-blocking-mask", Int32(PROBE_SIGNAL_EPOLL_PWAIT_BLOCKING), 0),
        ("pselect-empty-mask", Int32(PROBE_SIGNAL_PSELECT_EMPTY_MASK), 1),
        ("ppoll-empty-mask", Int32(PROBE_SIGNAL_PPOLL_EMPTY_MASK), 1),
    ]
    for (name, which, handler) in cases {
        _ = probe_signal_handler(SIGUSR1, handler)
        let (r, w) = blockingPipe()
        print("real \(name) \(signalResult(probe_signal_real(which, r, w, SIGUSR1), which))")
        _ = probe_close(r)
        _ = probe_close(w)
    }
    inRuntime {
        /// The target's row while it waits in a jacketed call.
        func waiting() -> ThreadInfo? {
            UThreadRuntime.threadTable().threads.first {
                $0.name == "target" && ($0.waitReason?.description.contains("(jacket)") ?? false)
            }
        }
        // Twice: alone, where the calls SIGUSR1's handler cannot interrupt park as before (the
        // byte is written right after the handler ran), then with a SIGUSR2 handler without
        // SA_RESTART installed (never sent), so that every call also watches for signals and
        // SIGUSR1 wakes each: the byte is written once it returned or waits again.
        for pass in ["jacket", "jacket+usr2"] {
            if pass == "jacket+usr2" { _ = probe_signal_handler(SIGUSR2, 0) }
            for (name, which, handler) in cases {
                _ = probe_signal_handler(SIGUSR1, handler)
                let (r, w) = blockingPipe()
                let outcome = Box()
                let call = { @Sendable in outcome.lines.append(signalResult(probe_signal_call(which, r), which)) }
                let join = try spawnElsewhere("target", call)
                var parked = waiting()
                while parked == nil {
                    UThread.yield()
                    parked = waiting()
                }
                // The table names the caller's wait even when it parks on a temporary set.
                let shown = parked!.waitReason!.description.replacingOccurrences(of: "fd \(r) ", with: "fd R ")
                print("shown \(pass) \(name) \(shown)")
                let before = probe_signal_count()
                pthread_kill(pthread_self(), SIGUSR1)
                if probe_signal_count() == before { fail("\(name): the handler did not run on the sender") }
                if pass == "jacket+usr2" {  // every call is woken (SIGUSR2 could interrupt it)
                    while outcome.lines.isEmpty && (waiting()?.switches ?? 0) <= parked!.switches { UThread.yield() }
                }
                var byte: UInt8 = 1
                _ = probe_write(w, &byte, 1)
                try join()
                print("\(pass) \(name) \(outcome.lines.joined())")
                _ = probe_close(r)
                _ = probe_close(w)
            }
        }
        print("readback=\(probe_signal_readback(SIGUSR1, 1)) handled=\(probe_signal_count())")
    }

case "dump-signal":
    // The runtime's thread-dump signal (SIGQUIT) is no handler of the program's: it does not
    // interrupt a parked jacketed poll, which a program's own handler would (never restarted).
    let (r, w) = blockingPipe()
    inRuntime {
        let outcome = Box()
        let poller = spawn("target") { outcome.lines.append(describe(probe_poll(r, Int16(POLLIN), -1))) }
        while !UThreadRuntime.threadTable().description.contains("poll fd \(r) (jacket)") { UThread.yield() }
        pthread_kill(pthread_self(), SIGQUIT)
        var byte: UInt8 = 1
        _ = probe_write(w, &byte, 1)
        try poller()
        print("poll-after-dump=\(outcome.lines.joined())")
    }

case "stale":
    // A descriptor the jacket adopted (made non-blocking) is closed by the close system call
    // itself and its number reused behind the jacket's back: the jacket notices and drops its
    // record where it matters, and each call behaves as the real call on the new file.
    inRuntime {
        /// A pipe whose read end the jacket adopted on this user thread (record 3), its read
        /// end then closed by the system call itself and `reuse()` run: the read end's number,
        /// what `reuse` returned, and the write end (closed when `body` returns).
        func afterRawClose(_ reuse: () -> Int32, _ body: (Int32, Int32) throws -> Void) rethrows {
            let (r, w) = blockingPipe()
            passByte(w, r)
            if uthreads_jacket_descriptor(r) != 3 { fail("not adopted: \(uthreads_jacket_descriptor(r))") }
            _ = probe_raw_close(r)
            try body(r, reuse())
            _ = probe_close(w)
        }
        // Reused by a non-blocking eventfd: an empty read is EAGAIN (the caller's non-blocking
        // file), not a wait for ever (the stale record said "blocking for its caller").
        afterRawClose(probe_raw_eventfd_nonblocking) { r, event in
            print(
                "eventfd same-number=\(event == r) read=\(describe(probe_read8(event))) record=\(uthreads_jacket_descriptor(event))"
            )
            _ = probe_close(event)
        }
        // Closed and not reused: EBADF, and the record goes.
        var byte: UInt8 = 0
        afterRawClose({ -1 }) { r, _ in
            print("closed read=\(describe(probe_read(r, &byte, 1))) record=\(uthreads_jacket_descriptor(r))")
        }
        // Reused by a blocking file: F_GETFL shows the jacket's O_NONBLOCK gone, the record goes.
        afterRawClose(probe_raw_open_null) { r, null in
            print(
                "reopened same-number=\(null == r) view=\(probe_nonblocking(null)) record=\(uthreads_jacket_descriptor(null))"
            )
            _ = probe_close(null)
        }
        // Reused by open(2) of a blocking FIFO: the record goes at once, so an empty read parks
        // (the per-call path) instead of blocking the kernel thread as a "non-blocking" file.
        try afterRawClose({ probe_open_fifo("/tmp/uthreads-jacket-probe-\(getpid()).fifo") }) { r, fifo in
            let ticks = Counter()
            let ticker = spawn("ticker") { try tickThenWrite(ticks, fifo) }
            print(
                "fifo same-number=\(fifo == r) record=\(uthreads_jacket_descriptor(fifo)) read=\(describe(probe_read(fifo, &byte, 1))) ticks=\(ticks.value)"
            )
            try ticker()
            _ = probe_close(fifo)
        }
    }

case "curl":
    // N user threads each call libcurl's blocking curl_easy_perform against URL at once.
    guard arguments.count >= 3, let n = Int(arguments[1]) else { fail("usage: curl N URL") }
    let url = arguments[2]
    var message = [CChar](repeating: 0, count: 256)
    guard jacket_curl_load(&message, message.count) == 0 else {
        print("skipped=\(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        exit(0)
    }
    let ok = Counter()
    let ticks = Counter()
    let threads = Counter()
    let failures = Box()
    let start = ContinuousClock.now
    inRuntime {
        let ticker = spawn("ticker") {
            while ok.value + failures.lines.count < n {
                try UThread.sleep(for: .milliseconds(1))
                ticks.value += 1
            }
        }
        let transfers = (0..<n).map { _ in
            spawn("curl", stackSize: 256 * 1024) {
                var result = jacket_curl_result()
                jacket_curl_get(url, 30_000, &result)
                if result.code == 0 && result.status == 200 {
                    ok.value += 1
                } else {
                    failures.lines.append(
                        "code \(result.code) status \(result.status): \(withUnsafeBytes(of: result.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })"
                    )
                }
                threads.value = max(threads.value, Int(probe_kernel_threads()))
            }
        }
        for t in transfers { try t() }
        try ticker()
    }
    let elapsed = ContinuousClock.now - start
    print("curl=\(String(cString: jacket_curl_version()))")
    print(
        "transfers=\(n) ok=\(ok.value) failed=\(failures.lines.count) kernel-threads=\(threads.value) ticks=\(ticks.value)"
    )
    print("wall-ms=\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)")
    for f in failures.lines.prefix(5) { print("failure: \(f)") }

default:
    fail("unknown scenario \(arguments.first ?? "(none)")")
}
