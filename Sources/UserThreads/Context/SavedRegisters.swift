// Layer 2: the registers a suspended user thread saved when it was switched out — the program
// counter, stack pointer and registers the textbook's thread table keeps per thread. They are
// not copied anywhere: they sit in the frame the switch pushed on the thread's own stack, and
// the control block keeps only that frame's address (`sp`). The boxed frame tables in
// switch_x86_64_sysv_elf_gas.S and switch_aarch64_aapcs_elf_gas.S are the one description of
// that frame; `layout` below mirrors them, and backtrace.c reads the same two slots (the frame
// pointer and the return address) to start its walk.
//
// Read only while the thread is suspended (ready, blocked, sleeping) and only by the kernel
// thread that owns its row: a running thread's registers are in the CPU, and its frame on the
// stack is stale.
//
// Rejected: copying the registers into the control block at every switch, as a textbook table
// would hold them. The switch would pay six to twenty stores more for a view that is read only
// when someone looks, and the control block is exactly 256 bytes (one field more and a spawn
// zeroes it with a memset call, DEVELOPERS.md). Rejected too: naming the program counter at
// the switch (symbol lookup is a linear search of the ELF symbol table); a snapshot names each
// distinct address once.
import CUThreads

/// The registers of a suspended user thread, as its switch saved them on its own stack.
public struct SavedRegisters: Sendable, Codable, Hashable {
    /// The architecture whose frame this is: `"x86_64"` or `"aarch64"`.
    public var architecture: String
    /// Where the thread resumes: the return address in its saved frame (into the function that
    /// called the switch; for a thread that never ran, the trampoline's first instruction).
    public var programCounter: UInt64
    /// The function at ``programCounter``, demangled when it is a Swift one, with the offset
    /// into it ("UserThreads.Scheduler.park(…) + 412"); nil when no symbol covers the address.
    public var function: String?
    /// The stack pointer the thread resumes with: the saved frame's address plus its size.
    public var stackPointer: UInt64
    /// Every other register in the saved frame, in the frame's order: the callee-saved integer
    /// registers (with the frame pointer, rbp or x29), the callee-saved floating-point ones
    /// (AArch64: d8–d15) and the floating-point control words (MXCSR and the x87 control word,
    /// or FPCR).
    public var calleeSaved: [Register]

    /// One saved register.
    public struct Register: Sendable, Codable, Hashable {
        /// Its assembly name ("rbx", "x19", "d8", "mxcsr").
        public var name: String
        /// Its value.
        public var value: UInt64

        /// A register; the runtime makes them, tests and tools may too.
        public init(name: String, value: UInt64) {
            self.name = name
            self.value = value
        }
    }

    /// Registers; the runtime makes them (``ThreadInfo/registers``), tests and tools may too.
    public init(
        architecture: String, programCounter: UInt64, function: String?, stackPointer: UInt64,
        calleeSaved: [Register]
    ) {
        self.architecture = architecture
        self.programCounter = programCounter
        self.function = function
        self.stackPointer = stackPointer
        self.calleeSaved = calleeSaved
    }

    /// The frame pointer (rbp or x29), from ``calleeSaved``.
    public var framePointer: UInt64? {
        calleeSaved.first { $0.name == "rbp" || $0.name == "x29" }?.value
    }
}

extension SavedRegisters {
    /// The saved frame of this architecture: each register's name, byte offset and width, the
    /// slot of the return address, and the frame's size (the .S file's table).
    struct Layout {
        var architecture: String
        var registers: [(name: String, offset: Int, bytes: Int)]
        var programCounterOffset: Int
        var size: Int
    }

    static let layout: Layout? = {
        #if arch(x86_64)
            return Layout(
                architecture: "x86_64",
                registers: [
                    ("rbx", 40, 8), ("rbp", 48, 8), ("r12", 32, 8), ("r13", 24, 8), ("r14", 16, 8),
                    ("r15", 8, 8), ("mxcsr", 0, 4), ("x87cw", 4, 2),
                ],
                programCounterOffset: 56, size: 64)
        #elseif arch(arm64)
            var registers: [(name: String, offset: Int, bytes: Int)] = []
            for n in 19...28 { registers.append((name: "x\(n)", offset: 0x40 + 8 * (n - 19), bytes: 8)) }
            registers.append((name: "x29", offset: 0xa0, bytes: 8))
            for n in 8...15 { registers.append((name: "d\(n)", offset: 8 * (n - 8), bytes: 8)) }
            registers.append((name: "fpcr", offset: 0x90, bytes: 8))
            return Layout(architecture: "aarch64", registers: registers, programCounterOffset: 0xa8, size: 0xb0)
        #else
            return nil
        #endif
    }()

    /// The registers saved in the frame of suspended thread `t`, its program counter named by
    /// `name` (called once per thread; the caller may cache by address). Nil when this
    /// architecture has no layout or the saved sp is not inside the thread's stack.
    static func read(_ t: ControlBlock, name: (_ pc: UInt64, _ isReturnAddress: Bool) -> String?) -> SavedRegisters? {
        guard let layout, let sp = t.pointee.sp, let lo = t.pointee.stack_lo, let hi = t.pointee.stack_hi else {
            return nil
        }
        let frame = UnsafeRawPointer(sp)
        guard frame >= UnsafeRawPointer(lo), frame + layout.size <= UnsafeRawPointer(hi) else { return nil }
        func load(_ offset: Int, _ bytes: Int) -> UInt64 {
            switch bytes {
            case 2: UInt64(frame.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            case 4: UInt64(frame.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            default: frame.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            }
        }
        let pc = load(layout.programCounterOffset, 8)
        // A thread that never ran resumes at the trampoline's first byte: not a return address.
        return SavedRegisters(
            architecture: layout.architecture, programCounter: pc,
            function: name(pc, t.pointee.switches > 0),
            stackPointer: UInt64(UInt(bitPattern: frame + layout.size)),
            calleeSaved: layout.registers.map { Register(name: $0.name, value: load($0.offset, $0.bytes)) })
    }
}
