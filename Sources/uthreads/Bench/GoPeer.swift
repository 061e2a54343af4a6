// The Go peer in `uthreads bench sync`: the unpinned pair (two M:N threads over unbuffered
// Channels on 2 workers) against Go's goroutine ping-pong at GOMAXPROCS=2, measured in the same
// run, interleaved.
//
// Why interleaved: this machine is a shared VM whose speed drifts by ±50 % in clusters of about
// half a second (the pair's repetitions are bimodal with the same instructions). Two runs timed
// minutes apart and divided in prose compare two moments of the host as much as two runtimes.
// So the bench alternates short repetitions of both — ours, Go, Go, ours, ours, Go, … (ABBA: each
// side goes first in every other pair, so a steady drift favours neither) — and reports the
// median of the per-pair ratios (ours ÷ Go, each pair measured within about a second) beside the
// ratio of the two medians. The JSON keeps every sample of both rows and every per-pair ratio,
// in the order measured (pair i is sample i of each row).
//
// Like for like: both sides are unpinned (the bench's kernel thread and the Go process free on
// every CPU: the sync group's M:N rows run under `BenchPlacement.free`), both are wall time, both
// count the same number of handoffs per repetition (~0.1 s each), both start fresh (a new runtime,
// a new process) and time only their loop after a warm-up. The Go side is a child process,
// `gobench pingpong N 1` (peers/src/go): its figure is Go's own per-handoff time of its timed loop,
// so the process's start-up, its GOMAXPROCS=1 pass (gobench runs that first) and its warm-up are
// not counted. Our side is `SyncBenchmarks.mnChannelPingPongUnpinned`, the row the target names.
//
// Where gobench is found, first that applies: `--go PATH`; the environment variable
// UTHREADS_GOBENCH; `$PEERS_BUILD/gobench` (where peers/run.sh and scripts/compare.sh build it);
// `peers/build/gobench` under the current directory (peers/run.sh's default). A path named by
// the option or the variable that is not an executable file is an error; when none of the default
// places holds one, the Go rows are skipped with the reason on stderr and in the run file's
// `skipped` list. gobench's output that does not hold the GOMAXPROCS=2 sample, a malformed SAMPLE
// line, a failed exit or a child still running at the deadline are errors naming what was wrong.
//
// Rejected: running Go once before or after the whole bench and dividing medians (the drift
// between the two moments is as large as the effect); timing the child process from outside
// (its start-up and the GOMAXPROCS=1 pass would count); linking Go into the CLI (a Go toolchain
// to build the project).
import ArgumentParser
import CUThreads
import Foundation
import Glibc
import UserThreads

enum GoPeer {
    /// The environment variable naming a gobench binary.
    static let environmentVariable = "UTHREADS_GOBENCH"
    /// The sample gobench prints for the ping-pong at GOMAXPROCS=2.
    static let sampleName = "go: goroutine chan ping-pong, GOMAXPROCS=2"
    static let sampleUnit = "ns/handoff"

    /// gobench's path, or why there is none.
    enum Location: Equatable {
        case found(String)
        case missing(reason: String)
    }

