// Layer 6: what a scheduler is told when it is made.
//
// The public `UThreadRuntime.Configuration` (Runtime/Configuration.swift) belongs to the layer
// above; the Runtime layer turns it into these settings (`schedulerSettings`) for every
// scheduler it makes, M:1 or an M:N worker's, so the scheduler never names that layer. Only
// what the scheduler itself reads is here: the control socket, the fault handler and the main
// thread's stack size stay with the runtime.
import Logging

struct SchedulerSettings: Sendable {
    /// The smallest stack a thread may ask for (16 KiB).
    static let minimumStackSize = 16 * 1024
    /// The largest stack a thread may ask for (1 GiB; only touched pages cost memory).
    static let maximumStackSize = 1 << 30

    /// Time is the scheduler's virtual clock (deterministic simulation), not the kernel's.
    var virtualClock: Bool
    var trace: UThreadTrace?
    var watchdogLimit: Duration?
    var watchdogHandler: (@Sendable (WatchdogReport) -> Void)?
    var stackMode: StackMode
    var stackSize: Int
    var denseStackSize: Int
    var pooledStacks: Int
    var logger: Logger
    var cpuAccounting: Bool
    var checkInvariants: Bool
    /// The signal that asks for a thread dump (nil: none).
    var dumpSignal: Int32?
}
