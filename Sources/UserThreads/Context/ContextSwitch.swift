// Layer 2: the context switch as Swift sees it.
//
// The assembly (CUThreads/switch_*.S) moves the callee-saved registers and the stack pointer.
// What it cannot know about is the Swift runtime's own per-kernel-thread state that belongs to
// the *user* thread: the dynamic-exclusivity access set. Swift records every open `inout`/
// `modify` access of a class property, global or escaping closure capture in a linked list kept
// in kernel-thread-local storage, with the list's nodes on the accessing thread's stack. A user
// thread that parks inside such an access (for instance in `withUnsafeMutableBufferPointer` on
// a class property) would leave its nodes in the shared list: every other user thread on the
// same kernel thread would then see a false "simultaneous access" and crash, and with thousands
// parked every check walks thousands of nodes. libswiftCore exports the pair used by Swift's own
// task switching for exactly this; we call exit for the outgoing and enter for the incoming
// thread, saving the list head in the thread control block (two words), and skip each call
// when it would do nothing: enter when the thread saved no accesses, exit when the kernel
// thread's live set is empty (its head found once per kernel thread: CUThreads/exclusivity_head.c).
import CUThreads

/// The raw machine context of a thread: its control block's `sp` field.
typealias ControlBlock = UnsafeMutablePointer<uthreads_tcb>

@usableFromInline
enum ContextSwitch {
    @inline(__always)
    static func exclusivityState(_ tcb: ControlBlock) -> UnsafeMutablePointer<CChar> {
        uthreads_exclusivity_state(tcb)
    }

    /// Moves the running kernel thread's access set into `tcb` (the outgoing thread).
    @inline(__always)
    static func saveExclusivity(_ tcb: ControlBlock) {
        swift_task_exitThreadLocalContext(exclusivityState(tcb))
    }

    /// `saveExclusivity`, skipped when the kernel thread's live access set is empty, which is
    /// almost every switch: the runtime's exit then writes nothing (CUThreads/exclusivity_head.c
    /// says why, and how `liveHead` is found). `liveHead` is the calling kernel thread's
    /// (`uthreads_exclusivity_head`), or nil where it could not be found: then the runtime is
    /// called every time.
    @inline(__always)
    static func saveExclusivity(_ tcb: ControlBlock, liveHead: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        if let liveHead, liveHead.pointee == nil { return }
        swift_task_exitThreadLocalContext(exclusivityState(tcb))
    }

    /// Installs `tcb`'s saved access set as the kernel thread's (the incoming thread).
    ///
    /// Skipped when the thread saved no accesses (state word 0 is null), which is almost every
    /// switch: every context, the idle loop's included, exits its accesses before a switch, so
    /// between an exit and the next enter the kernel thread's access set is empty, and entering
    /// an empty saved set into an empty live set is the runtime's documented no-op (case 1 of
    /// the table in the Swift runtime's ConcurrencyExclusivity.inc). Saves a call into
    /// libswiftCore and its TLS lookup per switch.
    @inline(__always)
    static func restoreExclusivity(_ tcb: ControlBlock) {
        if tcb.pointee.exclusivity.0 == nil { return }
        swift_task_enterThreadLocalContext(exclusivityState(tcb))
    }

    /// Suspends `from` and resumes `to`. Returns when some thread switches back to `from`.
    /// The caller has already saved `from`'s exclusivity state; the code that runs after the
    /// return (in `from`) restores it.
    ///
    /// Returns the `handoff` of the switch that resumed `from` — which may have been made on
    /// another kernel thread than this call (an M:N thread resumed by another worker). The
    /// scheduler passes itself, so the resumed side never has to trust a scheduler (or a
    /// thread-local address) it held before the switch.
    @inline(__always) @discardableResult
    static func jump(
        from: ControlBlock, to: ControlBlock, handoff: UnsafeMutableRawPointer?,
        tsan: Bool = false
    ) -> UnsafeMutableRawPointer? {
        // `sp` is the control block's first field: pass its address, never a temporary copy.
        let slot = UnsafeMutableRawPointer(from).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        if tsan { return uthreads_switch_tsan(slot, to, handoff) }  // ThreadSanitizer builds (cuthreads.h)
        return uthreads_switch(slot, to.pointee.sp!, handoff)
    }
}
