import Testing
@testable import UserThreads

/// The deadlock check's census, replayed step by step: every interleaving of a worker that
/// leaves the stuck state and takes its mail with a worker that checks for a deadlock.
@Suite(.timeLimit(.minutes(1))) struct MNStuckCensusTests {
    final class Scene {
        let census = MNStuckCensus()
        var mail = 1  // one message waits in the leaver's mailbox
        var turn = 0
        var checkerDone = false
        let order: [Character]  // "L": the leaver's next step, "C": the checker's
        init(_ order: [Character]) { self.order = order }

        /// Parks (by yielding) until `order[turn]` is `me`; a checker that returned early gives
        /// up its remaining turns.
        func waitTurn(_ me: Character) {
            while turn < order.count && order[turn] != me {
                if order[turn] == "C" && checkerDone {
                    turn += 1
                    continue
                }
                UThread<Never>.yield()
            }
        }
    }

    /// Two workers stuck; the leaver's mailbox holds a message. The leaver's 3 steps (lower the
    /// count, bump the activity, take the mail) and the checker's 4 (read the activity, the
    /// count, the work, the activity again) run in `order`, on two user threads of one kernel
    /// thread. Returns whether the checker declared a deadlock.
    func replay(_ order: [Character]) throws -> Bool {
        try UThreadRuntime.run {
            let scene = Scene(order)
            scene.census.enter()  // the leaver, asleep
            scene.census.enter()  // the checker, about to sleep
            let leaver = UThread.local {
                scene.waitTurn("L")
                scene.census.leave(between: {
                    scene.turn += 1
                    scene.waitTurn("L")
                })
                scene.turn += 1
                scene.waitTurn("L")
                scene.mail = 0  // drains the mailbox
                scene.turn += 1
            }
            let checker = UThread { () -> Bool in
                scene.waitTurn("C")
                let declared = scene.census.allStuck(
                    of: 2, nothingToDo: { scene.mail == 0 },
                    step: { _ in
                        scene.turn += 1
                        scene.waitTurn("C")
                    })
                scene.turn += 1
                scene.checkerDone = true
                return declared
            }
            try leaver.join()
            return try checker.join()
        }
    }

    /// Every order of 3 "L" and 4 "C" steps (35 of them).
    static let interleavings = UserThreadsTests.interleavings("L", 3, "C", 4)

    /// The leaver took the mail the checker looks for, so whatever the order, the checker must
    /// not declare a deadlock. The census's first version (activity bumped before the count was
    /// lowered) declared one for "LCCLLCC": the false deadlock ThreadSanitizer found in
    /// `mutexAcrossWorkers`.
    @Test func noInterleavingWithALeaverDeclaresADeadlock() throws {
        #expect(Self.interleavings.count == 35)
        var declared: [String] = []
        for order in Self.interleavings where try replay(order) {
            declared.append(String(order))
        }
        #expect(declared == [])
    }

    @Test func allStuckWithNothingToDoIsADeadlock() {
        let census = MNStuckCensus()
        census.enter()
        census.enter()
        var steps: [MNStuckCensus.Step] = []
        let declared = census.allStuck(of: 2, nothingToDo: { true }, step: { steps.append($0) })
        #expect(declared)
        #expect(steps == [.readActivity, .readStuck, .readWork])
        let stuck = census.stuckCount
        #expect(stuck == 2)
    }

    @Test func workOrAWorkerAwakeIsNoDeadlock() {
        let census = MNStuckCensus()
        census.enter()
        let oneAwake = census.allStuck(of: 2, nothingToDo: { true })
        #expect(!oneAwake)
        census.enter()
        let workVisible = census.allStuck(of: 2, nothingToDo: { false })
        #expect(!workVisible)
        census.leave()
        let stuck = census.stuckCount
        #expect(stuck == 1)
        let afterLeaving = census.allStuck(of: 2, nothingToDo: { true })
        #expect(!afterLeaving)
    }

    /// A worker that left and came back between the checker's reads makes the check answer no:
    /// the answer errs only on the safe side (the checker sleeps; the next one to enter looks).
    @Test func aWorkerThatLeftAndReturnedMeanwhileIsNoDeadlock() {
        let census = MNStuckCensus()
        census.enter()
        census.enter()
        let declared = census.allStuck(
            of: 2, nothingToDo: { true },
            step: { step in
                if step == .readStuck {
                    census.leave()
                    census.enter()
                }
            })
        #expect(!declared)
        let nextLook = census.allStuck(of: 2, nothingToDo: { true })
        #expect(nextLook)
    }

    /// In a real runtime with the invariant checks on: a ping-pong between threads pinned to
    /// the two workers (every handoff crosses workers; a side that outwaits its spin sleeps with
    /// nothing but the other worker to wake it, as a stuck worker) must never be taken for a
    /// deadlock; a real cycle across workers still is. (The interleaving that once made the
    /// check wrong is replayed deterministically above; this is the end-to-end sanity check.)
    @Test func handoffsAcrossWorkersAreNeverADeadlockButACycleIs() throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.checkInvariants = true
        let rounds = try UThreadRuntime.run(workers: 2, configuration) { () -> Int in
            let ping = Channel<Int>(name: "ping")
            let pong = Channel<Int>(name: "pong")
            let a = try UThread.spawn(name: "a", onWorker: 0) { () -> Int in
                var n = 0
                for i in 0..<2_000 {
                    try ping.send(i)
                    n = try pong.receive() ?? -1
                }
                return n
            }
            let b = try UThread.spawn(name: "b", onWorker: 1) {
                for _ in 0..<2_000 { try pong.send((try ping.receive() ?? -1) + 1) }
            }
            try b.join()
            return try a.join()
        }
        #expect(rounds == 2_000)
        let report = expectError(sameCaseAs: .deadlock("")) {
            try UThreadRuntime.run(workers: 2, configuration) {
                let x = Channel<Int>(name: "x")
                let y = Channel<Int>(name: "y")
                let t0 = try UThread.spawn(name: "t0", onWorker: 0) { _ = try x.receive() }
                let t1 = try UThread.spawn(name: "t1", onWorker: 1) { _ = try y.receive() }
                try t0.join()
                try t1.join()
            }
        }
        #expect(report?.hasPrefix("M:N runtime: all 2 workers idle with parked threads") == true, "\(report ?? "")")
        // Both waits: every worker writes its table before any thread unwinds.
        #expect(
            report?.contains("channel receive on 'x'") == true && report?.contains("channel receive on 'y'") == true,
            "\(report ?? "")")
    }
}
