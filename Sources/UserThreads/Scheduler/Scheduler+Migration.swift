// Layer 6: the scheduler's half of M:N migration — shedding ready threads, adopting and
// reclaiming them.
//
// The why is in the essay at the top of Scheduler.swift ("M:N") and in MN/MNWorker.swift.
import CUThreads
import Glibc

extension Scheduler {
    // MARK: M:N migration (the essay is in MN/MNWorker.swift)

    /// Unlinks up to `max` ready threads that may resume on another worker (the policy picks
    /// them: the ones it would run last) and gives up their ownership. Each comes with the
    /// policy state that travels with it (`SchedulingPolicy.emigrate`). `keep`: rows the caller
    /// keeps here although they may move. O(ready).
    func shedMigratable(max: Int, keep: (ControlBlock) -> Bool = { _ in false }) -> [Emigrant] {
        guard max > 0 else { return [] }
        let out = policy.emigrate(max: max) { Scheduler.mayMove($0.block) && !keep($0.block) }
        for e in out { table.emigrate(e.thread.block) }
        return out
    }

    /// Whether a ready thread may resume on another worker: an M:N thread that was never
    /// pinned, suspended at an audited site: an M:N wait or a sleep (MOVABLE), or a yield, an
    /// audited preemption (`UThread.checkpoint()`) or never run (no wait kind: every park sets
    /// one and clears it only once the thread runs again; a preemption inside the runtime marks
    /// itself UNAUDITED).
    @inline(__always)
    static func mayMove(_ t: ControlBlock) -> Bool {
        t.has(.flagMigratable)
            && (t.has(.flagMovable) || (t.pointee.wait_kind == 0 && !t.has(.flagUnaudited)))
    }

    /// Takes the ready thread `t` back from the policy and gives up its ownership (it moves to
    /// another worker); nil when the policy does not give it up.
    func emigrate(_ t: ControlBlock) -> Emigrant? {
        guard let e = policy.emigrate(max: 1, where: { $0.block == t }).first else { return nil }
        table.emigrate(t)
        return e
    }

    /// Ready threads on the run queue.
    var readyCountForShedding: Int { fifo?.readyCount ?? policy.readyCount }

    /// Takes ownership of a ready thread another worker gave up and makes it ready here, with
    /// the policy state it brought (`SchedulingPolicy.immigrate`).
    func adopt(_ t: ControlBlock, state: (any Sendable)?) {
        t.pointee.runtime = Unmanaged.passUnretained(self).toOpaque()
        t.pointee.worker = workerIndex
        let object = objectOf(t)
        object.migrations &+= 1
        object.runtime = t.pointee.runtime
        table.immigrate(t)
        if let fifo { fifo.immigrate(ThreadRef(t), state: state) } else { policy.immigrate(ThreadRef(t), state: state) }
    }

    /// Frees a row of this table (and its stack) whose thread finished on another worker.
    func reclaim(_ t: ControlBlock) {
        stacks.release(stackOf(t))
        table.returned(t)
    }

    /// Cancels every live thread but `except` (used when the main thread returns).
    func cancelAll(except: ControlBlock?) {
        table.forEachLive { t in
            if t != except && t.pointee.state != .stateFinished { cancel(t) }
        }
    }
}
