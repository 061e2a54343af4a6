// Layer 11: the waiter records of M:N channels and select — one-shot claims across workers.
//
// A thread parked in an M:N channel operation is described by one `MNChannelNode` per
// operation, sitting in the channel's list of senders or receivers — Go's sudogs. A plain send
// or receive has one node, which is its own `MNSelection` (one allocation per wait); a select
// has one per case, all sharing one `MNSelection`. The nodes of a select sit in several
// channels' lists, each behind its own lock, so two channels may try to complete the same
// waiter at once; and the waiter itself may give up (timeout, cancellation) while they do. The
// selection's atomic `state` decides: whoever moves it from `pending` first (compare-and-swap)
// owns the outcome.
//   * A peer (or a close) holding a channel's lock claims the selection for its case, moves
//     the value into or out of the node, releases the lock, then wakes the waiter. A failed
//     claim means the node is stale: the peer drops it and looks at the next one.
//   * The waiter, when its park ends by timeout or cancellation, tries to abandon the
//     selection. If that fails, a peer claimed it first: the operation happened, so the
//     waiter reports success (the wake in flight is dropped by its token). Before it reads a
//     received value it takes the channel's lock (when it removes its nodes), which orders
//     it after the peer's write.
// A claim records the case and whether it was a close; nothing else is shared without a lock.
//
// Rejected: a lock per waiter (the peer would hold a channel lock and a waiter lock, and the
// waiter would take them in the other order when it withdraws); claiming under every
// channel's lock at once (a peer would need the locks of channels it does not use).
import Synchronization

/// The outcome of one M:N channel wait (a plain operation or a whole select), claimed once.
/// Not final: the node of a plain send or receive is its own selection (one allocation per wait).
@usableFromInline
class MNSelection: @unchecked Sendable {
    /// Who to wake once claimed.
    @usableFromInline let waiter: MNWaiter
    /// `pending`, `abandoned`, or `caseIndex << 1 | closed`.
    private let state = Atomic<Int>(MNSelection.pending)
    private static let pending = -1
    private static let abandoned = -2

    @usableFromInline init(waiter: MNWaiter) { self.waiter = waiter }

    /// Claims the selection for case `index` (`closed`: completed by a close). True if this
    /// call won; the caller then completes the operation and wakes `waiter`.
    @usableFromInline
    func claim(_ index: Int, closed: Bool) -> Bool {
        state.compareExchange(
            expected: MNSelection.pending, desired: index << 1 | (closed ? 1 : 0),
            ordering: .acquiringAndReleasing
        ).exchanged
    }

    /// The waiter gives up. Returns nil if it did; else the claimed outcome (the operation
    /// completed, and a wake is in flight).
    func abandon() -> (index: Int, closed: Bool)? {
        let (exchanged, original) = state.compareExchange(
            expected: MNSelection.pending, desired: MNSelection.abandoned,
            ordering: .acquiringAndReleasing)
        if exchanged { return nil }
        return (original >> 1, original & 1 == 1)
    }

    /// The claimed outcome, once woken (nil while pending or after abandoning).
    var outcome: (index: Int, closed: Bool)? {
        let v = state.load(ordering: .acquiring)
        return v < 0 ? nil : (v >> 1, v & 1 == 1)
    }

    /// Settles a finished park: the claimed outcome, or nil when the waiter gave up (its nodes
    /// must then be removed and `result` thrown).
    @usableFromInline
    func settle(_ result: WakeResult) -> (index: Int, closed: Bool)? {
        if result == .woken, let o = outcome { return o }
        return abandon()
    }
}

/// One pending channel operation of a parked M:N thread.
@usableFromInline
final class MNChannelNode<Element>: MNSelection, @unchecked Sendable {
    /// A select's shared selection; nil for a plain operation, whose node is its own.
    @usableFromInline let shared: MNSelection?
    @usableFromInline let caseIndex: Int
    /// Send: the value offered. Receive: the value delivered by the peer. Written and read
    /// under the channel's lock, or by the waiter after it has been woken or has taken the lock.
    @exclusivity(unchecked) @usableFromInline var value: Element?

    /// The selection to claim: the select's, or the node itself.
    @inlinable var selection: MNSelection { shared ?? self }

    /// The node of a plain send (`value`: the value offered) or receive (`value`: nil).
    @inlinable init(waiter: MNWaiter, value: Element?) {
        self.shared = nil
        self.caseIndex = 0
        self.value = value
        super.init(waiter: waiter)
    }

    /// The node of case `caseIndex` of a select.
    @inlinable init(selection: MNSelection, caseIndex: Int, value: Element?) {
        self.shared = selection
        self.caseIndex = caseIndex
        self.value = value
        super.init(waiter: selection.waiter)
    }
}

extension MNFIFO {
    /// Pops nodes until one whose selection this call claims; drops stale ones. Amortised O(1).
    @inlinable
    mutating func popClaimed<E>(closed: Bool) -> MNChannelNode<E>? where Element == MNChannelNode<E> {
        while let n = pop() {
            if n.selection.claim(n.caseIndex, closed: closed) { return n }
        }
        return nil
    }
}
