// Layer 6: the scheduler's debug checks of the table, the timer heap and the policy.
//
// The state they check is described in the essay at the top of Scheduler.swift.
import CUThreads
import Glibc

extension Scheduler {
    // MARK: Invariants

    /// Debug check of the table, the timer heap and the policy. O(threads).
    func checkInvariants() {
        settleHostedRow()
        timers.checkInvariants()
        policy.checkInvariants()
        var live = 0
        table.forEachLive { t in
            live += 1
            let s = t.pointee.state
            precondition(s != .stateRunning || t == current, "thread #\(t.pointee.id) is running but not current")
            precondition(
                t.has(.flagTimer) == false || s == .stateBlocked || s == .stateSleeping,
                "thread #\(t.pointee.id) has a timer but is not parked")
            precondition(
                t.pointee.wait_queue == nil || s == .stateBlocked,
                "thread #\(t.pointee.id) is on a wait queue but not blocked")
            precondition(
                !t.has(.flagHosting) || (s == .stateBlocked && t.pointee.wait_queue == nil && !t.has(.flagTimer)),
                "thread #\(t.pointee.id) hosts a thread but is not parked on nothing")
        }
        precondition(live == table.liveCount, "thread table count \(table.liveCount) but \(live) live rows")
        // No time slice runs while the idle loop has the CPU.
        precondition(current != idleBlock || sliceEnd == .max, "the idle loop holds a time slice")
    }

    /// Deadlock reports this scheduler wrote (at most one per M:1 runtime; M:N workers report
    /// through their runtime instead).
    var deadlockReports: Int { deadlock == nil ? 0 : 1 }
}
