// Layer 6: switching, parking and waking — the direct switch, yield, maintenance (timers and
// I/O between switches), `park` and the wakes, the errno location of the running thread.
//
// The why is in the essay at the top of Scheduler.swift ("Direct switches", "Parking",
// "Timers and I/O while threads are busy").
import CUThreads
import Glibc

extension Scheduler {
    // MARK: Switching

    /// Suspends `from` (already queued or parked by the caller) and runs `next`.
    @inline(__always)
    func switchTo(_ next: ControlBlock, from: ControlBlock) {
        if hostingJoiner != nil { unhost(from) }
        ContextSwitch.saveExclusivity(from, liveHead: liveAccessHead)
        if from.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) {
            checkCanary(from)
        }
        if accounting {
            let tick = uthreads_ticks_inline()
            from.pointee.cpu_ticks &+= tick &- from.pointee.run_start_tick
            from.pointee.wait_since_tick = tick  // off the CPU since now (a park's start)
            next.pointee.run_start_tick = tick
            lastTick = tick
        }
        next.pointee.state = .stateRunning
        next.pointee.switches &+= 1
        switchCount &+= 1
        current = next
        uthreads_set_current(next == idleBlock ? nil : next)
        if hooks { switchHooks(from: from, to: next) }  // slices, tracing, errno; false for M:1 FIFO
        // Hand our own address to whoever we resume; receive the address of whoever resumes us.
        // Under M:N that may be another worker's scheduler (the thread migrated while it was
        // suspended): from here on `self` is stale, and only the handed-off one may be used.
        let resumer = ContextSwitch.jump(
            from: from, to: next, handoff: Unmanaged.passUnretained(self).toOpaque(), tsan: tsan)
        // Every switch passes a scheduler: no check on this path.
        Unmanaged<Scheduler>.fromOpaque(resumer.unsafelyUnwrapped)._withUnsafeGuaranteedRef { $0.resumed(from) }
    }

    /// Runs in a thread right after it was switched back in, on the scheduler that resumed it.
    @inline(__always)
    func resumed(_ me: ControlBlock) {
        ContextSwitch.restoreExclusivity(me)
        if let z = zombie { reap(z) }
    }

    /// Dense stacks have no guard between slots (StackPool's essay): before `t` leaves the CPU,
    /// its canary must be intact and the stack pointer (still `t`'s) inside its slot.
    @inline(__always)
    func checkCanary(_ t: ControlBlock) {
        let lo = UnsafeMutableRawPointer(t.pointee.stack_lo.unsafelyUnwrapped)
        let sp = uthreads_stack_pointer()
        if (lo - 16).load(as: UInt64.self) != UTHREADS_CANARY
            || UnsafeRawPointer(sp.unsafelyUnwrapped) < UnsafeRawPointer(lo)
        {
            uthreads_report_dense_overflow(t, sp)
        }
    }

    /// Switches from `from` (no longer runnable, or already requeued) to the next ready
    /// thread, or to the idle loop when none is ready.
    @inline(__always)
    func switchAway(from: ControlBlock) {
        let next = nextReady() ?? idleBlock
        if next == from {
            if hooks { switchHooks(from: from, to: from) }  // a new slice (never with FIFO's yield)
            from.pointee.state = .stateRunning
            return
        }
        switchTo(next, from: from)
    }

    /// Lets other ready threads run; returns at once when none is. O(1) with FIFO.
    @inline(__always)
    func yield() {
        let me = current
        yieldsUntilMaintenance &-= 1
        if yieldsUntilMaintenance <= 0 { maintenance() }
        guard hasReadyThreads else { return }
        me.pointee.state = .stateReady
        if let fifo { fifo.awakened(ThreadRef(me), reason: .yielded) } else { requeueTimed(me, .yielded) }
        // A yield is a site audited for resuming on another M:N worker (nothing here
        // uses `self` after the switch). It needs no flag: a ready thread with no wait kind was
        // suspended by a yield (or never ran), so M:1 pays nothing here.
        switchAway(from: me)
    }

    /// Fires expired timers and looks at the poller without blocking. Every 64 yields.
    @inline(never)
    func maintenance() {
        yieldsUntilMaintenance = 64
        if !timers.isEmpty { fireTimers(now: now()) }
        if let poller, poller.pendingWakeups > 0 { poller.poll(timeoutNanoseconds: 0) }
        answerSafePointRequests()
        if let foreignCancels, foreignCancels.hasPosts { applyForeignCancels(foreignCancels) }
        if let worker { worker.maintenance(self) }
    }

    // MARK: Parking and waking

    /// Parks the running thread until a wake source picks it. The caller may have put it on a
    /// WaitQueue; on any result but `.woken` it is no longer on that queue.
    ///
    /// - Parameters:
    ///   - deadline: CLOCK_MONOTONIC nanoseconds, or nil for no timeout.
    ///   - cancellable: whether `cancel()` ends the wait (every public wait is).
    @inline(never)
    func park(
        _ kind: WaitReason.Kind, object: UInt64 = 0, target: WaitTarget? = nil,
        deadline: UInt64? = nil, cancellable: Bool = true
    ) -> WakeResult {
        park(inlined: kind, object: object, target: target, deadline: deadline, cancellable: cancellable)
    }

    /// `park`, inlined into the caller: only the join uses it (the spawn+join path; a call
    /// there cost ~40 instructions per cycle). Every other wait calls `park`, which stays one
    /// frame, named in backtraces and thread dumps (debug builds name this one `park(inlined:…)`).
    @inline(__always)
    func park(
        inlined kind: WaitReason.Kind, object: UInt64 = 0, target: WaitTarget? = nil,
        deadline: UInt64? = nil, cancellable: Bool = true
    ) -> WakeResult {
        let me = current
        if me == idleBlock { Scheduler.misuse("a blocking call") }
        if cancellable && me.has(.flagCancelled) {
            WaitQueue.unlink(me)
            return .cancelled
        }
        if let deadline {
            if deadline <= now() {
                WaitQueue.unlink(me)
                return .timedOut
            }
            me.pointee.deadline_ns = deadline
            timers.insert(me)
        }
        me.pointee.state = kind == .sleep ? .stateSleeping : .stateBlocked
        me.pointee.wait_kind = kind.rawValue
        me.pointee.wait_object = object
        if !accounting { me.pointee.wait_since_tick = uthreads_ticks_inline() }  // else set by the switch
        if cancellable { me.set(.flagCancellable) }
        if let target { objectOf(me).waitTarget = target }
        stopped(me, finished: false)
        switchAway(from: me)
        me.clear(.flagCancellable)
        me.pointee.wait_kind = 0
        if target != nil { objectOf(me).waitTarget = nil }
        return WakeResult.stored(me.pointee.wake_result)
    }

    /// Makes a parked thread ready with `result`. Unlinks it from its wait queue and its
    /// timer. Returns false (and does nothing) when it is not parked. O(log timers).
    @discardableResult
    func wake(_ t: ControlBlock, _ result: WakeResult) -> Bool {
        let state = t.pointee.state
        guard state == .stateBlocked || state == .stateSleeping else { return false }
        if t.has(.flagTimer) { timers.remove(t) }
        if t.pointee.wait_queue != nil { WaitQueue.unlink(t) }
        t.pointee.wake_result = result.rawValue
        t.pointee.state = .stateReady
        if let recorder { recorder.record(.wake, t, detail: result.rawValue, at: sliceClock()) }
        makeReady(t, .woken)
        return true
    }

    /// Wakes the thread of row `block` with `result` if this scheduler owns the row and the
    /// row's current wait has `token` (a waiter's wake, Sync/Waiter.swift); else drops it: the
    /// thread gave up that wait, migrated away, or finished. O(log timers).
    @inline(__always)
    func wakeWaiting(block: UInt, token: UInt64, _ result: WakeResult) {
        // Ownership first: a late wake may name a row that migrated away since (another kernel
        // thread's now, or freed at its home); only an owned row's fields may be read.
        guard let t = ControlBlock(bitPattern: block), table.owns(t), t.pointee.mn_token == token else { return }
        wake(t, result)
    }

    /// Sets the cancelled flag and ends a cancellable wait. O(log timers).
    func cancel(_ t: ControlBlock) {
        t.set(.flagCancelled)
        objectOf(t).isCancelled = true
        // A joiner hosting the running thread is parked on no queue: unhosting makes it (and
        // the joiners up its chain) ordinary parked joiners, and wakes it, now cancelled, as
        // the normal join's park would be woken (the essay's "Parking").
        if t.has(.flagHosting) { unhost(current) } else if t.has(.flagCancellable) { wake(t, .cancelled) }
    }

    func fireTimers(now: UInt64) {
        while let t = timers.popExpired(now: now) {
            wake(t, .timedOut)
        }
    }

    /// The errno of the kernel thread that runs this scheduler (call only on that thread).
    @inline(__always)
    var errnoLocation: UnsafeMutablePointer<Int32> {
        if let p = errnoPointer { return p }
        return findErrno()
    }

    /// `errnoLocation` at the scheduler's first switch (out of line: the hot path is a load).
    @inline(never)
    private func findErrno() -> UnsafeMutablePointer<Int32> {
        let p = __errno_location()!
        errnoPointer = p
        return p
    }

    @inline(__always)
    func objectOf(_ t: ControlBlock) -> ThreadObject {
        Unmanaged<ThreadObject>.fromOpaque(t.pointee.object!).takeUnretainedValue()
    }
}
