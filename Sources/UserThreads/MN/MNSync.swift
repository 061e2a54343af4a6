// Layer 7: synchronisation between M:N threads on different workers.
//
// Design: each object's state (and its lists of waiters) sits in a `Synchronization.Mutex`,
// held only for a few loads and stores, never across a park. A thread that must wait
// publishes an `MNWaiter` (worker, row, token) under the lock, releases it, and parks on its
// own worker (`MNWorker.park`). A waker changes the state and removes the waiter under the
// lock, then wakes it after releasing: on the same worker directly, else through the mailbox.
// A parked thread never changes worker (only ready ones migrate), so the mailbox is drained
// only after the waiter's context is saved: no lost wake-up, no half-switched thread. After a
// park the waiter may run on another worker (issue 7): loops re-read `MNWorker.current()`. A wait that ends otherwise
// (timeout, cancel, deadlock teardown) removes its waiter under the lock; if it was already
// removed, a wake is in flight to it, which it then passes on to the next waiter (channels) or
// for which it undoes a handoff (mutex), so no wake-up is lost either way.
//
// The M:1 primitives (UMutex, Channel, …) are not Sendable; these are. Use these between M:N
// threads; the M:1 ones between threads of one worker (`UThread { }` inside an M:N thread).
//
// Rejected: making UMutex itself cross-worker (an atomic CAS in its inlined fast path, and a
// lock around every wait queue, paid by every M:1 program); a spin lock per object (a
// preempted holder on a 2-vCPU VM spins the other CPU for a whole time slice).
import CUThreads
import Synchronization

/// A mutex for M:N threads on any worker. FIFO handoff to waiters, like `UMutex`.
///
/// ```swift
/// try UThreadRuntime.run(workers: 2) {
///     let m = MNMutex(name: "counter")
///     let counter = Counter()                       // some Sendable box
///     let ts = (0..<4).map { _ in MNThread { for _ in 0..<1000 { try m.withLock { counter.bump() } } } }
///     for t in ts { try t.join() }
/// }
/// ```
public final class MNMutex: Sendable {
    struct State {
        var owner: UInt64 = 0  // thread id; 0 when free
        var waiters = MNFIFO<(MNWaiter, UInt64)>()
        mutating func releaseToNext() -> MNWaiter? {
            if let (w, id) = waiters.pop() {
                owner = id
                return w
            }
            owner = 0
            return nil
        }
    }
    private let state = KernelLock(State())
    /// Shown in wait reasons and deadlock reports.
    public let name: String
    public let id: UInt64

    /// An unlocked mutex usable from every worker of an M:N runtime.
    /// - Parameter name: shown in wait reasons and deadlock reports.
    public init(name: String = "") {
        self.name = name
        self.id = SyncObjectID.allocate()
    }

    /// Acquires the mutex, parking while another thread holds it.
    /// - Throws: `UThreadError.timedOut`, `CancellationError`, `.invalidArgument` (relock).
    public func lock(timeout: Duration? = nil) throws {
        let (w, s) = MNWorker.require("MNMutex.lock")
        let me = s.current.pointee.id
        let deadline = timeout.map { Deadline.after($0, now: s.now()) }
        let parked = try w.park(s, .mutex, object: id, deadline: deadline) { waiter in
            try state.withLock { st throws(UThreadError) -> Bool in
                if st.owner == 0 {
                    st.owner = me
                    return false
                }
                if st.owner == me { throw .invalidArgument("MNMutex.lock: thread #\(me) already holds mutex \(name.isEmpty ? "\(id)" : "'\(name)'")") }
                st.waiters.push((waiter, me))
                return true
            }
        }
        guard let (waiter, result) = parked, result != .woken else { return }  // free, or handed over
        let next: MNWaiter? = state.withLock { st in
            if st.owner == me { return st.releaseToNext() }  // handed over as we gave up: pass it on
            _ = st.waiters.remove { $0.0 == waiter }
            return nil
        }
        if let next { w.runtime.wake(next, .woken) }
        try result.check()
    }

