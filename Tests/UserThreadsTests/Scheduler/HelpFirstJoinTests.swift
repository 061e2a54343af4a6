import Testing

@testable import UserThreads

/// `join()` of a thread that has not started runs it as a call from the join, on its own stack
/// (Scheduler.swift, "Help-first join"): the child still sees itself, parks, is cancelled and
/// ordered as when switched to; where that cannot hold, the normal path runs it.
@Suite(.timeLimit(.minutes(1))) struct HelpFirstJoinTests {
    /// What a thread sees of itself and of its joiner, read inside it.
    struct Seen: Sendable, Equatable {
        var id: ThreadID
        var name: String
        var cancelled: Bool
        var local: Int
        var stackBase: UInt64
        var stackSize: Int
        /// The joiner has no saved context: it hosts this thread (mid-call), not switched out.
        var joinerMidCall: Bool
        var joinerWaitKind: WaitReason.Kind?
        var joinerWaitObject: UInt64?
        var joinerStackBase: UInt64
    }

    static func seen(_ local: ThreadLocal<Int>, joiner: ThreadID) -> Seen {
        let me = UThread.current
        let rows = UThreadRuntime.threadTable().threads
        let mine = rows.first { $0.id == me.id }!
        let joiner = rows.first { $0.id == joiner }!
        return Seen(
            id: me.id, name: me.name, cancelled: UThread.isCancelled, local: local.value,
            stackBase: mine.stack.base, stackSize: mine.stack.size, joinerMidCall: joiner.savedStackPointer == 0,
            joinerWaitKind: joiner.waitReason?.kind,
            joinerWaitObject: joiner.waitReason?.object, joinerStackBase: joiner.stack.base)
    }

    /// The child is the current thread with its own id, name, thread-local values and
    /// cancellation; the joiner shows as waiting to join it. At one worker it was hosted (the
    /// joiner is mid-call, with no saved context); at two, the normal path.
    @Test(arguments: [1, 2])
    func aJoinedUnstartedChildSeesItself(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            UThread.pin()
            let local = ThreadLocal<Int>(default: 0)
            local.value = 5
            let main = UThread.current.id
            let child = UThread.local(name: "child") { () -> Seen in
                let seen = Self.seen(local, joiner: main)
                local.value = 9
                return seen
            }
            let cancelled = UThread.local(name: "cancelled") { Self.seen(local, joiner: main) }
            cancelled.cancel()  // before it started: it starts cancelled
            let seen = try child.join()
            #expect(seen.id == child.id && seen.name == "child" && !seen.cancelled && seen.local == 0)
            #expect(seen.joinerWaitKind == .join && seen.joinerWaitObject == child.id.rawValue)
            #expect(seen.joinerMidCall == (workers == 1) && seen.stackBase != seen.joinerStackBase)
            let other = try cancelled.join()
            #expect(other.id == cancelled.id && other.cancelled && other.local == 0)
            #expect(local.value == 5)  // the joiner's own value, untouched
            #expect(child.isFinished && !UThread.isCancelled)
        }
    }

    /// A hosted child that parks (a sleep, then a semaphore another thread signals) parks its
    /// joiner too, which shows as waiting to join it; both go on when the child is woken.
    @Test func aHostedChildParks() throws {
        try UThreadRuntime.run { () throws in
            let main = UThread.current.id
            let go = USemaphore()
            let child = UThread { () -> Int in  // first in the queue: hosted
                try UThread.sleep(for: .milliseconds(1))
                try go.wait()
                return 42
            }
            let watcher = UThread { () -> [UInt64] in  // runs while the child sleeps
                let joinerWait = UThreadRuntime.threadTable().threads.first { $0.id == main }?.waitReason
                go.signal()
                return [UInt64(joinerWait?.kind.rawValue ?? 0), joinerWait?.object ?? 0]
            }
            #expect(try child.join() == 42)
            #expect(try watcher.join() == [UInt64(WaitReason.Kind.join.rawValue), child.id.rawValue])
        }
    }

    /// A joiner cancelled while its hosted child is parked cannot unwind under the child's
    /// frames: its join throws CancellationError once the child's body has returned, and the
    /// child's result stays for a later join.
    @Test func aJoinerCancelledWhileItsHostedChildParksThrowsCancellation() throws {
        try UThreadRuntime.run {
            let joiner = UThread.current
            let go = USemaphore()
            let child = UThread { () -> Int in  // first in the queue: hosted
                try go.wait()
                return 7
            }
            let canceller = UThread {  // runs once the child parks
                joiner.cancel()
                go.signal()
            }
            #expect(throws: CancellationError.self) { try child.join() }
            #expect(child.isFinished)
            try canceller.join()
        }
    }

    /// A hosted child runs on its own stack, of the size it asked for: a default one, a large
    /// one, and one hosted by a thread that is itself hosted.
    @Test func aHostedChildRunsOnItsOwnStack() throws {
        try UThreadRuntime.run {
            let main = UThread.current.id
            let local = ThreadLocal<Int>(default: 0)
            let plain = try UThread { Self.seen(local, joiner: main) }.join()
            #expect(plain.joinerMidCall && plain.stackBase != plain.joinerStackBase)
            let asked = try UThread(stackSize: 2 << 20) { Self.seen(local, joiner: main) }.join()
            #expect(asked.joinerMidCall && asked.stackSize == 2 << 20 && asked.stackBase != asked.joinerStackBase)
            let outer = UThread { () -> Seen in
                let me = UThread.current.id
                return try UThread { Self.seen(local, joiner: me) }.join()
            }
            let nested = try outer.join()
            #expect(nested.joinerMidCall && nested.stackBase != nested.joinerStackBase)
        }
    }

    /// Under FIFO a hosted child runs when the normal path would have run it (first in the
    /// queue), and when it ends with other threads ready the joiner queues behind them, as the
    /// exit's wake would have put it.
    @Test func fifoOrderIsKept() throws {
        var order: [String] = []
        try UThreadRuntime.run {
            let a = UThread.local { order.append("a") }
            let b = UThread.local { order.append("b") }
            try a.join()
            order.append("main")
            try b.join()
        }
        #expect(order == ["a", "b", "main"])
    }

    /// Under the priority policy the join of an unstarted low-priority child does not run it
    /// ahead of a higher-priority ready thread.
    @Test func thePriorityPolicysOrderIsKept() throws {
        var order: [String] = []
        try UThreadRuntime.run(policy: { try PriorityPolicy() }) {
            let low = UThread.local(priority: 1) { order.append("low") }
            let high = UThread.local(priority: 9) { order.append("high") }
            try low.join()
            try high.join()
        }
        #expect(order == ["high", "low"])
    }

    /// A hosted child parked for good is part of a deadlock: the report is written, the child
    /// unwinds on the joiner's stack, and the joiner's join throws the deadlock error.
    @Test func aDeadlockInsideAHostedChildUnwindsBoth() throws {
        var childSaw = ""
        #expect(throws: UThreadError.self) {
            try UThreadRuntime.run {
                let never = USemaphore()
                let child = UThread.local {
                    do { try never.wait() } catch { childSaw = "\(error)" }
                }
                try child.join()
            }
        }
        #expect(childSaw.contains("deadlock"))
    }
}
