// `uthreads bench`: the groups that complete the 1992 comparison (see
// Bench/PeerBenchmarks.swift for what each row measures) and the summary that prints one table
// per operation with a column per thread model; `uthreads bench scale`.
import ArgumentParser
import CKernelPeers
import Foundation
import UserThreads
import UserThreadsBackends

/// Progress of long runs, on stderr (stdout carries the tables and the JSON).
func progress(_ message: String) {
    fflush(nil)  // what print buffered first: with --json both go to stderr, and a row must not be split
    FileHandle.standardError.write(Data("[bench] \(message)\n".utf8))
}

enum CompareBenchRuns {
    static let budgetGiB = 2.0
    static func budgetBytes(_ o: BenchOptions) -> Int { o.quick ? 32 << 20 : Int(budgetGiB * 1_073_741_824) }
    static func contenders(_ o: BenchOptions) -> Int { o.scaled(100, quick: 10) }

    /// Signal-Wait on user threads, and the same workload code on both backends.
    static func backends(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- backends: the same workload code on user threads and on kernel threads (ns per operation)")
        progress("backends: condition handoff, channel handoff, contended mutex")
        let k = o.scaled(200_000, quick: 2_000)
        let sw = try CoreBenchRuns.median(o.repetitions) { try UserSignalWait.conditionHandoffNs(handoffs: k) }
        r.add(group: "backends", name: "user threads: UMutex+UCondition handoff", unit: "ns/handoff", samples: sw)
        let u = r.value("user threads: UMutex+UCondition handoff")!
        let condvar = r.value("kernel threads: mutex+condvar handoff, pinned")
        let futex = r.value("kernel threads: futex handoff, pinned to 1 CPU")
        if let futex {
            r.add(
                BenchRow(
                    group: "backends", name: "  ratio: futex handoff pinned ÷ user Signal-Wait", value: futex / u,
                    unit: "x"))
        }
        if let condvar {
            r.add(
                BenchRow(
                    group: "backends", name: "  ratio: condvar handoff pinned ÷ user Signal-Wait", value: condvar / u,
                    unit: "x"))
        }
        let kk = o.scaled(20_000, quick: 500)
        for kind in BackendKind.allCases {
            let n = kind == .userThreads ? k : kk
            let c = try CoreBenchRuns.median(o.repetitions) {
                try BackendWorkloads.conditionHandoffNs(kind, handoffs: n)
            }
            r.add(
                group: "backends", name: "\(label(kind)): condition handoff, backend API",
                unit: "ns/handoff", samples: c)
        }
        for kind in BackendKind.allCases {
            let n = kind == .userThreads ? k / 2 : kk / 2
            let c = try CoreBenchRuns.median(o.repetitions) {
                try BackendWorkloads.channelHandoffNs(kind, roundTrips: n)
            }
            r.add(
                group: "backends", name: "\(label(kind)): channel handoff, backend API",
                unit: "ns/handoff", samples: c)
        }
        let n = contenders(o)
        for kind in BackendKind.allCases {
            let rounds = kind == .userThreads ? o.scaled(2_000, quick: 50) : o.scaled(100, quick: 10)
            let c = try CoreBenchRuns.median(o.repetitions) {
                try BackendWorkloads.contendedMutexNs(kind, threads: n, rounds: rounds)
            }
            r.add(
                group: "backends", name: "\(label(kind)): mutex contended by \(n), backend API", unit: "ns/acq",
                samples: c,
                note: "held across a yield")
        }
    }

    static func label(_ kind: BackendKind) -> String { kind == .userThreads ? "user threads" : "kernel threads" }

    /// Processes: fork+exit+waitpid, a pipe handoff, a parked process's memory.
    static func processes(_ r: BenchReport, _ o: BenchOptions) throws {
        print("\n-- processes: fork, pipes (the third column of the 1992 table)")
        progress("processes: fork+waitpid, pipe handoff, parked processes")
        let f = CoreBenchRuns.median(o.repetitions) { peers_fork_wait_ns(Int32(o.scaled(1_000, quick: 20))) }
        r.add(group: "processes", name: "processes: fork+exit+waitpid", unit: "ns/process", samples: f)
        let p = CoreBenchRuns.median(o.repetitions) { peers_pipe_handoff_ns(Int32(o.scaled(100_000, quick: 1_000)), 0) }
        r.add(group: "processes", name: "processes: pipe handoff, pinned to 1 CPU", unit: "ns/handoff", samples: p)
        let parked = BudgetBenchmarks.processes(budget: .max, cap: o.scaled(500, quick: 20))
        r.add(
            BenchRow(
                group: "processes", name: "processes: parked process, private RSS + kernel share (\(parked.reached))",
                value: parked.bytesPerUnit, unit: "bytes/proc"))
    }

