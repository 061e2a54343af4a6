// Layer 6: exporting a trace — Chrome/Perfetto trace-event JSON and an SVG Gantt chart.
//
// Both are written by hand (no Foundation in the library): the JSON is the documented
// Trace Event Format (complete "X" events for each state interval, "i" instants for wake-ups
// and watchdog overruns, "M" metadata naming each thread), loadable in ui.perfetto.dev and
// chrome://tracing. With several workers the process also has a track per worker (after the
// threads' tracks in tid, sorted above them) with a bar for each thread that ran on it, and
// the args of every state interval and instant name the worker that recorded it: a thread
// that migrated shows on each worker's track it ran on. The SVG has one lane per thread (labelled), a bar per state interval
// coloured by state, a time axis with round tick values, and a legend.

extension UThreadTrace {
    /// The trace in Chrome's Trace Event Format (JSON), for ui.perfetto.dev or chrome://tracing.
    /// Each thread is a track (tid = lane + 1) of the kernel thread's process (pid: the first
    /// worker's kernel thread). With several workers each worker is a track too (tid = threads
    /// + 1 + worker, listed first) showing which thread ran on it, and the args of each
    /// interval and instant have its `worker`.
    public func perfettoJSON() -> String {
        let (segments, _) = analyse()
        let pid = Int(kernelThread)
        let threads = self.threads
        let workers = self.workers
        var out: [String] = []
        out.append(
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":\(pid),\"tid\":0,\"args\":{\"name\":\"uthreads runtime (kernel thread \(pid))\"}}"
        )
        let kernelThreads = self.kernelThreads
        func workerTrack(_ w: Int) -> Int { threads.count + 1 + w }
        if workers > 1 {
            for w in 0..<workers {
                out.append(
                    "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(pid),\"tid\":\(workerTrack(w)),\"args\":{\"name\":\"worker \(w) (kernel thread \(kernelThreads[w]))\"}}"
                )
                out.append(
                    "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":\(pid),\"tid\":\(workerTrack(w)),\"args\":{\"sort_index\":\(w - workers)}}"
                )
            }
        }
        for t in threads {
            out.append(
                "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(pid),\"tid\":\(t.lane + 1),\"args\":{\"name\":\"\(jsonEscape(t.label))\"}}"
            )
            out.append(
                "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":\(pid),\"tid\":\(t.lane + 1),\"args\":{\"sort_index\":\(t.lane)}}"
            )
        }
        for s in segments {
            let name = s.waitReason.map { "\(s.state.rawValue): \($0.label)" } ?? s.state.rawValue
            let args = workers > 1 ? ",\"args\":{\"worker\":\(s.worker)}" : ""
            out.append(
                "{\"name\":\"\(jsonEscape(name))\",\"cat\":\"\(s.state.rawValue)\",\"ph\":\"X\",\"ts\":\(micro(s.start)),\"dur\":\(micro(s.end - s.start)),\"pid\":\(pid),\"tid\":\(s.lane + 1)\(args)}"
            )
            if workers > 1 && s.state == .running {
                out.append(
                    "{\"name\":\"\(jsonEscape(threads[s.lane].label))\",\"cat\":\"running\",\"ph\":\"X\",\"ts\":\(micro(s.start)),\"dur\":\(micro(s.end - s.start)),\"pid\":\(pid),\"tid\":\(workerTrack(s.worker))}"
                )
            }
        }
        for e in events where e.kind == .wake || e.kind == .overrun {
            let name = e.kind == .wake ? "wake (\(e.wakeResult.map { "\($0)" } ?? "?"))" : "watchdog: over quantum"
            let args = workers > 1 ? ",\"args\":{\"worker\":\(e.worker)}" : ""
            out.append(
                "{\"name\":\"\(name)\",\"cat\":\"\(e.kind.name)\",\"ph\":\"i\",\"s\":\"t\",\"ts\":\(micro(e.nanoseconds)),\"pid\":\(pid),\"tid\":\(e.lane + 1)\(args)}"
            )
        }
        return
            "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"clock\":\"\(isVirtual ? "virtual" : "monotonic")\",\"dropped\":\(dropped),\"workers\":\(workers)},\"traceEvents\":[\n"
            + out.joined(separator: ",\n") + "\n]}\n"
    }

