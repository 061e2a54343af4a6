// Layer 8: the waiter records of channels and select.
//
// A thread blocked in a channel operation is described by a `ChannelWaiter` node that lives on
// its own stack for the duration of the wait (no allocation). A plain send/receive has one
// node; a select has one node per case, all pointing to one shared `SelectionState`, and the
// thread sits on several channels' lists at once — which is why channels do not use the
// intrusive WaitQueue (one link pair per thread) but these nodes (Go's sudogs).
//
// The thread parks on no WaitQueue; the nodes are the queue entries. A peer that pops a node
// completes the operation *for* the waiter (copies the value into or out of the waiter's
// element), marks the selection fired and wakes it. A node is valid only while its selection
// has not fired and its thread is still blocked: a waiter that timed out or was cancelled is
// ready (not blocked) until it runs and unlinks its nodes, so peers skip and drop such nodes.
import CUThreads

/// Outcome of a non-waiting channel operation.
@usableFromInline
enum ChannelPoll { case done, closed, wouldBlock }

/// Outcome shared by the nodes of one wait.
struct SelectionState {
    /// Some peer completed one of the operations (or the channel closed).
    var fired = false
    /// Which case fired.
    var index = -1
    /// True when the value was transferred; false when the channel was closed.
    var ok = false
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

    /// Pops the first node that can still be completed; drops stale ones. Amortised O(1).
    mutating func popReady() -> UnsafeMutablePointer<ChannelWaiter>? {
        while let n = head {
            remove(n)
            if !n.pointee.selection.pointee.fired && n.pointee.thread.pointee.state == .stateBlocked { return n }
        }
        return nil
    }

    /// Whether a node that can be completed is queued (drops stale ones at the front).
    mutating func hasReady() -> Bool {
        while let n = head {
            if !n.pointee.selection.pointee.fired && n.pointee.thread.pointee.state == .stateBlocked { return true }
            remove(n)
        }
        return false
    }

    /// The threads of the valid nodes, front first. O(n).
    func threadIDs() -> [ThreadID] {
        var ids: [ThreadID] = []
        var n = head
        while let c = n {
            if !c.pointee.selection.pointee.fired { ids.append(c.pointee.thread.threadID) }
            n = c.pointee.next
        }
        return ids
    }
}

extension Scheduler {
    /// Completes a waiter node: marks its selection fired with `ok` and wakes its thread.
    @inline(__always)
    func fire(_ n: UnsafeMutablePointer<ChannelWaiter>, ok: Bool) {
        let sel = n.pointee.selection
        sel.pointee.fired = true
        sel.pointee.index = n.pointee.caseIndex
        sel.pointee.ok = ok
        wake(n.pointee.thread, ok ? .woken : .closed)
    }

    /// A number from the runtime's random source (SplitMix64). Used for select fairness.
    func nextRandom() -> UInt64 {
        randomState &+= 0x9E37_79B9_7F4A_7C15
        var z = randomState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
