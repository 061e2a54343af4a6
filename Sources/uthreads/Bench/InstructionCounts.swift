// `uthreads bench --instructions`: instructions per operation, counted by valgrind's callgrind.
//
// Time on a shared 2-CPU machine moves ±50% from run to run, so a time cannot guard a
// regression; an instruction count can: it is the same for the same binary and input whatever
// else the machine does. For each operation the CLI runs `uthreads bench loop OP N` under
// callgrind twice, with N1 and N2 = 2·N1 operations, and reports (I(N2) − I(N1)) / (N2 − N1):
// start-up, runtime set-up and teardown are the same in both runs and cancel out, as do warm-up
// loops. The loops go through the public API, as an application would.
//
// Rejected:
//   * hardware counters (`perf stat -e instructions`): not available in this VM, and they count
//     the kernel's share and interrupts too;
//   * callgrind's --toggle-collect on one function: the figure would leave out the inlined
//     and out-of-line helpers an operation really runs, and depends on symbol names;
//   * cachegrind: the same counts, but callgrind's per-function profile is what one wants next
//     when a ceiling is crossed (the failure prints the command that writes one).
//
// valgrind reads the binary's DWARF, and Swift's debug info made it fail; the binary is copied
// and `strip --strip-debug`ped first. The ceilings (bench/ceilings.json) are per build
// configuration: a debug build runs several times the instructions of a release build.
import ArgumentParser
import Foundation
import Glibc
import UserThreads

enum InstructionCounts {
    /// One counted operation: the loop's name for `bench loop` and what one unit is.
    struct Operation {
        var key: String
        var name: String
        var unit: String
    }

    static let operations = [
        Operation(key: "yield", name: "yield switch", unit: "instructions/switch"),
        Operation(key: "spawn", name: "spawn+run+join", unit: "instructions/thread"),
        Operation(key: "channel", name: "channel handoff", unit: "instructions/handoff"),
        Operation(key: "mutex", name: "mutex lock+unlock, uncontended", unit: "instructions/pair"),
        Operation(key: "checkpoint", name: "checkpoint()", unit: "instructions/call"),
    ]

    /// The loop `bench loop OP COUNT` runs: COUNT operations of OP through the public API.
    static func loop(_ key: String, count: Int) throws {
        switch key {
        case "yield":
            try UThreadRuntime.run {
                let rounds = count / 2
                let partner = UThread { for _ in 0..<rounds { UThread.yield() } }
                for _ in 0..<rounds { UThread.yield() }
                try partner.join()
            }
        case "spawn":
            try UThreadRuntime.run {
                for _ in 0..<1000 { try UThread {}.join() }  // the stack pool warm
                for _ in 0..<count { try UThread {}.join() }
            }
        case "channel":
            try UThreadRuntime.run {
                try pingPong(count) { body in
                    let echo = UThread(body)
                    return { try echo.join() }
                }
            }
        case "mutex":
            try UThreadRuntime.run {
                let m = UMutex()
                var counter = 0
                for _ in 0..<count {
                    try m.lock()
                    counter &+= 1
                    try m.unlock()
                }
                precondition(counter == count)
            }
        case "checkpoint":
            try UThreadRuntime.run {
                for _ in 0..<count { UThread.checkpoint() }
            }
        case "waitgroup":  // not measured by --instructions: add+done pairs on one runtime's own thread
            try UThreadRuntime.run {
                let g = UWaitGroup()
                for _ in 0..<count {
                    try g.add()
                    try g.done()
                }
                precondition(g.pending == 0)
            }
        case "channel-shared":  // not measured by --instructions: a profile of the shared path
            // Two workers, so the channel takes its path for several kernel threads; both
            // threads on worker 0, so no handoff crosses them.
            try UThreadRuntime.run(workers: 2) {
                UThread.pin()
                try pingPong(count) { body in
                    do {
                        let echo = try UThread.spawn(onWorker: 0, body)
                        return { try echo.join() }
                    } catch {
                        return { throw error }
                    }
                }
            }
        case "channel-pair":  // not measured by --instructions: the unpinned pair of `bench sync`
            // Two workers, two unpinned threads (the runtime places them: they come together
            // on one worker within the first handoffs), as the "two unpinned threads" row.
            try UThreadRuntime.run(workers: 2) {
                let pinger = UThread {
                    try pingPong(count) { body in
                        let echo = UThread(body)
                        return { try echo.join() }
                    }
                }
                try pinger.join()
            }
        case "spawn-batch", "spawn-batch-2":  // not measured by --instructions: profiles of spawn+join in
            // batches of 1000 (`bench parallel --only spawn`) on one worker and on two
            try UThreadRuntime.run(workers: key == "spawn-batch" ? 1 : 2) {
                func batches(_ n: Int) throws {
                    var done = 0
                    while done < n {
                        let threads = (0..<min(1000, n - done)).map { _ in UThread {} }
                        for t in threads { try t.join() }
                        done += threads.count
                    }
                }
                try batches(1000)  // the stack pool warm
                try batches(count)
            }
        default:
            throw ValidationError("unknown loop '\(key)' (loops: \(operations.map(\.key).joined(separator: ", ")))")
        }
    }

