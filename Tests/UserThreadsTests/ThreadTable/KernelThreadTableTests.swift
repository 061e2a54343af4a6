// The kernel's thread table: /proc/self/task/<tid>/stat and status, parsed.
import Glibc
import Synchronization
import Testing
import UserThreads

@Suite(.timeLimit(.minutes(1))) struct KernelThreadTableTests {
    static let status = """
        Name:\tworker (1)
        State:\tS (sleeping)
        Tgid:\t4242
        voluntary_ctxt_switches:\t17
        nonvoluntary_ctxt_switches:\t3

        """

    @Test func parsesStatWithSpacesAndParenthesesInTheName() throws {
        // Fields after the last ')': 3 state … 14 utime 15 stime … 39 processor.
        var fields = ["S"] + (4...52).map { String($0) }
        fields[14 - 3] = "250"  // utime, ticks
        fields[15 - 3] = "50"  // stime
        fields[39 - 3] = "1"  // processor
        let stat = "4243 (worker (1) x) " + fields.joined(separator: " ") + "\n"
        let info = try #require(KernelThreadInfo.parse(stat: stat, status: Self.status, ticksPerSecond: 100))
        #expect(info.tid == 4243)
        #expect(info.name == "worker (1) x")
        #expect(info.state == "S")
        #expect(info.userSeconds == 2.5)
        #expect(info.systemSeconds == 0.5)
        #expect(info.cpuSeconds == 3.0)
        #expect(info.voluntarySwitches == 17)
        #expect(info.involuntarySwitches == 3)
        #expect(info.processor == 1)
    }

    @Test func rejectsMalformedStat() {
        #expect(KernelThreadInfo.parse(stat: "", status: "") == nil)
        #expect(KernelThreadInfo.parse(stat: "12 (x S", status: "") == nil)
        #expect(KernelThreadInfo.parse(stat: "12 (x) S 1 2", status: "") == nil)  // no utime
        let short = "12 (x) R" + String(repeating: " 0", count: 13)  // up to stime, no processor
        #expect(KernelThreadInfo.parse(stat: short, status: "")?.processor == -1)
    }

    @Test func liveTableListsThisThreadAndAPthreadOfTheKernelBackend() throws {
        let me = KernelThreadTable.callingThreadID
        let table = KernelThreadTable.current()
        let mine = try #require(table.threads.first { $0.tid == me })
        #expect(mine.state == "R")  // it is reading the table
        #expect(table.render().contains("\(me)"))

        try UThreadRuntime.run(backend: .kernelThreads) { b throws in
            let release = try b.makeChannel(of: Int.self)
            let tids = try b.makeChannel(of: Int.self, capacity: 1)
            let t = b.spawn {
                try tids.send(KernelThreadTable.callingThreadID)
                _ = try release.receive()
            }
            let received = try tids.receive()
            let tid = try #require(received)
            #expect(KernelThreadTable.current().threads.contains { $0.tid == tid })
            release.close()
            try t.join()
        }
    }
}
