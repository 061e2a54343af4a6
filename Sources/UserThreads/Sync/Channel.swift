// Layer 8: channels — typed message passing between user threads.
//
// Design essay
// ============
//
// A channel has a ring buffer of `capacity` values (0: unbuffered, a rendezvous), a list of
// parked receivers and a list of parked senders (ChannelWaiter nodes on the waiters' stacks;
// see ChannelWaiter.swift), and a closed flag. Invariants, as in Go's hchan: parked receivers
// exist only when the buffer is empty; parked senders only when it is full.
//
// Direct handoff. A send that finds a parked receiver copies the value straight into the
// receiver's slot and makes it ready: no buffer round trip, and the receiver returns without
// touching the channel again. A receive that finds a parked sender (unbuffered, or a full
// buffer) takes the value and wakes the sender, refilling the buffer from it in the buffered
// case so that FIFO order holds. The running thread then keeps running: a ping-pong between
// two threads costs one park and one wake per message, i.e. one context switch.
//
// Close. `close()` marks the channel closed and wakes every parked thread with `.closed`:
// receivers return nil (after the buffer is drained: values sent before close are still
// delivered, in order), parked senders throw `UThreadError.closed` (their value was not
// delivered). Afterwards send throws at once and receive drains the buffer, then returns nil.
// Closing twice is harmless (returns false).
//
// Timeouts and cancellation: a parked operation that times out or is cancelled gives up its
// claim (ChannelWaiter.swift) and unlinks its node itself when it runs, so a value is never
// handed to a thread that has given up, and one that was handed over is never lost.
//
// Who touches it. One channel type serves `run { }` (one M:1 runtime, one kernel thread) and
// `run(workers:)` (threads on several kernel threads), with the rules above written once
// (`offer`, `take`, `markClosed`). What differs is only how the state is reached, decided by
// the channel's `SyncState`, the binding rule of every sync object (SyncSupport.swift's
// "Bare or locked", told there once):
//   * bare — bound to one M:1 runtime. The state needs no lock and no atomic, a claim is a
//     plain store, and a wake is the scheduler's direct `wake`. The binding check is one load
//     and compare, the only cost the shared mode adds to the M:1 handoff.
//   * shared — the state sits behind the object's lock, held for the rule and never across a
//     park; one lock pair per operation (the poll and, when it must wait, the registration are
//     one critical section); a claim is a compare-and-swap; the waiter parks with the parking
//     protocol of every primitive (Waiter.swift: `parkWaiter` publishes it under the lock),
//     and a wake is sent after the lock is released (`syncWake`). Except on one worker: a
//     plain send or receive parked on the peer's own scheduler is claimed with a plain store
//     and woken at once, as bare (ChannelWaiter.swift's local claim). A shared channel may be
//     closed from any thread.
// A thread of another runtime (or a kernel thread outside every runtime) that sends or
// receives on a bound channel gets `UThreadError.foreignRuntime`, not a race; its `close()`,
// which neither waits nor fails, is posted to the channel's runtime, as every such operation
// of a bound object is (SyncSupport.swift, "Bare or locked": "From elsewhere"). Its `count`
// and `isClosed` are `Relaxed` words any kernel thread may read (a refill from a parked sender
// stores the count once, so a reader never sees the transient one less); a wait description
// walks the parked lists only of a shared channel, under its lock (SyncSupport.swift, "Reads
// from elsewhere").
//
// Rejected designs:
//   * Receivers returning a `Result` or throwing on close: `for x in channel` and
//     `while let x = try ch.receive()` read naturally with nil meaning "closed and drained".
//   * A lock-free ring (Vyukov): needless under M:1 and the slow path (parking) dominates;
//     between workers a lock held for a few stores costs less than the park it guards.
//   * Two channel types, one per runtime (the first M:N channel): every rule told twice, and
//     they drifted. A lock taken always: ~40 instructions on every M:1 handoff (~10%).
//   * Go's panic on send to a closed channel: a thrown error the caller can handle instead.
//
// Generic code without generic cost. All channel logic lives in the non-generic
// `ChannelCore`, which moves elements through raw pointers with an `ElementOps` table (copy,
// move, destroy) built for `T` when the channel is created. `Channel<T>`'s public methods are
// `@inlinable` one-liners, so they are specialised in the caller's module: no generic
// metadata is looked up on a send or receive (in unspecialised generic code every `T?` costs
// a runtime metadata cache lookup, which was most of the handoff's time).
//
// A frame each. `ChannelCore.send` and `receive` are `@inlinable` too: the bare-or-shared
// branch (the runtime read out of line, the binding's load and compare) runs in the caller's
// frame, and calls the bare or the shared body, each out of line with a frame of its own. With
// the branch in an entry function of its own, the shared body ran behind the bare body's frame
// (~60 instructions per shared handoff); with both bodies out of line behind such an entry,
// the bare handoff paid two frames (+42: Swift keeps a test of the error register after each
// `try` call, so the entry makes no tail call).
import CUThreads
import Glibc
import Synchronization

