// Layer 11: select over M:N channels — wait for the first of several channel operations,
// across workers.
//
// Design essay
// ============
//
// `mnSelect` collects cases (receive from an MNChannel, send to one), then, as Go's selectgo:
//   1. locks every channel involved, in id order (each once), so that polling and enqueueing
//      are one atomic step: no peer can slip between "nothing is ready" and "my nodes are in
//      the lists" (with the locks taken one at a time, a sender could park on channel A after
//      the select saw A empty and before the select's node reached A — both would sleep);
//   2. polls the cases in a random order (the worker's random source, as the M:1 select) and
//      performs the first ready one — fair when several are ready;
//   3. with none ready: runs `otherwise` if given; else puts one node per case on the
//      channels' lists, all sharing one `MNSelection`, releases the locks and parks with the
//      timeout as its deadline;
//   4. the first peer (or close) to claim the selection completes its case and wakes the
//      selecting thread; every other node is then stale (a peer's claim fails and it drops
//      the node);
//   5. woken or not, the selecting thread removes its nodes (one channel lock at a time; it
//      holds several only in step 1) and runs the claimed case's handler — or, when it gave
//      up first (timeout, cancellation), the `onTimeout` handler or the error.
// A receive case on a closed, drained channel is ready and yields nil; a send case on a closed
// channel makes the select throw `UThreadError.closed` when chosen (both as in the M:1 select).
//
// Lock order: only a select holds more than one object lock, and it takes them in ascending
// channel id; every other path holds one lock at a time, so no cycle can form.
//
// Rejected designs:
//   * Polling without the locks, then enqueueing channel by channel: the lost-wake-up race of
//     step 1.
//   * Claiming a case under the locks of all the select's channels (no atomic): a peer on one
//     channel would have to take the locks of channels it does not use.
//   * Sharing `channelSelect`'s builder: it takes M:1 `Channel`s, which are not Sendable, and
//     a select mixing both kinds could not lock the M:1 ones.
import CUThreads

/// Builds the cases of one `mnSelect`. Each case has a handler whose value the select returns.
public final class MNSelect<R> {
    fileprivate var clauses: [MNSelectClause<R>] = []
    fileprivate var defaultHandler: (() throws -> R)?
    fileprivate var timeoutHandler: (() throws -> R)?

    fileprivate init() {}

    /// A case that receives from `channel`; `handler` gets the value, or nil when the channel
    /// is closed and drained.
    public func receive<T>(from channel: MNChannel<T>, _ handler: @escaping (T?) throws -> R) {
        clauses.append(MNReceiveClause(channel, handler))
    }

    /// A case that sends `value` to `channel`; `handler` runs once the value was delivered
    /// (taken by a receiver, or buffered).
    public func send<T>(_ value: T, to channel: MNChannel<T>, _ handler: @escaping () throws -> R) {
        clauses.append(MNSendClause(value, channel, handler))
    }

    /// Runs when no case is ready at once (the select never waits).
    public func otherwise(_ handler: @escaping () throws -> R) { defaultHandler = handler }

    /// Runs when the timeout passes first (without it the select throws `UThreadError.timedOut`).
    public func onTimeout(_ handler: @escaping () throws -> R) { timeoutHandler = handler }
}

/// Waits until one of the M:N channel operations built by `build` can proceed, performs it and
/// returns its handler's value. Fair: among ready cases one is picked at random. Works across
/// workers: the channels' peers may run anywhere.
///
/// ```swift
/// let text = try mnSelect(timeout: .seconds(1)) { s in
///     s.receive(from: numbers) { n in "number \(n!)" }
///     s.receive(from: words) { w in "word \(w!)" }
///     s.send(0, to: acks) { "acknowledged" }
///     s.onTimeout { "nothing" }
/// }
/// ```
/// Cost: O(cases) to poll, lock and enqueue; O(waiters) per case to remove its node.
/// - Throws: `UThreadError.timedOut` (timeout without `onTimeout`), `UThreadError.closed` (a
///   chosen send case on a closed channel), `CancellationError`, or a handler's error.
public func mnSelect<R>(timeout: Duration? = nil, _ build: (MNSelect<R>) throws -> Void) throws -> R {
    let select = MNSelect<R>()
    try build(select)
    // After `build`: it may have parked, and the caller may now run on another worker.
    let (_, s) = MNWorker.require("mnSelect")
    let clauses = select.clauses
    let n = clauses.count
    var order = Array(0..<n)
    if n > 1 {
        for i in stride(from: n - 1, to: 0, by: -1) {  // Fisher–Yates with the worker's random source
            order.swapAt(i, Int(s.nextRandom() % UInt64(i + 1)))
        }
    }
    // Each channel once, in id order: the lock order.
    var locks: [MNSelectClause<R>] = []
    for c in clauses.sorted(by: { $0.channelID < $1.channelID }) where locks.last?.channelID != c.channelID {
        locks.append(c)
    }

    var ready: (index: Int, closed: Bool)?
    var useDefault = false
    var wake: MNWaiter?
    var selection: MNSelection?
    let target = MNSelectTarget(clauses)  // labels are made only when a table is rendered
    let result = withExtendedLifetime(target) {
        mnWait(
            "mnSelect", .select, object: 0, target: target, deadline: mnDeadline(timeout),
            register: { waiter in
                for c in locks { c.lockChannel() }
                defer { for c in locks.reversed() { c.unlockChannel() } }
                for i in order {
                    switch clauses[i].poll(&wake) {
                    case .done:
                        ready = (i, false)
                        return false
                    case .closed:
                        ready = (i, true)
                        return false
                    case .wouldBlock: continue
                    }
                }
                if select.defaultHandler != nil {
                    useDefault = true
                    return false
                }
                let sel = MNSelection(waiter: waiter)
                for i in order { clauses[i].arm(sel, caseIndex: i) }
                selection = sel
                return true
            }, withdraw: { _ in nil })
    }
    if let wake { mnWake(CollectionOfOne(wake)) }
    if let ready { return try clauses[ready.index].finish(closed: ready.closed) }
    if useDefault, let d = select.defaultHandler { return try d() }
    guard let result, let selection else { throw UThreadError.invalidArgument("mnSelect: no case and no wait") }
    let outcome = selection.settle(result)
    for c in clauses { c.disarm() }  // one lock at a time; also orders us after a peer's write
    if let outcome { return try clauses[outcome.index].finish(closed: outcome.closed) }
    if result == .timedOut, let t = select.timeoutHandler { return try t() }
    try result.check()
    throw UThreadError.invalidArgument("mnSelect woke without a completed case")
}

