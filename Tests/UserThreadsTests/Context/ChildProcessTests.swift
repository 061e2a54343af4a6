import Foundation
import Testing

/// Scenarios that crash on purpose or need a process of their own.
@Suite(.timeLimit(.minutes(1))) struct ChildProcessTests {
    @Test func guardPageOverflowIsReported() throws {
        let r = try ChildProcess.uthreads("selftest", "overflow")
        #expect(r.crashed || r.status != 0)
        #expect(r.stderr.contains("uthreads: stack overflow in user thread #"))
        #expect(r.stderr.contains("\"deep-recursion\""))
        #expect(r.stderr.contains("stack 65536 bytes"))
        #expect(r.stderr.contains("guard page"))
    }

    @Test func denseCanaryIsReported() throws {
        let r = try ChildProcess.uthreads("selftest", "canary")
        #expect(r.crashed || r.status != 0)
        #expect(r.stderr.contains("\"smasher\""))
        #expect(r.stderr.contains("canary"))
    }

    @Test func misuseOutsideARuntimeStopsWithAClearMessage() throws {
        let r = try ChildProcess.uthreads("selftest", "misuse")
        #expect(r.crashed || r.status != 0)
        #expect(r.stderr.contains("UThread.current was called outside a user thread"))
    }

    /// A channel iterated outside a runtime stops with the error `receive()` throws there (the
    /// loop used to end at once, as if the channel were closed and empty).
    @Test func iteratingAChannelOutsideARuntimeStopsWithTheError() throws {
        let r = try ChildProcess.uthreads("selftest", "misuse", "iterate")
        #expect(r.crashed || r.status != 0)
        #expect(!r.stdout.contains("ended silently"))
        #expect(
            r.stderr.contains(
                "iterating channel 'jobs': invalid argument: Channel.receive must be called on a user thread"),
            "\(r.stderr)")
    }

    /// The loop the instruction counts are taken from (docs/BENCHMARKS.md), one at a time and
    /// in batches; a bad batch size is a clear error, not a hang.
    @Test func spawnLoopRunsOneAtATimeAndInBatches() throws {
        #expect(try ChildProcess.uthreads("selftest", "spawn-loop", "100").status == 0)
        #expect(try ChildProcess.uthreads("selftest", "spawn-loop", "2000", "1000").status == 0)
        let bad = try ChildProcess.uthreads("selftest", "spawn-loop", "10", "0")
        #expect(bad.status != 0 && bad.stderr.contains("BATCH >= 1"))
    }

    @Test func theKernelSeesOneThread() throws {
        let r = try ChildProcess.uthreads("selftest", "kernel-threads")
        #expect(r.status == 0)
        #expect(r.stdout.contains("kernel threads before: 1, with 10000 user threads: 1"))
    }

    /// More guarded stacks than vm.max_map_count allows: `.guarded` throws a clear error at the
    /// process's budget, `.automatic` switches to dense stacks; neither crashes the process.
    @Test func runningPastTheMappingLimit() throws {
        let r = try ChildProcess.uthreads("selftest", "map-limit")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("guarded:") && r.stdout.contains("budget of"))
        #expect(r.stdout.contains("switched to dense: true, error: none"))
        #expect(r.stderr.contains("new threads get dense stacks"))
    }

    @Test func aarch64SwitchAssembles() throws {
        let source = ChildProcess.repositoryRoot.appendingPathComponent(
            "Sources/CUThreads/switch_aarch64_aapcs_elf_gas.S"
        ).path
        let clang = ["/opt/swift/usr/bin/clang", "/usr/bin/clang"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        try #require(clang != nil, "no clang to assemble with")
        let object = FileManager.default.temporaryDirectory.appendingPathComponent("switch-aarch64-\(getpid()).o").path
        defer { try? FileManager.default.removeItem(atPath: object) }
        let r = try ChildProcess.run(clang!, ["-target", "aarch64-unknown-linux-gnu", "-c", source, "-o", object])
        #expect(r.status == 0, "\(r.stderr)")
        let nm = try ChildProcess.run("/opt/swift/usr/bin/llvm-nm", [object])
        for symbol in ["uthreads_switch", "uthreads_trampoline", "uthreads_context_make_aarch64"] {
            #expect(nm.stdout.contains("T \(symbol)"))
        }
    }
}
