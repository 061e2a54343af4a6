// Layer 8: thread-local values — per user thread storage.
//
// Design essay: each user thread's Swift object has a `locals` dictionary keyed by the
// ThreadLocal's key, a number unique in the process and never reused; the scheduler empties it
// when the thread ends, so values (and whatever they retain) are released with the thread. A
// key that was never set in a thread reads as the default. Kernel thread-locals (`@TaskLocal`,
// pthread keys) would be shared by every user thread of the kernel thread: that is what this
// type is for.
//
// The object is `Sendable`: it holds only the default's closure (`@Sendable`) and its key, and
// every value lives in one thread's own dictionary, which moves with the thread when it
// migrates to another worker and is touched only by that thread. One `ThreadLocal` may be
// captured by threads on every worker.
//
// Rejected: the ThreadLocal's address (`ObjectIdentifier`) as the key. A ThreadLocal released
// while a thread still holds a value for it leaves that entry behind, and the next ThreadLocal
// allocated at the same address read it as its own value (a wrong value, silently, on every
// iteration of a loop that makes one per iteration).
import CUThreads

/// A value that each user thread sees separately.
///
/// ```swift
/// let requestID = ThreadLocal<Int>(default: 0)
/// requestID.value = 42          // only in this thread
/// ```
///
/// A thread's values stay until it ends or calls `reset()`, also after the `ThreadLocal` itself
/// was released (no later `ThreadLocal` ever reads them).
///
/// Use it on user threads. Elsewhere (outside every runtime, in a `blocking { }` body on the
/// offload pool) there is no user thread to own a value, and its members, which cannot throw,
/// stop the process with a message naming the call: a default read there (or a set dropped)
/// would silently stand for the value of the user thread the code was written for.
public final class ThreadLocal<T>: Sendable {
    private let makeDefault: @Sendable () -> T
    /// The key of this thread-local's values in every thread's `locals` (see the essay).
    private let key = SyncObjectID.allocate()

    /// A thread-local whose value, in a thread that has not set it, is `value`. The autoclosure is
    /// evaluated on every such read (it is not stored), so each thread gets a fresh default.
    public init(default value: @autoclosure @escaping @Sendable () -> T) { makeDefault = value }

    /// The calling thread's value (the default until set).
    public var value: T {
        get {
            let s = Scheduler.require("ThreadLocal.value")
            return (s.objectOf(current(s)).locals?[key] as? T) ?? makeDefault()
        }
        set {
            let s = Scheduler.require("ThreadLocal.value")
            let object = s.objectOf(current(s))
            if object.locals == nil { object.locals = [:] }  // allocated on first use only
            object.locals![key] = newValue
        }
    }

    /// Whether the calling thread has set a value.
    public var hasValue: Bool {
        let s = Scheduler.require("ThreadLocal.hasValue")
        return s.objectOf(current(s)).locals?[key] != nil
    }

    /// Removes the calling thread's value (it reads as the default again).
    public func reset() {
        let s = Scheduler.require("ThreadLocal.reset")
        s.objectOf(current(s)).locals?[key] = nil
    }

    private func current(_ s: Scheduler) -> ControlBlock {
        guard s.onUserThread else { Scheduler.misuse("ThreadLocal.value") }
        return s.current
    }
}