    /// System calls per Null Fork and per Signal-Wait, counted with ptrace in a forked child.
    /// Runs before the Swift-task group: the process must still be single-threaded to fork it.
    static func syscalls(_ r: BenchReport, _ o: BenchOptions) throws {
        print(
            "\n-- system calls per operation: per thread (Null Fork), per handoff (Signal-Wait); ptrace count in a forked child, (count(2n) - count(n)) / n"
        )
        progress("system calls: tracing each model with ptrace")
        let n = o.scaled(200, quick: 20)
        let ops: [(SyscallCounts.Operation, String)] = [
            (.userNullFork, "syscalls: user threads, Null Fork"),
            (.kernelNullFork, "syscalls: kernel threads, Null Fork"),
            (.processNullFork, "syscalls: processes, Null Fork"), (.taskNullFork, "syscalls: Swift tasks, Null Fork"),
            (.userSignalWait, "syscalls: user threads, Signal-Wait"),
            (.kernelSignalWait, "syscalls: kernel threads, Signal-Wait (futex)"),
            (.kernelCondvarSignalWait, "syscalls: kernel threads, Signal-Wait (condvar)"),
            (.processSignalWait, "syscalls: processes, Signal-Wait (pipe)"),
            (.taskSignalWait, "syscalls: Swift tasks, Signal-Wait"),
        ]
        for (op, name) in ops {
            if let v = SyscallCounts.perOperation(op, n: n) {
                r.add(BenchRow(group: "syscalls", name: name, value: v, unit: "syscalls/op"))
            } else {
                r.add(
                    BenchRow(
                        group: "syscalls", name: name, value: -1, unit: "syscalls/op",
                        note: "could not trace (ptrace refused?)"))
            }
        }
    }

    /// Swift concurrency tasks. Starts the concurrency runtime's threads: keep it after every
    /// group that forks a child that runs Swift code.
    static func tasks(_ r: BenchReport, _ o: BenchOptions) throws {
        print(
            "\n-- Swift tasks: the same operations with Swift concurrency (global executor, \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) threads)"
        )
        progress("Swift tasks: spawn, handoffs, yield, mutex, actor")
        let n = o.scaled(100_000, quick: 1_000)
        r.add(
            group: "tasks", name: "Swift tasks: Task {} + value, one at a time", unit: "ns/task",
            samples: CoreBenchRuns.median(o.repetitions) { TaskBenchmarks.spawnAwaitNs(count: n) })
        r.add(
            group: "tasks", name: "Swift tasks: withTaskGroup, per child task", unit: "ns/task",
            samples: CoreBenchRuns.median(o.repetitions) { TaskBenchmarks.taskGroupNs(count: n) })
        r.add(
            group: "tasks", name: "Swift tasks: CheckedContinuation handoff", unit: "ns/handoff",
            samples: CoreBenchRuns.median(o.repetitions) { TaskBenchmarks.continuationHandoffNs(roundTrips: n / 2) })
        r.add(
            group: "tasks", name: "Swift tasks: AsyncStream handoff", unit: "ns/handoff",
            samples: CoreBenchRuns.median(o.repetitions) { TaskBenchmarks.streamHandoffNs(roundTrips: n / 2) })
        r.add(
            group: "tasks", name: "Swift tasks: Task.yield() between 2 tasks", unit: "ns/yield",
            samples: CoreBenchRuns.median(o.repetitions) { TaskBenchmarks.yieldNs(yields: n) })
        r.add(
            group: "tasks", name: "Swift tasks: Mutex.withLock, uncontended", unit: "ns/pair",
            samples: CoreBenchRuns.median(o.repetitions) {
                TaskBenchmarks.uncontendedMutexNs(iterations: o.scaled(20_000_000, quick: 100_000))
            })
        let c = contenders(o)
        r.add(
            group: "tasks", name: "Swift tasks: actor call, \(c) tasks contending", unit: "ns/call",
            samples: CoreBenchRuns.median(o.repetitions) {
                TaskBenchmarks.contendedActorNs(tasks: c, rounds: o.scaled(2_000, quick: 50))
            })
        let m = TaskBenchmarks.parkedTasks(count: o.scaled(100_000, quick: 2_000), budget: .max)
        r.add(
            BenchRow(
                group: "tasks", name: "Swift tasks: suspended task, RSS or heap (\(m.tasks))", value: m.bytesPerTask,
                unit: "bytes/task"))
    }