/// How a channel moves values of its element type through raw memory. Built by the
/// (inlinable, so specialised) `Channel.init`.
@usableFromInline
struct ElementOps {
    @usableFromInline let stride: Int
    @usableFromInline let alignment: Int
    /// Initialises `dst` with a copy of `src`.
    @usableFromInline let copy: (UnsafeMutableRawPointer, UnsafeRawPointer) -> Void
    /// Initialises `dst` by moving out of `src` (left uninitialised).
    @usableFromInline let move: (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Void
    @usableFromInline let destroy: (UnsafeMutableRawPointer) -> Void

    @inlinable
    init<T>(_: T.Type) {
        stride = MemoryLayout<T>.stride
        alignment = MemoryLayout<T>.alignment
        copy = { dst, src in
            dst.assumingMemoryBound(to: T.self).initialize(to: src.assumingMemoryBound(to: T.self).pointee)
        }
        move = { dst, src in
            dst.assumingMemoryBound(to: T.self).moveInitialize(from: src.assumingMemoryBound(to: T.self), count: 1)
        }
        destroy = { p in p.assumingMemoryBound(to: T.self).deinitialize(count: 1) }
    }
}

/// A typed FIFO channel between user threads: inside `run { }`, and between threads on any
/// worker of `run(workers:)` (then `T` is `Sendable`, and so is the channel).
///
/// ```swift
/// let jobs = try Channel<Int>(capacity: 16)
/// let worker = UThread { for job in jobs { process(job) } }
/// for j in 0..<100 { try jobs.send(j) }
/// jobs.close()
/// ```
///
/// `receive()` returns nil once the channel is closed *and* drained; `send` on a closed channel
/// throws `UThreadError.closed`.
public final class Channel<T>: Sequence, CustomStringConvertible {
    @usableFromInline let core: ChannelCore

    /// An unbuffered channel: every send is a rendezvous with a receive.
    ///
    /// - Parameter name: shown in wait reasons ("channel receive on 'jobs'").
    @inlinable
    public init(name: String = "") {
        core = ChannelCore(capacity: 0, name: name, ops: ElementOps(T.self))
    }

    /// A channel that buffers up to `capacity` values (0: unbuffered).
    ///
    /// - Parameters:
    ///   - capacity: how many values it buffers; 0 for a rendezvous channel.
    ///   - name: shown in wait reasons ("channel receive on 'jobs'").
    /// - Throws: `UThreadError.invalidArgument` when `capacity` is negative, or when its buffer
    ///   (`capacity` values of `T`, allocated at once) would be larger than the machine's memory.
    @inlinable
    public init(capacity: Int, name: String = "") throws(UThreadError) {
        guard capacity >= 0 else { throw .invalidArgument("Channel capacity must be >= 0, not \(capacity)") }
        let ops = ElementOps(T.self)
        try ChannelCore.checkBuffer(capacity: capacity, ops: ops)
        core = ChannelCore(capacity: capacity, name: name, ops: ops)
    }

    /// Buffered values allowed before a send waits; 0: unbuffered.
    public var capacity: Int { core.capacity }
    /// The name given at creation ("" if none): shown in wait reasons ("channel receive on
    /// 'jobs'"), deadlock reports and `description`; unnamed channels are shown by `id`.
    public var name: String { core.name }
    public var id: UInt64 { core.id }
    /// Values buffered now.
    public var count: Int { core.count }
    /// Whether `close()` has been called. Values still buffered can be received after closing.
    public var isClosed: Bool { core.isClosed }