    /// Acquires the mutex if it is free; never waits.
    public func tryLock() -> Bool {
        let (_, s) = MNWorker.require("MNMutex.tryLock")
        let me = s.current.pointee.id
        return state.withLock { st in
            guard st.owner == 0 else { return false }
            st.owner = me
            return true
        }
    }

    /// Releases the mutex; the first waiter becomes the owner.
    /// - Throws: `.invalidArgument` if the caller does not hold it.
    public func unlock() throws {
        let (w, s) = MNWorker.require("MNMutex.unlock")
        let me = s.current.pointee.id
        let next = try state.withLock { st throws(UThreadError) -> MNWaiter? in
            guard st.owner == me else { throw .invalidArgument("MNMutex.unlock: thread #\(me) does not hold the mutex") }
            return st.releaseToNext()
        }
        if let next { w.runtime.wake(next, .woken) }
    }

    /// Runs `body` holding the mutex.
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { try? unlock() }
        return try body()
    }

    /// Whether some thread holds it (a snapshot).
    public var isLocked: Bool { state.withLock { $0.owner != 0 } }
}

/// A buffered FIFO channel for M:N threads on any worker. `send` waits while `capacity` values
/// are buffered; `receive` waits while none is; `close` ends both (receivers first drain the
/// buffer, then get nil).
public final class MNChannel<Element: Sendable>: Sendable {
    struct State {
        var buffer = MNFIFO<Element>()
        var closed = false
        var senders = MNFIFO<MNWaiter>()
        var receivers = MNFIFO<MNWaiter>()
    }
    private let state: KernelLock<State>
    /// How many values the channel buffers (at least 1: M:N channels are buffered only).
    public let capacity: Int
    public let id: UInt64

    /// - Throws: `.invalidArgument` unless `capacity >= 1` (unbuffered M:N channels are not
    ///   provided; use capacity 1).
    public init(capacity: Int) throws {
        guard capacity >= 1 else { throw UThreadError.invalidArgument("MNChannel capacity must be >= 1, not \(capacity)") }
        self.capacity = capacity
        self.id = SyncObjectID.allocate()
        self.state = KernelLock(State())
    }

    /// Sends `value`, waiting while the buffer is full.
    /// - Throws: `UThreadError.closed`, `.timedOut`, `CancellationError`.
    public func send(_ value: Element, timeout: Duration? = nil) throws {
        let (_, s) = MNWorker.require("MNChannel.send")
        let deadline = timeout.map { Deadline.after($0, now: s.now()) }
        let capacity = self.capacity
        while true {
            // Each round on the worker that runs the caller now: a park may resume elsewhere (issue 7).
            let (w, s) = MNWorker.require("MNChannel.send")
            var receiver: MNWaiter?
            let parked = try w.park(s, .channelSend, object: id, deadline: deadline) { waiter in
                try state.withLock { st throws(UThreadError) -> Bool in
                    if st.closed { throw .closed("send on a closed channel") }
                    if st.buffer.count < capacity {
                        st.buffer.push(value)
                        receiver = st.receivers.pop()
                        return false
                    }
                    st.senders.push(waiter)
                    return true
                }
            }
            guard let (waiter, result) = parked else {
                if let receiver { w.runtime.wake(receiver, .woken) }
                return
            }
            if result == .woken { continue }
            giveUp(waiter, w)
            try result.check()
        }
    }

