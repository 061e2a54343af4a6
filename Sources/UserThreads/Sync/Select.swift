// Layer 8: select — wait for the first of several channel operations.
//
// Design essay
// ============
//
// `channelSelect` collects cases (receive from a channel, send to a channel), then:
//   1. polls every case once in a random order and runs the first that is ready — random, as
//      in Go, so that when several are ready each is taken equally often over many rounds
//      (a fixed order would starve the later cases). The order comes from the random source
//      of the worker the thread runs on, which `UThreadRuntime.seedRandom` makes reproducible
//      (Scheduler/RandomSource.swift: what that means with several workers);
//   2. if none is ready and there is a `default` case, runs it;
//   3. otherwise puts one ChannelWaiter node per case on the channels' lists (all sharing one
//      SelectionState) and parks once, with the timeout as its deadline. The first peer to
//      claim the selection completes its case (ChannelWaiter.swift: the claim); the other
//      nodes become stale (peers drop them) and the selecting thread unlinks them all when it
//      runs.
//
// The rules of each case are the channel's own (`offer`, `take`); only the locking differs.
// Bare channels (one M:1 runtime) need none. Shared channels (M:N) are all locked at once, in
// id order, for steps 1 and 3, so that polling and enqueueing are one atomic step (as in Go:
// a peer cannot slip in between and find neither the value nor the waiter); that is the only
// place that holds two channel locks. Removing the nodes afterwards takes one lock at a time.
//
// A receive case on a closed channel is ready and yields nil (as `receive()` does). A send
// case on a closed channel makes the select throw `UThreadError.closed` when chosen.
//
// Rejected designs:
//   * A select with a fixed priority order: unfair; a `default` case covers "try, else".
//   * Claiming under every channel's lock (a peer would need the locks of channels it does
//     not use); global lock order by address (ids are stable, unique and printable).
import CUThreads

/// Builds the cases of one `channelSelect`. Each case has a handler whose value the select
/// returns.
public final class ChannelSelect<R> {
    fileprivate var clauses: [SelectClause<R>] = []
    fileprivate var defaultHandler: (() throws -> R)?
    fileprivate var timeoutHandler: (() throws -> R)?

    fileprivate init() {}

    /// A case that receives from `channel`; `handler` gets the value, or nil if the channel is
    /// closed and drained.
    public func receive<T>(from channel: Channel<T>, _ handler: @escaping (T?) throws -> R) {
        clauses.append(ReceiveClause(channel, handler))
    }

    /// A case that sends `value` to `channel`; `handler` runs once the value was delivered.
    public func send<T>(_ value: T, to channel: Channel<T>, _ handler: @escaping () throws -> R) {
        clauses.append(SendClause(value, channel, handler))
    }

    /// Runs when no case is ready at once (the select never waits).
    public func otherwise(_ handler: @escaping () throws -> R) { defaultHandler = handler }

    /// Runs when the select's timeout or deadline passes first (without it the select throws
    /// `UThreadError.timedOut`).
    public func onTimeout(_ handler: @escaping () throws -> R) { timeoutHandler = handler }
}

