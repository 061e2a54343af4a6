// Layer 6: what the scheduler says when no thread can ever run again.
//
// Design. The report is a thread table plus the wait-for cycles found in it. A thread waiting
// in `join` waits for the joined thread; one waiting on a lock waits for the lock's holders
// (`WaitTarget.holders`). Those edges, with the rows of the threads that have them, make a
// `WaitGraph`; `findCycles` searches one graph, and `cycleLines` writes what it found, both
// written once for both runtimes:
//   * M:1 (`Scheduler.handleDeadlock`): the one scheduler's graph is the whole runtime's.
//   * M:N (MNWorker.swift, "Deadlock"): each worker may read only its own table, so each
//     builds its part of the graph in the report phase, where the workers already meet; the
//     parts are merged, and the last worker to add its part searches the merged graph once.
//     An edge may therefore run from a thread on one worker to a holder on another (thread
//     ids are unique in the runtime), and a cycle across workers is named exactly as one
//     within a worker.
//
// Rejected: each worker searching its own part (the first M:N version). A cycle whose edges
// span workers (carol on worker 0 waits for dave, dave on worker 1 waits for carol) was in no
// worker's part, so the report listed both waits but never the cycle.
// Rejected: one worker reading every worker's table. Only a table's owner may read it while
// its threads can still change it (ThreadTable/ControlBlockTable.swift).
import CUThreads

/// The thread table at the moment of a deadlock, with the wait-for cycles found in it.
struct DeadlockReport: CustomStringConvertible {
    let table: ThreadTable
    /// This scheduler's wait-for edges (one worker's part under M:N: see the essay).
    let graph: WaitGraph
    /// Each cycle in `graph` as thread ids in wait-for order (a → b means a waits for b).
    let cycles: [[ThreadID]]

    init(scheduler: Scheduler) {
        let table = scheduler.snapshot()
        self.table = table
        graph = WaitGraph(scheduler: scheduler, table: table)
        cycles = graph.cycles
    }

    /// Wait-for edges between threads, and the rows of the threads they start from (a thread in
    /// a cycle always waits, so it has a row here). Sendable: M:N workers merge their parts.
    struct WaitGraph: Sendable {
        /// Waiter → the threads it waits for.
        var edges: [ThreadID: [ThreadID]] = [:]
        /// The waiters' rows, for names and wait reasons.
        var waiters: [ThreadID: ThreadInfo] = [:]

        init() {}

        /// The edges of `scheduler`'s blocked threads, named from `table` (its snapshot).
        /// O(threads).
        init(scheduler: Scheduler, table: ThreadTable) {
            scheduler.table.forEachLive { t in
                guard t.pointee.state == .stateBlocked else { return }
                let id = t.threadID
                let kind = WaitReason.Kind(rawValue: t.pointee.wait_kind) ?? .custom
                if kind == .join { edges[id, default: []].append(ThreadID(rawValue: t.pointee.wait_object)) }
                if let target = scheduler.objectOf(t).waitTarget {
                    edges[id, default: []].append(contentsOf: target.holders)
                }
            }
            for row in table.threads where edges[row.id] != nil { waiters[row.id] = row }
        }

        /// Adds another part (another worker's). Thread ids are unique in the runtime, so the
        /// parts never disagree about a thread. O(size of `other`).
        mutating func merge(_ other: WaitGraph) {
            edges.merge(other.edges) { $0 + $1 }
            waiters.merge(other.waiters) { mine, _ in mine }
        }

        /// The cycles in this graph (`findCycles`).
        var cycles: [[ThreadID]] { DeadlockReport.findCycles(edges) }

        /// One "wait-for cycle: …" line per cycle, each thread with its name and wait reason.
        func cycleLines(_ cycles: [[ThreadID]]) -> String {
            var out = ""
            for cycle in cycles {
                let parts = cycle.map { id -> String in
                    let t = waiters[id]
                    let name = t.map { $0.name.isEmpty ? "" : " \"\($0.name)\"" } ?? ""
                    let wait = t?.waitReason.map { " waiting for \($0)" } ?? ""
                    return "\(id)\(name)\(wait)"
                }
                out += "wait-for cycle: " + parts.joined(separator: " → ") + " → \(cycle[0])\n"
            }
            return out
        }
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
        "uthreads: deadlock — no user thread can ever run again (nothing is ready, no timer or I/O is pending).\n"
            + graph.cycleLines(cycles) + table.render(limit: 200)
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
