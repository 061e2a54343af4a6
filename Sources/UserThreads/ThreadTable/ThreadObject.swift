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
    @usableFromInline @exclusivity(unchecked) var body: (() -> Void)?
    /// The outcome, a `Result<Success, any Error>` of the spawner's type. Type-erased so that
    /// no generic metadata is looked up on the runtime's paths (a generic subclass made every
    /// deinit instantiate `Result<Success, Error>` metadata: ~60 ns per thread).
    @usableFromInline @exclusivity(unchecked) var outcome: Any?
    /// Filled by spawn; stays valid after the thread finished (the row does not).
    var id: ThreadID = ThreadID(rawValue: 0)
    @usableFromInline var name: String
    /// The row while the thread lives; nil once finished.
    var controlBlock: ControlBlock?
    /// The scheduler that runs it (the scheduler outlives every thread it runs).
    unowned(unsafe) var scheduler: AnyObject?
    /// Set when the body has returned or thrown.
    @usableFromInline @exclusivity(unchecked) var isFinished = false
    /// Set by cancel(); mirrored in the row's flags while the thread lives.
    @exclusivity(unchecked) var isCancelled = false
    /// What the current wait is on, if it describes itself; set only while parked, when the
    /// target is alive (the thread is on its queue), hence unowned.
    @exclusivity(unchecked) unowned(unsafe) var waitTarget: (any WaitTarget)?
    /// Per-thread values (thread-local storage), cleared when the thread ends.
    @exclusivity(unchecked) var locals: [ObjectIdentifier: Any]?

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