    // MARK: Sending

    /// Sends `value`, waiting while no receiver is ready and the buffer is full.
    /// - Throws: `UThreadError.closed` if the channel is (or gets) closed — the value was not
    ///   delivered; `CancellationError`.
    @inlinable
    public func send(_ value: T) throws {
        var v = value
        try withUnsafeMutablePointer(to: &v) { try core.send(UnsafeMutableRawPointer($0), deadline: nil) }
    }

    /// Sends `value`, giving up after `timeout`.
    /// - Throws: as `send(_:)`, and `UThreadError.timedOut`.
    @inlinable
    public func send(_ value: T, timeout: Duration) throws {
        var v = value
        try withUnsafeMutablePointer(to: &v) {
            try core.send(UnsafeMutableRawPointer($0), timeout: timeout, deadline: nil)
        }
    }

    /// Sends `value`, giving up at `deadline`.
    @inlinable
    public func send(_ value: T, deadline: ContinuousClock.Instant) throws {
        var v = value
        try withUnsafeMutablePointer(to: &v) {
            try core.send(UnsafeMutableRawPointer($0), timeout: nil, deadline: deadline)
        }
    }

    /// Sends without waiting. Returns false when it would have to wait.
    /// - Throws: `UThreadError.closed` if the channel is closed.
    @inlinable
    public func trySend(_ value: T) throws -> Bool {
        var v = value
        return try withUnsafeMutablePointer(to: &v) { try core.trySend(UnsafeMutableRawPointer($0)) }
    }

    // MARK: Receiving

    /// Receives the next value, waiting while none is available. Returns nil once the channel
    /// is closed and every buffered value was received.
    /// - Throws: `CancellationError`.
    @inlinable
    public func receive() throws -> T? {
        try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            let p = buffer.baseAddress!
            return try core.receive(into: UnsafeMutableRawPointer(p), deadline: nil) ? p.move() : nil
        }
    }

    /// Receives, giving up after `timeout`.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`.
    @inlinable
    public func receive(timeout: Duration) throws -> T? {
        try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            let p = buffer.baseAddress!
            return try core.receive(into: UnsafeMutableRawPointer(p), timeout: timeout, deadline: nil) ? p.move() : nil
        }
    }

    /// Receives, giving up at `deadline`.
    @inlinable
    public func receive(deadline: ContinuousClock.Instant) throws -> T? {
        try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            let p = buffer.baseAddress!
            return try core.receive(into: UnsafeMutableRawPointer(p), timeout: nil, deadline: deadline) ? p.move() : nil
        }
    }

    /// Receives without waiting: `.value`, `.closed` (closed and drained) or `.empty`.
    /// - Throws: `UThreadError.invalidArgument` outside a runtime, `.foreignRuntime` for a
    ///   channel bound to another M:1 runtime (as `trySend`).
    @inlinable
    public func tryReceive() throws -> TryReceiveResult {
        try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            let p = buffer.baseAddress!
            switch try core.tryReceive(into: UnsafeMutableRawPointer(p)) {
            case .done: return .value(p.move())
            case .closed: return .closed
            case .wouldBlock: return .empty
            }
        }
    }

    /// What `tryReceive()` found.
    public enum TryReceiveResult {
        /// A value was taken: the oldest buffered one, or one handed over by a parked sender.
        case value(T)
        /// The channel is closed and its buffer is drained: no value will ever come.
        case closed
        /// No value is available now but the channel is open: `receive()` would wait.
        case empty
    }

    // MARK: Closing

    /// Closes the channel: parked receivers return nil, parked and later senders throw
    /// `UThreadError.closed`; buffered values can still be received. Returns false if it was
    /// already closed. Any kernel thread may close it; a channel made inside `run { }` is
    /// closed from another kernel thread by a post to its runtime, applied at the runtime's next
    /// safe point (this call then returns false: whether it closed is decided there).
    @discardableResult
    public func close() -> Bool { core.close() }

    // MARK: Sequence

    /// Iterates until the channel is closed and drained. Iteration also ends (returns nil) if
    /// the thread is cancelled while waiting; check `UThread.isCancelled` if that matters.
    /// Iterating outside a user thread, or a channel of another runtime, stops the process with
    /// the error `receive()` would throw (`next()` cannot throw it, and ending the loop would
    /// look like an empty channel).
    public struct Iterator: IteratorProtocol {
        @usableFromInline let channel: Channel<T>
        @inlinable init(channel: Channel<T>) { self.channel = channel }
        @inlinable public mutating func next() -> T? {
            do { return try channel.receive() } catch {
                channel.core.endIteration(error)
                return nil
            }
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(channel: self) }

    public var description: String { "Channel(\(core.label), \(count)/\(capacity)\(isClosed ? ", closed" : ""))" }
}