/// Waits until one of the cases built by `build` can proceed, performs it and returns its
/// handler's value. Fair: among ready cases one is picked at random. Works inside `run { }` and
/// between threads on any worker of `run(workers:)`.
///
/// ```swift
/// let text = try channelSelect(timeout: .seconds(1)) { s in
///     s.receive(from: numbers) { n in "number \(n!)" }
///     s.receive(from: words) { w in "word \(w!)" }
///     s.send(0, to: acks) { "acknowledged" }
///     s.onTimeout { "nothing" }
/// }
/// ```
/// Cost: O(cases) to poll and enqueue; O(waiters) per case to remove its node.
/// - Throws: `UThreadError.timedOut` (timeout without `onTimeout`), `UThreadError.closed` (a
///   chosen send case on a closed channel), `UThreadError.foreignRuntime` (a channel of
///   another runtime), `.invalidArgument` (called outside a user thread), `CancellationError`,
///   or a handler's error.
public func channelSelect<R>(
    timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil,
    _ build: (ChannelSelect<R>) throws -> Void
) throws -> R {
    let select = ChannelSelect<R>()
    try build(select)
    // After `build`: it may have parked, and an M:N caller may now run on another worker.
    let s = try Scheduler.requireOrThrow("channelSelect")
    let clauses = select.clauses
    let n = clauses.count
    var shared = false
    for c in clauses where try c.core.isShared(s) { shared = true }
    // Fisher–Yates over the case indices with the scheduler's random source.
    var order = Array(0..<n)
    if n > 1 {
        for i in stride(from: n - 1, to: 0, by: -1) {
            order.swapAt(i, Int(s.nextRandom() % UInt64(i + 1)))
        }
    }
    if shared { return try sharedSelect(select, order, timeout: timeout, deadline: deadline, s) }
    var later: Waiter?
    for i in order {
        switch clauses[i].poll(s, shared: false, &later) {
        case .done: return try clauses[i].finish(ok: true)
        case .closed: return try clauses[i].finish(ok: false)
        case .wouldBlock: continue
        }
    }
    if let d = select.defaultHandler { return try d() }
    let d = syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
    return try withSelectNodes(clauses, s) { state, nodes in
        for i in order { clauses[i].arm(nodes + i) }
        let r = s.park(.select, object: 0, target: SelectTarget(clauses), deadline: d)
        for i in 0..<n { clauses[i].disarm(nodes + i, shared: false) }
        if let o = state.pointee.outcome { return try clauses[o.index].finish(ok: !o.closed) }
        if r == .timedOut, let t = select.timeoutHandler { return try t() }
        try r.check()
        throw UThreadError.invalidArgument("channelSelect woke without a completed case")
    }
}

/// `channelSelect` over shared channels: steps 1 and 3 of the essay under all the channels'
/// locks, parked with `parkWaiter` (Waiter.swift).
private func sharedSelect<R>(
    _ select: ChannelSelect<R>, _ order: [Int], timeout: Duration?, deadline: ContinuousClock.Instant?,
    _ s: Scheduler
) throws -> R {
    let clauses = select.clauses
    // Each channel once, in id order: the lock order.
    var locks: [ChannelCore] = []
    for c in clauses.map(\.core).sorted(by: { $0.id < $1.id }) where locks.last !== c { locks.append(c) }
    let d = syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
    let target = SelectTarget(clauses)
    return try withSelectNodes(clauses, s) { state, nodes in
        try withUnsafeTemporaryAllocation(of: Waiter.self, capacity: 1) { slot in
            var ready: (index: Int, ok: Bool)?
            var useDefault = false
            var later: Waiter?
            let parked = s.parkWaiter(.select, object: 0, target: target, deadline: d) { waiter in
                for c in locks { c.sync.lock() }
                defer { for c in locks.reversed() { c.sync.unlock() } }
                for i in order {
                    switch clauses[i].poll(s, shared: true, &later) {
                    case .done: ready = (i, true)
                    case .closed: ready = (i, false)
                    case .wouldBlock: continue
                    }
                    return false
                }
                if select.defaultHandler != nil {
                    useDefault = true
                    return false
                }
                slot.baseAddress!.initialize(to: waiter)  // trivial: never deinitialised
                state.pointee.remote = UnsafePointer(slot.baseAddress!)
                for i in order { clauses[i].arm(nodes + i) }
                return true
            }
            // From here on `s` may be another worker's scheduler: it is not used again.
            if let later { syncWake(later) }
            if let ready { return try clauses[ready.index].finish(ok: ready.ok) }
            if useDefault, let h = select.defaultHandler { return try h() }
            guard let r = parked?.1 else { throw UThreadError.invalidArgument("channelSelect: no case and no wait") }
            let outcome = r == .woken ? state.pointee.outcome ?? state.pointee.settle(r) : state.pointee.settle(r)
            // One lock at a time; also orders us after a peer's write into a receive slot.
            for i in 0..<clauses.count { clauses[i].disarm(nodes + i, shared: true) }
            if let o = outcome { return try clauses[o.index].finish(ok: !o.closed) }
            if r == .timedOut, let t = select.timeoutHandler { return try t() }
            try r.check()
            throw UThreadError.invalidArgument("channelSelect woke without a completed case")
        }
    }
}

