// `uthreads table --kernel`: the runtime's thread table next to the kernel's thread table of
// the same process at the same moment. Under the M:1 runtime the user table lists every user
// thread (1,000 parked ones by default) while the kernel, reading /proc/self/task, sees one
// thread running the lot: "the kernel sees an ordinary single-threaded process".
import Foundation
import UserThreads

enum TableKernelView {
    struct Both: Codable {
        /// The JSON format's version, as in the user table inside.
        var version = ThreadTable.formatVersion
        var user: ThreadTable
        var kernel: KernelThreadTable
    }

    /// Spawns `parked` user threads that park (sleeping), plus three workers mid-run, and takes
    /// both tables while they exist.
    static func snapshot(parked: Int) throws -> Both {
        try UThreadRuntime.run {
            let sleepers = (0..<parked).map { i in
                UThread(name: "parked \(i)") { try? UThread.sleep(for: .seconds(3600)) }
            }
            let workers = (1...3).map { i in
                UThread(name: "worker \(i)") { for _ in 0..<3 { UThread.yield() } }
            }
            UThread.yield()  // FIFO: each new thread runs once; the sleepers park
            let both = Both(user: UThreadRuntime.threadTable(), kernel: KernelThreadTable.current())
            for s in sleepers { s.cancel() }
            for s in sleepers { try s.join() }
            for w in workers { try w.join() }
            return both
        }
    }

    static func run(parked: Int, json: Bool) throws {
        let both = try snapshot(parked: parked)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(both), as: UTF8.self))
            return
        }
        print(render(both))
    }

    /// Two columns: a compact user table (first rows) and the kernel's table.
    static func render(_ both: Both, rows: Int = 12) -> String {
        let user = both.user
        var left = ["USER THREADS (the runtime's table)", "TID   NAME          STATE     WAIT"]
        for t in user.threads.prefix(rows) {
            let wait = t.waitReason.map { "\($0)" } ?? ""
            left.append(
                String(t.id.rawValue).padding(6) + (t.name.isEmpty ? "-" : t.name).padding(14)
                    + t.state.rawValue.padding(10)
                    + String(wait.prefix(22)))
        }
        if user.threads.count > rows { left.append("… \(user.threads.count - rows) more") }
        let counts = user.countsByState
        left.append(
            "\(user.threads.count) user threads: "
                + ThreadState.allCases.compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }.joined(
                    separator: ", "))
        var right = ["KERNEL THREADS (/proc/self/task)"]
        right += both.kernel.render().split(separator: "\n").map(String.init)
        let width = max(56, left.map(\.count).max() ?? 0) + 2
        var lines: [String] = []
        for i in 0..<max(left.count, right.count) {
            let l = i < left.count ? left[i] : ""
            let r = i < right.count ? right[i] : ""
            lines.append(l.padding(width) + "│ " + r)
        }
        let k = both.kernel.threads.count
        lines.append("")
        lines.append(
            "The runtime schedules \(user.threads.count) user threads; the kernel sees \(k) thread\(k == 1 ? "" : "s") in this process."
        )
        lines.append("Every user thread runs on the kernel thread that called UThreadRuntime.run; parking one is not a")
        lines.append(
            "system call, so its voluntary switches do not count user-thread switches (\(user.switches) so far).")
        return lines.joined(separator: "\n")
    }
}