/// A channel of `Sendable` values may be shared between threads on any worker: its state is
/// then guarded by a lock (see the essay).
extension Channel: @unchecked Sendable where T: Sendable {}

/// The non-generic state and logic of a channel (see the essay above).
@usableFromInline
final class ChannelCore: WaitTarget, @unchecked Sendable {
    let capacity: Int
    let name: String
    let id: UInt64
    let ops: ElementOps
    /// Bare (bound to one M:1 runtime) or shared (under its lock): the one binding rule of
    /// every sync object (SyncState.swift; the essay's "Who touches it").
    @usableFromInline let sync = SyncState()
    @exclusivity(unchecked) private var storage: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var head = 0
    // Values in the buffer and whether `close()` was called, each with a `Relaxed` word beside
    // it for readers elsewhere (`count`, `isClosed`: SyncSupport.swift, "Reads from
    // elsewhere"). Fields of their own, not the words alone: the send and receive paths test
    // them with one compare against memory, which a relaxed load did not fold into (+1.9
    // instructions per unbuffered handoff, callgrind); a buffered send or receive pays the
    // word's store instead.
    @exclusivity(unchecked) private var buffered = 0 {
        didSet { bufferedWord.store(buffered) }
    }
    @exclusivity(unchecked) private var closed = false {
        didSet { closedWord.store(closed ? 1 : 0) }
    }
    private let bufferedWord = Relaxed(0)
    private let closedWord = Relaxed(0)
    @exclusivity(unchecked) var receivers = WaiterList()
    @exclusivity(unchecked) var senders = WaiterList()

    @usableFromInline
    init(capacity: Int, name: String, ops: ElementOps) {
        self.capacity = capacity
        self.name = name
        self.id = SyncObjectID.allocate()
        self.ops = ops
        storage = .allocate(byteCount: Swift.max(capacity, 1) * ops.stride, alignment: ops.alignment)
    }

    deinit {
        for i in 0..<buffered { ops.destroy(slot((head + i) % capacity)) }
        storage.deallocate()
    }

    /// Throws unless a buffer of `capacity` elements can be allocated: its size in bytes must
    /// not overflow and must not exceed the machine's physical memory (such an allocation
    /// stops the process instead of failing, and no channel could ever fill it).
    @usableFromInline
    static func checkBuffer(capacity: Int, ops: ElementOps) throws(UThreadError) {
        let (bytes, overflow) = capacity.multipliedReportingOverflow(by: ops.stride)
        let memory = Int(clamping: sysconf(Int32(_SC_PHYS_PAGES))).multipliedReportingOverflow(
            by: Int(clamping: sysconf(Int32(_SC_PAGESIZE))))
        guard !overflow, memory.overflow || memory.partialValue <= 0 || bytes <= memory.partialValue else {
            throw .invalidArgument(
                "Channel capacity \(capacity) is too large: a buffer of \(capacity) × \(ops.stride) bytes exceeds the machine's memory"
            )
        }
    }

    @inline(__always)
    private func slot(_ i: Int) -> UnsafeMutableRawPointer { storage + i * ops.stride }

    // MARK: Who touches it

    /// Whether the calling thread (of `s`) uses the channel shared (under the lock) or bare
    /// (SyncState: one load and compare on the M:1 path).
    /// - Throws: `UThreadError.foreignRuntime` when another M:1 runtime owns the channel.
    @inline(__always)
    func isShared(_ s: Scheduler) throws(UThreadError) -> Bool { try sync.isShared(s) }

