// Layer 6: the idle loop — what the kernel thread's own stack runs when no thread is ready:
// timers, I/O, the deadlock check — and the shutdown after the loop ends.
//
// The why is in the essay at the top of Scheduler.swift ("Direct switches", "Deadlock").
import CUThreads
import Glibc

extension Scheduler {
    // MARK: The idle loop

    /// Runs until every thread has finished. Runs on the kernel thread's own stack.
    func runLoop() {
        if tsan { uthreads_tsan_fiber_adopt(idleBlock) }
        liveAccessHead = uthreads_exclusivity_head()
        while true {
            if let next = nextReady() {
                switchTo(next, from: idleBlock)
                continue
            }
            // An M:N worker decides the rest itself (remote wakes, stealing, sleeping in
            // its reactor, global termination and deadlock); false ends the loop.
            if let worker {
                if worker.idle(self) { continue }
                return
            }
            settleHostedRow()
            if table.liveCount == 0 { return }
            answerSafePointRequests()
            if let foreignCancels, foreignCancels.hasPosts {
                applyForeignCancels(foreignCancels)
                if hasReadyThreads { continue }
            }
            if checks { checkInvariants() }
            if !timers.isEmpty { fireTimers(now: now()) }
            if hasReadyThreads { continue }
            let pending = poller?.pendingWakeups ?? 0
            if let deadline = timers.nextDeadline {
                if simulated {
                    // Virtual time jumps to the next deadline instead of sleeping.
                    if pending > 0 { poller!.poll(timeoutNanoseconds: 0) }
                    if virtualNow < deadline { virtualNow = deadline }
                    continue
                }
                let wait = min(deadline &- min(deadline, now()), idleWakeLimit)
                if pending > 0 { poller!.poll(timeoutNanoseconds: wait) } else { sleepKernelThread(nanoseconds: wait) }
                continue
            }
            if pending > 0 {
                poller!.poll(timeoutNanoseconds: idleWakeLimit == .max ? nil : idleWakeLimit)
                continue
            }
            if !handleDeadlock() { return }
        }
    }

    private func sleepKernelThread(nanoseconds: UInt64) {
        guard nanoseconds > 0 else { return }
        // M:1: a sleep that every post, control request and dump signal ends (its bell:
        // ForeignCancels.swift).
        if let foreignCancels { return foreignCancels.sleep(nanoseconds: nanoseconds) }
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        // EINTR ends the sleep early: the loop recomputes the wait after a signal (a dump
        // request is answered then, not when the next timer fires).
        _ = nanosleep(&request, &remaining)
    }

    /// No thread can ever run again. Reports, then wakes everyone with `.deadlocked` so they
    /// unwind. Returns false when the loop must give up (a second deadlock while unwinding).
    private func handleDeadlock() -> Bool {
        deadlockPasses += 1
        if deadlock == nil {
            let report = DeadlockReport(scheduler: self)
            deadlock = report
            uthreads_write_stderr("\n" + report.description + "\n")
        }
        if deadlockPasses > 1 {
            // Threads that parked again while unwinding: abandon them (their stacks stay
            // mapped until the runtime is torn down; their objects leak).
            return false
        }
        table.forEachLive { t in
            if t.pointee.state == .stateBlocked || t.pointee.state == .stateSleeping {
                t.set(.flagCancelled)
                wake(t, .deadlocked)
            }
        }
        return true
    }

    /// Wakes every parked thread with `result` and the cancelled flag (M:N deadlock teardown).
    func wakeAllParked(_ result: WakeResult) {
        table.forEachLive { t in
            if t.pointee.state == .stateBlocked || t.pointee.state == .stateSleeping {
                t.set(.flagCancelled)
                wake(t, result)
            }
        }
    }

    /// Tears down what is left after the loop ended (abandoned threads included).
    func shutdown() {
        settleHostedRow()
        sampler?.sample(self)  // the last figures, before the table and the pool are torn down
        if let z = zombie { reap(z) }
        giveUpKeptRows()
        recorder?.finish(nsPerUnit: nsPerSliceUnit)
        watchdog.flush()
        uthreads_checkpoint_arm(Int64.max / 2)
        var abandoned: [ControlBlock] = []
        table.forEachLive { abandoned.append($0) }
        for t in abandoned where !t.has(.flagImmigrant) {  // immigrants' stacks are their home's
            // Abandoned after a second deadlock: their stacks are unmapped with the pool, their
            // Swift objects leak (they may still reference the stacks' contents).
            if t.has(.flagTimer) { timers.remove(t) }
            if t.pointee.wait_queue != nil { WaitQueue.unlink(t) }
            if tsan { uthreads_tsan_fiber_destroy(t) }
            stacks.release(stackOf(t))
            table.release(t)
        }
        stacks.destroy()
        poller?.shutdown()
        poller = nil
    }
}
