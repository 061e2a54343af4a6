import CUThreads
import Foundation
import Testing
@testable import UserThreads

/// Every stack overflow ends the process with the runtime's report naming the thread, its stack
/// and the fault; none is silent. Each case runs `uthreads selftest stack-overflow …` as a child.
@Suite(.timeLimit(.minutes(2))) struct StackOverflowTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var mode: StackMode
        var kind: String
        var workers: Int?
        var testDescription: String { "\(mode.rawValue) \(kind)" + (workers.map { " on \($0) workers" } ?? "") }
        var arguments: [String] {
            ["selftest", "stack-overflow", mode.rawValue, kind] + (workers.map { ["\($0)"] } ?? [])
        }
    }

    static let cases: [Case] = [StackMode.guarded, .dense].flatMap { mode in
        ["recursion", "parking", "frame"].flatMap { kind in [nil, 2].map { Case(mode: mode, kind: kind, workers: $0) } }
    }

    @Test(arguments: cases)
    func overflowDiesByTheReportNamingTheThreadAndItsStack(_ c: Case) throws {
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, c.arguments)
        let context = Comment(rawValue: "status \(r.status), stderr:\n\(r.stderr)")
        #expect(r.crashed && r.status == SIGABRT, context)  // the report aborts; never exit 0
        #expect(!r.stdout.contains("no overflow was reported"), context)
        #expect(r.stderr.contains("uthreads: stack overflow in user thread #"), context)
        #expect(r.stderr.contains("\"overflow-\(c.kind)\""), context)
        if let workers = c.workers {  // it ran on the last worker's kernel thread
            #expect(r.stderr.contains("\"overflow-\(c.kind)\" on M:N worker \(workers - 1):"), context)
        }
        // Its stack: guarded 64 KiB as asked; dense the default 64 KiB slot less its canary words.
        let size = c.mode == .guarded ? 64 * 1024 : 64 * 1024 - 64
        #expect(r.stderr.contains("stack \(size) bytes [0x"), context)
        if c.mode == .guarded {
            #expect(r.stderr.contains("in the guard pages (1024 KiB) below its stack"), context)
        } else {
            #expect(r.stderr.contains("dense-mode stack"), context)
        }
        switch (c.mode, c.kind) {
        case (.guarded, _), (.dense, "recursion"):  // found by the fault handler: the fault's address
            #expect(r.stderr.contains(": fault at 0x"), context)
        case (.dense, "parking"):  // found at the switch, before any other thread runs
            // By the stack pointer below the slot, or by the canary a deeper call (after the
            // previous level's check) overwrote: which one depends on where the frames fall
            // against the slot's limit (a thread joined before it starts runs from the join,
            // with other entry frames than a thread switched to).
            #expect(
                r.stderr.contains(": its stack pointer 0x") || r.stderr.contains("was overwritten"), context)
            #expect(r.stderr.contains("(detected when it switched out or ended)"), context)
        default:  // the 64 KiB buffer spans the canary: found when the thread ends
            #expect(r.stderr.contains("canary"), context)
        }
    }

    /// The guard below a guarded stack, and below a dense slab, is 1 MiB of PROT_NONE (the
    /// StackPool essay: frames of up to 1 MiB - 128 bytes are caught).
    @Test(arguments: [StackMode.guarded, .dense])
    func guardRegionIsOneMebibyteOfNoAccess(_ mode: StackMode) throws {
        let pool = StackPool(mode: mode, defaultSize: 64 * 1024, denseSize: 64 * 1024, maxPooled: 4)
        // Dense: a whole slab, to reach its lowest slot, whose canary page sits right on the guard.
        let count = mode == .dense ? StackPool.slotsPerSlab : 1
        let stacks = try (0..<count).map { _ in try pool.allocate(size: nil) }
        defer { for s in stacks { pool.release(s) } }
        let lowest = try #require(stacks.min { $0.lo < $1.lo })
        let guardTop = mode == .guarded ? lowest.lo : lowest.lo - pool.pageSize
        let region = try #require(Self.mapping(containing: guardTop - 1))
        #expect(region.permissions.hasPrefix("---"))
        #expect(region.lo <= UInt(bitPattern: guardTop - StackPool.guardRegionSize))
        #expect(region.hi == UInt(bitPattern: guardTop))
        #expect(Self.mapping(containing: guardTop)?.permissions.hasPrefix("rw") == true)
    }

    /// The fault handler names a dense thread from its stack pointer wherever its recursion
    /// faults: in the guard under its slab, below every slot under its own. So the bound on how
    /// far below its stack that pointer may be must cover the whole slab from its top slot,
    /// whatever the slot size (with 2 MiB slots a slab spans 2 GiB).
    @Test(arguments: [64 * 1024, 2 << 20])
    func theStackPointerWitnessReachesTheGuardUnderADenseSlab(slotSize: Int) throws {
        let pool = StackPool(mode: .dense, defaultSize: slotSize, denseSize: slotSize, maxPooled: 4)
        let stacks = try (0..<StackPool.slotsPerSlab).map { _ in try pool.allocate(size: nil) }
        defer { for s in stacks { pool.release(s) } }
        let top = try #require(stacks.max { $0.lo < $1.lo })
        let lowest = try #require(stacks.min { $0.lo < $1.lo })
        let guardBottom = lowest.lo - pool.pageSize - StackPool.guardRegionSize
        #expect(Self.mapping(containing: guardBottom)?.permissions.hasPrefix("---") == true)
        var row = uthreads_tcb()
        row.stack_mode = UInt8(UTHREADS_STACK_DENSE)
        row.stack_lo = top.lo.assumingMemoryBound(to: CChar.self)
        row.stack_hi = top.hi.assumingMemoryBound(to: CChar.self)
        // A stack pointer anywhere down to the guard's bottom (a frame faulting at its far end).
        #expect(UInt(uthreads_overflow_reach(&row)) >= UInt(bitPattern: top.lo - guardBottom))
    }

    /// No C function of the library, nor of the jacket (which runs on user threads' stacks), has
    /// a frame of a page or more: -fstack-clash-protection would add no probe to them (it probes
    /// frames larger than a page), and no C frame can step over a guard or far into a dense
    /// neighbour slot.
    @Test(.enabled(if: Self.clang != nil, "needs clang (the Swift toolchain's)"))
    func cFramesStaySmallerThanAPage() throws {
        let sourcesRoot = ChildProcess.repositoryRoot.appendingPathComponent("Sources")
        let includes = ["CUThreads/include", "CUThreadsJacketABI/include", "UserThreadsJacket/include"].flatMap {
            ["-I", sourcesRoot.appendingPathComponent($0).path]
        }
        for target in ["CUThreads", "UserThreadsJacket"] {
            let directory = sourcesRoot.appendingPathComponent(target)
            let sources = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
                $0.hasSuffix(".c")
            }.sorted()
            #expect(!sources.isEmpty, "no C sources in \(target)")
            for source in sources {
                for level in ["-O0", "-O2"] {
                    let r = try ChildProcess.run(
                        Self.clang!,
                        [level, "-c", "-D_GNU_SOURCE", "-Werror=frame-larger-than", "-Wframe-larger-than=4095"]
                            + includes + [directory.appendingPathComponent(source).path, "-o", "/dev/null"])
                    #expect(r.status == 0 && !r.crashed, "\(target)/\(source) \(level): \(r.stderr)")
                }
            }
        }
    }

    static let clang: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return path.split(separator: ":").map { "\($0)/clang" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }()

    /// The line of /proc/self/maps whose range holds `address`.
    static func mapping(containing address: UnsafeMutableRawPointer) -> (lo: UInt, hi: UInt, permissions: String)? {
        let a = UInt(bitPattern: address)
        guard let file = FileHandle(forReadingAtPath: "/proc/self/maps") else { return nil }
        defer { try? file.close() }
        let text = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2 else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let lo = UInt(bounds[0], radix: 16), let hi = UInt(bounds[1], radix: 16) else {
                continue
            }
            if a >= lo && a < hi { return (lo, hi, String(fields[1])) }
        }
        return nil
    }
}