    /// Values buffered now (a snapshot, from any kernel thread).
    var count: Int { bufferedWord.load() }
    /// Whether `close()` was called (from any kernel thread).
    var isClosed: Bool { closedWord.load() != 0 }

    // MARK: The rules (bare, or under the lock)

    /// Wakes the waiter of a node this call claimed: bare or claimed locally (its row blocked
    /// on `s`: ChannelWaiter.swift), now, a queue move on this kernel thread; else once the
    /// lock is released (`later`: the caller wakes it).
    @inline(__always)
    private func wake(
        _ n: UnsafeMutablePointer<ChannelWaiter>, _ how: ChannelClaim, closed: Bool, _ s: Scheduler, shared: Bool,
        _ later: inout Waiter?
    ) {
        if shared && how == .claimed {
            later = n.pointee.selection.pointee.remote?.pointee
        } else {
            s.wake(n.pointee.thread, closed ? .closed : .woken)
        }
    }

    /// The non-waiting half of send: hand a copy to a parked receiver, else buffer one. O(1)
    /// amortised.
    @inline(__always)
    func offer(_ element: UnsafeMutableRawPointer, _ s: Scheduler, shared: Bool, _ later: inout Waiter?)
        -> ChannelPoll
    {
        if closed { return .closed }
        if let (r, how) = receivers.popClaimed(closed: false, shared: shared, on: s) {
            ops.copy(r.pointee.element, element)
            wake(r, how, closed: false, s, shared: shared, &later)
            return done(s)
        }
        if buffered < capacity {
            ops.copy(slot((head + buffered) % capacity), element)
            buffered += 1
            return done(s)
        }
        return .wouldBlock
    }

    /// The non-waiting half of receive: buffer first (refilled from a parked sender, so FIFO
    /// order holds), else straight from a parked sender. `.done`: `element` was initialised.
    /// O(1) amortised.
    @inline(__always)
    func take(into element: UnsafeMutableRawPointer, _ s: Scheduler, shared: Bool, _ later: inout Waiter?)
        -> ChannelPoll
    {
        if buffered > 0 {
            ops.move(element, slot(head))
            head = head + 1 == capacity ? 0 : head + 1
            if let (w, how) = senders.popClaimed(closed: false, shared: shared, on: s) {
                // Refilled: the count stays (never stored one less, which a reader could see).
                ops.copy(slot((head + buffered - 1) % capacity), w.pointee.element)
                wake(w, how, closed: false, s, shared: shared, &later)
            } else {
                buffered -= 1
            }
            return done(s)
        }
        if let (w, how) = senders.popClaimed(closed: false, shared: shared, on: s) {
            ops.copy(element, w.pointee.element)
            wake(w, how, closed: false, s, shared: shared, &later)
            return done(s)
        }
        return closed ? .closed : .wouldBlock
    }

    /// `.done`, after the invariants' check when the flag is on (SyncSupport.swift,
    /// "Invariants"). Only a `.done` poll changed the state (`.closed` and `.wouldBlock` leave it
    /// as it was), so a ping-pong tests the flag once per handoff.
    @inline(__always)
    private func done(_ s: Scheduler) -> ChannelPoll {
        if _slowPath(s.checks) { checkInvariants() }
        return .done
    }

    /// Marks the channel closed and claims every parked node as closed. Bare: wakes them now
    /// (`s`); shared: returns them for waking after the lock is released.
    private func markClosed(_ s: Scheduler?, shared: Bool) -> [Waiter]? {
        guard !closed else { return nil }
        closed = true
        var wakes: [Waiter] = []
        var later: Waiter?
        for list in [\ChannelCore.receivers, \ChannelCore.senders] {
            while let n = self[keyPath: list].popClaimed(closed: true, shared: shared) {
                if shared {
                    if let w = n.pointee.selection.pointee.remote { wakes.append(w.pointee) }
                } else {
                    wake(n, .claimed, closed: true, s!, shared: false, &later)
                }
            }
        }
        return wakes
    }

    // MARK: Send

