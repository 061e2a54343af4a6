// Layer 11: M:N channels — unbuffered (rendezvous) and buffered, between threads on any worker.
//
// Design: as the M:1 channel (Sync/Channel.swift) and Go's hchan — a buffer of `capacity`
// values (0: none, every send is a rendezvous), a FIFO of parked senders, a FIFO of parked
// receivers, a closed flag — behind one KernelLock. Invariants: parked receivers exist only
// while the buffer is empty; parked senders only while it is full (for capacity 0: always
// "full"). Waiters are `MNChannelNode`s whose `MNSelection` is claimed exactly once
// (MNChannelWaiter.swift), which is what lets one thread wait on several channels (MNSelect).
//
//   * send: a parked receiver is claimed and handed the value directly; else the value is
//     buffered if there is room; else the sender parks with its value in its node. It returns
//     once a receiver took the value (unbuffered) or the value entered the buffer.
//   * receive: a buffered value is taken, and the first parked sender's value refills the
//     buffer (FIFO order holds); without a buffer a parked sender is claimed and its value
//     taken; else, unless closed, the receiver parks.
//   * close: marks the channel closed and claims every parked node as closed: receivers
//     return nil (parked receivers imply an empty buffer, so nothing is skipped), senders throw
//     `UThreadError.closed`. Later sends throw; receives drain the buffer, then return nil.
// Wakes are sent after the lock is released (a local wake or a mailbox message).
//
// The typed logic lives in the lock's `State`; a select (MNSelect.swift) runs the same
// `offer`/`take`/`enqueue` while it holds the locks of all its channels.
import CUThreads

/// A FIFO channel for M:N threads on any worker: unbuffered (a send waits for a receiver) or
/// buffered. `receive` returns nil once the channel is closed and drained; a send on a closed
/// channel throws `UThreadError.closed`.
///
/// ```swift
/// try UThreadRuntime.run(workers: 2) {
///     let jobs = MNChannel<Int>(name: "jobs")            // unbuffered
///     let worker = UThread { var sum = 0; for j in jobs { sum += j }; return sum }
///     for j in 1...100 { try jobs.send(j) }              // each send meets a receive
///     jobs.close()
///     print(try worker.join())                           // 5050
/// }
/// ```
public final class MNChannel<Element: Sendable>: Sendable, Sequence, WaitTarget, CustomStringConvertible {
    @usableFromInline
    struct State {
        @usableFromInline var buffer = MNFIFO<Element>()
        @usableFromInline var closed = false
        @usableFromInline var senders = MNFIFO<MNChannelNode<Element>>()
        @usableFromInline var receivers = MNFIFO<MNChannelNode<Element>>()

        @inlinable init() {}

        /// The non-waiting half of a send. `wake`: a receiver to wake after unlocking.
        @inlinable mutating func offer(_ value: Element, capacity: Int, wake: inout MNWaiter?) -> ChannelPoll {
            if closed { return .closed }
            if let r = receivers.popClaimed(closed: false) as MNChannelNode<Element>? {
                r.value = value
                wake = r.selection.waiter
                return .done
            }
            if buffer.count < capacity {
                buffer.push(value)
                return .done
            }
            return .wouldBlock
        }

        /// The non-waiting half of a receive: `.done` with the value in `got`.
        @inlinable mutating func take(_ got: inout Element?, wake: inout MNWaiter?) -> ChannelPoll {
            if let v = buffer.pop() {
                got = v
                if let s = senders.popClaimed(closed: false) as MNChannelNode<Element>? {
                    buffer.push(s.value!)
                    wake = s.selection.waiter
                }
                return .done
            }
            if let s = senders.popClaimed(closed: false) as MNChannelNode<Element>? {
                got = s.value
                wake = s.selection.waiter
                return .done
            }
            return closed ? .closed : .wouldBlock
        }

        @inlinable mutating func remove(_ node: MNChannelNode<Element>, sending: Bool) {
            if sending { _ = senders.remove { $0 === node } } else { _ = receivers.remove { $0 === node } }
        }
    }
    @usableFromInline let state = KernelLock(State())
    /// How many values the channel buffers; 0: unbuffered (every send meets a receive).
    public let capacity: Int
    /// Shown in wait reasons ("channel receive on 'jobs'") and `description`.
    public let name: String
    /// A process-wide id: the wait reason's object, and the lock order of a select.
    public let id: UInt64

