import Testing

@testable import UserThreads

/// `join()` of a thread that has not started runs it as a call from the join, on its own stack
/// (Scheduler.swift, "Help-first join"): the child still sees itself, parks, is cancelled and
/// ordered as when switched to, and its joiner waits as the normal join's does (cancellable,
/// in the table with a saved stack, in deadlock reports); where that cannot hold, the normal
/// path runs it.
@Suite(.timeLimit(.minutes(1))) struct HelpFirstJoinTests {
    /// The help-first join is off under ThreadSanitizer (it tracks one stack per fiber; the
    /// Scheduler essay): there every join takes the normal path, and these tests check that.
    static let hostsUnderThisBuild = !Sanitizers.thread

    /// What a thread sees of itself and of its joiner, read inside it.
    struct Seen: Sendable, Equatable {
        var id: ThreadID
        var name: String
        var cancelled: Bool
        var local: Int
        var stackBase: UInt64
        var stackSize: Int
        /// The help-first join runs it (its joiner hosts it).
        var hosted: Bool
        /// The joiner has a saved context (a switch frame), hosting or not.
        var joinerSaved: Bool
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
            stackBase: mine.stack.base, stackSize: mine.stack.size,
            hosted: Scheduler.active!.runningThreadIsHosted, joinerSaved: joiner.savedStackPointer != 0,
            joinerWaitKind: joiner.waitReason?.kind,
            joinerWaitObject: joiner.waitReason?.object, joinerStackBase: joiner.stack.base)
    }

    /// The child is the current thread with its own id, name, thread-local values and
    /// cancellation; the joiner shows as waiting to join it, with a saved context. At one worker
    /// it was hosted; at two, the normal path.
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
            #expect(
                seen.hosted == (workers == 1 && Self.hostsUnderThisBuild) && seen.joinerSaved
                    && seen.stackBase != seen.joinerStackBase)
            let other = try cancelled.join()
            #expect(other.id == cancelled.id && other.cancelled && other.local == 0)
            #expect(local.value == 5)  // the joiner's own value, untouched
            #expect(child.isFinished && !UThread.isCancelled)
        }
    }

    /// A hosted child that parks (a sleep, then a semaphore another thread signals) leaves its
    /// joiner an ordinary parked joiner: BLOCKED on join of the child in the thread table, with
    /// a saved stack pointer and registers; both go on when the child is woken.
    @Test(arguments: [1, 2])
    func aHostedChildParks(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) { () throws in
            UThread.pin()
            let main = UThread.current.id
            let go = USemaphore()
            let child = UThread.local { () -> Int in  // first in the queue: hosted at one worker
                try UThread.sleep(for: .milliseconds(1))
                try go.wait()
                return 42
            }
            let watcher = UThread.local { () -> ThreadInfo? in  // runs while the child sleeps
                let row = UThreadRuntime.threadTable().threads.first { $0.id == main }
                go.signal()
                return row
            }
            #expect(try child.join() == 42)
            let row = try #require(try watcher.join())
            #expect(
                row.state == .blocked && row.waitReason?.kind == .join && row.waitReason?.object == child.id.rawValue)
            #expect(row.savedStackPointer != 0 && row.registers != nil)
        }
    }

    /// A joiner whose hosted child parks for good (on a channel nobody sends to yet, with its
    /// own far timeout) is cancelled from a third thread: its join throws CancellationError at
    /// once, while the child still waits. The child, released later, finishes normally and its
    /// join from elsewhere returns its value. The joiner is itself hosted by `main` at one
    /// worker (a chain of two).
    @Test(arguments: [1, 2])
    func aJoinerWhoseHostedChildParksIsCancelledAtOnce(workers: Int) throws {
        struct Outcome: Sendable {
            var threw: Bool
            var childStillWaiting: Bool
            var canceller: UThread<Int>
        }
        try UThreadRuntime.run(workers: workers) {
            UThread.pin()
            let gate = try Channel<Int>(capacity: 1)
            let released = USemaphore()
            let joiner = UThread.local { () -> Outcome in
                let me = UThread.current
                let child = UThread.local { () -> Int in  // first in the queue: hosted at one worker
                    try gate.receive(timeout: .seconds(3600))! + 1
                }
                let canceller = UThread.local { () -> Int in  // runs once the child parks
                    me.cancel()
                    try released.wait()  // the joiner's join has thrown
                    try gate.send(41)
                    return try child.join()
                }
                var threw = false
                do { _ = try child.join() } catch is CancellationError { threw = true }
                let waiting = !child.isFinished
                released.signal()
                return Outcome(threw: threw, childStillWaiting: waiting, canceller: canceller)
            }
            let outcome = try joiner.join()
            #expect(outcome.threw && outcome.childStillWaiting)
            #expect(try outcome.canceller.join() == 42)
        }
    }

    /// A hosted child runs on its own stack, of the size it asked for: a default one, a large
    /// one, and one hosted by a thread that is itself hosted.
    @Test func aHostedChildRunsOnItsOwnStack() throws {
        try UThreadRuntime.run {
            let main = UThread.current.id
            let local = ThreadLocal<Int>(default: 0)
            let plain = try UThread { Self.seen(local, joiner: main) }.join()
            #expect(plain.hosted == Self.hostsUnderThisBuild && plain.stackBase != plain.joinerStackBase)
            let asked = try UThread(stackSize: 2 << 20) { Self.seen(local, joiner: main) }.join()
            #expect(
                asked.hosted == Self.hostsUnderThisBuild && asked.stackSize == 2 << 20
                    && asked.stackBase != asked.joinerStackBase)
            let outer = UThread { () -> Seen in
                let me = UThread.current.id
                return try UThread { Self.seen(local, joiner: me) }.join()
            }
            let nested = try outer.join()
            #expect(nested.hosted == Self.hostsUnderThisBuild && nested.stackBase != nested.joinerStackBase)
        }
    }

    /// A row whose thread ran hosted keeps the first frame its spawn wrote (the body ran below
    /// it), and the next spawn on the row does not write it again: a thread spawned there and
    /// started by a switch (not joined before it runs) starts, runs and returns its value; one
    /// that leaves the CPU while hosted leaves a frame that the next spawn writes again. Dense
    /// and guarded stacks.
    @Test(arguments: [StackMode.dense, .guarded])
    func aRowWhoseThreadRanHostedStartsItsNextThreadBySwitch(mode: StackMode) throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        try UThreadRuntime.run(configuration) {
            let local = ThreadLocal<Int>(default: 0)
            let main = UThread.current.id
            let hosted = try UThread { Self.seen(local, joiner: main) }.join()  // the row kept
            let switched = UThread { () -> Seen in
                UThread.yield()
                return Self.seen(local, joiner: main)
            }
            UThread.yield()  // runs `switched` from its first frame, then it yields back
            let seen = try switched.join()
            #expect(hosted.hosted == Self.hostsUnderThisBuild && !seen.hosted)
            #expect(seen.stackBase == hosted.stackBase && seen.id == switched.id)
            // Hosted, then unhosted by a yield: its first frame was used up; the next spawn on
            // the row writes it again.
            let unhosted = try UThread { () -> Int in
                UThread.yield()
                return 5
            }.join()
            let after = UThread { 6 }
            UThread.yield()
            let afterValue = try after.join()
            #expect(unhosted == 5 && afterValue == 6)
        }
    }

    /// A body that captures a value releases it when it has run (a body that captures nothing
    /// is not released: it owns nothing), hosted or switched to.
    @Test func aBodysCapturesAreReleasedWhenItHasRun() throws {
        final class Token: Sendable {}
        try UThreadRuntime.run {
            weak var hostedToken: Token?
            weak var switchedToken: Token?
            var hosted: UThread<Int>?
            var switched: UThread<Int>?
            do {
                let a = Token()
                let b = Token()
                hostedToken = a
                switchedToken = b
                hosted = UThread { withExtendedLifetime(a) { 1 } }
                switched = UThread { withExtendedLifetime(b) { 2 } }
            }
            let hostedValue = try hosted!.join()
            UThread.yield()
            let switchedValue = try switched!.join()
            #expect(hostedValue == 1 && switchedValue == 2)
            #expect(hostedToken == nil && switchedToken == nil)
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
    /// unwinds, and the joiner's join throws the deadlock error.
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

    /// A hosted child that cancels its joiner and goes on running (yielding, never parking)
    /// leaves the joiner as the normal join leaves a parked joiner: woken with
    /// CancellationError at once, so its join throws at the child's next yield, while the child
    /// still runs (the child waits for the joiner to have thrown, up to a bound of yields).
    @Test(arguments: [1, 2])
    func aJoinerCancelledByItsRunningHostedChildThrowsAtOnce(workers: Int) throws {
        try UThreadRuntime.run(workers: workers) {
            UThread.pin()
            let threw = Flag()
            let joiner = UThread.local { () -> (threw: Bool, childRunning: Bool) in
                let me = UThread.current
                let child = UThread.local { () -> Bool in  // first in the queue: hosted at one worker
                    me.cancel()
                    var yields = 0
                    while !threw.value && yields < 100_000 {
                        UThread.yield()
                        yields += 1
                    }
                    return threw.value
                }
                var caught = false
                do { _ = try child.join() } catch is CancellationError { caught = true }
                threw.value = true
                return (caught, !child.isFinished)
            }
            let outcome = try joiner.join()
            #expect(outcome.threw && outcome.childRunning)
        }
    }

    /// A hosted child that joins its joiner closes a wait-for cycle: the deadlock report names
    /// both threads and the cycle, as for threads that joined each other the normal way.
    @Test(arguments: [1, 2])
    func aHostedChildInAJoinCycleIsReported(workers: Int) throws {
        var report = ""
        do {
            try UThreadRuntime.run(workers: workers) {
                UThread.pin()
                let box = OuterBox()
                let outer = UThread.local(name: "outer") {
                    try UThread.local(name: "inner") { try box.outer!.join() }.join()
                }
                box.outer = outer
                try outer.join()
            }
        } catch UThreadError.deadlock(let text) {
            report = text
        }
        for text in ["wait-for cycle", "\"outer\"", "\"inner\"", "join #"] {
            #expect(report.contains(text), "the report lacks \(text):\n\(report)")
        }
    }
}

/// The outer thread of a join cycle, for the inner one to join.
private final class OuterBox: @unchecked Sendable {
    var outer: UThread<Void>?
}

/// A flag shared by threads of one worker.
private final class Flag: @unchecked Sendable {
    var value = false
}
