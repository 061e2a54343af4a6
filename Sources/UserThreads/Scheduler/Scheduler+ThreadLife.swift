// Layer 6: a thread's life — its body, its exit, the reap of its row and stack, and the rows
// and objects kept for the next spawn.
//
// The why is in the essay at the top of Scheduler.swift ("Exit", "Thread objects").
import CUThreads
import Glibc

extension Scheduler {
    // MARK: Thread life

    /// Body of every user thread, after the trampoline. Everything with a Swift reference
    /// happens in `life`, which returns before the final switch; this frame holds only raw
    /// pointers, because the frame that makes the final switch never returns.
    static func threadMain(_ t: ControlBlock) -> Never {
        let next = Unmanaged<Scheduler>.fromOpaque(t.pointee.runtime.unsafelyUnwrapped)._withUnsafeGuaranteedRef {
            $0.life(t)
        }
        ContextSwitch.jump(from: t, to: next, handoff: t.pointee.runtime, tsan: next.pointee.tsan_fiber != nil)
        fatalError("UserThreads: a finished thread was resumed")
    }

    /// Runs the thread's body, then its exit: publishes the result, wakes joiners, and picks
    /// the thread to switch to. One call, not three (start, run, finish: ~25 instructions of
    /// calls per thread), on the scheduler that started the thread.
    @inline(never)
    private func life(_ t: ControlBlock) -> ControlBlock {
        resumed(t)
        if checks { precondition(objectOf(t).contents == .body, "thread #\(t.pointee.id) started without a body") }
        Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)._withUnsafeGuaranteedRef { $0.run() }
        // Under M:N the thread may have migrated while its body ran: its exit then belongs to
        // the scheduler that runs it now, and of `self` only the address is read here.
        let runtime = t.pointee.runtime.unsafelyUnwrapped
        if runtime == Unmanaged.passUnretained(self).toOpaque() { return exitCurrent(t) }
        return Scheduler.exitMigrated(t, on: runtime)
    }

    /// The exit of a thread that finished on another worker than the one that started it.
    @inline(never)
    private static func exitMigrated(_ t: ControlBlock, on runtime: UnsafeMutableRawPointer) -> ControlBlock {
        Unmanaged<Scheduler>.fromOpaque(runtime)._withUnsafeGuaranteedRef { $0.exitCurrent(t) }
    }

    @inline(__always)
    func exitCurrent(_ t: ControlBlock) -> ControlBlock {
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        let direct = object._withUnsafeGuaranteedRef { object -> ControlBlock? in
            object.isFinished = true
            if object.locals != nil { object.locals = nil }
            guard let joiner = object.dequeue() else { return nil }
            // The spawn-join fast path: one joiner, parked without a timer, and nothing else
            // ready under FIFO. Waking it would append it to the empty run queue and
            // `nextReady` would pop it at once: switch to it directly instead (the same
            // order, ~20 instructions less). Everything else goes through `wake`.
            if object.isEmpty, let fifo, !fifo.hasReadyThreads, recorder == nil, !joiner.has(.flagTimer) {
                joiner.pointee.wake_result = WakeResult.woken.rawValue
                return joiner
            }
            wake(joiner, .woken)
            while let other = object.dequeue() { wake(other, .woken) }
            return nil
        }
        if t.has(.flagMain) { cancelAll(except: t) }
        stopped(t, finished: true)
        t.pointee.state = .stateFinished
        if t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) { checkCanary(t) }
        let tick = accounting ? uthreads_ticks_inline() : 0
        if accounting { t.pointee.cpu_ticks &+= tick &- t.pointee.run_start_tick }
        // No exclusivity save (a libswiftCore call and a TLS lookup, ~35 instructions): no
        // access can be open here. Every dynamic access Swift begins is scoped to one frame of
        // the thread that begins it (begin and end in the same function, its node on that
        // frame); the body and every frame it called have returned, and this frame and
        // `threadMain` begin none. The live access set is only ever the running thread's own
        // (every switch moves the outgoing thread's set into its row and leaves the live set
        // empty; the incoming thread's saved set is re-entered), so it is empty now, and
        // saving it would store an empty set into a row that is about to be freed. Debug
        // builds and `checkInvariants` still save it and check that it is empty.
        if Scheduler.debugBuild || checks { checkNoOpenAccess(t) }
        let next = direct ?? nextReady() ?? idleBlock
        next.pointee.state = .stateRunning
        next.pointee.switches &+= 1
        switchCount &+= 1
        if accounting {
            next.pointee.run_start_tick = tick
            lastTick = tick
        }
        current = next
        uthreads_set_current(next == idleBlock ? nil : next)
        if hooks { switchHooks(from: t, to: next) }
        if !reapOwnExit(t) { zombie = t }
        return next
    }

    /// The cheap exit: a finishing thread that can be kept whole (ThreadObjectSlab) puts
    /// its own row, stack and object in the slab before its last switch (on an M:N worker the
    /// row and stack there, the object among the kept objects: "Thread objects"), instead of leaving them
    /// as the `zombie` for whoever runs next (a store, a load and a call of `reap`: ~30
    /// instructions per thread). Safe because nothing runs on this kernel thread between here
    /// and the switch, so no spawn can take the row or the stack while this thread still uses
    /// them; the switch then writes only the kept row's `sp`, which the next spawn overwrites.
    /// Only when keeping runs no code and touches no memory or mapping: a trivial result (no
    /// deinit), a stack the pool would take as it is (`poolsAsIs`: no munmap or madvise), not
    /// under ThreadSanitizer (a fiber cannot destroy itself), not an immigrant's row on an M:N
    /// worker (it goes home: `reapImmigrant`), not when the kept objects are full (the object
    /// would be released here, and its deinit could run code). Everything else goes through
    /// the zombie.
    @inline(__always)
    private func reapOwnExit(_ t: ControlBlock) -> Bool {
        guard !tsan, !slab.isFull else { return false }
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        guard object._withUnsafeGuaranteedRef({ $0.resultIsTrivial }) else { return false }
        let stack = stackOf(t)
        guard stacks.poolsAsIs(stack) else { return false }
        if workerIndex < 0 {
            keep(t, dense: stack.mode == .dense, object: object)
            return true
        }
        // An M:N worker: the row alone, and the object to the kept objects (no release, so no
        // deinit runs here); an immigrant's row goes home instead (`reapImmigrant`).
        guard !t.has(.flagImmigrant), !keptObjects.isFull, object._withUnsafeGuaranteedRef({ $0.isCrossWorker })
        else { return false }
        keepRow(t, dense: stack.mode == .dense, object: object)
        keptObjects.keep(object)  // the row's +1 moves there
        return true
    }

    /// An M:N worker keeps a finished row whole with its stack, without its object (which
    /// belongs to the thread's spawner's worker: KeptThreadObjects.swift): the next thread this
    /// worker starts with the default stack takes it (`takeKeptRow`). The caller disposes of
    /// the object (the row's +1). O(1).
    @inline(__always)
    private func keepRow(_ t: ControlBlock, dense: Bool, object: Unmanaged<ThreadObject>) {
        stacks.keepAside(dense: dense)
        object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
        t.pointee.object = nil
        table.retire(t)
        slab.keep(t)
    }

    /// A row this M:N worker kept whole (`keepRow`), live again, for a thread with the default
    /// stack size and no scheduling parameters (`spawn(keptRow:)`); nil when none is kept. O(1).
    @inline(__always)
    func takeKeptRow() -> ControlBlock? {
        guard let t = slab.take() else { return nil }
        stacks.takeBack(dense: t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE))
        table.revive(t)
        return t
    }

    /// Puts a finished row with its stack and object in the slab (the caller checked that it
    /// may: M:1, a trivial result, a stack `poolsAsIs`, room in the slab). O(1).
    @inline(__always)
    func keep(_ t: ControlBlock, dense: Bool, object: Unmanaged<ThreadObject>) {
        stacks.keepAside(dense: dense)
        object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
        table.retire(t)
        slab.keep(t)
    }

    /// Makes the table's live count and the stack pool's figures exact: the row kept for the
    /// next spawn (`hostedRow`) is given up as any finished row (`release`: to the slab, or its
    /// stack to the pool and the row to the table). Every reader of those figures calls it
    /// first: the idle loop, the invariants, the statistics and metrics, the teardown. O(1).
    @inline(__always)
    func settleHostedRow() {
        if let t = hostedRow { settle(t) }
    }

    @inline(never)
    private func settle(_ t: ControlBlock) {
        hostedRow = nil
        release(t)
    }

    /// Debug check of a finishing thread: its exclusivity access set is empty (see exitCurrent).
    @inline(never)
    func checkNoOpenAccess(_ t: ControlBlock) {
        ContextSwitch.saveExclusivity(t)
        precondition(
            t.pointee.exclusivity.0 == nil && t.pointee.exclusivity.1 == nil,
            "UserThreads: thread #\(t.pointee.id) finished with an open exclusive access")
    }

    #if DEBUG
        static let debugBuild = true
    #else
        static let debugBuild = false
    #endif

    /// Returns a finished thread's stack and row, and its row's reference to the object, or
    /// keeps all three for a later spawn (`keep`). Runs on another thread's stack.
    func reap(_ t: ControlBlock) {
        zombie = nil
        release(t)
    }

    /// `reap` without the zombie: also the exit of a hosted thread (its stack was not in use).
    @inline(__always)
    func release(_ t: ControlBlock) {
        if tsan { uthreads_tsan_fiber_destroy(t) }
        if t.has(.flagImmigrant) { return reapImmigrant(t) }
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object!)
        let stack = stackOf(t)
        // Kept whole under M:1; an M:N worker keeps row and object apart (`releaseOnWorker`).
        if workerIndex < 0 && !slab.isFull && object._withUnsafeGuaranteedRef({ $0.resultIsTrivial })
            && stacks.poolsAsIs(stack)
        {
            return keep(t, dense: stack.mode == .dense, object: object)
        }
        if workerIndex >= 0 { return releaseOnWorker(t, object: object, stack: stack) }
        stacks.release(stack)
        object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
        table.release(t)
        object.release()
    }

    /// `release` on an M:N worker (out of line: `release` is inlined into the M:1 exit paths):
    /// the row is kept with its stack whatever the result (`keepRow`), the object goes to the
    /// kept objects when its result is trivial (KeptThreadObjects.swift), else is released.
    @inline(never)
    private func releaseOnWorker(_ t: ControlBlock, object: Unmanaged<ThreadObject>, stack: Stack) {
        if !slab.isFull && stacks.poolsAsIs(stack) {
            keepRow(t, dense: stack.mode == .dense, object: object)
        } else {
            stacks.release(stack)
            object._withUnsafeGuaranteedRef { $0.controlBlock = nil }
            table.release(t)
        }
        if !tsan && !keptObjects.isFull && object._withUnsafeGuaranteedRef({ $0.isCrossWorker && $0.resultIsTrivial }) {
            return keptObjects.keep(object)  // the row's +1 moves there
        }
        object.release()
    }

    /// A kept M:N thread object (KeptThreadObjects.swift), with its +1, for a spawn on this
    /// worker; the caller reuses it only if nothing else references it. Nil when none is kept.
    @inline(__always)
    func takeKeptObject() -> Unmanaged<ThreadObject>? { keptObjects.take() }

    /// Gives up every row kept in the slab: stacks back to the pool, rows to the table, objects
    /// released (the runtime ends).
    func giveUpKeptRows() {
        while let t = slab.take() {
            stacks.returnKept(stackOf(t))
            if let o = t.pointee.object { Unmanaged<ThreadObject>.fromOpaque(o).release() }  // none on a worker
            table.revive(t)
            table.release(t)
        }
    }

    /// A finished immigrant's row and stack belong to its home worker's table and pool:
    /// they go home; only the object is released here.
    @inline(never)
    private func reapImmigrant(_ t: ControlBlock) {
        let object = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object!)
        let home = Int(object.takeUnretainedValue().home)
        object.takeUnretainedValue().controlBlock = nil
        table.leave(t)
        object.release()
        worker!.finishedAbroad(t, home: home)
    }

    func stackOf(_ t: ControlBlock) -> Stack {
        let mode: StackMode = t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) ? .dense : .guarded
        // Set by spawn for every row that has a stack (no checks on the reap path).
        return Stack(
            lo: UnsafeMutableRawPointer(t.pointee.stack_lo.unsafelyUnwrapped),
            hi: UnsafeMutableRawPointer(t.pointee.stack_hi.unsafelyUnwrapped),
            guardSize: Int(truncatingIfNeeded: t.pointee.guard_size), mode: mode)
    }
}