/// Describes a parked select in the thread table.
private final class MNSelectTarget<R>: WaitTarget {
    let clauses: [MNSelectClause<R>]
    init(_ clauses: [MNSelectClause<R>]) { self.clauses = clauses }
    func waitDescription(kind: WaitReason.Kind) -> String {
        clauses.isEmpty ? "select (no cases)" : "select: " + clauses.map(\.label).joined(separator: ", ")
    }
}

/// One case of a select (type-erased over the channel's element type).
private class MNSelectClause<R> {
    var channelID: UInt64 { fatalError("abstract") }
    var label: String { fatalError("abstract") }
    func lockChannel() { fatalError("abstract") }
    func unlockChannel() { fatalError("abstract") }
    /// Tries the operation; the caller holds the channel's lock.
    func poll(_ wake: inout MNWaiter?) -> ChannelPoll { fatalError("abstract") }
    /// Enqueues this case's node; the caller holds the channel's lock.
    func arm(_ selection: MNSelection, caseIndex: Int) { fatalError("abstract") }
    /// Removes this case's node, if armed (takes the channel's lock).
    func disarm() { fatalError("abstract") }
    /// Runs the handler. `closed`: the channel was closed.
    func finish(closed: Bool) throws -> R { fatalError("abstract") }
}

private final class MNReceiveClause<T: Sendable, R>: MNSelectClause<R> {
    let channel: MNChannel<T>
    let handler: (T?) throws -> R
    var got: T?
    var node: MNChannelNode<T>?

    init(_ channel: MNChannel<T>, _ handler: @escaping (T?) throws -> R) {
        self.channel = channel
        self.handler = handler
    }

    override var channelID: UInt64 { channel.id }
    override var label: String { "receive from \(channel.label)" }
    override func lockChannel() { channel.state.lock() }
    override func unlockChannel() { channel.state.unlock() }
    override func poll(_ wake: inout MNWaiter?) -> ChannelPoll {
        channel.state.withLockHeld { $0.take(&got, wake: &wake) }
    }

    override func arm(_ selection: MNSelection, caseIndex: Int) {
        let n = MNChannelNode<T>(selection: selection, caseIndex: caseIndex, value: nil)
        node = n
        channel.state.withLockHeld { $0.receivers.push(n) }
    }

    override func disarm() {
        guard let node else { return }
        channel.state.withLock { $0.remove(node, sending: false) }
    }

    override func finish(closed: Bool) throws -> R {
        if closed { return try handler(nil) }
        return try handler(node?.value ?? got)
    }
}

private final class MNSendClause<T: Sendable, R>: MNSelectClause<R> {
    let channel: MNChannel<T>
    let handler: () throws -> R
    let value: T
    var node: MNChannelNode<T>?

    init(_ value: T, _ channel: MNChannel<T>, _ handler: @escaping () throws -> R) {
        self.channel = channel
        self.handler = handler
        self.value = value
    }

    override var channelID: UInt64 { channel.id }
    override var label: String { "send to \(channel.label)" }
    override func lockChannel() { channel.state.lock() }
    override func unlockChannel() { channel.state.unlock() }

    override func poll(_ wake: inout MNWaiter?) -> ChannelPoll {
        let capacity = channel.capacity
        return channel.state.withLockHeld { $0.offer(value, capacity: capacity, wake: &wake) }
    }

    override func arm(_ selection: MNSelection, caseIndex: Int) {
        let n = MNChannelNode<T>(selection: selection, caseIndex: caseIndex, value: value)
        node = n
        channel.state.withLockHeld { $0.senders.push(n) }
    }

    override func disarm() {
        guard let node else { return }
        channel.state.withLock { $0.remove(node, sending: true) }
    }

    override func finish(closed: Bool) throws -> R {
        if closed { throw channel.closedError }
        return try handler()
    }
}
