// `uthreads bench jacket`: what the jacket (UserThreadsJacket) adds to a call that does not
// block, against the real call in the same run.
//
// This binary does not link the jacket, so the command re-runs itself with
// LD_PRELOAD=libuthreads-jacket.so (built next to it: `swift build -c release --product
// uthreads-jacket`). In that child, `Glibc.read`/`write` reach the jacket's definitions and the
// C library's own are called through pointers from dlopen("libc.so.6"). Each row is one
// write of a byte to a pipe plus one read of it back (two calls, never blocking).
import ArgumentParser
import Glibc
import UserThreads

struct BenchJacketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jacket",
        abstract: "Cost of a jacketed call that does not block, against the real call (run under LD_PRELOAD).")

    @OptionGroup var options: BenchOptions
    @Option(help: "Only this variant (real, jacketed, outside), e.g. for callgrind.") var only: String?

    func validate() throws {
        if let only, !["real", "jacketed", "outside"].contains(only) {
            throw ValidationError("--only must be real, jacketed or outside, not '\(only)'")
        }
    }

    func run() throws {
        // Without the jacket preloaded, a child with it does the whole run, output included.
        guard JacketBench.preloaded else { return try JacketBench.runPreloaded(options, only: only) }
        try runBench(options) { report in try JacketBench.run(report, options, only: only) }
    }
}

enum JacketBench {
    typealias ReadCall = @convention(c) (Int32, UnsafeMutableRawPointer?, Int) -> Int
    typealias WriteCall = @convention(c) (Int32, UnsafeRawPointer?, Int) -> Int

    /// Whether this process has the jacket (LD_PRELOAD): its install entry point resolves.
    static var preloaded: Bool {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "uthreads_jacket_install") != nil  // RTLD_DEFAULT
    }

    /// The rows, measured in this process (which must have the jacket preloaded).
    static func run(_ report: BenchReport, _ options: BenchOptions, only: String? = nil) throws {
        guard let libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD),
            let r = dlsym(libc, "read"), let w = dlsym(libc, "write")
        else {
            throw UThreadError.invalidArgument("libc.so.6's read and write not found")
        }
        let realRead = unsafeBitCast(r, to: ReadCall.self)
        let realWrite = unsafeBitCast(w, to: WriteCall.self)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw UThreadError.system(call: "pipe", errno: .init(rawValue: errno)) }
        defer {
            Glibc.close(fds[0])
            Glibc.close(fds[1])
        }
        let (rfd, wfd) = (fds[0], fds[1])
        let n = options.scaled(200_000, quick: 1_000)
        /// ns per write+read pair.
        func measure(_ body: () -> Void) -> Double {
            let start = ContinuousClock.now
            body()
            return Double((ContinuousClock.now - start) / .nanoseconds(1)) / Double(n)
        }
        let real = {
            var byte: UInt8 = 1
            for _ in 0..<n {
                _ = realWrite(wfd, &byte, 1)
                _ = realRead(rfd, &byte, 1)
            }
        }
        let jacketed = {
            var byte: UInt8 = 1
            for _ in 0..<n {
                _ = Glibc.write(wfd, &byte, 1)
                _ = Glibc.read(rfd, &byte, 1)
            }
        }
        let group = "jacket"
        let unit = "ns/pair"
        var samples: [String: [Double]] = [:]
        try UThreadRuntime.run {  // starts the jacket: the hooks are handed over here
            for _ in 0..<options.repetitions {
                if only == nil || only == "real" { samples["real", default: []].append(measure(real)) }
                if only == nil || only == "jacketed" { samples["jacketed", default: []].append(measure(jacketed)) }
            }
        }
        if only == nil || only == "outside" {
            for _ in 0..<options.repetitions { samples["outside", default: []].append(measure(jacketed)) }
        }
        if let s = samples["real"] {
            report.add(group: group, name: "pipe write+read, the C library's (user thread)", unit: unit, samples: s)
        }
        if let s = samples["jacketed"] {
            report.add(group: group, name: "pipe write+read, jacketed (user thread)", unit: unit, samples: s)
        }
        if let s = samples["outside"] {
            report.add(group: group, name: "pipe write+read, jacketed (outside a runtime)", unit: unit, samples: s)
        }
        if let real = report.value("pipe write+read, the C library's (user thread)"),
            let jacketed = report.value("pipe write+read, jacketed (user thread)")
        {
            report.add(
                BenchRow(
                    group: group, name: "jacket's cost per call that does not block", value: (jacketed - real) / 2,
                    unit: "ns/call",
                    note: "(jacketed − real) / 2; medians"))
        }
    }

    /// Re-runs this command with the jacket preloaded, its output on ours.
    static func runPreloaded(_ options: BenchOptions, only: String?) throws {
        let library = JacketDemo.libraryPath
        guard access(library, R_OK) == 0 else {
            print("bench jacket: \(library) is not built: swift build -c release --product uthreads-jacket")
            return
        }
        var arguments = ["/proc/self/exe", "bench", "jacket", "--repeat", "\(options.repetitions)"]
        if options.quick { arguments.append("--quick") }
        if options.json { arguments.append("--json") }
        if let only { arguments += ["--only", only] }
        setenv("LD_PRELOAD", library, 1)
        let child = try ChildProcess.spawnWithStdoutPipe(arguments, searchPath: false)
        unsetenv("LD_PRELOAD")
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {  // the child's stdout, byte for byte (its JSON with --json)
            let n = Glibc.read(child.stdout, &buffer, buffer.count)
            if n <= 0 { break }
            _ = buffer.withUnsafeBytes { Glibc.write(1, $0.baseAddress, n) }
        }
        Glibc.close(child.stdout)
        var status: Int32 = 0
        waitpid(child.pid, &status, 0)
    }
}
