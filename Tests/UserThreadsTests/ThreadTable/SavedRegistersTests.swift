import CUThreads
import Foundation
import Testing
@testable import UserThreads

/// The registers in the thread table: each suspended thread's program counter (named), stack
/// pointer and callee-saved registers, read from the frame its switch saved.
@Suite(.timeLimit(.minutes(1))) struct SavedRegistersTests {
    @Test func suspendedThreadsShowTheirSavedFrame() throws {
        let (table, dump) = try ThreadDumpTests.withKnownStates {
            (UThreadRuntime.threadTable(), UThreadRuntime.threadDump())
        }
        func row(_ name: String) throws -> ThreadInfo { try #require(table.threads.first { $0.name == name }) }
        // The running thread's registers are in the CPU: none are claimed.
        #expect(try row("main").registers == nil)
        let names: [String]
        #if arch(x86_64)
            names = ["rbx", "rbp", "r12", "r13", "r14", "r15", "mxcsr", "x87cw"]
            let frameSize: UInt64 = 64
        #else
            names = (19...29).map { "x\($0)" } + (8...15).map { "d\($0)" } + ["fpcr"]
            let frameSize: UInt64 = 0xb0
        #endif
        for name in ["sleeper", "joiner", "fresh"] {
            let t = try row(name)
            let r = try #require(t.registers, "\(name) is suspended: its registers are saved")
            #expect(r.calleeSaved.map(\.name) == names)
            #expect(r.stackPointer == t.savedStackPointer + frameSize)
            #expect(r.stackPointer > t.stack.base && r.stackPointer <= t.stack.base + UInt64(t.stack.size))
            // The program counter is where its backtrace starts.
            let frames = try #require(dump.threads.first { $0.thread.id == t.id }?.backtrace)
            #expect(r.programCounter == frames.first?.address)
            #expect(r.function != nil, "\(name)'s program counter is named")
        }
        // Parked threads resume in the runtime (inside the switch's caller), with a frame
        // pointer inside their own stack; a thread that never ran resumes at the trampoline.
        let sleeperRow = try row("sleeper")
        let sleeper = try #require(sleeperRow.registers)
        let fp = try #require(sleeper.framePointer)
        let stackTop = sleeperRow.stack.base + UInt64(sleeperRow.stack.size)
        #expect(fp > sleeper.stackPointer && fp < stackTop)
        // (Under ThreadSanitizer the switch's caller is the C wrapper that announces the fiber.)
        let caller = sleeper.function ?? "nil"
        #expect(
            caller.contains("UserThreads.") || (Sanitizers.thread && caller.hasPrefix("uthreads_switch_tsan")),
            "\(caller)")
        let fresh = try #require(try row("fresh").registers)
        #expect(
            fresh.programCounter
                == UInt64(
                    UInt(
                        bitPattern: unsafeBitCast(
                            uthreads_trampoline as @convention(c) () -> Void, to: UnsafeRawPointer.self))))
        #expect(fresh.function == "uthreads_trampoline")
    }

    @Test func textbookTableRendersRegistersAndTheCPU() throws {
        let table = try ThreadDumpTests.withKnownStates { UThreadRuntime.threadTable() }
        let text = table.renderRegisters()
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("PC") == true && lines.first?.contains("FUNCTION") == true)
        #expect(lines.contains { $0.contains("main") && $0.contains("in the CPU") })
        #expect(lines.contains { $0.contains("fresh") && $0.contains("uthreads_trampoline") })
        #if arch(x86_64)
            #expect(lines.filter { $0.contains("rbx 0x") && $0.contains("rbp 0x") }.count == 3)
        #endif
        #expect(table.renderRegisters(limit: 1).contains("… 3 more"))
    }

    @Test func tableCommandPrintsRegisters() throws {
        let r = try ChildProcess.uthreads("table", "--registers")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("in the CPU") && r.stdout.contains("FUNCTION"), "\(r.stdout)")
        // M:N: every worker reads the saved frames of the rows it owns, for the merged table.
        let mn = try ChildProcess.uthreads("table", "--workers", "2", "--json")
        let table = try JSONDecoder().decode(ThreadTable.self, from: Data(mn.stdout.utf8))
        let suspended = table.threads.filter { $0.state != .running }
        #expect(Set(suspended.compactMap(\.worker)) == [0, 1])
        #expect(!suspended.isEmpty && suspended.allSatisfy { $0.registers != nil })
        #expect(table.threads.filter { $0.state == .running }.allSatisfy { $0.registers == nil })
        let bad = try ChildProcess.uthreads("table", "--registers", "--json")
        #expect(bad.status != 0 && bad.stderr.contains("--registers is for the text table"))
    }
}

extension SavedRegistersTests {
    @Test(arguments: [
        (
            "static UserThreads.ContextSwitch.jump(from: Swift.UnsafeMutablePointer<__C.uthreads_tcb>, to: Swift.UnsafeMutablePointer<__C.uthreads_tcb>, handoff: Swift.Optional<Swift.UnsafeMutableRawPointer>, tsan: Swift.Bool) -> Swift.Optional<Swift.UnsafeMutableRawPointer> + 307",
            "static UserThreads.ContextSwitch.jump(from:to:handoff:tsan:) + 307"
        ),
        (
            "UserThreads.Scheduler.with<A>(_: Swift.String, _: (A) throws -> ()) throws -> A",
            "UserThreads.Scheduler.with<A>(_:_:)"
        ),
        ("UserThreads.UThread.join() throws -> A + 12", "UserThreads.UThread.join() + 12"),
        (
            "closure #1 (Swift.Int) -> () in UserThreads.f(x: Swift.Int) -> ()",
            "closure #1 (Swift.Int) -> () in UserThreads.f(x: Swift.Int) -> ()"
        ),
        ("uthreads_trampoline", "uthreads_trampoline"),
        ("broken(a: Swift.Int", "broken(a: Swift.Int"),
    ])
    func functionNamesKeepOnlyTheirArgumentLabels(_ full: String, _ short: String) {
        #expect(ThreadTable.argumentLabelsOnly(full) == short)
    }
}