    /// An unbuffered channel for M:N threads: a send completes only when a receiver took the
    /// value (a rendezvous).
    /// - Parameter name: shown in wait reasons and `description` ("" for none).
    public init(name: String = "") {
        self.capacity = 0
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// A channel for M:N threads that buffers up to `capacity` values (0: unbuffered).
    /// - Parameters:
    ///   - capacity: how many values it buffers; 0 for a rendezvous channel.
    ///   - name: shown in wait reasons and `description` ("" for none).
    /// - Throws: `UThreadError.invalidArgument` when `capacity` is negative.
    public init(capacity: Int, name: String = "") throws(UThreadError) {
        guard capacity >= 0 else { throw .invalidArgument("MNChannel capacity must be >= 0, not \(capacity)") }
        self.capacity = capacity
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    // MARK: Sending

    /// Sends `value`: hands it to a waiting receiver, or buffers it, or waits for one of those.
    /// Unbuffered: returns once a receiver has taken it. O(1) amortised.
    /// - Throws: `UThreadError.closed` (the value was not delivered), `.timedOut`,
    ///   `CancellationError`.
    @inlinable
    public func send(_ value: Element, timeout: Duration? = nil) throws {
        let capacity = self.capacity
        var wake: MNWaiter?
        var node: MNChannelNode<Element>?
        var closed = false
        let result = mnWait(
            "MNChannel.send", .channelSend, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                state.withLock { st -> Bool in
                    switch st.offer(value, capacity: capacity, wake: &wake) {
                    case .done: return false
                    case .closed:
                        closed = true
                        return false
                    case .wouldBlock:
                        let n = MNChannelNode(waiter: waiter, value: value)
                        st.senders.push(n)
                        node = n
                        return true
                    }
                }
            }, withdraw: { _ in nil })
        guard let result, let node else {
            if let wake { mnWakeOne(wake) }
            if closed { throw closedError }
            return
        }
        guard let outcome = node.selection.settle(result) else {
            state.withLock { $0.remove(node, sending: true) }
            try result.check()
            throw UThreadError.invalidArgument("MNChannel.send woke without a receiver")
        }
        if outcome.closed { throw closedError }
    }

    /// Sends without waiting. Returns false when it would have to wait.
    /// - Throws: `UThreadError.closed` if the channel is closed.
    @inlinable
    public func trySend(_ value: Element) throws -> Bool {
        var wake: MNWaiter?
        let capacity = self.capacity
        let poll = state.withLock { $0.offer(value, capacity: capacity, wake: &wake) }
        if let wake { mnWakeOne(wake) }
        switch poll {
        case .done: return true
        case .closed: throw closedError
        case .wouldBlock: return false
        }
    }

    // MARK: Receiving

    /// Receives the next value, waiting while none is available; nil once the channel is
    /// closed and drained. O(1) amortised.
    /// - Throws: `.timedOut`, `CancellationError`.
    @inlinable
    public func receive(timeout: Duration? = nil) throws -> Element? {
        var wake: MNWaiter?
        var node: MNChannelNode<Element>?
        var got: Element?
        let result = mnWait(
            "MNChannel.receive", .channelReceive, object: id, target: self, deadline: mnDeadline(timeout),
            register: { waiter in
                state.withLock { st -> Bool in
                    guard st.take(&got, wake: &wake) == .wouldBlock else { return false }
                    let n = MNChannelNode<Element>(waiter: waiter, value: nil)
                    st.receivers.push(n)
                    node = n
                    return true
                }
            }, withdraw: { _ in nil })
        guard let result, let node else {
            if let wake { mnWakeOne(wake) }
            return got
        }
        guard let outcome = node.selection.settle(result) else {
            state.withLock { $0.remove(node, sending: false) }
            try result.check()
            throw UThreadError.invalidArgument("MNChannel.receive woke without a sender")
        }
        if outcome.closed { return nil }
        if result != .woken { state.withLock { _ in } }  // claimed as we gave up: order after the sender's write
        return node.value
    }

    /// What `tryReceive()` found.
    public enum TryReceiveResult {
        /// A value was taken.
        case value(Element)
        /// The channel is closed and drained: no value will ever come.
        case closed
        /// No value now, but the channel is open: `receive()` would wait.
        case empty
    }

    /// Receives without waiting.
    @inlinable
    public func tryReceive() -> TryReceiveResult {
        var wake: MNWaiter?
        var got: Element?
        let poll = state.withLock { $0.take(&got, wake: &wake) }
        if let wake { mnWakeOne(wake) }
        switch poll {
        case .done: return .value(got!)
        case .closed: return .closed
        case .wouldBlock: return .empty
        }
    }

    // MARK: Closing

    /// Closes the channel: parked receivers return nil, parked and later senders throw
    /// `UThreadError.closed`; buffered values can still be received. Wakes waiters on every
    /// worker. Returns false if it was already closed. O(waiters).
    @discardableResult
    public func close() -> Bool {
        var wakes: [MNWaiter] = []
        let first = state.withLock { st -> Bool in
            guard !st.closed else { return false }
            st.closed = true
            while let r = st.receivers.popClaimed(closed: true) as MNChannelNode<Element>? {
                wakes.append(r.selection.waiter)
            }
            while let s = st.senders.popClaimed(closed: true) as MNChannelNode<Element>? {
                wakes.append(s.selection.waiter)
            }
            return true
        }
        mnWake(wakes)
        return first
    }

    // MARK: Sequence

    /// Iterates until the channel is closed and drained. Iteration also ends (returns nil) when
    /// the thread is cancelled while it waits; check `UThread.isCancelled` if that matters.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let channel: MNChannel<Element>
        @inlinable init(channel: MNChannel<Element>) { self.channel = channel }
        /// The next value; nil once the channel is closed and drained (or the thread is cancelled).
        @inlinable public mutating func next() -> Element? { (try? channel.receive()) ?? nil }
    }

    /// An iterator that receives until the channel is closed and drained.
    @inlinable public func makeIterator() -> Iterator { Iterator(channel: self) }

    // MARK: Inspection

    /// Values buffered now (a snapshot).
    public var count: Int { state.withLock { $0.buffer.count } }
    /// Whether `close()` has been called (buffered values may still be received).
    public var isClosed: Bool { state.withLock { $0.closed } }

    @usableFromInline var closedError: UThreadError { .closed("\(label) is closed") }
    var label: String { syncLabel("channel", name: name, id: id) }

    /// "channel receive on 'jobs' (0/4 buffered, 2 receivers)", for the thread table.
    public func waitDescription(kind: WaitReason.Kind) -> String {
        let (count, closed, senders, receivers) = state.withLock {
            ($0.buffer.count, $0.closed, $0.senders.count, $0.receivers.count)
        }
        let on = name.isEmpty ? "channel \(id)" : "'\(name)'"
        return
            "\(kind.label) on \(on) (\(count)/\(capacity) buffered, \(senders) sender(s), \(receivers) receiver(s) parked\(closed ? ", closed" : ""))"
    }

    public var description: String { "MNChannel(\(label), \(count)/\(capacity)\(isClosed ? ", closed" : ""))" }
}
