// Layer 3: the thread table as the textbook draws it — per thread its program counter, stack
// pointer, registers and state — from the saved frames the snapshot read (SavedRegisters.swift).

extension ThreadTable {
    /// The textbook's thread table: one row per thread with its state, program counter (and the
    /// function it is in), stack pointer, then its callee-saved registers on the next line. The
    /// running thread's registers are in the CPU, and the row says so. `limit` caps the rows.
    ///
    /// ```
    /// TID  NAME     STATE     PC              SP              FUNCTION
    ///   2  sleeper  sleeping  0x55d0c1a3f00e  0x7f3e2c1ffe40  UserThreads.Scheduler.park(…) + 412
    ///                         rbx 0x… rbp 0x7f3e2c1ffe70 r12 0x… r13 0x… r14 0x… r15 0x… mxcsr 0x1f80 x87cw 0x37f
    /// ```
    public func renderRegisters(limit: Int = .max, functionWidth: Int = 72) -> String {
        let header = ["TID", "NAME", "STATE", "PC", "SP", "FUNCTION"]
        var rows: [(cells: [String], registers: String?)] = []
        for t in threads.prefix(limit) {
            let name = t.name.isEmpty ? "-" : t.name
            if let r = t.registers {
                var function = r.function ?? "??"
                if function.count > functionWidth { function = String(function.prefix(functionWidth - 1)) + "…" }
                let registers = r.calleeSaved.map { "\($0.name) \(Self.hex($0.value))" }.joined(separator: " ")
                rows.append((["\(t.id.rawValue)", name, t.state.rawValue, Self.hex(r.programCounter),
                              Self.hex(r.stackPointer), function], registers))
            } else if t.state == .running {
                rows.append((["\(t.id.rawValue)", name, t.state.rawValue, "in the CPU", "in the CPU",
                              "(running: its registers are live in the CPU, not saved)"], nil))
            } else {
                rows.append((["\(t.id.rawValue)", name, t.state.rawValue, "-", "-", "-"], nil))
            }
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.cells.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                if i == cells.count - 1 { return c }
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i == 0 ? pad + c : c + pad
            }.joined(separator: "  ")
        }
        let indent = String(repeating: " ", count: widths[0] + widths[1] + widths[2] + 6)
        var out = line(header) + "\n"
        for r in rows {
            out += line(r.cells) + "\n"
            if let registers = r.registers { out += indent + registers + "\n" }
        }
        if threads.count > limit { out += "… \(threads.count - limit) more\n" }
        return out
    }

    /// `0x` and lowercase hex digits.
    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