    /// `count` handoffs over two unbuffered channels between the caller and an echo thread that
    /// `start` starts (returning its join).
    static func pingPong(
        _ count: Int, start: (@escaping @Sendable () throws -> Void) -> () throws -> Void
    ) throws {
        let ping = Channel<Int>()
        let pong = Channel<Int>()
        let join = start { while let v = try ping.receive() { try pong.send(v) } }
        for i in 0..<count / 2 {
            try ping.send(i)
            _ = try pong.receive()
        }
        ping.close()
        try join()
    }

    /// The ceilings file: per build configuration, the most instructions each operation may take.
    struct Ceilings: Codable {
        /// Allowed excess over a ceiling before the check fails (0.10 = 10%).
        var margin: Double
        var ceilings: [String: [String: Double]]
    }

    static func run(_ options: BenchOptions) throws {
        let tools = ["valgrind", "strip"].filter { BenchRun.shell(["sh", "-c", "command -v \($0)"]) == nil }
        guard tools.isEmpty else {
            throw ValidationError(
                "--instructions needs \(tools.joined(separator: " and ")) (apt-get install valgrind binutils)")
        }
        var run = BenchRun.current(
            command: "uthreads " + CommandLine.arguments.dropFirst().joined(separator: " "),
            quick: options.quick, repetitions: 1, rows: [])
        let binary = try strippedCopy()
        defer { unlink(binary) }
        let n1 = options.scaled(20_000, quick: 2_000)
        let n2 = 2 * n1
        let build = BenchRun.buildConfiguration()
        print("== instructions per operation: callgrind (valgrind), (I(\(n2)) - I(\(n1))) / \(n2 - n1); \(build) build")
        let report = BenchReport()
        for op in operations {
            progress("instructions: \(op.name)")
            let a = try collected(binary, op.key, n1)
            let b = try collected(binary, op.key, n2)
            report.add(
                BenchRow(group: "instructions", name: op.name, value: Double(b - a) / Double(n2 - n1), unit: op.unit))
        }
        var failed: [String] = []
        if let path = options.ceilings {
            let file = try JSONDecoder().decode(Ceilings.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            guard let limits = file.ceilings[build] else {
                throw ValidationError("\(path) has no ceilings for a \(build) build")
            }
            print("== ceilings from \(path) (\(build)), margin \(Int(file.margin * 100))%")
            for row in report.rows {
                guard let ceiling = limits[row.name] else {
                    print("   \(row.name): no ceiling")
                    continue
                }
                let limit = ceiling * (1 + file.margin)
                let verdict = row.value <= limit ? "ok" : "REGRESSION"
                print(
                    "   \(row.name.padding(32)) \(BenchReport.fmt(row.value).leftPadding(8))  ceiling \(BenchReport.fmt(ceiling)), fails above \(BenchReport.fmt(limit))  \(verdict)"
                )
                if row.value > limit { failed.append(row.name) }
            }
        }
        if options.json {
            run.rows = report.rows
            run.clock =
                "none: instructions counted by valgrind's callgrind, (I(\(n2)) - I(\(n1))) / \(n2 - n1) per operation"
            BenchOutput.writeJSON(try run.encoded())
        }
        if !failed.isEmpty {
            print("== more than the margin above the ceiling: \(failed.joined(separator: ", "))")
            print(
                "   profile one: valgrind --tool=callgrind --callgrind-out-file=cg.out <stripped uthreads> bench loop OP \(n2); callgrind_annotate cg.out"
            )
            throw ExitCode(1)
        }
    }

    /// A copy of this executable without debug info, in the temporary directory.
    static func strippedCopy() throws -> String {
        let path = "/tmp/uthreads-callgrind-\(getpid())"
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        guard BenchRun.shell(["strip", "--strip-debug", "-o", path, me]) != nil else {
            throw ValidationError("strip --strip-debug of \(me) failed")
        }
        return path
    }

    /// The instructions callgrind counted for `binary bench loop key count` (the whole process).
    static func collected(_ binary: String, _ key: String, _ count: Int) throws -> Int {
        let script =
            "valgrind --tool=callgrind --callgrind-out-file=/dev/null '\(binary)' bench loop \(key) \(count) 2>&1 >/dev/null"
        guard let output = BenchRun.shell(["sh", "-c", script]) else {
            throw ValidationError("valgrind failed on bench loop \(key) \(count)")
        }
        for line in output.split(separator: "\n") where line.contains("Collected :") {
            if let n = Int(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) { return n }
        }
        throw ValidationError("no 'Collected :' line from callgrind:\n\(output)")
    }
}

/// `uthreads bench loop OP COUNT`: the loop `--instructions` counts (hidden; run by callgrind).
struct BenchLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loop", abstract: "Run COUNT operations of one kind (what --instructions counts).",
        shouldDisplay: false)
    @Argument(help: "yield | spawn | channel | mutex | checkpoint")
    var operation: String
    @Argument(help: "How many operations.")
    var count: Int

    func validate() throws {
        guard count >= 0 else { throw ValidationError("COUNT must be ≥ 0") }
        guard
            InstructionCounts.operations.contains(where: { $0.key == operation })
                || ["channel-shared", "channel-pair", "spawn-batch", "spawn-batch-2", "waitgroup"].contains(operation)
        else {
            throw ValidationError(
                "unknown loop '\(operation)' (loops: \(InstructionCounts.operations.map(\.key).joined(separator: ", ")))"
            )
        }
    }

    func run() throws { try InstructionCounts.loop(operation, count: count) }
}
