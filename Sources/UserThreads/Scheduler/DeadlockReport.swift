// Layer 6: what the scheduler says when no thread can ever run again.
import CUThreads

/// The thread table at the moment of a deadlock, with the wait-for cycles found in it. A thread
/// waiting in `join` waits for the joined thread; one waiting on a lock waits for the lock's
/// holders (`WaitTarget.holders`).
struct DeadlockReport: CustomStringConvertible {
    let table: ThreadTable
    /// Each cycle as thread ids in wait-for order (a → b means a waits for b).
    let cycles: [[ThreadID]]

    init(scheduler: Scheduler) {
        let table = scheduler.snapshot()
        self.table = table
        var edges: [ThreadID: [ThreadID]] = [:]
        scheduler.table.forEachLive { t in
            let s = t.pointee.state
            guard s == .stateBlocked else { return }
            let id = t.threadID
            let kind = WaitReason.Kind(rawValue: t.pointee.wait_kind) ?? .custom
            if kind == .join { edges[id, default: []].append(ThreadID(rawValue: t.pointee.wait_object)) }
            if let target = scheduler.objectOf(t).waitTarget {
                edges[id, default: []].append(contentsOf: target.holders)
            }
        }
        self.cycles = DeadlockReport.findCycles(edges)
    }

    /// Every elementary cycle reachable by following the first unexplored edge (a thread
    /// usually waits for one other); each cycle reported once, rotated to its smallest id.
    /// O(threads + edges).
    static func findCycles(_ edges: [ThreadID: [ThreadID]]) -> [[ThreadID]] {
        var cycles: Set<[ThreadID]> = []
        var done: Set<ThreadID> = []
        for start in edges.keys.sorted() where !done.contains(start) {
            var path: [ThreadID] = []
            var onPath: [ThreadID: Int] = [:]
            var node: ThreadID? = start
            while let n = node, !done.contains(n) {
                if let i = onPath[n] {
                    var cycle = Array(path[i...])
                    let m = cycle.firstIndex(of: cycle.min()!)!
                    cycle = Array(cycle[m...] + cycle[..<m])
                    cycles.insert(cycle)
                    break
                }
                onPath[n] = path.count
                path.append(n)
                node = edges[n]?.first
            }
            done.formUnion(path)
        }
        return cycles.sorted { $0.lexicographicallyPrecedes($1) }
    }

    var description: String {
        var out =
            "uthreads: deadlock — no user thread can ever run again (nothing is ready, no timer or I/O is pending).\n"
        for cycle in cycles {
            let names = Dictionary(uniqueKeysWithValues: table.threads.map { ($0.id, $0) })
            let parts = cycle.map { id -> String in
                let t = names[id]
                let name = t.map { $0.name.isEmpty ? "" : " \"\($0.name)\"" } ?? ""
                let wait = t?.waitReason.map { " waiting for \($0)" } ?? ""
                return "\(id)\(name)\(wait)"
            }
            out += "wait-for cycle: " + parts.joined(separator: " → ") + " → \(cycle[0])\n"
        }
        out += table.render(limit: 200)
        return out
    }
}

extension Scheduler {
    /// A snapshot of this scheduler's thread table: the whole runtime's under `workers: 1`
    /// (one worker, which always answers), one worker's part under several. O(threads).
    func snapshot() -> ThreadTable {
        var snapshot = table.snapshot(
            nanosecondsPerTick: nanosecondsPerTick(), startTick: startTick, nowTick: uthreads_ticks(),
            nowNanoseconds: now(), switches: switchCount, spawned: spawnCount,
            object: { $0.pointee.object == nil ? nil : self.objectOf($0) })
        if workerIndex < 0 { (snapshot.workers, snapshot.unansweredWorkers) = (1, []) }
        return snapshot
    }
}
