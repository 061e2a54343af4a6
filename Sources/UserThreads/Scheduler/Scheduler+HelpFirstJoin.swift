// Layer 6: help-first join — `join()` of a thread that has not started runs it at once on
// the joiner's kernel thread, and unhosts it the first time it leaves the CPU.
//
// The why is in the essay at the top of Scheduler.swift ("Help-first join").
import CUThreads
import Glibc

extension Scheduler {
    // MARK: Help-first join (see the essay)

    /// Runs `t`, a thread that has not started, from the calling joiner `me`'s join until its
    /// body returns or it first leaves the CPU, when it may (see the essay's "Help-first
    /// join"). Returns nil when it may not (the caller takes the normal path), else how the
    /// join's wait ended, as the normal join's park returns it: `.woken` (the child finished,
    /// or a wake the caller re-checks), `.cancelled`, `.deadlocked`. O(1) besides the body.
    @inline(__always)
    func host(_ t: ControlBlock, joiner me: ControlBlock) -> WakeResult? {
        // `hooks` false: FIFO (`fifo` set), no tracing, not an M:N worker.
        guard !hooks, !tsan, t.pointee.switches == 0, fifo.unsafelyUnwrapped.isFirst(t), !me.has(.flagCancelled),
            me != idleBlock
        else { return nil }
        return runHosted(t, joiner: me)
    }

