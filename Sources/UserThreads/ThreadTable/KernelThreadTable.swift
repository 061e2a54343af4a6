// Layer 4 (beside the user thread table): the kernel's own thread table for this process, read
// from /proc/self/task/<tid>/stat and status. Under the M:1 runtime it lists one kernel thread
// per runtime however many user threads that runtime holds: "the kernel sees an ordinary
// single-threaded process".
import Glibc

/// One kernel thread (task) of this process as /proc describes it.
public struct KernelThreadInfo: Sendable, Codable, Hashable {
    /// The kernel's thread id (TID).
    public var tid: Int
    /// The thread's name (`comm`, at most 15 bytes; set with pthread_setname_np).
    public var name: String
    /// The one-letter state: R running, S sleeping, D disk sleep, T stopped, Z zombie, …
    public var state: String
    /// CPU time in user mode and in kernel mode, in seconds.
    public var userSeconds: Double
    /// CPU time in kernel mode (system calls, page faults), in seconds.
    public var systemSeconds: Double
    /// Context switches the thread asked for (blocking) and that were forced on it (preemption).
    public var voluntarySwitches: Int
    /// Context switches forced on the thread (preemption).
    public var involuntarySwitches: Int
    /// The CPU it last ran on.
    public var processor: Int

    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double { userSeconds + systemSeconds }

    /// A row with the given fields (`parse` builds them from /proc).
    public init(
        tid: Int, name: String, state: String, userSeconds: Double, systemSeconds: Double,
        voluntarySwitches: Int, involuntarySwitches: Int, processor: Int
    ) {
        self.tid = tid
        self.name = name
        self.state = state
        self.userSeconds = userSeconds
        self.systemSeconds = systemSeconds
        self.voluntarySwitches = voluntarySwitches
        self.involuntarySwitches = involuntarySwitches
        self.processor = processor
    }

    /// Parses the text of /proc/<pid>/task/<tid>/stat and …/status. `ticksPerSecond` is
    /// sysconf(_SC_CLK_TCK). Returns nil if `stat` is malformed; missing status lines read as 0.
    ///
    /// stat is "tid (comm) state ppid …": comm may contain spaces and parentheses, so the fields
    /// are counted from the *last* ')'. After it, field 3 is the state, 14 utime, 15 stime (in
    /// clock ticks), 39 processor (proc(5), 1-based).
    public static func parse(stat: String, status: String, ticksPerSecond: Int = 100) -> KernelThreadInfo? {
        guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"), open < close,
            let tid = Int(stat[..<open].trimmingSpaces())
        else { return nil }
        let name = String(stat[stat.index(after: open)..<close])
        let rest = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // rest[0] is field 3 (state); field n is rest[n - 3].
        func field(_ n: Int) -> Substring? { n - 3 < rest.count ? rest[n - 3] : nil }
        guard let state = field(3), let utime = field(14).flatMap({ Double($0) }),
            let stime = field(15).flatMap({ Double($0) })
        else { return nil }
        let processor = field(39).flatMap { Int($0.trimmingSpaces()) } ?? -1
        var voluntary = 0
        var involuntary = 0
        for line in status.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = Int(parts[1].trimmingSpaces()) ?? 0
            switch parts[0] {
            case "voluntary_ctxt_switches": voluntary = value
            case "nonvoluntary_ctxt_switches": involuntary = value
            default: break
            }
        }
        let hz = Double(max(1, ticksPerSecond))
        return KernelThreadInfo(
            tid: tid, name: name, state: String(state), userSeconds: utime / hz, systemSeconds: stime / hz,
            voluntarySwitches: voluntary, involuntarySwitches: involuntary, processor: processor)
    }
}

/// The kernel's thread table of this process.
public struct KernelThreadTable: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The kernel threads, by TID.
    public var threads: [KernelThreadInfo]

    /// A table of the given rows (`current()` reads the live one).
    public init(threads: [KernelThreadInfo]) { self.threads = threads }

    /// Reads /proc/self/task now (any kernel thread may call it; no runtime needed). Threads that
    /// exit while it reads are skipped.
    public static func current() -> KernelThreadTable {
        let hz = Int(sysconf(Int32(_SC_CLK_TCK)))
        var threads: [KernelThreadInfo] = []
        guard let dir = opendir("/proc/self/task") else { return KernelThreadTable(threads: []) }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let tid = Int(name) else { continue }
            guard let stat = readSmallFile("/proc/self/task/\(tid)/stat"),
                let status = readSmallFile("/proc/self/task/\(tid)/status"),
                let info = KernelThreadInfo.parse(stat: stat, status: status, ticksPerSecond: hz)
            else { continue }
            threads.append(info)
        }
        threads.sort { $0.tid < $1.tid }
        return KernelThreadTable(threads: threads)
    }

    /// ps-like text: one line per kernel thread.
    public func render(limit: Int = .max) -> String {
        var lines = ["KERNEL TID  NAME             S     CPU(s)   VOLUNTARY  INVOLUNTARY  LAST-CPU"]
        for t in threads.prefix(limit) {
            lines.append(
                String(t.tid).leftPad(10) + "  " + t.name.rightPad(15) + "  " + t.state.rightPad(1) + "  "
                    + formatSeconds(t.cpuSeconds).leftPad(9) + "  " + String(t.voluntarySwitches).leftPad(10) + "  "
                    + String(t.involuntarySwitches).leftPad(11) + "  " + String(t.processor).leftPad(8))
        }
        if threads.count > limit { lines.append("… \(threads.count - limit) more") }
        lines.append("\(threads.count) kernel thread\(threads.count == 1 ? "" : "s") (read from /proc/self/task)")
        return lines.joined(separator: "\n")
    }

    public var description: String { render() }

    /// The calling kernel thread's TID (from the /proc/thread-self link, "<pid>/task/<tid>"),
    /// or -1 if /proc is not mounted.
    public static var callingThreadID: Int {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard n > 0 else { return -1 }
        let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return link.split(separator: "/").last.flatMap { Int($0) } ?? -1
    }

    private func formatSeconds(_ s: Double) -> String {
        let ms = Int((s * 1000).rounded())
        let frac = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }
}

/// Reads a /proc file (their size is unknown until read) of at most 64 KiB.
private func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 65536 {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace })
        else {
            return ""
        }
        return String(self[first...last])
    }
    fileprivate func leftPad(_ n: Int) -> String {
        count >= n ? String(self) : String(repeating: " ", count: n - count) + self
    }
    fileprivate func rightPad(_ n: Int) -> String {
        count >= n ? String(self) : self + String(repeating: " ", count: n - count)
    }
}
