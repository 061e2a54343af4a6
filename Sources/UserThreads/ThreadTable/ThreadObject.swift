// Layer 3: the Swift half of a thread — what its control block's `object` retains.
import CUThreads

/// The Swift-side state of one thread: its body, its name, its flags as Swift sees them.
/// Retained by the control block from spawn to exit, and by every `UThread` handle. It is also
/// the wait queue of the threads joining it (one allocation per thread, not two).
///
/// The typed result lives in the generic subclass; the scheduler only ever calls the
/// type-erased `body`, built by the (inlinable, so client-specialised) `UThread.init`: no
/// generic metadata is looked up on the spawn, run or join paths.
@usableFromInline
class ThreadObject: WaitQueue {
    /// Runs the thread's closure and stores its outcome; nil once started.
    @usableFromInline var body: (() -> Void)?
    /// Filled by spawn; stays valid after the thread finished (the row does not).
    var id: ThreadID = ThreadID(rawValue: 0)
    @usableFromInline var name: String
    /// The row while the thread lives; nil once finished.
    var controlBlock: ControlBlock?
    /// The scheduler that runs it (the scheduler outlives every thread it runs).
    unowned(unsafe) var scheduler: AnyObject?
    /// Set when the body has returned or thrown.
    @usableFromInline var isFinished = false
    /// Set by cancel(); mirrored in the row's flags while the thread lives.
    var isCancelled = false
    /// A longer description of the current wait, if the waited-on object gives one.
    /// Not retained: set only for the duration of a park, while the parked frame keeps the
    /// target alive (a weak reference cost ~15 ns per park in side-table traffic).
    @exclusivity(unchecked) unowned(unsafe) var waitTarget: WaitTarget?
    /// Per-thread values (thread-local storage), cleared when the thread ends.
    var locals: [ObjectIdentifier: Any] = [:]

    @usableFromInline
    init(name: String) {
        self.name = name
        super.init()
    }

    /// Runs the body once. Called by the scheduler on the thread's own stack.
    final func run() {
        guard let body else { return }
        self.body = nil  // release the captures as soon as the body is done
        body()
    }
}

@usableFromInline
final class TypedThreadObject<Success>: ThreadObject {
    @usableFromInline var result: Result<Success, any Error>?

    @inlinable
    override init(name: String) { super.init(name: name) }
}