    /// Sends the value at `element` (initialised; the caller keeps and destroys it: the
    /// receiver takes a copy).
    /// Inlined into the caller: the branch runs in its frame ("A frame each" in the essay).
    @inlinable @inline(__always)
    func send(_ element: UnsafeMutableRawPointer, deadline d: UInt64?) throws {
        guard let p = uthreads_get_runtime() else { try Scheduler.throwOutsideUserThread("Channel.send") }
        try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { s in
            switch sync.knownShared(serial: s.serial) {
            case false?: try sendBare(element, deadline: d, s)
            case true?: try sendShared(element, deadline: d, s)
            case nil: try sendDeciding(element, deadline: d, s)
            }
        }
    }

    /// `send` on a channel not yet bound (or another runtime's): binds it or throws.
    @usableFromInline @inline(never)
    func sendDeciding(_ element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler) throws {
        if try isShared(s) { try sendShared(element, deadline: d, s) } else { try sendBare(element, deadline: d, s) }
    }

    /// `send` on a bare channel.
    @usableFromInline @inline(never)
    func sendBare(_ element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler) throws {
        var later: Waiter?
        switch offer(element, s, shared: false, &later) {
        case .done: return
        case .closed: throw closedError
        case .wouldBlock: break
        }
        var state = SelectionState()
        try withUnsafeMutablePointer(to: &state) { sp in
            var node = ChannelWaiter(thread: s.current, element: element, selection: sp, caseIndex: 0)
            try withUnsafeMutablePointer(to: &node) { np in
                senders.append(np)
                // `cancellable` given: left to its default, it came out as a call of the default's
                // generator in some builds (+5 instructions per handoff).
                let r = s.park(.channelSend, object: id, target: self, deadline: d, cancellable: true)
                if let o = sp.pointee.outcome {
                    if o.closed { throw closedError }
                    return
                }
                senders.remove(np)
                try r.check()
            }
        }
    }

    /// `send` on a shared channel: the same rules under the lock, parked through the worker.
    @usableFromInline @inline(never)
    func sendShared(_ element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler) throws {
        if try waitShared(sending: true, element, deadline: d, s) == .closed { throw closedError }
    }