    /// Finds gobench (the order is in the header).
    /// - Throws: `ValidationError` when `--go` or UTHREADS_GOBENCH names no executable file.
    static func locate(option: String?, environment: [String: String], directory: String) throws -> Location {
        if let option {
            guard isExecutableFile(option) else { throw ValidationError("--go \(option): not an executable file") }
            return .found(option)
        }
        if let path = environment[environmentVariable], !path.isEmpty {
            guard isExecutableFile(path) else {
                throw ValidationError("\(environmentVariable)=\(path): not an executable file")
            }
            return .found(path)
        }
        var tried: [String] = []
        if let build = environment["PEERS_BUILD"], !build.isEmpty { tried.append(build + "/gobench") }
        tried.append(directory + "/peers/build/gobench")
        if let path = tried.first(where: isExecutableFile) { return .found(path) }
        return .missing(
            reason:
                "no Go peer: pass --go PATH or set \(environmentVariable) (build it: cd peers/src/go && GOFLAGS=-mod=mod GOPROXY=off go build -o PATH .); not at \(tried.joined(separator: ", "))"
        )
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// One line `SAMPLE\tname\tvalue\tunit` of gobench's output.
    struct Sample: Equatable {
        var name: String
        var value: Double
        var unit: String
    }

    /// The SAMPLE lines of gobench's output (other lines are ignored).
    /// - Throws: `GoPeerError` for a SAMPLE line that is not four tab-separated fields with a
    ///   finite, non-negative number.
    static func samples(_ output: String) throws -> [Sample] {
        var out: [Sample] = []
        for (index, line) in output.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where line.hasPrefix("SAMPLE") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 4, fields[0] == "SAMPLE", let value = Double(fields[2]), value.isFinite, value >= 0
            else {
                throw GoPeerError(
                    "gobench output line \(index + 1) is not 'SAMPLE<tab>name<tab>number<tab>unit': '\(line.prefix(200))'"
                )
            }
            out.append(Sample(name: String(fields[1]), value: value, unit: String(fields[3])))
        }
        return out
    }

    /// The GOMAXPROCS=2 ping-pong figure (ns per handoff) of gobench's output: the median of its
    /// samples of that name.
    /// - Throws: `GoPeerError` when there is none, or it is in another unit.
    static func pingPongFigure(_ output: String) throws -> Double {
        let matching = try samples(output).filter { $0.name == sampleName }
        guard !matching.isEmpty else {
            throw GoPeerError(
                "gobench printed no '\(sampleName)' sample (is it peers/src/go's gobench, on a machine of 2 CPUs?); its output began: '\(output.prefix(300).trimmingCharacters(in: .whitespacesAndNewlines))'"
            )
        }
        if let other = matching.first(where: { $0.unit != sampleUnit }) {
            throw GoPeerError("gobench's '\(sampleName)' sample is in '\(other.unit)', not \(sampleUnit)")
        }
        let values = matching.map(\.value).sorted()
        return values[values.count / 2]
    }

    /// Runs `gobench pingpong handoffs 1` and returns Go's own ns per handoff at GOMAXPROCS=2.
    /// - Throws: `GoPeerError` when the child fails, prints no such figure or still runs after
    ///   `timeout` seconds (then it is killed); `UThreadError.system` when it cannot start.
    static func pingPong(_ path: String, handoffs: Int, timeout: Double = 120) throws -> Double {
        let output = try run([path, "pingpong", String(handoffs), "1"], timeout: timeout)
        return try pingPongFigure(output)
    }

    /// Runs `args` to its end with its standard output read, killed at the deadline.
    static func run(_ args: [String], timeout: Double) throws -> String {
        let (pid, out) = try ChildProcess.spawnWithStdoutPipe(args, searchPath: false)
        defer { Glibc.close(out) }
        let deadline = Double(uthreads_monotonic_ns()) + timeout * 1e9
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        while true {
            let left = deadline - Double(uthreads_monotonic_ns())
            guard left > 0 else {
                timedOut = true
                break
            }
            var fds = pollfd(fd: out, events: Int16(POLLIN), revents: 0)
            let ready = poll(&fds, 1, Int32(min(left / 1e6 + 1, 60_000)))
            if ready < 0 && errno != EINTR {
                let code = errno
                kill(pid, SIGKILL)
                while waitpid(pid, nil, 0) < 0 && errno == EINTR {}
                throw UThreadError.system(call: "poll", errno: .init(rawValue: code))
            }
            if ready <= 0 { continue }  // EINTR or no output yet: the deadline is checked at the top
            let n = read(out, &buffer, buffer.count)
            if n > 0 {
                bytes += buffer[0..<n]
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let command = args.joined(separator: " ")
        if timedOut { throw GoPeerError("\(command) still ran after \(Int(timeout)) s: killed") }
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        guard signal == 0 else { throw GoPeerError("\(command) was killed by signal \(signal)") }
        guard code == 0 else { throw GoPeerError("\(command) exited with status \(code)") }
        return String(decoding: bytes, as: UTF8.self)
    }
}

struct GoPeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
