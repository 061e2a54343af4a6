// Layer 6: spawning — a new thread on a fresh or kept row, its arguments checked, its Swift
// object's reference taken.
//
// The why is in the essay at the top of Scheduler.swift ("Thread objects", "Exit").
import CUThreads
import Glibc

extension Scheduler {
    // MARK: Spawning

    /// A new thread id from this runtime's block of ids (an M:N thread's, given at spawn). O(1).
    func allocateID() -> UInt64 { ids.allocate() }

    /// Creates a thread for `object` and makes it ready, on `keptRow` (a row from the slab, with
    /// its stack: `spawnKept`, `takeKeptRow`) or on a new row and pooled stack. O(1) with a pooled stack.
    /// Inlined into its few callers (UThread's spawn among them: ~20 instructions of call per
    /// spawn).
    @inline(__always)
    func spawn(
        _ object: ThreadObject, priority: Int, stackSize: Int?, flags: UInt32 = 0,
        parameters: SchedulingParameters? = nil, presetID: UInt64 = 0, keptRow: ControlBlock? = nil,
        objectRetained: Bool = false
    ) throws(UThreadError) -> ControlBlock {
        let t: ControlBlock
        if let keptRow {
            t = keptRow
            // What the previous thread's life may have left and a spawn does not write below
            // (the row was zeroed before its first spawn); the stack's fields, `runtime` and
            // `worker` stay, `object` is written below.
            t.pointee.wait_kind = 0
            t.pointee.wake_result = 0
            t.pointee.priority = priority == 0 ? 0 : Int32(clamping: priority)  // no clamping for the default
            t.pointee.wait_object = 0
            t.pointee.exclusivity = (nil, nil)
            t.pointee.deadline_ns = 0
            t.pointee.wait_since_tick = 0
            t.pointee.switches = 0
            t.pointee.cpu_ticks = 0
            t.pointee.policy_data = (0, 0)
            t.pointee.mn_token = 0
            t.pointee.tsan_fiber = nil
            if !object.isNamed { t.pointee.name.0 = 0 }  // else written below
        } else {
            // Most spawns pass neither argument: two nil tests, and the range tests out of line
            // (inline, the compiler evaluated both of them on every spawn: ~20 instructions).
            if stackSize != nil || parameters != nil { try Scheduler.validate(stackSize, parameters) }
            let stack = try stacks.allocate(size: stackSize)
            t = table.allocate()  // zeroed
            t.pointee.stack_lo = stack.lo.assumingMemoryBound(to: CChar.self)
            t.pointee.stack_hi = stack.hi.assumingMemoryBound(to: CChar.self)
            t.pointee.guard_size = UInt64(truncatingIfNeeded: stack.guardSize)
            t.pointee.stack_mode = stack.mode == .dense ? UInt8(UTHREADS_STACK_DENSE) : UInt8(UTHREADS_STACK_GUARDED)
            t.pointee.worker = workerIndex
            t.pointee.runtime = Unmanaged.passUnretained(self).toOpaque()
            if priority != 0 { t.pointee.priority = Int32(clamping: priority) }
        }
        // An M:N thread got its id at spawn (`presetID`), before other kernel threads could
        // read `object.id`: it is not written again. The M:1 callers pass the constant 0.
        let id: UInt64
        if presetID == 0 {
            id = ids.allocate()
            object.id = ThreadID(rawValue: id)
        } else {
            id = presetID
        }
        object.controlBlock = t
        t.pointee.id = id
        // A row spawned with the default stack size may be kept for another such spawn
        // (`hostedRow`); a constant on the kept-row path.
        t.pointee.flags = stackSize == nil ? flags | .flagDefaultStack : flags
        let hi = UnsafeMutableRawPointer(t.pointee.stack_hi.unsafelyUnwrapped)
        if t.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE) {
            (UnsafeMutableRawPointer(t.pointee.stack_lo.unsafelyUnwrapped) - 16).storeBytes(
                of: UTHREADS_CANARY, as: UInt64.self)  // Stack.canaryAddress
        }
        t.pointee.parent_id = current.pointee.id
        t.pointee.created_tick = accounting ? lastTick : uthreads_ticks_inline()
        // The row's +1: a new one, or the caller's (`objectRetained`: an M:N queue slot's, or
        // `spawnKept`'s, handed over; not taken when the spawn throws, above).
        t.pointee.object =
            objectRetained ? Unmanaged.passUnretained(object).toOpaque() : Unmanaged.passRetained(object).toOpaque()
        object.runtime = t.pointee.runtime
        if object.isNamed { t.setName(object.name) }
        // A kept row whose last thread ran hosted and never left the CPU still has its first
        // frame, exactly as this would write it (`uthreads_context_frame`; the essay's "Stack").
        // (Compared as addresses: an optional compared with a pointer tests for nil first.)
        if UInt(bitPattern: t.pointee.sp) != UInt(bitPattern: uthreads_context_frame(hi)) {
            t.pointee.sp = uthreads_context_make(hi, threadEntry, UnsafeMutableRawPointer(t))
        }
        if tsan { uthreads_tsan_fiber_create(t) }
        t.pointee.state = .stateReady
        spawnCount &+= 1
        if flags & .flagMain != 0 { mainObject = object }
        setSchedulingParameters(t, parameters)
        if let recorder {
            let d = t.pointee.sched_deadline_ns
            recorder.spawned(
                t, name: object.name, deadlineAfter: d == .max ? nil : d &- min(d, now()), at: sliceClock())
        }
        makeReady(t, .spawned)
        return t
    }

    /// The spawn on a finished thread's row kept in the slab (ThreadObjectSlab's essay): the
    /// row keeps its stack, runtime and worker, and its object when no handle references it any
    /// more (else a new one). Returns the thread's object, still empty (the caller installs the
    /// body), or nil when no row is kept. M:1 only (an M:N worker's kept rows have no object:
    /// `keepRow`), default stack size, no scheduling parameters. `named`: `!name.isEmpty`.
    @inline(__always)
    func spawnKept(
        name: String, named: Bool, priority: Int, witness: @escaping (ThreadObject, ThreadObject.Operation) -> Void,
        witnessType: ObjectIdentifier
    ) -> ThreadObject? {
        let t: ControlBlock
        if let row = hostedRow {
            // Still counted live, its stack in use: nothing to take back.
            hostedRow = nil
            t = row
        } else {
            guard let row = slab.take() else { return nil }
            stacks.takeBack(dense: row.pointee.stack_mode == UInt8(UTHREADS_STACK_DENSE))
            table.revive(row)
            t = row
        }
        // Unmanaged from here on, +1 ours: with a strong reference the compiler retained and
        // released the object around the inlined spawn (~40 instructions per spawn+join).
        // The row keeps the +1 it has; the caller's handle gets a second one, taken without a
        // locked instruction: the object is referenced by the row alone (uniquely referenced, or
        // new), so no other kernel thread can change its count meanwhile (swift_retain's locked
        // add and hook test: 10 instructions more per spawn). The handle's release later is
        // atomic, as any.
        let kept = Unmanaged<ThreadObject>.fromOpaque(t.pointee.object.unsafelyUnwrapped)
        let object: Unmanaged<ThreadObject>
        if kept._withUnsafeGuaranteedRef({ $0.witnessType == witnessType }) && retainIfUnreferenced(kept) {
            let unused = kept
            unused._withUnsafeGuaranteedRef { unused in
                if checks {
                    precondition(
                        unused.isFinished && unused.controlBlock == nil && unused.isEmpty && unused.locals == nil,
                        "reusable thread object \(unused.id) is still in use")
                }
                unused.recycle(name: name, named: named)
            }
            object = unused
        } else {
            // The row's +1 released: the old object's handles free it (or it is freed now: made
            // for another result type).
            kept.release()
            object = Unmanaged.passRetained(ThreadObject(name: name, witness: witness, witnessType: witnessType))
            _ = uthreads_retain_unshared(object.toOpaque())
        }
        // Cannot throw: a kept row needs no stack or row, and the arguments are the defaults.
        object._withUnsafeGuaranteedRef {
            _ = try? spawn($0, priority: priority, stackSize: nil, keptRow: t, objectRetained: true)
        }
        return object.takeRetainedValue()
    }

    /// Whether nothing but the kept row references `object` (`isKnownUniquelyReferenced`); if
    /// so, a second reference (the caller's handle) is taken, non-atomically. Inline where the
    /// runtime's counts have the layout checked at start (`inlineRefCounts`: one load and a
    /// store, against two calls, ~20 instructions).
    @inline(__always)
    private func retainIfUnreferenced(_ object: Unmanaged<ThreadObject>) -> Bool {
        if inlineRefCounts { return uthreads_retain_if_unique(object.toOpaque()) != 0 }
        return uthreads_retain_if_unique_called(object.toOpaque()) != 0
    }

    static let refCountsChecked: Bool = {
        // Its only reference, whatever the optimiser does (a local strong reference may be
        // copied for a call: the check would then see two).
        let probe = Unmanaged.passRetained(RefCountProbe())
        defer { probe.release() }
        return uthreads_refcount_layout_check(probe.toOpaque()) == 1
    }()

    /// Throws when `stackSize` or `parameters` is out of range (spawn's arguments).
    @inline(never)
    private static func validate(_ stackSize: Int?, _ parameters: SchedulingParameters?) throws(UThreadError) {
        if let stackSize,
            stackSize < SchedulerSettings.minimumStackSize || stackSize > SchedulerSettings.maximumStackSize
        {
            throw .invalidArgument(
                "stackSize \(stackSize) is outside \(SchedulerSettings.minimumStackSize)...\(SchedulerSettings.maximumStackSize) bytes"
            )
        }
        if let parameters, parameters.tickets > SchedulingParameters.maximumTickets {
            throw .invalidArgument(
                "tickets \(parameters.tickets) is above the maximum \(SchedulingParameters.maximumTickets) (a stride would be 0)"
            )
        }
    }
}

/// A new object for the check of the reference-count layout (`Scheduler.refCountsChecked`).
private final class RefCountProbe {}

/// The C entry point of every user thread (called by uthreads_trampoline).
private let threadEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    Scheduler.threadMain(arg.unsafelyUnwrapped.assumingMemoryBound(to: uthreads_tcb.self))
}
