// Layer 4: the Swift half of a thread — what its control block's `object` retains.
import CUThreads

/// The Swift-side state of one thread: its body, then its result; its name; its flags as Swift
/// sees them. Retained by the control block from spawn to exit, and by every `UThread` handle.
/// It is also the wait queue of the threads joining it (one allocation per thread, not two).
///
/// Design: at most one allocation per spawn (none when the scheduler reuses an object, see
/// below), and no generic metadata lookups or dynamic casts on the spawn, run and join paths.
/// The object is not generic. `storage` holds, type-erased, first the thread's closure
/// (`() throws -> Success`) and then its `Result<Success, any Error>`; `contents` records which.
/// The typed reads and writes happen in `@inlinable` code that the caller specialises
/// (`UThread.init`, `join`). `witness` is a non-capturing closure made in that specialised code
/// (so it needs no context allocation) that runs the body, and destroys whatever is stored for
/// the non-generic deinit: a destroy through the stored type's metadata (an unspecialised
/// `deinitialize`, i.e. `swift_arrayDestroy` and a value-witness call) cost ~70 instructions.
///
/// Reuse. An object whose thread finished with a trivial result (`resultIsTrivial`: a
/// `.success` of a POD type, so it references nothing) may be kept by the scheduler after the
/// thread's row is gone (in its ThreadObjectSlab), and handed to a later spawn once no handle
/// references it any more (`isKnownUniquelyReferenced`'s test; inline, with the handle's +1,
/// where the runtime's count layout was checked: `uthreads_retain_if_unique`, cuthreads.h):
/// that saves the malloc, free, init and deinit of a spawn+join (~300 instructions). Nothing
/// can tell: only the row referenced it besides the (gone) handles, and a trivial result owns
/// nothing whose release could be observed.
/// Results that hold references are never kept: they are released with their last handle,
/// as before. `witness` is a `let`, given at `init` with its result type (`witnessType`): a
/// closure read from a class's `var` is copied for the call (a retain and a release of its nil
/// context, ~18 instructions per thread), a `let` is borrowed. So a kept object is reused only
/// by a thread of the same result type (one compare); another type gets a new object, and the
/// kept one is freed. (Before: a `var` witness replaced when the type changed.)
///
/// Subclasses: the M:N runtime's `MNThreadObject` (MN/MNThreadObject.swift) adds its cross-worker
/// state (join flags, placement) to this object, so that an M:N thread is one allocation;
/// `InjectedThreadObject` (Runtime/InjectedThread.swift) its flags to a thread spawned into a
/// runtime of one worker from another kernel thread. The
/// class is therefore not `final`, but every member is, so the M:1 paths dispatch statically as
/// before. Subclass instances are recycled by the M:N worker a thread finished on, object only
/// (KeptThreadObjects.swift: `MNThreadObject.reusable` resets the subclass's fields too); rows
/// are kept whole under M:1 only (`Scheduler.reap`).
///
/// Rejected: a generic subclass `TypedThreadObject<Success>` (its unspecialised deinit and run
/// looked up `Result<Success, Error>` metadata in the runtime's global cache, ~3 lookups per
/// thread); a wrapper closure capturing the body (a second allocation); the result in an `Any`
/// read back with `as!` (a dynamic cast, ~40 ns); reusing objects with any result (a dropped
/// handle's result would then live until the next spawn: its deinit would run late); a free list
/// of objects recycled when their last handle drops (Swift has no hook between a class
/// instance's deinit and its deallocation).
@usableFromInline
class ThreadObject: WaitQueue {
    /// What `witness` is asked to do.
    @usableFromInline enum Operation { case run, destroy }
    /// What `storage` (or `heap`) holds.
    @usableFromInline enum Contents: UInt8 { case empty, body, result }

