// Layer 8: select — wait for the first of several channel operations.
//
// Design essay
// ============
//
// `channelSelect` collects cases (receive from a channel, send to a channel), then:
//   1. polls every case once in a random order and runs the first that is ready — random, as
//      in Go, so that when several are ready each is taken equally often over many rounds
//      (a fixed order would starve the later cases). The order comes from the runtime's random
//      source, which `UThreadRuntime.seedRandom` makes reproducible;
//   2. if none is ready and there is a `default` case, runs it;
//   3. otherwise puts one ChannelWaiter node per case on the channels' lists (all sharing one
//      SelectionState) and parks once, with the timeout as its deadline. The first peer to
//      complete a case fires the selection; the other nodes become stale (peers skip them)
//      and the selecting thread unlinks them all when it runs.
//
// A receive case on a closed channel is ready and yields nil (as `receive()` does). A send
// case on a closed channel makes the select throw `UThreadError.closed` when chosen.
//
// Rejected designs:
//   * Locking all channels in address order (Go): there are no locks under M:1; the per-object
//     critical sections of the M:N issue will need that order.
//   * A select with a fixed priority order: unfair; a `default` case covers "try, else".
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
/// handler's value. Fair: among ready cases one is picked at random.
///
/// ```swift
/// let text = try channelSelect(timeout: .seconds(1)) { s in
///     s.receive(from: numbers) { n in "number \(n!)" }
///     s.receive(from: words) { w in "word \(w!)" }
///     s.onTimeout { "nothing" }
/// }
/// ```
/// - Throws: `UThreadError.timedOut` (timeout without `onTimeout`), `UThreadError.closed` (a
///   chosen send case on a closed channel), `CancellationError`, or a handler's error.
public func channelSelect<R>(
    timeout: Duration? = nil, deadline: ContinuousClock.Instant? = nil,
    _ build: (ChannelSelect<R>) throws -> Void
) throws -> R {
    let s = Scheduler.require("channelSelect")
    let select = ChannelSelect<R>()
    try build(select)
    let clauses = select.clauses
    let n = clauses.count
    // Fisher–Yates over the case indices with the runtime's random source.
    var order = Array(0..<n)
    if n > 1 {
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(s.nextRandom() % UInt64(i + 1))
            order.swapAt(i, j)
        }
    }
    for i in order {
        switch clauses[i].poll(s) {
        case .done: return try clauses[i].finish(ok: true)
        case .closed: return try clauses[i].finish(ok: false)
        case .wouldBlock: continue
        }
    }
    if let d = select.defaultHandler { return try d() }
    let d = (timeout == nil && deadline == nil) ? nil : syncDeadline(timeout: timeout, deadline: deadline, now: s.now())
    let state = UnsafeMutablePointer<SelectionState>.allocate(capacity: 1)
    state.initialize(to: SelectionState())
    let nodes = UnsafeMutablePointer<ChannelWaiter>.allocate(capacity: Swift.max(n, 1))
    defer {
        nodes.deinitialize(count: n)
        nodes.deallocate()
        state.deallocate()
    }
    for i in 0..<n {
        (nodes + i).initialize(
            to: ChannelWaiter(thread: s.current, element: clauses[i].element, selection: state, caseIndex: i))
    }
    for i in order { clauses[i].arm(nodes + i) }
    let target = SelectTarget(clauses.map { $0.label })
    let r = s.park(.select, object: 0, target: target, deadline: d)
    for i in 0..<n { clauses[i].disarm(nodes + i) }
    if state.pointee.fired { return try clauses[state.pointee.index].finish(ok: state.pointee.ok) }
    if r == .timedOut, let t = select.timeoutHandler { return try t() }
    try r.check()
    throw UThreadError.invalidArgument("channelSelect woke without a completed case")
}

/// Describes a parked select in the thread table.
private final class SelectTarget: WaitTarget {
    let labels: [String]
    init(_ labels: [String]) { self.labels = labels }
    func waitDescription(kind: WaitReason.Kind) -> String {
        labels.isEmpty ? "select (no cases)" : "select: " + labels.joined(separator: ", ")
    }
}

/// One case of a select (type-erased over the channel's element type).
private class SelectClause<R> {
    /// The node's element: the value to send, or the slot to receive into.
    var element: UnsafeMutableRawPointer { fatalError("abstract") }
    var label: String { fatalError("abstract") }
    func poll(_ s: Scheduler) -> ChannelPoll { fatalError("abstract") }
    func arm(_ node: UnsafeMutablePointer<ChannelWaiter>) { fatalError("abstract") }
    func disarm(_ node: UnsafeMutablePointer<ChannelWaiter>) { fatalError("abstract") }
    /// Runs the handler. `ok` false: the channel was closed.
    func finish(ok: Bool) throws -> R { fatalError("abstract") }
}

private final class ReceiveClause<T, R>: SelectClause<R> {
    let core: ChannelCore
    let handler: (T?) throws -> R
    let slot: UnsafeMutablePointer<T>
    /// Whether `slot` holds a value (received by poll, or by a peer while parked).
    var filled = false

    init(_ channel: Channel<T>, _ handler: @escaping (T?) throws -> R) {
        self.core = channel.core
        self.handler = handler
        slot = .allocate(capacity: 1)
    }

    deinit {
        if filled { slot.deinitialize(count: 1) }
        slot.deallocate()
    }

    override var element: UnsafeMutableRawPointer { UnsafeMutableRawPointer(slot) }
    override var label: String { core.waitDescription(kind: .channelReceive) }

    override func poll(_ s: Scheduler) -> ChannelPoll {
        let r = core.take(into: UnsafeMutableRawPointer(slot), s)
        if r == .done { filled = true }
        return r
    }

    override func arm(_ node: UnsafeMutablePointer<ChannelWaiter>) { core.receivers.append(node) }
    override func disarm(_ node: UnsafeMutablePointer<ChannelWaiter>) { core.receivers.remove(node) }

    override func finish(ok: Bool) throws -> R {
        guard ok else { return try handler(nil) }
        filled = false
        return try handler(slot.move())
    }
}

private final class SendClause<T, R>: SelectClause<R> {
    let core: ChannelCore
    let handler: () throws -> R
    let value: UnsafeMutablePointer<T>

    init(_ value: T, _ channel: Channel<T>, _ handler: @escaping () throws -> R) {
        self.core = channel.core
        self.handler = handler
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    override var element: UnsafeMutableRawPointer { UnsafeMutableRawPointer(value) }
    override var label: String { core.waitDescription(kind: .channelSend) }

    override func poll(_ s: Scheduler) -> ChannelPoll { core.offer(UnsafeMutableRawPointer(value), s) }

    override func arm(_ node: UnsafeMutablePointer<ChannelWaiter>) { core.senders.append(node) }
    override func disarm(_ node: UnsafeMutablePointer<ChannelWaiter>) { core.senders.remove(node) }

    override func finish(ok: Bool) throws -> R {
        guard ok else { throw core.closedError }
        return try handler()
    }
}
