// Layer 4: number formatting without Foundation (the library links only FoundationEssentials, for JSON).

extension Double {
    /// Fixed-point text with `digits` decimals ("12.345"). Non-finite values print as "-".
    package func fixed(_ digits: Int) -> String {
        guard isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(self) * scale).rounded()
        guard scaled < 9e18 else { return "\(self)" }
        let n = UInt64(scaled)
        let p = UInt64(scale)
        let whole = n / p
        var text = (self < 0 && n != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            let frac = String(n % p)
            text += "." + String(repeating: "0", count: digits - frac.count) + frac
        }
        return text
    }
}