    @usableFromInline
    func send(_ element: UnsafeMutableRawPointer, timeout: Duration?, deadline: ContinuousClock.Instant?) throws {
        let s = try Scheduler.requireOrThrow("Channel.send")
        try send(element, deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
    }

    @usableFromInline
    func trySend(_ element: UnsafeMutableRawPointer) throws -> Bool {
        let s = try Scheduler.requireOrThrow("Channel.trySend")
        let shared = try isShared(s)
        var later: Waiter?
        if shared { sync.lock() }
        let poll = offer(element, s, shared: shared, &later)
        if shared { sync.unlock() }
        if let later { syncWake(later, from: s) }
        switch poll {
        case .done: return true
        case .closed: throw closedError
        case .wouldBlock: return false
        }
    }

    // MARK: Receive

    /// Receives into `element` (uninitialised). Returns true when it was initialised, false
    /// when the channel is closed and drained.
    /// Inlined into the caller, as `send(_:deadline:)` is.
    @inlinable @inline(__always)
    func receive(into element: UnsafeMutableRawPointer, deadline d: UInt64?) throws -> Bool {
        guard let p = uthreads_get_runtime() else { try Scheduler.throwOutsideUserThread("Channel.receive") }
        return try Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { s in
            switch sync.knownShared(serial: s.serial) {
            case false?: try receiveBare(into: element, deadline: d, s)
            case true?: try receiveShared(into: element, deadline: d, s)
            case nil: try receiveDeciding(into: element, deadline: d, s)
            }
        }
    }

    /// `receive` on a channel not yet bound (or another runtime's): binds it or throws.
    @usableFromInline @inline(never)
    func receiveDeciding(into element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler) throws
        -> Bool
    {
        try isShared(s) ? receiveShared(into: element, deadline: d, s) : receiveBare(into: element, deadline: d, s)
    }

    /// `receive` on a bare channel.
    @usableFromInline @inline(never)
    func receiveBare(into element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler) throws
        -> Bool
    {
        var later: Waiter?
        switch take(into: element, s, shared: false, &later) {
        case .done: return true
        case .closed: return false
        case .wouldBlock: break
        }
        var state = SelectionState()
        return try withUnsafeMutablePointer(to: &state) { sp in
            var node = ChannelWaiter(thread: s.current, element: element, selection: sp, caseIndex: 0)
            return try withUnsafeMutablePointer(to: &node) { np in
                receivers.append(np)
                let r = s.park(.channelReceive, object: id, target: self, deadline: d)
                if let o = sp.pointee.outcome { return !o.closed }
                receivers.remove(np)
                try r.check()
                return false
            }
        }
    }

    /// `receive` on a shared channel: the same rules under the lock, parked through the worker.
    @usableFromInline @inline(never)
    func receiveShared(into element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler) throws
        -> Bool
    {
        try waitShared(sending: false, element, deadline: d, s) == .done
    }

    /// One send or receive on a shared channel: polls (`offer` or `take`) under the lock and
    /// returns `.done` or `.closed` when it need not wait; else, the lock still held, parks
    /// (`parkShared`). One lock pair either way.
    @inline(__always)
    private func waitShared(
        sending: Bool, _ element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler
    ) throws -> ChannelPoll {
        var later: Waiter?
        sync.lock()
        let polled = sending ? offer(element, s, shared: true, &later) : take(into: element, s, shared: true, &later)
        guard polled == .wouldBlock else {
            sync.unlock()
            if let later { syncWake(later, from: s) }
            return polled
        }
        return try parkShared(sending ? .channelSend : .channelReceive, element, deadline: d, s)
    }

    /// The waiting half of `waitShared`, entered with the lock held (the poll found nothing):
    /// links a node for `element` on the senders' or receivers' list in `parkWaiter`'s register
    /// step, releases the lock there and parks, so that no peer can slip in between. Returns
    /// `.done` or `.closed`; throws the timeout, cancellation or teardown that ended the wait.
    /// Out of line, so that an operation that does not wait (half of a ping-pong's) does not
    /// pay the frame of its node.
    @inline(never)
    private func parkShared(
        _ kind: WaitReason.Kind, _ element: UnsafeMutableRawPointer, deadline d: UInt64?, _ s: Scheduler
    ) throws -> ChannelPoll {
        let sending = kind == .channelSend
        var state = SelectionState()
        state.single = true
        return try withUnsafeTemporaryAllocation(of: Waiter.self, capacity: 1) { slot in
            try withUnsafeMutablePointer(to: &state) { sp in
                var node = ChannelWaiter(thread: s.current, element: element, selection: sp, caseIndex: 0)
                return try withUnsafeMutablePointer(to: &node) { np in
                    let parked = s.parkWaiter(kind, object: id, target: self, deadline: d) { waiter in
                        defer { sync.unlock() }
                        slot.baseAddress!.initialize(to: waiter)  // trivial: never deinitialised
                        sp.pointee.remote = UnsafePointer(slot.baseAddress!)
                        if sending { senders.append(np) } else { receivers.append(np) }
                        return true
                    }
                    // From here on `s` may be another worker's scheduler (after a park): it is
                    // not used again.
                    guard let r = parked?.1 else {
                        throw UThreadError.invalidArgument("\(label): a wait registered without parking")
                    }
                    if r == .woken, let o = sp.pointee.outcome { return o.closed ? .closed : .done }
                    let outcome = sp.pointee.settle(r)
                    // Unlinks the node if no peer took it; else orders us after the peer's write.
                    sync.lock()
                    if sending { senders.remove(np) } else { receivers.remove(np) }
                    sync.unlock()
                    if let outcome { return outcome.closed ? .closed : .done }
                    try r.check()
                    throw UThreadError.invalidArgument("\(label) woke a waiter without completing it")
                }
            }
        }
    }

    @usableFromInline
    func receive(into element: UnsafeMutableRawPointer, timeout: Duration?, deadline: ContinuousClock.Instant?) throws
        -> Bool
    {
        let s = try Scheduler.requireOrThrow("Channel.receive")
        return try receive(into: element, deadline: syncDeadline(timeout: timeout, deadline: deadline, now: s.now()))
    }

    @usableFromInline
    func tryReceive(into element: UnsafeMutableRawPointer) throws -> ChannelPoll {
        let s = try Scheduler.requireOrThrow("Channel.tryReceive")
        let shared = try isShared(s)
        var later: Waiter?
        if shared { sync.lock() }
        let poll = take(into: element, s, shared: shared, &later)
        if shared { sync.unlock() }
        if let later { syncWake(later, from: s) }
        return poll
    }

    // MARK: Close

    /// Closes; wakes every parked thread (see the essay). Any kernel thread may close: a
    /// shared channel under its lock, a bare one on its runtime's kernel thread, where a close
    /// from elsewhere is posted (SyncState's `enter(orPost:)`; it returns false then).
    @usableFromInline
    func close() -> Bool {
        guard let locked = sync.enter(orPost: { [self] in _ = close() }) else { return false }
        guard locked else {
            // Bare: the caller runs on the channel's runtime (`enter` admitted it).
            let s = Scheduler.active!
            defer { if s.checks { checkInvariants() } }
            return markClosed(s, shared: false) != nil
        }
        let wakes = markClosed(nil, shared: true)
        if syncChecking() { checkInvariants() }
        sync.unlock()
        syncWake(wakes ?? [])
        return wakes != nil
    }

    /// What `Iterator.next()` makes of `receive()`'s error: the end of the loop for
    /// cancellation and deadlock teardown; for misuse (outside a user thread, another runtime's
    /// channel) a stop with the error, which the non-throwing `next()` would otherwise turn
    /// into a silently empty loop.
    @usableFromInline
    func endIteration(_ error: any Error) {
        guard let error = error as? UThreadError else { return }
        switch error {
        case .invalidArgument, .foreignRuntime:
            uthreads_write_stderr("\nUserThreads: iterating \(label): \(error)\n")
            preconditionFailure("iterating \(label): \(error)")
        default: return
        }
    }

    var closedError: UThreadError { .closed("\(label) is closed") }
    var label: String { syncLabel("channel", name: name, id: id) }

    // MARK: WaitTarget

    @usableFromInline
    func waitDescription(kind: WaitReason.Kind) -> String {
        let on = name.isEmpty ? "channel \(id)" : "'\(name)'"
        var parked = ""
        if sync.isSharedNow {  // the lists are walked under the lock (a bare one's are its runtime's)
            sync.lock()
            parked = ", \(senders.count) sender(s), \(receivers.count) receiver(s) parked"
            sync.unlock()
        }
        return "\(kind.label) on \(on) (\(count)/\(capacity) buffered\(parked)\(isClosed ? ", closed" : ""))"
    }

    // MARK: Invariants

    /// The channel's invariants (SyncSupport.swift, "Invariants"), which select's polls share
    /// (they are `offer` and `take`). Inside the access (bare, or under the lock). O(1). The
    /// lists may hold stale nodes (a select completed elsewhere, a waiter that gave up and has
    /// not run yet), and the rules hold for them too: `offer` and `take` drop every stale node
    /// they meet before they change the buffer. Out of line, the test before it marked slow:
    /// with the flag off a handoff costs 400 instructions (391 without the checks; 403 with
    /// this function left to the inliner), docs/BENCHMARKS.md "Sync invariants behind the flag".
    @inline(never)
    func checkInvariants() {
        syncInvariant(buffered >= 0 && buffered <= capacity, label, "0 <= buffered <= capacity")
        syncInvariant(head >= 0 && head < Swift.max(capacity, 1), label, "the buffer's head is one of its slots")
        syncInvariant(receivers.isEmpty || buffered == 0, label, "parked receivers ⇒ the buffer is empty")
        syncInvariant(senders.isEmpty || buffered == capacity, label, "parked senders ⇒ the buffer is full")
        syncInvariant(!closed || (senders.isEmpty && receivers.isEmpty), label, "closed ⇒ nobody parked")
        syncInvariant(bufferedWord.load() == buffered, label, "count == the buffered values")
        syncInvariant(closedWord.load() == (closed ? 1 : 0), label, "isClosed == closed")
    }
}
