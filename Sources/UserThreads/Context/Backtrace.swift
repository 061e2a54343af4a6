// Layer 2: backtraces of user threads — from a suspended thread's saved frame, or of the
// running thread from its own frame pointer — and their symbols. The walking and the symbol
// lookup are in C (backtrace.c, which says how and why they never trust the stack).
import CUThreads

/// One frame of a user thread's backtrace.
public struct StackFrame: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The return address (for the innermost frame of a suspended thread: where it resumes).
    public var address: UInt64
    /// The function, demangled when it is a Swift one; nil when no symbol covers the address.
    public var symbol: String?
    /// Bytes from the start of `symbol` to `address`.
    public var offset: UInt64
    /// The file of the executable or shared library, when known.
    public var module: String?

    /// A frame; the runtime makes them, tests and tools may too.
    public init(address: UInt64, symbol: String? = nil, offset: UInt64 = 0, module: String? = nil) {
        self.address = address
        self.symbol = symbol
        self.offset = offset
        self.module = module
    }

    /// `0x… in symbol + offset (module)`.
    public var description: String {
        var out = "0x" + String(address, radix: 16)
        if let symbol { out += " in \(symbol) + \(offset)" }
        if let module { out += " (\(module.split(separator: "/").last.map(String.init) ?? module))" }
        return out
    }
}

enum Backtrace {
    static let maxFrames = 64

    /// The frames of a suspended (ready, blocked or sleeping) thread, from its saved registers.
    static func saved(_ t: ControlBlock) -> [StackFrame] {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: maxFrames) { buffer in
            let n = Int(uthreads_backtrace_saved(t, buffer.baseAddress!, Int32(maxFrames)))
            // A thread that never ran "resumes" at the first byte of the trampoline: that frame
            // is an entry point, not a return address.
            let neverRan = t.pointee.switches == 0
            return buffer.prefix(n).enumerated().map { i, a in symbolicate(a, isReturnAddress: !(neverRan && i == 0)) }
        }
    }

    /// The frames of the caller, bounded by the stack of `t` (the running thread).
    @inline(never)
    static func here(_ t: ControlBlock?) -> [StackFrame] {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: maxFrames) { buffer in
            let n = Int(uthreads_backtrace_here(t, buffer.baseAddress!, Int32(maxFrames)))
            return buffer.prefix(n).map { symbolicate($0) }
        }
    }

    static func symbolicate(_ address: UInt64, isReturnAddress: Bool = true) -> StackFrame {
        var symbol = [CChar](repeating: 0, count: 1024)
        var module = [CChar](repeating: 0, count: 512)
        var offset: UInt64 = 0
        // Look up address - 1: a return address may be the first byte of the next function
        // when the call was the caller's last instruction (a noreturn call).
        let lookup = isReturnAddress ? address &- 1 : address
        let found = uthreads_symbolicate(lookup, &symbol, symbol.count, &module, module.count, &offset)
        func string(_ chars: [CChar]) -> String? {
            let bytes = chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
        }
        return StackFrame(
            address: address, symbol: found == 2 ? string(symbol) : nil,
            offset: found == 2 ? offset &+ (address &- lookup) : 0, module: found >= 1 ? string(module) : nil)
    }
}