    @inline(__always)
    private func runHosted(_ t: ControlBlock, joiner me: ControlBlock) -> WakeResult {
        fifo.unsafelyUnwrapped.removeFirst()
        // The joiner parks on the child's join, on no queue until the child first leaves the
        // CPU (`unhost`); `uthreads_call_on_stack` saves its switch frame in `sp`.
        ContextSwitch.saveExclusivity(me, liveHead: liveAccessHead)
        me.pointee.state = .stateBlocked
        me.pointee.wait_kind = WaitReason.Kind.join.rawValue
        me.pointee.wait_object = t.pointee.id
        me.set(.flagHosting)
        me.pointee.next = hostingJoiner
        hostingJoiner = me
        let tick = uthreads_ticks_inline()
        me.pointee.wait_since_tick = tick
        if accounting {
            me.pointee.cpu_ticks &+= tick &- me.pointee.run_start_tick
            t.pointee.run_start_tick = tick
            lastTick = tick
        }
        t.pointee.state = .stateRunning
        t.pointee.switches &+= 1
        current = t
        uthreads_set_current_here(t)  // inline: M:1 only, no switch in between (cuthreads.h)
        if checks { precondition(objectOf(t).contents == .body, "thread #\(t.pointee.id) started without a body") }
        let slot = UnsafeMutableRawPointer(me).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)  // `sp`
        // The body's stack starts below the first frame spawn wrote, which a later spawn on
        // this row then need not write again (`spawn`).
        let top = uthreads_context_frame(UnsafeMutableRawPointer(t.pointee.stack_hi.unsafelyUnwrapped))
        if let resumer = uthreads_call_on_stack(UnsafeMutableRawPointer(t), hostedEntry, top, slot) {
            // Unhosted, then resumed by a switch: an ordinary parked joiner's return.
            return Scheduler.unhostedJoinReturned(me, resumer)
        }
        // The body has returned without ever leaving the CPU. The exit as `exitCurrent`'s,
        // without the switch.
        hostingJoiner = me.pointee.next  // (a stale `next` is harmless: linking a row writes it)
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        object._withUnsafeGuaranteedRef { object in
            object.isFinished = true
            if object.locals != nil { object.locals = nil }
            while let other = object.dequeue() { wake(other, .woken) }
        }
        if accounting {
            let end = uthreads_ticks_inline()
            t.pointee.cpu_ticks &+= end &- t.pointee.run_start_tick
            me.pointee.run_start_tick = end
            lastTick = end
        }
        if Scheduler.debugBuild || checks { checkNoOpenAccess(t) }
        if hostedRow == nil && t.has(.flagDefaultStack) && object._withUnsafeGuaranteedRef({ $0.resultIsTrivial }) {
            // Kept whole for the next spawn, its counts left as they are ("Thread objects").
            object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
            t.pointee.state = .stateFree
            hostedRow = t
        } else {
            t.pointee.state = .stateFinished
            // `release`, without its tests for ThreadSanitizer and immigrants: a hosted thread
            // has neither (M:1, `host`).
            let stack = stackOf(t)
            if !slab.isFull && object._withUnsafeGuaranteedRef({ $0.resultIsTrivial }) && stacks.poolsAsIs(stack) {
                keep(t, dense: stack.mode == .dense, object: object)
            } else {
                release(t)
            }
        }
        current = me
        uthreads_set_current_here(me)
        me.pointee.state = .stateRunning
        me.pointee.wait_kind = 0
        me.clear(.flagHosting)
        ContextSwitch.restoreExclusivity(me)
        // The exit's wake would have queued the joiner behind threads that are ready now.
        if fifo.unsafelyUnwrapped.hasReadyThreads {
            me.pointee.state = .stateReady
            fifo.unsafelyUnwrapped.awakened(ThreadRef(me), reason: .woken)
            switchAway(from: me)
        }
        // A cancel while hosted unhosts the joiner (`cancel`), so it is not cancelled here;
        // checked as the normal join's park result would be.
        return me.has(.flagCancelled) ? .cancelled : .woken
    }

    /// Whether the running thread is hosted (tests: the help-first join was taken).
    var runningThreadIsHosted: Bool { hostingJoiner != nil }

    /// The running thread `from` leaves the CPU while hosted: it and every joiner hosting it in
    /// turn become ordinary threads. Each joiner is then parked on its child's join queue,
    /// cancellable (woken at once when already cancelled), resumable through the switch frame
    /// `uthreads_call_on_stack` saved. O(hosting depth).
    @inline(never)
    func unhost(_ from: ControlBlock) {
        var child = from
        while let joiner = hostingJoiner {
            hostingJoiner = joiner.pointee.next
            joiner.pointee.next = nil
            joiner.clear(.flagHosting)
            joiner.set(.flagCancellable)
            objectOf(child).enqueue(joiner)
            if joiner.has(.flagCancelled) { wake(joiner, .cancelled) }
            child = joiner
        }
    }

    /// The end of a join whose hosted child was unhosted: the joiner was resumed by a switch
    /// (`resumer` is the switcher's scheduler), as after the normal join's park.
    @inline(never)
    private static func unhostedJoinReturned(_ me: ControlBlock, _ resumer: UnsafeMutableRawPointer) -> WakeResult {
        Unmanaged<Scheduler>.fromOpaque(resumer)._withUnsafeGuaranteedRef { $0.resumed(me) }
        me.clear(.flagCancellable)
        me.pointee.wait_kind = 0
        return WakeResult.stored(me.pointee.wake_result)
    }

    /// The body of a hosted thread, on its own stack (`uthreads_call_on_stack`). Still hosted,
    /// it returns into the join (the dense canary checked here, before the stack pointer leaves
    /// the stack); unhosted, it takes the normal exit (`exitUnhosted`) and never returns.
    fileprivate static func hostedMain(_ t: ControlBlock) {
        Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)._withUnsafeGuaranteedRef { $0.run() }
        let runtime = Unmanaged<Scheduler>.fromOpaque(t.pointee.runtime.unsafelyUnwrapped)
        // Hosted still: its joiner hosts the running thread. Else nothing does (every hosting
        // chain under it was unhosted when it left the CPU).
        if runtime._withUnsafeGuaranteedRef({ $0.hostingJoiner == nil }) { exitUnhosted(t) }
        if t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) {
            runtime._withUnsafeGuaranteedRef { $0.checkCanary(t) }
        }
    }

    /// The exit of a hosted thread that was unhosted: `exitCurrent` and the final switch, as
    /// `threadMain`'s (no Swift reference lives in this frame).
    @inline(never)
    private static func exitUnhosted(_ t: ControlBlock) -> Never {
        let runtime = t.pointee.runtime.unsafelyUnwrapped
        let next = Unmanaged<Scheduler>.fromOpaque(runtime)._withUnsafeGuaranteedRef { $0.exitCurrent(t) }
        ContextSwitch.jump(from: t, to: next, handoff: runtime, tsan: false)
        fatalError("UserThreads: a finished thread was resumed")
    }
}

/// The C entry point of a hosted thread's body (called by uthreads_call_on_stack).
private let hostedEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    Scheduler.hostedMain(arg.unsafelyUnwrapped.assumingMemoryBound(to: uthreads_tcb.self))
}
