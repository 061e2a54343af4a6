// `uthreads demo jacket`: a C library this project did not write (libcurl), called from many
// user threads, without and with the jacket (UserThreadsJacket, preloaded).
import ArgumentParser
import CJacketCurl
import Glibc
import UserThreads

struct DemoJacketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jacket",
        abstract: "libcurl's blocking curl_easy_perform from many user threads, without and with the jacket.",
        discussion: """
            Starts `uthreads serve --delay-ms D` (each answer D ms late) on 127.0.0.1 and calls libcurl's \
            blocking curl_easy_perform from user threads of one runtime on one kernel thread, with a ticker \
            thread. Without the jacket each call blocks the kernel thread: the transfers run one after \
            another and the ticker stops. With the jacket (this binary re-run with \
            LD_PRELOAD=libuthreads-jacket.so, built next to it by `swift build --product uthreads-jacket`) \
            each call parks its user thread: the transfers overlap, the wall time is about one answer's \
            delay, and the ticker keeps ticking. libcurl is loaded at run time (libcurl.so.4).
            """)

    @Option(help: "Transfers (user threads) with the jacket.") var transfers = 1000
    @Option(help: "Transfers without the jacket (they run one after another).") var sequential = 10
    @Option(help: "Milliseconds the server waits before each answer.") var delayMs = 100
    @Option(help: .hidden) var url: String?

    func validate() throws {
        guard (1...10_000).contains(transfers), (1...1000).contains(sequential) else {
            throw ValidationError("--transfers must be 1...10000 and --sequential 1...1000")
        }
        guard (0...10_000).contains(delayMs) else { throw ValidationError("--delay-ms must be 0...10000") }
    }

    func run() throws {
        var message = [CChar](repeating: 0, count: 256)
        guard jacket_curl_load(&message, message.count) == 0 else {
            print(
                "demo jacket: \(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
            )
            return
        }
        if let url {  // the child, with the jacket preloaded
            print(try JacketDemo.transfers(transfers, url: url).line)
            return
        }
        _ = IO.raiseDescriptorLimit()
        let (server, port) = try ChildProcess.startServe(["--delay-ms", "\(delayMs)"])
        defer {
            kill(server, SIGTERM)
            var status: Int32 = 0
            waitpid(server, &status, 0)
        }
        let url = "http://127.0.0.1:\(port)/"
        print(
            "\(String(cString: jacket_curl_version()).split(separator: " ").first ?? "libcurl") against uthreads serve at \(url) (each answer \(delayMs) ms late); one runtime, workers: 1\n"
        )
        print(
            "1. Without the jacket: \(sequential) user threads call curl_easy_perform; each call blocks the kernel thread"
        )
        print(try JacketDemo.transfers(sequential, url: url).line)
        fflush(nil)
        let library = JacketDemo.libraryPath
        print("\n2. With the jacket (LD_PRELOAD=\(library)): \(transfers) user threads")
        guard access(library, R_OK) == 0 else {
            print("   \(library) is not built: swift build -c release --product uthreads-jacket, then run this again")
            return
        }
        setenv("LD_PRELOAD", library, 1)
        let spawned = try ChildProcess.spawnWithStdoutPipe(
            ["/proc/self/exe", "demo", "jacket", "--transfers", "\(transfers)", "--url", url], searchPath: false)
        unsetenv("LD_PRELOAD")
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(spawned.stdout, &buffer, buffer.count)
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        Glibc.close(spawned.stdout)
        var status: Int32 = 0
        waitpid(spawned.pid, &status, 0)
        print(String(decoding: output, as: UTF8.self), terminator: "")
    }
}

/// The demo's run, shared by the parent (without the jacket) and the preloaded child.
enum JacketDemo {
    /// libuthreads-jacket.so next to this executable.
    static var libraryPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "uthreads"
        let dir = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return dir + "/libuthreads-jacket.so"
    }

    /// What one run saw.
    struct Outcome {
        var ok = 0, failed = 0, ticks = 0, kernelThreads = 0
        var milliseconds = 0
        var jacketed = false
        var firstError = ""

        var line: String {
            var s =
                "   \(ok)/\(ok + failed) transfers in \(milliseconds) ms; ticker ticked \(ticks) times (every 10 ms); kernel threads: \(kernelThreads)"
            s += jacketed ? " — the calls overlapped" : " — one after another"
            if !firstError.isEmpty { s += "\n   first error: \(firstError)" }
            return s
        }
    }

    /// `n` user threads each make one blocking libcurl transfer of `url`, with a ticker.
    static func transfers(_ n: Int, url: String) throws -> Outcome {
        var outcome = Outcome()
        // RTLD_DEFAULT
        outcome.jacketed = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "uthreads_jacket_install") != nil
        let start = ContinuousClock.now
        try UThreadRuntime.run {
            var finished = 0
            let ticker = UThread.local(name: "ticker") {
                while finished < n {
                    try UThread.sleep(for: .milliseconds(10))
                    outcome.ticks += 1
                }
            }
            let threads = (0..<n).map { _ in
                UThread.local(name: "curl", stackSize: 256 * 1024) {
                    var result = jacket_curl_result()
                    jacket_curl_get(url, 60_000, &result)
                    if result.code == 0 && result.status == 200 {
                        outcome.ok += 1
                    } else {
                        outcome.failed += 1
                        if outcome.firstError.isEmpty {
                            outcome.firstError = withUnsafeBytes(of: result.error) {
                                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                            }
                        }
                    }
                    outcome.kernelThreads = max(outcome.kernelThreads, kernelThreadCount())
                    finished += 1
                }
            }
            for t in threads { try t.join() }
            try ticker.join()
        }
        outcome.milliseconds = Int((ContinuousClock.now - start) / .milliseconds(1))
        return outcome
    }
}
