// Layer 6: channels — typed message passing between user threads.
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
// Timeouts and cancellation: a parked operation that times out or is cancelled unlinks its
// node itself when it runs; until then peers skip it (its thread is no longer blocked), so a
// value is never handed to a thread that has given up.
//
// Rejected designs:
//   * Receivers returning a `Result` or throwing on close: `for x in channel` and
//     `while let x = try ch.receive()` read naturally with nil meaning "closed and drained".
//   * A lock-free ring (Vyukov): needless under M:1 and the slow path (parking) dominates.
//   * Go's panic on send to a closed channel: a thrown error the caller can handle instead.
import CUThreads

/// A typed FIFO channel between user threads of one runtime.
///
/// ```swift
/// let jobs = Channel<Int>(capacity: 16)
/// let worker = UThread { for job in jobs { process(job) } }
/// for j in 0..<100 { try jobs.send(j) }
/// jobs.close()
/// ```
public final class Channel<T>: WaitTarget, Sequence, CustomStringConvertible {
    /// Buffered values allowed before a send waits; 0 makes every send a rendezvous.
    public let capacity: Int
    public let name: String
    public let id: UInt64
    @exclusivity(unchecked) private var storage: UnsafeMutablePointer<T>
    @exclusivity(unchecked) private var head = 0
    @exclusivity(unchecked) private(set) public var count = 0
    @exclusivity(unchecked) var receivers = WaiterList()
    @exclusivity(unchecked) var senders = WaiterList()
    @exclusivity(unchecked) public private(set) var isClosed = false

    /// - Parameter capacity: 0 (default) for an unbuffered channel.
    public init(capacity: Int = 0, name: String = "") {
        precondition(capacity >= 0, "Channel capacity must be >= 0")
        self.capacity = capacity
        self.name = name
        self.id = SyncObjectID.allocate()
        storage = .allocate(capacity: Swift.max(capacity, 1))
    }

    deinit {
        for i in 0..<count { (storage + (head + i) % capacity).deinitialize(count: 1) }
        storage.deallocate()
    }

    // MARK: Sending