    /// Receives the next value, waiting while the buffer is empty; nil once the channel is
    /// closed and drained.
    /// - Throws: `.timedOut`, `CancellationError`.
    public func receive(timeout: Duration? = nil) throws -> Element? {
        let (_, s) = MNWorker.require("MNChannel.receive")
        let deadline = timeout.map { Deadline.after($0, now: s.now()) }
        while true {
            // Each round on the worker that runs the caller now: a park may resume elsewhere (issue 7).
            let (w, s) = MNWorker.require("MNChannel.receive")
            var got: Element?
            var sender: MNWaiter?
            let parked = w.park(s, .channelReceive, object: id, deadline: deadline) { waiter in
                state.withLock { st -> Bool in
                    if let v = st.buffer.pop() {
                        got = v
                        sender = st.senders.pop()
                        return false
                    }
                    if st.closed { return false }
                    st.receivers.push(waiter)
                    return true
                }
            }
            guard let (waiter, result) = parked else {
                if let sender { w.runtime.wake(sender, .woken) }
                return got
            }
            if result == .woken { continue }
            giveUp(waiter, w)
            try result.check()
        }
    }

    /// A waiter leaves without being served. If it was already dequeued, the wake meant for it
    /// is passed to another waiter of the same side.
    private func giveUp(_ waiter: MNWaiter, _ w: MNWorker) {
        let capacity = self.capacity
        let next: MNWaiter? = state.withLock { st in
            if st.senders.remove(where: { $0 == waiter }) || st.receivers.remove(where: { $0 == waiter }) { return nil }
            if !st.buffer.isEmpty || st.closed, let r = st.receivers.pop() { return r }
            if st.buffer.count < capacity || st.closed { return st.senders.pop() }
            return nil
        }
        if let next { w.runtime.wake(next, .woken) }
    }

    /// Closes the channel: senders throw `UThreadError.closed`; receivers drain, then get nil.
    /// Idempotent. Callable from any M:N thread.
    public func close() {
        let (w, _) = MNWorker.require("MNChannel.close")
        let all: [MNWaiter] = state.withLock { st in
            st.closed = true
            return st.senders.popAll() + st.receivers.popAll()
        }
        for waiter in all { w.runtime.wake(waiter, .woken) }
    }

    /// Values buffered now (a snapshot).
    public var count: Int { state.withLock { $0.buffer.count } }
}

/// Waits for a number of tasks to finish, across workers (Go's sync.WaitGroup).
public final class MNWaitGroup: Sendable {
    struct State {
        var count = 0
        var waiters = MNFIFO<MNWaiter>()
    }
    private let state = KernelLock(State())
    public let id = SyncObjectID.allocate()

    /// A wait group with a count of zero.
    public init() {}

    /// Adds `n` (may be negative) to the counter; at zero every waiter is woken.
    /// - Throws: `.invalidArgument` if the counter would go negative.
    public func add(_ n: Int) throws {
        let all: [MNWaiter] = try state.withLock { st throws(UThreadError) -> [MNWaiter] in
            guard st.count + n >= 0 else { throw .invalidArgument("MNWaitGroup counter would be negative") }
            st.count += n
            return st.count == 0 ? st.waiters.popAll() : []
        }
        guard !all.isEmpty else { return }
        let (w, _) = MNWorker.require("MNWaitGroup.add")
        for waiter in all { w.runtime.wake(waiter, .woken) }
    }

    /// Decrements the count; at zero, wakes every waiter on every worker.
    /// - Throws: `UThreadError.invalidArgument` when the count would go below zero.
    public func done() throws { try add(-1) }

    /// Waits until the counter is zero.
    /// - Throws: `.timedOut`, `CancellationError`.
    public func wait(timeout: Duration? = nil) throws {
        let (_, s) = MNWorker.require("MNWaitGroup.wait")
        let deadline = timeout.map { Deadline.after($0, now: s.now()) }
        while true {
            // Each round on the worker that runs the caller now: a park may resume elsewhere (issue 7).
            let (w, s) = MNWorker.require("MNWaitGroup.wait")
            let parked = w.park(s, .waitGroup, object: id, deadline: deadline) { waiter in
                state.withLock { st -> Bool in
                    if st.count == 0 { return false }
                    st.waiters.push(waiter)
                    return true
                }
            }
            guard let (waiter, result) = parked else { return }
            if result == .woken { continue }
            _ = state.withLock { $0.waiters.remove { $0 == waiter } }
            try result.check()
        }
    }
}
