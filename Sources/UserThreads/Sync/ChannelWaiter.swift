// Layer 8: the waiter records of channels and select, and the one rule for claiming them.
//
// A thread blocked in a channel operation is described by a `ChannelWaiter` node that lives on
// its own stack for the duration of the wait (no allocation). A plain send/receive has one
// node; a select has one node per case, all pointing to one shared `SelectionState`, and the
// thread sits on several channels' lists at once — which is why channels do not use the
// intrusive WaitQueue (one link pair per thread) but these nodes (Go's sudogs).
//
// The thread parks on no WaitQueue; the nodes are the queue entries. A peer that pops a node
// *claims* its selection, completes the operation for the waiter (copies the value into or
// out of the waiter's element) and wakes it. A selection is claimed once: by the first peer
// (or close) that completes one of its cases, or by the waiter itself when it gives up. The
// claim is one word, `SelectionState.word`: pending, abandoned, or the case index and whether
// it was a close. How the word is claimed depends on who can touch the channel (the owner,
// Channel.swift's essay):
//   * bare (one M:1 runtime): no other kernel thread exists, so plain loads and stores do. A
//     waiter that timed out or was cancelled is ready (not blocked) until it runs and unlinks
//     its nodes, so a peer claims a node only while its thread is still blocked and drops the
//     others: the waiter never has to abandon anything.
//   * shared (M:N, under the channel's lock): two channels of one select may be completed at
//     once by peers on two workers, each holding only its own channel's lock, and the waiter
//     may give up meanwhile. A compare-and-swap on the word decides; the loser of a peer's
//     claim drops the node; a waiter whose abandon fails was completed ("the wake wins": the
//     operation happened, the wake in flight is dropped by its token). Node memory is touched
//     only under the channel's lock, and the waiter removes its nodes under that lock before
//     its frame goes, which also orders its read of a received value after the peer's write.
//   * shared, but the peer could be the only one touching the word: a plain send or receive
//     (one node: `SelectionState.single`) whose waiter parked on the peer's own scheduler and
//     is still blocked there in this wait (the scheduler owns its row, its token matches).
//     Every other writer of the word is then excluded: other peers and a close need this
//     channel's lock, which the peer holds, and the waiter abandons only after its park ended,
//     which only this kernel thread can end (a timer or a cancel is applied by the row's owner:
//     Waiter.swift), and it is busy claiming. So a load and a store claim it, and the peer
//     wakes the waiter at once, as bare (`claimShared`'s `.local`). This is the common case of a pair on
//     one worker (docs/BENCHMARKS.md, "The unpinned pair: a claim without CAS …"): one locked
//     instruction fewer per handoff, and no second ownership check at the wake. Any doubt
//     (a select, another scheduler, a waiter already woken by a timeout) takes the CAS.
//
// Rejected: a lock per waiter (the peer would hold a channel lock and a waiter lock, and the
// waiter would take them in the other order when it withdraws); claiming under every
// channel's lock at once (a peer would need the locks of channels it does not use); a heap
// node per wait (M:N's first channel: one allocation per park on the ping-pong path); the
// local claim for a select's nodes (a peer on another worker may complete another of its cases
// under another channel's lock at the same moment: only a CAS orders the two).
import CUThreads
import Synchronization

/// Outcome of a non-waiting channel operation.
@usableFromInline
enum ChannelPoll { case done, closed, wouldBlock }

/// Outcome shared by the nodes of one wait: claimed once (see the essay).
struct SelectionState: ~Copyable {
    static let pending = -1
    static let abandoned = -2
    /// `pending`, `abandoned`, or `caseIndex << 1 | closed`.
    let word = Atomic<Int>(SelectionState.pending)
    /// Shared channels: whom the claimer wakes (set before any node is linked; it lives in the
    /// waiter's frame, so that a bare wait initialises one word, not the waiter's five).
    var remote: UnsafePointer<Waiter>?
    /// One node on one channel (a plain send or receive, not a select): only that channel's
    /// lock holders and the waiter itself ever write `word` (the essay's local claim).
    var single = false

    init() {}

    /// The claimed outcome: which case, and whether a close completed it; nil while pending.
    var outcome: (index: Int, closed: Bool)? {
        let v = word.load(ordering: .acquiring)
        return v < 0 ? nil : (v >> 1, v & 1 == 1)
    }

    /// A shared wait's outcome once its park ended with `result`: the claimed outcome, or nil
    /// when the waiter gave up first (it then removes its nodes and throws `result`).
    func settle(_ result: WakeResult) -> (index: Int, closed: Bool)? {
        if result == .woken, let o = outcome { return o }
        let (exchanged, original) = word.compareExchange(
            expected: SelectionState.pending, desired: SelectionState.abandoned, ordering: .acquiringAndReleasing)
        return exchanged ? nil : (original >> 1, original & 1 == 1)
    }
}