    /// An SVG Gantt chart: one lane per thread, bars coloured by state, a time axis, a legend.
    /// - Parameters:
    ///   - title: drawn above the chart.
    ///   - width: of the plotting area in pixels.
    public func svgGantt(title: String = "uthreads schedule", width: Int = 960) -> String {
        let (segments, summaries) = analyse()
        let threads = self.threads
        let deadlineAt = zip(threads, summaries).map { t, s in t.deadlineAfterSpawn.map { s.spawned + $0 } }
        let end = max(1, events.last?.nanoseconds ?? 1, deadlineAt.compactMap { $0 }.max() ?? 0)
        let labelWidth = 190
        let lane = 22
        let top = 46
        let left = 10
        let plotX = left + labelWidth
        let height = top + threads.count * lane + 70
        let totalWidth = plotX + width + 20
        func x(_ ns: UInt64) -> Double { Double(plotX) + Double(ns) / Double(end) * Double(width) }
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(totalWidth)" height="\(height)" viewBox="0 0 \(totalWidth) \(height)" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
            <rect x="0" y="0" width="\(totalWidth)" height="\(height)" fill="#ffffff"/>
            <text x="\(left)" y="20" font-size="15" font-weight="bold">\(xmlEscape(title))</text>
            <text x="\(left)" y="36" fill="#555555">\(threads.count) threads, \(Self.format(events.last?.nanoseconds ?? 0)) (\(isVirtual ? "virtual clock" : "real clock")), \(events.count) events\(dropped > 0 ? ", \(dropped) dropped" : "")</text>

            """
        // Lanes: zebra background and labels.
        for t in threads {
            let y = top + t.lane * lane
            if t.lane % 2 == 0 {
                svg += "<rect x=\"\(plotX)\" y=\"\(y)\" width=\"\(width)\" height=\"\(lane)\" fill=\"#f4f4f4\"/>\n"
            }
            let label = t.label.count > 26 ? String(t.label.prefix(25)) + "…" : t.label
            svg += "<text x=\"\(plotX - 6)\" y=\"\(y + lane / 2 + 4)\" text-anchor=\"end\">\(xmlEscape(label))</text>\n"
        }
        // Time axis: round ticks (1, 2, 5 × 10^k ns), grid lines.
        let axisY = top + threads.count * lane
        let step = Self.tickStep(end)
        var tick: UInt64 = 0
        while tick <= end {
            let tx = x(tick)
            svg +=
                "<line x1=\"\(fmt(tx))\" y1=\"\(top)\" x2=\"\(fmt(tx))\" y2=\"\(axisY + 4)\" stroke=\"#d0d0d0\" stroke-width=\"1\"/>\n"
            svg +=
                "<text x=\"\(fmt(tx))\" y=\"\(axisY + 17)\" text-anchor=\"middle\" fill=\"#333333\">\(Self.format(tick))</text>\n"
            tick += step
        }
        svg +=
            "<line x1=\"\(plotX)\" y1=\"\(axisY)\" x2=\"\(plotX + width)\" y2=\"\(axisY)\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
        // Bars.
        for s in segments where s.end > s.start || s.state == .running {
            let y = top + s.lane * lane
            let (h, dy) = s.state == .running ? (lane - 6, 3) : (lane - 12, 6)
            let w = max(0.6, x(s.end) - x(s.start))
            let tip =
                "\(s.state.rawValue)\(s.waitReason.map { " (\($0.label))" } ?? "") \(Self.format(s.start))–\(Self.format(s.end))"
            svg +=
                "<rect x=\"\(fmt(x(s.start)))\" y=\"\(y + dy)\" width=\"\(fmt(w))\" height=\"\(h)\" fill=\"\(Self.colour(s.state))\"><title>\(xmlEscape(tip))</title></rect>\n"
        }
        // Deadlines: a red bar across the lane, at spawn + deadline.
        for (t, s) in zip(threads, summaries) {
            guard let at = deadlineAt[t.lane] else { continue }
            let y = top + t.lane * lane
            let missed = (s.exited ?? .max) > at
            svg +=
                "<rect x=\"\(fmt(x(at) - 1))\" y=\"\(y + 1)\" width=\"2.5\" height=\"\(lane - 2)\" fill=\"#d32f2f\"><title>deadline \(Self.format(at))\(missed ? " (missed)" : " (met)")</title></rect>\n"
        }
        for e in events where e.kind == .overrun && e.lane >= 0 {
            let y = top + e.lane * lane
            svg +=
                "<path d=\"M\(fmt(x(e.nanoseconds))) \(y + 2) l5 9 l-10 0 z\" fill=\"#d32f2f\"><title>watchdog: ran far past its quantum</title></path>\n"
        }
        // Legend.
        var lx = plotX
        let ly = axisY + 36
        for state in TraceSegment.State.allCases {
            svg += "<rect x=\"\(lx)\" y=\"\(ly)\" width=\"14\" height=\"12\" fill=\"\(Self.colour(state))\"/>"
            svg += "<text x=\"\(lx + 19)\" y=\"\(ly + 11)\">\(state.rawValue)</text>\n"
            lx += 110
        }
        svg +=
            "<rect x=\"\(lx + 6)\" y=\"\(ly - 1)\" width=\"2.5\" height=\"14\" fill=\"#d32f2f\"/><text x=\"\(lx + 19)\" y=\"\(ly + 11)\">deadline</text>\n"
        lx += 110
        svg +=
            "<path d=\"M\(lx + 7) \(ly) l6 11 l-12 0 z\" fill=\"#d32f2f\"/><text x=\"\(lx + 19)\" y=\"\(ly + 11)\">watchdog overrun</text>\n"
        svg += "</svg>\n"
        return svg
    }

    static func colour(_ state: TraceSegment.State) -> String {
        switch state {
        case .running: "#2e7d32"
        case .ready: "#f9a825"
        case .blocked: "#78909c"
        case .sleeping: "#90caf9"
        }
    }

    /// 1, 2 or 5 × 10^k nanoseconds, giving 5 to 12 ticks over `span`.
    static func tickStep(_ span: UInt64) -> UInt64 {
        var step: UInt64 = 1
        while true {
            for m: UInt64 in [1, 2, 5] where span / (step * m) <= 10 { return step * m }
            step *= 10
        }
    }

    /// "0", "250 µs", "12 ms", "1.5 s".
    static func format(_ ns: UInt64) -> String {
        func trim(_ v: Double) -> String {
            let r = (v * 100).rounded() / 100
            return r == r.rounded() ? "\(Int(r))" : "\(r)"
        }
        if ns == 0 { return "0" }
        if ns < 1_000 { return "\(ns) ns" }
        if ns < 1_000_000 { return "\(trim(Double(ns) / 1e3)) µs" }
        if ns < 1_000_000_000 { return "\(trim(Double(ns) / 1e6)) ms" }
        return "\(trim(Double(ns) / 1e9)) s"
    }
}

private func micro(_ ns: UInt64) -> String {
    let whole = ns / 1000
    let frac = ns % 1000
    return frac == 0 ? "\(whole)" : "\(whole).\(String(frac + 1000).dropFirst())"
}

private func fmt(_ v: Double) -> String { "\((v * 10).rounded() / 10)" }

func jsonEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if c.value < 0x20 {
                let h = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    return out
}

func xmlEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(c)
        }
    }
    return out
}