/// Runs `body` with one SelectionState and one node per clause (heap: a select's case count
/// is not known statically).
private func withSelectNodes<R>(
    _ clauses: [SelectClause<R>], _ s: Scheduler,
    _ body: (UnsafeMutablePointer<SelectionState>, UnsafeMutablePointer<ChannelWaiter>) throws -> R
) rethrows -> R {
    let n = clauses.count
    let state = UnsafeMutablePointer<SelectionState>.allocate(capacity: 1)
    state.initialize(to: SelectionState())
    let nodes = UnsafeMutablePointer<ChannelWaiter>.allocate(capacity: Swift.max(n, 1))
    defer {
        nodes.deinitialize(count: n)
        nodes.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }
    for i in 0..<n {
        (nodes + i).initialize(
            to: ChannelWaiter(thread: s.current, element: clauses[i].element, selection: state, caseIndex: i))
    }
    return try body(state, nodes)
}

/// Describes a parked select in the thread table (labels are made only when a table is
/// rendered).
private final class SelectTarget<R>: WaitTarget {
    let clauses: [SelectClause<R>]
    init(_ clauses: [SelectClause<R>]) { self.clauses = clauses }
    func waitDescription(kind: WaitReason.Kind) -> String {
        clauses.isEmpty ? "select (no cases)" : "select: " + clauses.map(\.label).joined(separator: ", ")
    }
}

/// One case of a select (type-erased over the channel's element type).
private class SelectClause<R> {
    let core: ChannelCore
    init(core: ChannelCore) { self.core = core }
    /// The node's element: the value to send, or the slot to receive into.
    var element: UnsafeMutableRawPointer { fatalError("abstract") }
    var label: String { fatalError("abstract") }
    /// Tries the operation (shared: the caller holds the channel's lock).
    func poll(_ s: Scheduler, shared: Bool, _ later: inout Waiter?) -> ChannelPoll { fatalError("abstract") }
    /// Links this case's node (shared: the caller holds the channel's lock).
    func arm(_ node: UnsafeMutablePointer<ChannelWaiter>) { fatalError("abstract") }
    /// Unlinks this case's node if still linked (shared: takes the channel's lock).
    func disarm(_ node: UnsafeMutablePointer<ChannelWaiter>, shared: Bool) { fatalError("abstract") }
    /// Runs the handler. `ok` false: the channel was closed.
    func finish(ok: Bool) throws -> R { fatalError("abstract") }
}

private final class ReceiveClause<T, R>: SelectClause<R> {
    let handler: (T?) throws -> R
    let slot: UnsafeMutablePointer<T>

    init(_ channel: Channel<T>, _ handler: @escaping (T?) throws -> R) {
        self.handler = handler
        slot = .allocate(capacity: 1)
        super.init(core: channel.core)
    }

    deinit { slot.deallocate() }

    override var element: UnsafeMutableRawPointer { UnsafeMutableRawPointer(slot) }
    override var label: String { core.waitDescription(kind: .channelReceive) }

    override func poll(_ s: Scheduler, shared: Bool, _ later: inout Waiter?) -> ChannelPoll {
        core.take(into: UnsafeMutableRawPointer(slot), s, shared: shared, &later)
    }

    override func arm(_ node: UnsafeMutablePointer<ChannelWaiter>) { core.receivers.append(node) }
    override func disarm(_ node: UnsafeMutablePointer<ChannelWaiter>, shared: Bool) {
        if shared { core.sync.lock() }
        core.receivers.remove(node)
        if shared { core.sync.unlock() }
    }

    /// The slot holds a value exactly when this case completed with `ok`: it is moved out here.
    override func finish(ok: Bool) throws -> R {
        guard ok else { return try handler(nil) }
        return try handler(slot.move())
    }
}

private final class SendClause<T, R>: SelectClause<R> {
    let handler: () throws -> R
    let value: UnsafeMutablePointer<T>

    init(_ value: T, _ channel: Channel<T>, _ handler: @escaping () throws -> R) {
        self.handler = handler
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        super.init(core: channel.core)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    override var element: UnsafeMutableRawPointer { UnsafeMutableRawPointer(value) }
    override var label: String { core.waitDescription(kind: .channelSend) }

    override func poll(_ s: Scheduler, shared: Bool, _ later: inout Waiter?) -> ChannelPoll {
        core.offer(UnsafeMutableRawPointer(value), s, shared: shared, &later)
    }

    override func arm(_ node: UnsafeMutablePointer<ChannelWaiter>) { core.senders.append(node) }
    override func disarm(_ node: UnsafeMutablePointer<ChannelWaiter>, shared: Bool) {
        if shared { core.sync.lock() }
        core.senders.remove(node)
        if shared { core.sync.unlock() }
    }

    override func finish(ok: Bool) throws -> R {
        guard ok else { throw core.closedError }
        return try handler()
    }
}
