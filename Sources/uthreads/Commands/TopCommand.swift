// `uthreads top PID|SOCKET`: a runtime's threads, live, like top — states, CPU time, switches,
// wait reasons — read from the runtime's control socket (`Configuration.controlSocket`).
import ArgumentParser
import Foundation
import UserThreads

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Show the user threads of a running program, live: states, CPU, switches, waits.",
        discussion: """
            The program must serve its table: UThreadRuntime.Configuration.controlSocket. A PID \
            means the socket /tmp/uthreads-PID.sock (controlSocket = "/tmp/uthreads-%p.sock").
            """)

    enum SortKey: String, ExpressibleByArgument, CaseIterable {
        case cpu, switches, id, name, state, wait
    }

    @Argument(help: "A process id, or the path of a control socket.")
    var target: String

    @Option(help: "Sort by: \(SortKey.allCases.map(\.rawValue).joined(separator: ", ")).")
    var sort: SortKey = .cpu

    @Option(help: "Seconds between refreshes.")
    var interval: Double = 1

    @Option(name: [.customShort("n"), .long], help: "Refresh this many times, then exit (default: until interrupted).")
    var iterations: Int?

    @Flag(help: "Print one table and exit (no screen clearing).")
    var once = false

    @Option(help: "Rows shown at most.")
    var limit = 50

    var socketPath: String {
        target.allSatisfy(\.isNumber) ? "/tmp/uthreads-\(target).sock" : target
    }

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
    }

    func run() throws {
        let count = once ? 1 : iterations
        let clear = !once && isatty(1) != 0
        var previous: ThreadTable?
        var done = 0
        while count == nil || done < count! {
            let table = try Self.fetch(socketPath)
            // Written unbuffered: a refresh must show at once, on a terminal or a pipe.
            let screen = (clear ? "\u{1B}[H\u{1B}[2J" : "") + render(table, previous: previous) + "\n"
            FileHandle.standardOutput.write(Data(screen.utf8))
            previous = table
            done += 1
            if count == nil || done < count! { usleep(UInt32(interval * 1_000_000)) }
        }
    }

    /// Asks the control socket at `path` for its table.
    static func fetch(_ path: String, request: String = "table") throws -> ThreadTable {
        try JSONDecoder().decode(ThreadTable.self, from: ask(path, request: request))
    }

    /// Sends one request line and reads the answer to the end.
    static func ask(_ path: String, request: String) throws -> Data {
        do {
            return Data(try UThreadRuntime.queryControlSocket(path, request: request))
        } catch UThreadError.system(let call, let errno) where call.hasPrefix("connect") {
            // Not a ValidationError: the arguments were fine, and that would add a usage text.
            throw CannotConnect(
                description: "cannot connect to \(path): \(errno). Does the program set Configuration.controlSocket?")
        }
    }

    /// A control socket nobody serves: "Error: …" and exit status 1.
    struct CannotConnect: Error, CustomStringConvertible {
        let description: String
    }

    func render(_ table: ThreadTable, previous: ThreadTable?) -> String {
        let elapsed = previous.map { table.takenAtSeconds - $0.takenAtSeconds } ?? 0
        let before = Dictionary((previous?.threads ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func cpuPercent(_ t: ThreadInfo) -> Double? {
            guard elapsed > 0, let p = before[t.id] else { return nil }
            return max(0, (t.cpuSeconds - p.cpuSeconds) / elapsed * 100)
        }
        let counts = table.countsByState
        let states = ThreadState.allCases.compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }.joined(
            separator: ", ")
        var rate = ""
        if elapsed > 0, let p = previous {
            rate = String(format: " (%.0f/s)", Double(table.switches &- p.switches) / elapsed)
        }
        var out = "uthreads top — \(socketPath) — \(String(format: "%.1f", table.takenAtSeconds)) s after start\n"
        out +=
            "threads: \(table.threads.count) (\(states.isEmpty ? "none" : states)); switches \(table.switches)\(rate); spawned \(table.spawned)"
        if let workers = table.workers { out += "; \(workers) worker\(workers == 1 ? "" : "s")" }
        if let missing = table.unansweredWorkers, !missing.isEmpty {
            out +=
                " (no answer from worker\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")))"
        }
        out += "\n\n"
        let sorted = table.threads.sorted { a, b in
            switch sort {
            case .cpu: return (cpuPercent(a) ?? a.cpuSeconds, a.id) > (cpuPercent(b) ?? b.cpuSeconds, b.id)
            case .switches: return (a.switches, b.id) > (b.switches, a.id)
            case .id: return a.id < b.id
            case .name: return (a.name, a.id) < (b.name, b.id)
            case .state: return (a.state.rawValue, a.id) < (b.state.rawValue, b.id)
            case .wait: return (a.waitingSeconds ?? -1, b.id) > (b.waitingSeconds ?? -1, a.id)
            }
        }
        // M:N: which worker (kernel thread) runs each thread, after its state.
        let showWorker = table.threads.contains { $0.worker != nil }
        var header = ["TID", "NAME", "STATE", "CPU%", "CPU ms", "SWITCHES", "WAIT"]
        if showWorker { header.insert("WORKER", at: 3) }
        let rightAligned: Set<String> = ["TID", "WORKER", "CPU%", "CPU ms", "SWITCHES"]
        var rows: [[String]] = []
        for t in sorted.prefix(limit) {
            var wait = t.waitReason.map { "\($0)" } ?? ""
            if let w = t.waitingSeconds { wait += String(format: " (%.1f ms)", w * 1000) }
            if t.isCancelled { wait += wait.isEmpty ? "cancelled" : ", cancelled" }
            var row = [
                "\(t.id.rawValue)", t.name.isEmpty ? "-" : t.name, t.state.rawValue,
                cpuPercent(t).map { String(format: "%.1f", $0) } ?? "-",
                String(format: "%.3f", t.cpuSeconds * 1000), "\(t.switches)", wait,
            ]
            if showWorker { row.insert(t.worker.map { "\($0)" } ?? "-", at: 3) }
            rows.append(row)
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i == cells.count - 1 ? c : (rightAligned.contains(header[i]) ? pad + c : c + pad)
            }.joined(separator: "  ")
        }
        out += line(header) + "\n"
        for r in rows { out += line(r) + "\n" }
        if sorted.count > limit { out += "… \(sorted.count - limit) more\n" }
        return out
    }
}
