// Layer 3: the Swift half of a thread — what its control block's `object` retains.
import CUThreads

/// The Swift-side state of one thread: its body, then its result; its name; its flags as Swift
/// sees them. Retained by the control block from spawn to exit, and by every `UThread` handle.
/// It is also the wait queue of the threads joining it (one allocation per thread, not two).
///
/// Design: one allocation per spawn, and no generic metadata lookups or dynamic casts on the
/// spawn, run and join paths. The object is not generic. `storage` holds, type-erased, first
/// the thread's closure (`() throws -> Success`) and then its `Result<Success, any Error>`;
/// `storedType` records which, so that the non-generic deinit can destroy it through the
/// metadata pointer it already has. The typed reads and writes happen in `@inlinable` code that
/// the caller specialises (`UThread.init`, `join`). `runner` is a non-capturing closure in that
/// specialised code, so it needs no context allocation.
///
/// Rejected: a generic subclass `TypedThreadObject<Success>` (its unspecialised deinit and run
/// looked up `Result<Success, Error>` metadata in the runtime's global cache, ~3 lookups per
/// thread); a wrapper closure capturing the body (a second allocation); the result in an `Any`
/// read back with `as!` (a dynamic cast, ~40 ns).
@usableFromInline
class ThreadObject: WaitQueue {
    /// Runs the body stored in `storage` and stores its result there; nil once started.
    @usableFromInline @exclusivity(unchecked) var runner: ((ThreadObject) -> Void)?
    /// The type of the value in `storage` (or in `heap`), nil when empty.
    @usableFromInline @exclusivity(unchecked) var storedType: Any.Type?
    /// Inline room for the body closure (16 bytes) or a small result.
    @usableFromInline @exclusivity(unchecked) var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Out-of-line room for a result larger than `storage`.
    @usableFromInline @exclusivity(unchecked) var heap: UnsafeMutableRawPointer?
    /// Filled by spawn; stays valid after the thread finished (the row does not).
    var id: ThreadID = ThreadID(rawValue: 0)
    @usableFromInline var name: String
    /// The row while the thread lives; nil once finished.
    @exclusivity(unchecked) var controlBlock: ControlBlock?
    /// The scheduler that runs it (the scheduler outlives every thread it runs).
    @exclusivity(unchecked) unowned(unsafe) var scheduler: AnyObject?
    /// Set when the body has returned or thrown.
    @usableFromInline @exclusivity(unchecked) var isFinished = false
    /// Set by cancel(); mirrored in the row's flags while the thread lives.
    @exclusivity(unchecked) var isCancelled = false
    /// What the current wait is on, if it describes itself; set only while parked, when the
    /// target is alive (the thread is on its queue), hence unowned.
    @exclusivity(unchecked) unowned(unsafe) var waitTarget: (any WaitTarget)?
    /// Per-thread values (thread-local storage), cleared when the thread ends. They live here,
    /// not in the kernel thread, so they travel with an M:N thread that migrates.
    @exclusivity(unchecked) var locals: [ObjectIdentifier: Any]?
    /// Issue 7: the cross-worker state of a migratable M:N thread (its `MNThreadCore`), which
    /// the adopting worker updates; nil for every other thread. Retained by hand (set at start,
    /// released by the M:N thread's body when it ends) so that this object's deinit, on every
    /// M:1 spawn's path, has no release to make.
    @exclusivity(unchecked) var migrant: Unmanaged<AnyObject>?
    /// Issue 7 (M:N only; kept out of the 256-byte control block): errno while switched out,
    /// the worker whose table holds the row (and whose pool the stack), and how often it moved.
    @exclusivity(unchecked) var savedErrno: Int32 = 0
    @exclusivity(unchecked) var home: Int32 = 0
    @exclusivity(unchecked) var migrations: Int32 = 0

    @usableFromInline
    init(name: String) {
        self.name = name
        super.init()
    }

    deinit { destroyStored() }

    /// Runs the body once. Called by the scheduler on the thread's own stack.
    final func run() {
        guard let runner else { return }
        self.runner = nil
        runner(self)
    }

    /// Where the stored value lives.
    @inlinable
    final func withStoredPointer<R>(_ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        if let heap { return try body(heap) }
        return try withUnsafeMutableBytes(of: &storage) { try body($0.baseAddress!) }
    }

    /// Moves `value` into the storage (which must be empty).
    @inlinable
    final func store<T>(_ value: T) {
        precondition(storedType == nil, "ThreadObject: storage is occupied")
        if MemoryLayout<T>.size > MemoryLayout.size(ofValue: storage) || MemoryLayout<T>.alignment > 8 {
            heap = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        }
        _ = withStoredPointer { $0.initializeMemory(as: T.self, to: value) }
        storedType = T.self
    }

    /// Moves the stored value (of type `T`) out, leaving the storage empty.
    @inlinable
    final func take<T>(_ type: T.Type) -> T {
        let value = withStoredPointer { $0.assumingMemoryBound(to: T.self).move() }
        storedType = nil
        if let heap { heap.deallocate(); self.heap = nil }
        return value
    }

    /// A copy of the stored value (of type `T`).
    @inlinable
    final func peek<T>(_ type: T.Type) -> T {
        withStoredPointer { $0.assumingMemoryBound(to: T.self).pointee }
    }

    /// Destroys whatever is stored, through its metadata (no lookup, no cast).
    @usableFromInline
    final func destroyStored() {
        guard let type = storedType else { return }
        func destroy<T>(_: T.Type, _ p: UnsafeMutableRawPointer) { p.assumingMemoryBound(to: T.self).deinitialize(count: 1) }
        withStoredPointer { destroy(type, $0) }
        storedType = nil
        if let heap { heap.deallocate(); self.heap = nil }
    }
}

extension ThreadObject {
    /// Makes `object` run `body` and keep its `Result`. Specialised into the caller.
    @inlinable
    static func make<Success>(name: String, body: @escaping () throws -> Success) -> ThreadObject {
        let object = ThreadObject(name: name)
        object.store(body)
        object.runner = { object in
            let body = object.take((() throws -> Success).self)
            object.store(Result<Success, any Error>(catching: body))
        }
        return object
    }

    /// Replaces a never-started body with a failure (spawn could not create the thread).
    @inlinable
    func fail<Success>(_ error: any Error, as: Success.Type) {
        runner = nil
        destroyStored()
        store(Result<Success, any Error>.failure(error))
        isFinished = true
    }

    /// The finished thread's result. Specialised into the caller.
    @inlinable
    func result<Success>(_: Success.Type) -> Result<Success, any Error> {
        peek(Result<Success, any Error>.self)
    }
}