    /// Code specialised for this thread's types (a non-capturing closure made by `install`):
    /// `.run` runs the body in the storage and stores its `Result` there; `.destroy` destroys
    /// whichever of the two is stored. Does nothing before `install`. Not optional: calling an
    /// optional closure stored in a class went through an outlined copy and consume of the
    /// optional (~17 instructions per thread beyond the context's retain and release).
    /// A `let`, given at `init`: a closure read from a `var` is copied before the call (a retain
    /// and a release of its nil context, ~18 instructions per thread); a `let` is borrowed.
    /// Hence a kept object is reused only by a thread of the same `witnessType`.
    @usableFromInline final let witness: (ThreadObject, Operation) -> Void
    /// The `Success` type `witness` was made for. Not optional: comparing an optional tests for
    /// nil first (~5 instructions per kept spawn).
    @usableFromInline final let witnessType: ObjectIdentifier
    /// What the storage holds.
    @usableFromInline @exclusivity(unchecked) final var contents = Contents.empty
    /// Set when the stored result holds no references (a `.success` of a trivial type), so that
    /// keeping the object after its last handle is gone is unobservable: the scheduler may then
    /// reuse it for a later spawn (Scheduler.reap, `spawnKept`).
    @usableFromInline @exclusivity(unchecked) final var resultIsTrivial = false
    /// Set when the body has returned or thrown.
    @usableFromInline @exclusivity(unchecked) final var isFinished = false
    /// Set by cancel(); mirrored in the row's flags while the thread lives.
    /// (The four bytes from `contents` on are adjacent: `recycle` clears them with one store.)
    @exclusivity(unchecked) final var isCancelled = false
    /// Inline room for the body closure (16 bytes) or a small result.
    @usableFromInline @exclusivity(unchecked) final var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Out-of-line room for a result larger than `storage`.
    @usableFromInline @exclusivity(unchecked) final var heap: UnsafeMutableRawPointer?
    /// Filled by spawn; stays valid after the thread finished (the row does not).
    @exclusivity(unchecked) final var id: ThreadID = ThreadID(rawValue: 0)
    @usableFromInline @exclusivity(unchecked) final var name: String
    /// The row while the thread lives; nil once finished.
    @exclusivity(unchecked) final var controlBlock: ControlBlock?
    /// The scheduler that runs it, unretained (it outlives every thread it runs): compared by
    /// address, so that a join's same-runtime check costs no retain and release.
    @exclusivity(unchecked) final var runtime: UnsafeMutableRawPointer?
    /// Whether `name` is not empty, kept with it (in `init` and `recycle`, the only places that
    /// set it): testing a `String` for emptiness decodes its representation, ~8 instructions,
    /// and a spawn asked twice.
    @exclusivity(unchecked) final private(set) var isNamed: Bool
    /// What the current wait is on, if it describes itself; set only while parked, when the
    /// target is alive (the thread is on its queue), hence unowned.
    @exclusivity(unchecked) final unowned(unsafe) var waitTarget: (any WaitTarget)?
    /// Per-thread values (thread-local storage), cleared when the thread ends. They live here,
    /// not in the kernel thread, so they travel with an M:N thread that migrates. Keyed by each
    /// thread-local's process-unique key (never reused, unlike an object's address).
    @exclusivity(unchecked) final var locals: [UInt64: Any]?
    /// M:N only (kept out of the 256-byte control block): errno while switched out,
    /// the worker whose table holds the row (and whose pool the stack), how often it moved.
    /// (A migrating M:N thread's cross-worker state is its object itself: `MNThreadObject`.)
    @exclusivity(unchecked) final var savedErrno: Int32 = 0
    @exclusivity(unchecked) final var home: Int32 = 0
    @exclusivity(unchecked) final var migrations: Int32 = 0
    /// The descriptor of its last I/O wait on an M:N worker (-1: none since it last moved):
    /// the worker it leaves drops its idle registration of it (Reactor.swift, "Threads that
    /// waited on a descriptor move").
    @exclusivity(unchecked) final var lastDescriptor: Int32 = -1
    /// Whether other kernel threads see this thread's finish, cancel and join through a
    /// subclass's atomic flags rather than the fields above: an M:N thread's object, or (with
    /// `isInjected`) a thread spawned into a runtime of one worker from another kernel thread
    /// (Runtime/InjectedThread.swift). One load and a predicted branch in `UThread`'s join
    /// instead of a dynamic cast.
    @usableFromInline final let isCrossWorker: Bool
    /// With `isCrossWorker`: which subclass (`InjectedThreadObject`, else `MNThreadObject`).
    @usableFromInline final let isInjected: Bool

    @usableFromInline
    init(
        name: String, witness: @escaping (ThreadObject, Operation) -> Void, witnessType: ObjectIdentifier,
        crossWorker: Bool = false, injected: Bool = false
    ) {
        self.witness = witness
        self.witnessType = witnessType
        self.name = name
        self.isNamed = !name.isEmpty
        self.isCrossWorker = crossWorker
        self.isInjected = injected
        super.init()
    }

    deinit { destroyStored() }

    /// Runs the body once. Called by the scheduler on the thread's own stack.
    final func run() {
        guard contents == .body else { return }
        witness(self, .run)
    }

    /// Makes a finished object whose result is trivial, and that nothing else references any
    /// more, ready for another spawn, as if new. O(1). Only the scheduler calls it (on a
    /// uniquely referenced object: no handle, row or queue can see the change). `named` is
    /// `!name.isEmpty`, which the spawn's caller knows.
    @inline(__always)
    final func recycle(name: String, named: Bool) {
        // A trivial result needs no destruction; only out-of-line room must be freed (`heap` is
        // nil unless the storage holds a value that did not fit inline).
        if let heap {
            heap.deallocate()
            self.heap = nil
        }
        contents = .empty
        resultIsTrivial = false
        isFinished = false
        isCancelled = false
        id = ThreadID(rawValue: 0)
        if named || isNamed {  // else both are empty: no assignment (a release of the old string)
            self.name = name
            isNamed = named
        }
    }

