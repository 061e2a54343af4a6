// Layer 4: the thread table as the textbook draws it — per thread its program counter, stack
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
                var function = r.function.map(Self.argumentLabelsOnly) ?? "??"
                if function.count > functionWidth { function = String(function.prefix(functionWidth - 1)) + "…" }
                let registers = r.calleeSaved.map { "\($0.name) \(Self.hex($0.value))" }.joined(separator: " ")
                rows.append(
                    (
                        [
                            "\(t.id.rawValue)", name, t.state.rawValue, Self.hex(r.programCounter),
                            Self.hex(r.stackPointer), function,
                        ], registers
                    ))
            } else if t.state == .running {
                rows.append(
                    (
                        [
                            "\(t.id.rawValue)", name, t.state.rawValue, "in the CPU", "in the CPU",
                            "(running: its registers are live in the CPU, not saved)",
                        ], nil
                    ))
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

    /// A demangled Swift function name with its parameter list cut to the labels and its result
    /// type dropped: "static M.T.f(from: Swift.Int, _: Swift.Bool) -> Swift.Int + 12" becomes
    /// "static M.T.f(from:_:) + 12". Names whose first parenthesis does not follow the function's
    /// name (closures: "closure #1 (…) in …"), and C names, are returned as they are.
    static func argumentLabelsOnly(_ name: String) -> String {
        let chars = Array(name)
        guard let open = chars.firstIndex(of: "("), open > 0, chars[open - 1] != " " else { return name }
        var depth = 0
        var close: Int? = nil
        var parameters: [String] = []
        var current = ""
        for i in open..<chars.count {
            let c = chars[i]
            if "(<[".contains(c) {
                depth += 1
                if depth == 1 { continue }
            }
            if ")>]".contains(c) {
                depth -= 1
                if depth == 0 {
                    close = i
                    break
                }
            }
            if depth == 1 && c == "," {
                parameters.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        guard let close else { return name }
        if current.contains(where: { $0 != " " }) { parameters.append(current) }
        let labels = parameters.map { p -> String in
            let p = p.drop { $0 == " " }
            guard let colon = p.firstIndex(of: ":") else { return "_:" }
            let label = p[..<colon]
            return label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } ? "\(label):" : "_:"
        }
        var out = String(chars[..<open]) + "(" + labels.joined() + ")"
        // Keep a trailing " + offset".
        let rest = chars[(close + 1)...]
        if let plus = rest.lastIndex(of: "+"), plus > close + 1, chars[plus - 1] == " ",
            Int(String(chars[(plus + 1)...]).drop { $0 == " " }) != nil
        {
            out += String(chars[(plus - 1)...])
        }
        return out
    }

    /// `0x` and lowercase hex digits.
    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
