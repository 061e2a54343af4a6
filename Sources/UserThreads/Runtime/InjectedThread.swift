// Layer 11: a thread spawned into a runtime of one worker from another kernel thread
// (`UThreadRuntime.Handle.spawn` called outside the runtime), and `join()` from a kernel thread
// that runs no runtime.
//
// Design essay
// ============
//
// With several workers a spawn from outside goes to the runtime's injection queue and the
// thread is an M:N thread like any other (MN/MNThreadObject.swift), whose end other kernel
// threads see through its atomic flags. A runtime of one worker has no lock and no queue other
// kernel threads may touch: its one kernel thread owns every row. So the outside spawner makes
// the thread's object itself (body, name, an id from the process-wide counter, the runtime's
// address) and *posts* its start to the runtime's inbox (Scheduler/ForeignCancels.swift), which
// rings the runtime's bell: an idle runtime wakes at once, a busy one applies the post at its
// next maintenance pass (every 64th yield). The runtime then spawns an ordinary thread of its
// own for the object (`start`): same row, stack, policy, table entry, dump line and deadlock
// report as a thread spawned inside; `UThread.runtime`, `join`, `cancel`, `isFinished` and
// `isCancelled` work on it from any kernel thread.
//
// What other kernel threads see goes through one atomic word (`flags`), as in an M:N thread:
//   * `finished`: the result is stored before the read-modify-write that sets it (release),
//     by the thread's own witness on its stack (or by `failUnstarted` when it never ran); a
//     joiner that loads it with acquire reads the result without a lock.
//   * `cancelRequested`: `cancel()` sets it first, from any kernel thread, then applies the
//     cancel on the runtime's kernel thread (there at once, elsewhere through the inbox);
//     `start` cancels a thread whose bit is already set, so a cancel that comes before the
//     start is never lost.
//   * `outsideWaiter`: a kernel thread outside every runtime joins by sleeping on a futex word
//     (Base/OutsideWaiters.swift); the finisher wakes it when its RMW saw the bit.
// A user thread of the same runtime joins it as any of its threads (the object is a wait queue
// of that runtime's rows, touched only on its kernel thread, the exit wakes it): the one thread
// may be joined before its start is applied, since the row joins the object's queue, not the
// thread's row. A user thread of another runtime gets `.foreignRuntime`, as for any thread.
//
// When the runtime ends before it applied the post, the inbox runs the post with no scheduler
// and the thread finishes unstarted with `UThreadError.runtimeEnded` (a `.closed`); a spawn
// posted after the main thread returned starts cancelled, like every thread still alive then.
// A runtime of several workers gives the same two outcomes, argued in MN/MNRuntime.swift
// ("Spawns from outside at the end").
//
// Rejected designs:
//   * Refusing the spawn (`.invalidArgument`, what this replaced): `workers: 1` would be a
//     different runtime from `workers: N` for every program that hands work in from outside.
//   * The M:N thread object at one worker: it names the M:N coordinator on its finish, cancel
//     and join paths, and a runtime of one worker has none.
//   * A lock in the runtime so that the outside thread could spawn directly: every spawn and
//     switch would pay for what few programs do (ForeignCancels.swift's essay).
//   * A helper kernel thread that receives outside spawns: the kernel would no longer see one
//     thread.
import CUThreads
import Synchronization

/// The object of a thread spawned into a runtime of one worker from another kernel thread
/// (see the essay above). One allocation, like any thread object.
final class InjectedThreadObject: ThreadObject, @unchecked Sendable {
    /// Bits of `flags`.
    static let finished = 1, cancelRequested = 2, outsideWaiter = 4

    /// The runtime's scheduler address: compared and used to find its inbox, never
    /// dereferenced off its kernel thread (the runtime may have ended).
    let runtimeAddress: UnsafeMutableRawPointer
    /// `finished`, `cancelRequested`, `outsideWaiter` (see the essay).
    let flags = Atomic<Int>(0)

    init(
        name: String, runtime: UnsafeMutableRawPointer, witness: @escaping (ThreadObject, Operation) -> Void,
        witnessType: ObjectIdentifier
    ) {
        runtimeAddress = runtime
        super.init(name: name, witness: witness, witnessType: witnessType, crossWorker: true, injected: true)
        id = ThreadID(rawValue: ThreadIDAllocator.allocateShared())
        // The runtime's own joiners find it theirs before it starts (`joiner(of:)`); the start
        // writes the same address again, on the runtime's kernel thread.
        self.runtime = runtime
    }

    /// Whether the body has returned or thrown (acquire: its result is then readable).
    var isFinishedAcquire: Bool { flags.load(ordering: .acquiring) & InjectedThreadObject.finished != 0 }