    /// How many parked threads of each model fit in the memory budget (capped: see the notes).
    static func budget(_ r: BenchReport, _ o: BenchOptions) throws {
        let budget = budgetBytes(o)
        let gib = BenchReport.fmt(Double(budget) / 1_073_741_824)
        print(
            "\n-- budget: the most parked threads within \(gib) GiB (stops at the budget, a cap or a kernel limit; all released)"
        )
        progress("budget: user threads until \(gib) GiB")
        let u = try BudgetBenchmarks.userThreads(budget: budget, cap: o.scaled(1_000_000, quick: 20_000))
        r.add(
            BenchRow(
                group: "budget", name: "budget: user threads", value: Double(u.reached), unit: "threads",
                note: "stopped by \(u.stoppedBy); \(Int(u.bytesPerUnit)) B each", capped: u.stoppedBy == "cap"))
        progress("budget: pthreads until \(gib) GiB or the cap")
        let cap = o.scaled(30_000, quick: 200)
        let k = BudgetBenchmarks.pthreads(budget: budget, cap: cap, stackSize: 0)
        r.add(
            BenchRow(
                group: "budget", name: "budget: kernel threads", value: Double(k.reached), unit: "threads",
                note:
                    "stopped by \(k.stoppedBy)\(k.stoppedBy == "cap" ? " (memory alone would allow ~\(Int(Double(budget) / k.bytesPerUnit).formatted()), an estimate)" : ""); \(Int(k.bytesPerUnit)) B each",
                capped: k.stoppedBy == "cap"))
        progress("budget: processes until the cap")
        let p = BudgetBenchmarks.processes(budget: budget, cap: o.scaled(2_000, quick: 20))
        r.add(
            BenchRow(
                group: "budget", name: "budget: processes", value: Double(p.reached), unit: "processes",
                note:
                    "stopped by \(p.stoppedBy)\(p.stoppedBy == "cap" ? " (memory alone would allow ~\(Int(Double(budget) / p.bytesPerUnit).formatted()), an estimate)" : ""); \(Int(p.bytesPerUnit)) B each",
                capped: p.stoppedBy == "cap"))
    }

    /// Swift tasks in the budget (after `tasks`: it uses the concurrency runtime).
    static func taskBudget(_ r: BenchReport, _ o: BenchOptions) throws {
        let budget = budgetBytes(o)
        progress("budget: Swift tasks until the budget or the cap")
        let t = TaskBenchmarks.parkedTasks(count: o.scaled(1_000_000, quick: 20_000), budget: budget)
        let capped = t.tasks >= o.scaled(1_000_000, quick: 20_000)
        r.add(
            BenchRow(
                group: "budget", name: "budget: Swift tasks", value: Double(t.tasks), unit: "tasks",
                note: "\(capped ? "stopped by cap" : "stopped by budget"); \(Int(t.bytesPerTask)) B each",
                capped: capped))
    }

    /// The tables per operation, the 1992 figures, and the requested outputs.
    static func summary(_ r: BenchReport, _ o: BenchOptions) throws {
        for (name, p) in [("Null Fork", Comparison.paperNullFork), ("Signal-Wait", Comparison.paperSignalWait)] {
            for (i, column) in ["user-level threads", "kernel threads", "processes"].enumerated() {
                r.add(
                    BenchRow(
                        group: "1992", name: "1992 (Anderson et al., Table I): \(name), \(column)", value: p[i] * 1000,
                        unit: "ns",
                        note: "FastThreads / Topaz threads / Ultrix processes on a CVAX"))
            }
        }
        let comparison = Comparison(
            report: r.rows,
            operations: Comparison.operations(
                threadsContended: contenders(o), budgetGiB: Double(budgetBytes(o)) / 1_073_741_824))
        print(
            "\n== user threads, kernel threads, processes, Swift tasks: one run, \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs\(o.quick ? " (--quick: figures meaningless)" : "")"
        )
        print(comparison.text())
        if o.markdown { print("\n" + comparison.markdown()) }
        if let path = o.svg {
            let title =
                "uthreads bench: user threads vs kernel threads vs processes vs Swift tasks (\(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs)"
            try comparison.svg(title: title).write(toFile: path, atomically: true, encoding: .utf8)
            progress("wrote \(path)")
        }
    }

    // MARK: scale