    /// Whether a `T` is stored in `storage` rather than in `heap`: decided by the type alone, so
    /// that the specialised `store`, `take` and `peek` test nothing at run time (a closure body
    /// and most results always fit; testing `heap` for nil cost ~15 instructions per thread).
    @inlinable @inline(__always)
    static func fitsInline<T>(_: T.Type) -> Bool {
        MemoryLayout<T>.size <= MemoryLayout<(UInt64, UInt64, UInt64, UInt64)>.size && MemoryLayout<T>.alignment <= 8
    }

    /// Moves `value` into the storage (which must be empty).
    @inlinable @inline(__always)
    final func store<T>(_ value: T, as kind: Contents) {
        precondition(contents == .empty, "ThreadObject: storage is occupied")
        if Self.fitsInline(T.self) {
            _ = withUnsafeMutableBytes(of: &storage) { $0.baseAddress!.initializeMemory(as: T.self, to: value) }
        } else {
            let room = UnsafeMutableRawPointer.allocate(
                byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
            room.initializeMemory(as: T.self, to: value)
            heap = room
        }
        contents = kind
    }

    /// Moves the stored value (of type `T`) out, leaving the storage empty.
    @inlinable @inline(__always)
    final func take<T>(_ type: T.Type) -> T {
        let value: T
        if Self.fitsInline(T.self) {
            value = withUnsafeMutableBytes(of: &storage) { $0.baseAddress!.assumingMemoryBound(to: T.self).move() }
        } else {
            let room = heap.unsafelyUnwrapped
            value = room.assumingMemoryBound(to: T.self).move()
            room.deallocate()
            heap = nil
        }
        contents = .empty
        return value
    }

    /// A copy of the stored value (of type `T`). O(1).
    ///
    /// A *read* of `storage` (a copy of its 32 bytes, then a copy of the value out of it), not
    /// an inout access: an M:N thread's result is read by every joiner at once, from several
    /// kernel threads, and an inout access is a write to ThreadSanitizer (two joiners peeking
    /// together were reported as a race).
    @inlinable
    final func peek<T>(_ type: T.Type) -> T {
        if Self.fitsInline(T.self) {
            return withUnsafeBytes(of: storage) { $0.baseAddress!.assumingMemoryBound(to: T.self).pointee }
        }
        return heap.unsafelyUnwrapped.assumingMemoryBound(to: T.self).pointee
    }

    /// Destroys whatever is stored, through the specialised `witness` (no metadata, no
    /// unspecialised value-witness calls).
    @usableFromInline
    final func destroyStored() {
        guard contents != .empty else { return }
        witness(self, .destroy)
    }
}

extension ThreadObject {
    /// A new object that will run `body` and keep its `Result`. Specialised into the caller.
    @inlinable
    static func make<Success>(name: String, body: @escaping () throws -> Success) -> ThreadObject {
        let object = ThreadObject(
            name: name, witness: witness(for: Success.self), witnessType: ObjectIdentifier(Success.self))
        object.install(body)
        return object
    }

    /// Stores `body` in a new or recycled (empty) object made with `witness(for: Success.self)`.
    /// Specialised into the caller.
    @inlinable @inline(__always)
    final func install<Success>(_ body: @escaping () throws -> Success) {
        store(body, as: .body)
    }

    /// The specialised code that runs and destroys what a thread returning `Success` stores (a
    /// non-capturing closure once specialised into the caller).
    @inlinable @inline(__always)
    static func witness<Success>(for _: Success.Type) -> (ThreadObject, Operation) -> Void {
        { object, operation in
            switch operation {
            case .run:
                let body = object.take((() throws -> Success).self)
                let result = Result<Success, any Error>(catching: body)
                if _isPOD(Success.self), case .success = result { object.resultIsTrivial = true }
                object.store(result, as: .result)
            case .destroy:
                if object.contents == .body {
                    _ = object.take((() throws -> Success).self)
                } else {
                    _ = object.take(Result<Success, any Error>.self)
                }
            }
        }
    }

    /// Destroys what the storage holds: the body, or the `Result`, of a thread that returns
    /// `Success` (a witness's `.destroy`). Specialised into the caller.
    @inlinable
    final func destroy<Success>(storedFor _: Success.Type) {
        if contents == .body {
            _ = take((() throws -> Success).self)
        } else {
            _ = take(Result<Success, any Error>.self)
        }
    }

    /// Replaces a never-started body with a failure (spawn could not create the thread).
    @inlinable
    func fail<Success>(_ error: any Error, as: Success.Type) {
        destroyStored()
        store(Result<Success, any Error>.failure(error), as: .result)
        isFinished = true
    }

    /// The finished thread's result. Specialised into the caller.
    @inlinable
    func result<Success>(_: Success.Type) -> Result<Success, any Error> {
        peek(Result<Success, any Error>.self)
    }
}