    /// Whether `cancel()` was called (any kernel thread may ask).
    var isCancelRequested: Bool { flags.load(ordering: .acquiring) & InjectedThreadObject.cancelRequested != 0 }

    /// Publishes the end (the result is stored) to other kernel threads. Same-runtime joiners
    /// are woken by the scheduler's exit, or by `failUnstarted`.
    func finish() {
        let old = flags.bitwiseOr(InjectedThreadObject.finished, ordering: .acquiringAndReleasing).oldValue
        if old & InjectedThreadObject.outsideWaiter != 0 { OutsideWaiters.wake(self) }
    }

    /// Starts the thread on `scheduler`, its runtime, on the runtime's kernel thread (the
    /// inbox's post). A thread cancelled before, or spawned after the main thread returned,
    /// starts cancelled.
    /// - Throws: what `Scheduler.spawn` throws (no stack).
    func start(on scheduler: Scheduler) throws {
        let t = try scheduler.spawn(self, priority: 0, stackSize: nil, presetID: id.rawValue)
        if isCancelRequested || scheduler.mainObject?.isFinished == true { scheduler.cancel(t) }
    }

    /// Ends a thread that never ran, whose result (an error) is stored: publishes it and wakes
    /// the joiners of its runtime (`scheduler`; nil when the runtime has ended: none are left).
    func failUnstarted(on scheduler: Scheduler?) {
        finish()
        if let scheduler { while let joiner = dequeue() { scheduler.wake(joiner, .woken) } }
    }

    /// Asks the thread to stop, from any kernel thread (see the essay).
    func cancel() {
        let old = flags.bitwiseOr(InjectedThreadObject.cancelRequested, ordering: .sequentiallyConsistent).oldValue
        guard old & InjectedThreadObject.finished == 0 else { return }
        guard uthreads_get_runtime() == runtimeAddress else {
            ForeignCancels.post(self, to: runtimeAddress)
            return
        }
        // On the runtime's kernel thread: not started yet (`start` sees the bit), or running.
        if let t = controlBlock, !isFinished {
            Unmanaged<Scheduler>.fromOpaque(runtimeAddress)._withUnsafeGuaranteedRef { $0.cancel(t) }
        }
    }

    /// Waits until the thread has finished or `deadline` has passed: a user thread of its
    /// runtime parks (scheduler clock), a kernel thread outside every runtime blocks
    /// (CLOCK_MONOTONIC). `cancellable` as for `UThreadHandle.waitForEnd`.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.foreignRuntime`,
    ///   `.invalidArgument` (self-join, or the idle loop of a runtime).
    func waitUntilFinished(deadline: UInt64?, cancellable: Bool) throws {
        if isFinishedAcquire { return }
        if uthreads_get_runtime() == runtimeAddress, Scheduler.active?.onUserThread == true {
            return try UserThreads.waitUntilFinished(self, deadline: deadline, cancellable: cancellable)
        }
        try checkOutsideJoin("UThread.join()")
        flags.bitwiseOr(InjectedThreadObject.outsideWaiter, ordering: .acquiringAndReleasing)
        guard OutsideWaiters.wait(for: self, deadline: deadline, until: { isFinishedAcquire }) else {
            throw UThreadError.timedOut
        }
    }
}

extension InjectedThreadObject {
    /// A thread object for `body` with the witness that runs it, stores its `Result` and
    /// publishes the end (`finish`), or destroys what is stored. Never kept for reuse: its
    /// result is never marked trivial (handles live on other kernel threads).
    static func make<Success>(name: String, runtime: UnsafeMutableRawPointer, body: @escaping () throws -> Success)
        -> InjectedThreadObject
    {
        let object = InjectedThreadObject(
            name: name, runtime: runtime,
            witness: { object, operation in
                switch operation {
                case .run:
                    let body = object.take((() throws -> Success).self)
                    object.store(Result<Success, any Error>(catching: body), as: .result)
                    unsafeDowncast(object, to: InjectedThreadObject.self).finish()
                case .destroy: object.destroy(storedFor: Success.self)
                }
            }, witnessType: ObjectIdentifier(Success.self))
        object.store(body, as: .body)
        return object
    }

    /// Spawns `body` into the runtime of one worker whose scheduler is at `runtime` and whose
    /// inbox is `inbox`, from another kernel thread (see the essay).
    static func spawn<Success: Sendable>(
        name: String, runtime: UnsafeMutableRawPointer, inbox: ForeignCancels,
        _ body: @escaping @Sendable () throws -> Success
    ) -> InjectedThreadObject {
        let object = make(name: name, runtime: runtime, body: body)
        inbox.send { scheduler in
            do {
                guard let scheduler else { throw UThreadError.runtimeEnded }
                try object.start(on: scheduler)
            } catch {
                object.fail(error, as: Success.self)
                object.failUnstarted(on: scheduler)
            }
        }
        return object
    }
}