    static func scale(_ r: BenchReport, _ o: BenchOptions) throws {
        let n = o.scaled(1_000_000, quick: 10_000)
        print("\n-- scale: \(n.formatted()) parked user threads (dense stacks), then pthreads until a limit")
        progress("scale: spawning \(n.formatted()) user threads")
        let m = try CoreBenchmarks.userParkedMemory(count: n, mode: .dense)
        r.add(
            BenchRow(
                group: "scale", name: "user threads: parked (\(n)), RSS per thread incl. table",
                value: m.bytesPerThread, unit: "bytes/thread",
                note: "total \(BenchReport.fmt(m.bytesPerThread * Double(n) / 1_073_741_824)) GiB"))
        r.add(
            BenchRow(
                group: "scale", name: "user threads: time to spawn them all (until parked)",
                value: m.spawnNsPerThread * Double(n) / 1e6,
                unit: "ms", note: "\(BenchReport.fmt(m.spawnNsPerThread)) ns/thread"))
        r.add(
            BenchRow(
                group: "scale", name: "user threads: time to wake them all (cancel → join)",
                value: m.wakeNsPerThread * Double(n) / 1e6,
                unit: "ms", note: "\(BenchReport.fmt(m.wakeNsPerThread)) ns/thread"))
        let budget = o.quick ? 32 << 20 : 2 << 30
        let cap = o.scaled(30_000, quick: 300)
        print(
            "   limits: \(BudgetBenchmarks.limits()); this run stops at \(cap.formatted()) pthreads or \(BenchReport.fmt(Double(budget) / 1_073_741_824)) GiB"
        )
        progress("scale: pthreads until \(cap) or the budget")
        var last = 0
        let k = BudgetBenchmarks.pthreads(budget: budget, cap: cap, stackSize: 0) { count in
            if count - last >= 5_000 {
                progress("scale: \(count) pthreads")
                last = count
            }
        }
        let stack = peers_default_thread_stack_size()
        let stackText = stack > 0 ? "\(BenchReport.fmt(Double(stack) / 1_048_576)) MiB" : "unknown size"
        r.add(
            BenchRow(
                group: "scale", name: "kernel threads: pthreads created (default attributes: \(stackText) stacks)",
                value: Double(k.reached),
                unit: "threads", note: "stopped by \(k.stoppedBy) after \(BenchReport.fmt(k.seconds)) s",
                capped: k.stoppedBy == "cap"))
        r.add(
            BenchRow(
                group: "scale", name: "kernel threads: memory per pthread (user RSS + kernel share)",
                value: k.bytesPerUnit, unit: "bytes/thread",
                note: "= \(BenchReport.fmt(k.bytesPerUnit / m.bytesPerThread))x user threads"))
        if k.stoppedBy == "cap" {
            // The memory the user threads of this run took, scaled to nothing: the comparison
            // names only what was measured.
            let userBytes = m.bytesPerThread * Double(n)
            let limit = BudgetBenchmarks.firstLimit(bytesPerThread: k.bytesPerUnit, memory: userBytes)
            r.add(
                BenchRow(
                    group: "scale",
                    name: "kernel threads: beyond the cap, the first limit in the user threads' memory (estimate)",
                    value: Double(limit.threads), unit: "threads",
                    note:
                        "\(limit.name); this run's \(n.formatted()) user threads took \(BenchReport.fmt(userBytes / 1_073_741_824)) GiB"
                ))
        }
    }
}

struct BenchCompareCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "The 1992 comparison only: user threads vs kernel threads vs processes vs Swift tasks.")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { CompareBenchRuns.all }
}

struct BenchScaleCommand: BenchSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "1,000,000 parked user threads (dense), then pthreads until a limit (capped at 30,000 or 2 GiB).")
    @OptionGroup var options: BenchOptions
    static var groups: [(BenchReport, BenchOptions) throws -> Void] { [CompareBenchRuns.scale] }
}

extension CompareBenchRuns {
    /// Every group the comparison needs, in a safe order (forks before Swift tasks start threads).
    static var all: [(BenchReport, BenchOptions) throws -> Void] {
        [
            announce("switch", CoreBenchRuns.switches), announce("spawn", CoreBenchRuns.spawn),
            announce("memory", CoreBenchRuns.memory), announce("sync", SyncBenchRuns.sync),
            backends, processes, syscalls, budget, tasks, taskBudget, summary,
        ]
    }

    /// The core and sync groups print to stdout only; say on stderr that they started.
    static func announce(_ name: String, _ group: @escaping (BenchReport, BenchOptions) throws -> Void)
        -> (BenchReport, BenchOptions) throws -> Void
    {
        { r, o in
            progress("\(name)")
            try group(r, o)
        }
    }
}