/// One pending channel operation of a parked thread.
struct ChannelWaiter {
    let thread: ControlBlock
    var next: UnsafeMutablePointer<ChannelWaiter>? = nil
    var prev: UnsafeMutablePointer<ChannelWaiter>? = nil
    var linked = false
    /// Send: the waiter's value (initialized `T`, copied by the receiver). Receive: the waiter's
    /// `T?` slot (assigned by the sender).
    let element: UnsafeMutableRawPointer
    let selection: UnsafeMutablePointer<SelectionState>
    let caseIndex: Int

    init(
        thread: ControlBlock, element: UnsafeMutableRawPointer, selection: UnsafeMutablePointer<SelectionState>,
        caseIndex: Int
    ) {
        self.thread = thread
        self.element = element
        self.selection = selection
        self.caseIndex = caseIndex
    }

    /// Claims the node's selection for its case (`closed`: completed by a close). True if this
    /// call won; the caller then completes the operation and wakes the waiter (`wake`).
    @inline(__always)
    func claim(closed: Bool, shared: Bool) -> Bool {
        let word = caseIndex << 1 | (closed ? 1 : 0)
        if shared {
            return selection.pointee.word.compareExchange(
                expected: SelectionState.pending, desired: word, ordering: .acquiringAndReleasing
            ).exchanged
        }
        guard selection.pointee.word.load(ordering: .relaxed) == SelectionState.pending,
            thread.pointee.state == .stateBlocked
        else { return false }
        selection.pointee.word.store(word, ordering: .relaxed)
        return true
    }
}

/// How a node's selection was claimed (`WaiterList.popClaimed(closed:on:)`).
enum ChannelClaim {
    /// By a compare-and-swap (or bare): wake the waiter through its `remote` waiter (shared)
    /// or the scheduler (bare).
    case claimed
    /// By a plain store, its waiter blocked on the claimer's own scheduler (the essay's local
    /// claim): the claimer wakes the row directly (`Scheduler.wakeClaimed`).
    case local
}

extension ChannelWaiter {
    /// Claims a shared node's selection with a plain load and store when the claimer, on `s`
    /// and holding the channel's lock, is the only possible writer of its word (the essay's
    /// local claim); else with a compare-and-swap. Nil when the selection was already claimed.
    @inline(__always)
    func claimShared(closed: Bool, on s: Scheduler) -> ChannelClaim? {
        let word = caseIndex << 1 | (closed ? 1 : 0)
        let sel = selection
        if sel.pointee.single, let w = sel.pointee.remote, w.pointee.scheduler === s,
            s.isBlocked(thread, inWait: w.pointee.token)
        {
            guard sel.pointee.word.load(ordering: .relaxed) == SelectionState.pending else { return nil }
            sel.pointee.word.store(word, ordering: .relaxed)
            return .local
        }
        return sel.pointee.word.compareExchange(
            expected: SelectionState.pending, desired: word, ordering: .acquiringAndReleasing
        ).exchanged ? .claimed : nil
    }
}

/// A FIFO of waiter nodes; O(1) append, pop and remove.
struct WaiterList {
    private(set) var head: UnsafeMutablePointer<ChannelWaiter>?
    private var tail: UnsafeMutablePointer<ChannelWaiter>?

    var isEmpty: Bool { head == nil }

    mutating func append(_ n: UnsafeMutablePointer<ChannelWaiter>) {
        n.pointee.next = nil
        n.pointee.prev = tail
        n.pointee.linked = true
        if let tail { tail.pointee.next = n } else { head = n }
        tail = n
    }

    mutating func remove(_ n: UnsafeMutablePointer<ChannelWaiter>) {
        guard n.pointee.linked else { return }
        if let p = n.pointee.prev { p.pointee.next = n.pointee.next } else { head = n.pointee.next }
        if let x = n.pointee.next { x.pointee.prev = n.pointee.prev } else { tail = n.pointee.prev }
        n.pointee.next = nil
        n.pointee.prev = nil
        n.pointee.linked = false
    }

    /// Linked nodes, stale ones included (for wait descriptions: kept out of the hot path). O(n).
    var count: Int {
        var n = 0
        var node = head
        while let c = node {
            n += 1
            node = c.pointee.next
        }
        return n
    }

    /// Pops the first node whose selection this call claims; drops stale ones. Amortised O(1).
    @inline(__always)
    mutating func popClaimed(closed: Bool, shared: Bool) -> UnsafeMutablePointer<ChannelWaiter>? {
        while let n = head {
            remove(n)
            if n.pointee.claim(closed: closed, shared: shared) { return n }
        }
        return nil
    }

    /// `popClaimed` for a peer on `s` that may claim locally (`ChannelWaiter.claimShared` when
    /// `shared`, the bare claim otherwise). Amortised O(1).
    @inline(__always)
    mutating func popClaimed(closed: Bool, shared: Bool, on s: Scheduler) -> (
        UnsafeMutablePointer<ChannelWaiter>, ChannelClaim
    )? {
        while let n = head {
            remove(n)
            if shared {
                if let how = n.pointee.claimShared(closed: closed, on: s) { return (n, how) }
            } else if n.pointee.claim(closed: closed, shared: false) {
                return (n, .claimed)
            }
        }
        return nil
    }
}