    /// Sends `value`, waiting while no receiver is ready and the buffer is full.
    /// - Throws: `UThreadError.closed` if the channel is (or gets) closed — the value was not
    ///   delivered; `UThreadError.timedOut`; `CancellationError`.
    public func send(_ value: T, timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws {
        let s = Scheduler.require("Channel.send")
        switch offer(value, s) {
        case .done: return
        case .closed: throw closedError
        case .wouldBlock: break
        }
        let d = (timeout == nil && deadline == nil) ? nil : syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
        var v = value
        var state = SelectionState()
        try withUnsafeMutablePointer(to: &v) { vp in
            try withUnsafeMutablePointer(to: &state) { sp in
                var node = ChannelWaiter(thread: s.current, element: UnsafeMutableRawPointer(vp), selection: sp, caseIndex: 0)
                try withUnsafeMutablePointer(to: &node) { np in
                    senders.append(np)
                    let r = s.park(.channelSend, object: id, target: self, deadline: d)
                    if sp.pointee.fired {
                        if !sp.pointee.ok { throw closedError }
                        return
                    }
                    senders.remove(np)
                    try r.check()
                }
            }
        }
    }

    /// Sends without waiting. Returns false when it would have to wait.
    /// - Throws: `UThreadError.closed` if the channel is closed.
    public func trySend(_ value: T) throws -> Bool {
        switch offer(value, Scheduler.require("Channel.trySend")) {
        case .done: return true
        case .closed: throw closedError
        case .wouldBlock: return false
        }
    }

    /// The non-waiting half of send: hand to a parked receiver, else buffer. O(1) amortised.
    @inline(__always)
    func offer(_ value: T, _ s: Scheduler) -> ChannelPoll {
        if isClosed { return .closed }
        if let r = receivers.popReady() {
            r.pointee.element.assumingMemoryBound(to: Optional<T>.self).pointee = value
            s.fire(r, ok: true)
            return .done
        }
        if count < capacity {
            (storage + (head + count) % capacity).initialize(to: value)
            count += 1
            return .done
        }
        return .wouldBlock
    }

    // MARK: Receiving

    /// Receives the next value, waiting while none is available. Returns nil once the channel
    /// is closed and every buffered value was received.
    /// - Throws: `UThreadError.timedOut`; `CancellationError`.
    public func receive(timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil) throws -> T? {
        let s = Scheduler.require("Channel.receive")
        switch take(s) {
        case .value(let v): return v
        case .closed: return nil
        case .wouldBlock: break
        }
        let d = (timeout == nil && deadline == nil) ? nil : syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
        var slot: T? = nil
        var state = SelectionState()
        return try withUnsafeMutablePointer(to: &slot) { vp in
            try withUnsafeMutablePointer(to: &state) { sp in
                var node = ChannelWaiter(thread: s.current, element: UnsafeMutableRawPointer(vp), selection: sp, caseIndex: 0)
                return try withUnsafeMutablePointer(to: &node) { np in
                    receivers.append(np)
                    let r = s.park(.channelReceive, object: id, target: self, deadline: d)
                    if sp.pointee.fired { return vp.pointee }  // nil when closed
                    receivers.remove(np)
                    try r.check()
                    return nil
                }
            }
        }
    }

    /// Receives without waiting: `.value`, `.closed` (closed and drained) or `.empty`.
    public func tryReceive() -> TryReceiveResult {
        switch take(Scheduler.require("Channel.tryReceive")) {
        case .value(let v): return .value(v)
        case .closed: return .closed
        case .wouldBlock: return .empty
        }
    }

    public enum TryReceiveResult {
        case value(T)
        case closed
        case empty
    }

    enum TakeResult { case value(T), closed, wouldBlock }

    /// The non-waiting half of receive: buffer first (refilled from a parked sender), else
    /// straight from a parked sender. O(1) amortised.
    @inline(__always)
    func take(_ s: Scheduler) -> TakeResult {
        if count > 0 {
            let v = (storage + head).move()
            head = head + 1 == capacity ? 0 : head + 1
            count -= 1
            if let w = senders.popReady() {
                (storage + (head + count) % capacity).initialize(to: w.pointee.element.assumingMemoryBound(to: T.self).pointee)
                count += 1
                s.fire(w, ok: true)
            }
            return .value(v)
        }
        if let w = senders.popReady() {
            let v = w.pointee.element.assumingMemoryBound(to: T.self).pointee
            s.fire(w, ok: true)
            return .value(v)
        }
        return isClosed ? .closed : .wouldBlock
    }

    // MARK: Closing

    /// Closes the channel: parked receivers return nil, parked and later senders throw
    /// `UThreadError.closed`; buffered values can still be received. Returns false if it was
    /// already closed.
    @discardableResult
    public func close() -> Bool {
        guard !isClosed else { return false }
        isClosed = true
        let s = Scheduler.require("Channel.close")
        while let r = receivers.popReady() { s.fire(r, ok: false) }
        while let w = senders.popReady() { s.fire(w, ok: false) }
        return true
    }

    var closedError: UThreadError { .closed("\(label) is closed") }
    var label: String { syncLabel("channel", name: name, id: id) }

    // MARK: Sequence

    /// Iterates until the channel is closed and drained. Iteration also ends (returns nil) if
    /// the thread is cancelled while waiting; check `UThread.isCancelled` if that matters.
    public struct Iterator: IteratorProtocol {
        let channel: Channel<T>
        public mutating func next() -> T? { (try? channel.receive()) ?? nil }
    }

    public func makeIterator() -> Iterator { Iterator(channel: self) }

    // MARK: WaitTarget

    public func waitDescription(kind: WaitReason.Kind) -> String {
        let on = name.isEmpty ? "channel \(id)" : "'\(name)'"
        return "\(kind.label) on \(on) (\(count)/\(capacity) buffered\(isClosed ? ", closed" : ""))"
    }

    public var description: String { "Channel(\(label), \(count)/\(capacity)\(isClosed ? ", closed" : ""))" }
}
