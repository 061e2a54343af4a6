// Layer 4: the thread table — thread states and who owns what in each.
//
// Ownership invariants (as Go's runtime2.go states them for a g's status). "Owner" is the one
// piece of code allowed to change the thread's state or links; everyone else only reads.
//
//   ready     The thread is on exactly one run queue: the scheduling policy's. The policy owns
//             its `next`/`prev` links. Its stack holds a valid saved frame at `sp`. It is on no
//             wait queue; it may still have a timer entry only if it was woken by something else
//             in the same scheduler pass (never observed outside the scheduler).
//   running   The one thread per runtime that is on the CPU; `current` of its scheduler. On no
//             queue, no timer. Owns its own stack; `sp` is stale.
//   blocked   Parked: on at most one WaitQueue (`wait_queue`, which owns the links) and, if the
//             wait has a deadline, in the timer heap (`timer_index`). `wait_kind`/`wait_object`
//             say what it waits for. Exactly one of: the wait queue's owner, the timer, or
//             cancel() makes it ready, and that one removes it from the other structures.
//   sleeping  Parked with a deadline and no wait queue: in the timer heap only.
//   finished  Ran to completion. Its stack is back in the pool, its control block slot is free
//             for reuse; what remains is the Swift object holding the result for join().
//
// A control block is reachable from the thread table (always, while not finished), from at
// most one queue, and from the timer heap. The stack is owned by the control block from spawn
// until the thread's exit, when the *next* thread to run returns it to the pool (a thread
// cannot free the stack it is running on).
import CUThreads

/// The state of a user thread, as the thread table shows it.
public enum ThreadState: String, Sendable, Codable, CaseIterable {
    /// On the policy's run queue, waiting for the CPU.
    case ready
    /// The one thread of its runtime on the CPU.
    case running
    /// Parked on something (``WaitReason`` says what), maybe with a deadline.
    case blocked
    /// Parked until a deadline, on nothing else.
    case sleeping
    /// Its closure returned or threw; its stack is already reused.
    case finished

    init(raw: UInt8) {
        switch Int(raw) {
        case Int(UTHREADS_STATE_READY): self = .ready
        case Int(UTHREADS_STATE_RUNNING): self = .running
        case Int(UTHREADS_STATE_BLOCKED): self = .blocked
        case Int(UTHREADS_STATE_SLEEPING): self = .sleeping
        default: self = .finished
        }
    }
}

extension UInt8 {
    static let stateFree = UInt8(UTHREADS_STATE_FREE)
    static let stateReady = UInt8(UTHREADS_STATE_READY)
    static let stateRunning = UInt8(UTHREADS_STATE_RUNNING)
    static let stateBlocked = UInt8(UTHREADS_STATE_BLOCKED)
    static let stateSleeping = UInt8(UTHREADS_STATE_SLEEPING)
    static let stateFinished = UInt8(UTHREADS_STATE_FINISHED)
}

extension UInt32 {
    static let flagCancelled = UInt32(UTHREADS_FLAG_CANCELLED)
    static let flagMain = UInt32(UTHREADS_FLAG_MAIN)
    static let flagTimer = UInt32(UTHREADS_FLAG_TIMER)
    static let flagCancellable = UInt32(UTHREADS_FLAG_CANCELLABLE)
    static let flagOverQuantum = UInt32(UTHREADS_FLAG_OVERQUANTUM)
    static let flagMigratable = UInt32(UTHREADS_FLAG_MIGRATABLE)
    static let flagMovable = UInt32(UTHREADS_FLAG_MOVABLE)
    static let flagImmigrant = UInt32(UTHREADS_FLAG_IMMIGRANT)
    static let flagUnaudited = UInt32(UTHREADS_FLAG_UNAUDITED)
    static let flagScopePinned = UInt32(UTHREADS_FLAG_SCOPEPINNED)
    static let flagHosting = UInt32(UTHREADS_FLAG_HOSTING)
    static let flagDefaultStack = UInt32(UTHREADS_FLAG_DEFAULTSTACK)
    /// Cleared together, they pin a thread for good: no longer migratable, and no thread
    /// group's scope will make it migratable again when it ends (Runtime/ThreadGroup.swift).
    static let flagsPinForGood = flagMigratable | flagScopePinned
}

/// Why a park ended.
public enum WakeResult: UInt8, Sendable {
    /// The wait queue's owner (or whoever the thread waited for) woke it.
    case woken = 0
    /// Its deadline passed.
    case timedOut = 1
    /// `cancel()` was called while it waited.
    case cancelled = 2
    /// What it waited on was closed or destroyed.
    case closed = 3
    /// The runtime found it deadlocked and is tearing down.
    case deadlocked = 4

    /// The result a row holds (`wake_result`); an unknown value reads as `.woken`. Inlined
    /// (`init(rawValue:)` was called out of line on the join's path).
    @inline(__always)
    static func stored(_ raw: UInt8) -> WakeResult {
        switch raw {
        case 1: .timedOut
        case 2: .cancelled
        case 3: .closed
        case 4: .deadlocked
        default: .woken
        }
    }
}

extension WakeResult {
    /// Maps a park's outcome to the error a blocking call throws; `.woken` is success.
    @usableFromInline @inline(__always)
    func check() throws {
        switch self {
        case .woken: return
        case .timedOut: throw UThreadError.timedOut
        case .cancelled: throw CancellationError()
        case .closed: throw UThreadError.closed("the object was closed while this thread waited")
        case .deadlocked: throw UThreadError.deadlock("this thread was woken by deadlock teardown")
        }
    }
}
